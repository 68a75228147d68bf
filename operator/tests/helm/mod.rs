//! Helm's own code, from the Helm v4 library that the PyPI package
//! helm-sdkpy ships (`.ci/prerequisites` installs it at
//! `/usr/local/lib/novacula/libhelm_sdkpy.so`; `NOVACULA_HELM_LIB` points
//! elsewhere): `helm lint`, and `helm install` against a stand-in API server
//! that accepts what it is sent, which is how these tests get the chart's
//! output as Helm renders it (the library has no `helm template`).

#![allow(dead_code)]

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use libloading::{Library, Symbol};
use serde_json::{json, Value};
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use std::sync::OnceLock;

type Handle = u64;

const DEFAULT_LIB: &str = "/usr/local/lib/novacula/libhelm_sdkpy.so";
/// Helm's support.Severity: 1 info, 2 warning, 3 error.
pub const WARNING: u64 = 2;
/// The namespace the tests install into (never `default`).
pub const NAMESPACE: &str = "validators";

pub struct Helm {
    lib: &'static Library,
}

/// What `helm lint` said: (severity, path) per message.
pub struct Lint {
    pub messages: Vec<(u64, String)>,
    pub errors: usize,
}

/// The library once per process: the Go runtime in it cannot be unloaded.
static LIB: OnceLock<Library> = OnceLock::new();

impl Helm {
    pub fn load() -> Helm {
        let lib = LIB.get_or_init(|| {
            let path = std::env::var("NOVACULA_HELM_LIB").unwrap_or_else(|_| DEFAULT_LIB.into());
            // SAFETY: a Go c-shared library whose initialisers only start its runtime.
            unsafe { Library::new(&path) }.unwrap_or_else(|e| panic!("cannot load Helm's library at {path} ({e}); run .ci/prerequisites"))
        });
        Helm { lib }
    }

    fn last_error(&self) -> String {
        unsafe {
            let f: Symbol<unsafe extern "C" fn() -> *mut c_char> = self.lib.get(b"helm_sdkpy_last_error").unwrap();
            let p = f();
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }

    /// Runs `action(handle, out)` on a Helm configuration for `kubeconfig`
    /// (none for lint) and returns the JSON it answered.
    fn with_config(&self, kubeconfig: Option<&Path>, action: impl FnOnce(Handle, *mut *mut c_char) -> c_int) -> Result<Value, String> {
        let namespace = CString::new(NAMESPACE).unwrap();
        let options = CString::new("{}").unwrap();
        let kubeconfig = kubeconfig.map(|p| CString::new(p.to_str().unwrap()).unwrap());
        // SAFETY: signatures as in the library's header (libhelm_sdkpy.h).
        unsafe {
            let create: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *const c_char, *const c_char, *mut Handle) -> c_int> =
                self.lib.get(b"helm_sdkpy_config_create").unwrap();
            let free: Symbol<unsafe extern "C" fn(*mut c_char)> = self.lib.get(b"helm_sdkpy_free").unwrap();
            let destroy: Symbol<unsafe extern "C" fn(Handle)> = self.lib.get(b"helm_sdkpy_config_destroy").unwrap();
            let mut handle: Handle = 0;
            let kc = kubeconfig.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
            let rc = create(namespace.as_ptr(), kc, std::ptr::null(), options.as_ptr(), &mut handle);
            assert_eq!(rc, 0, "helm config: {}", self.last_error());
            let mut out: *mut c_char = std::ptr::null_mut();
            let rc = action(handle, &mut out);
            let result = if rc == 0 {
                let json = CStr::from_ptr(out).to_string_lossy().into_owned();
                free(out);
                Ok(serde_json::from_str(&json).unwrap_or_else(|e| panic!("helm answered {json}: {e}")))
            } else {
                Err(self.last_error())
            };
            destroy(handle);
            result
        }
    }

    pub fn lint(&self, chart: &Path) -> Lint {
        let chart = CString::new(chart.to_str().unwrap()).unwrap();
        let v = self
            .with_config(None, |handle, out| unsafe {
                let lint: Symbol<unsafe extern "C" fn(Handle, *const c_char, *mut *mut c_char) -> c_int> = self.lib.get(b"helm_sdkpy_lint").unwrap();
                lint(handle, chart.as_ptr(), out)
            })
            .unwrap_or_else(|e| panic!("helm lint did not run: {e}"));
        assert_eq!(v["TotalChartsLinted"], 1, "{v}");
        let messages =
            v["Messages"].as_array().into_iter().flatten().map(|m| (m["Severity"].as_u64().unwrap(), m["Path"].as_str().unwrap_or("").to_string())).collect();
        let errors = v["Errors"].as_array().map_or(0, Vec::len);
        Lint { messages, errors }
    }

    /// `helm install` of `chart` with `values` into a stand-in API server:
    /// the chart's output as Helm rendered it (the CRDs from `crds/` first,
    /// then the templates' manifest), or Helm's error.
    pub fn render(&self, chart: &Path, values: &Value) -> Result<String, String> {
        let server = StandInApiServer::start();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{}\"}}}}]\n\
                 contexts: [{{name: c, context: {{cluster: c, user: u, namespace: {NAMESPACE}}}}}]\n\
                 users: [{{name: u, user: {{token: t}}}}]\ncurrent-context: c\n",
                server.url
            ),
        )
        .unwrap();
        let release = CString::new("novacula").unwrap();
        let chart = CString::new(chart.to_str().unwrap()).unwrap();
        let values = CString::new(values.to_string()).unwrap();
        let options = CString::new(json!({ "wait": false, "timeout_seconds": 60 }).to_string()).unwrap();
        let v = self.with_config(Some(&kubeconfig), |handle, out| unsafe {
            type Install = unsafe extern "C" fn(Handle, *const c_char, *const c_char, *const c_char, *const c_char, *const c_char, *mut *mut c_char) -> c_int;
            let install: Symbol<Install> = self.lib.get(b"helm_sdkpy_install").unwrap();
            install(handle, release.as_ptr(), chart.as_ptr(), values.as_ptr(), std::ptr::null(), options.as_ptr(), out)
        })?;
        let crds: Vec<String> =
            server.created().iter().filter(|o| o["kind"] == "CustomResourceDefinition").map(|o| serde_yaml::to_string(o).unwrap()).collect();
        let manifest = v["manifest"].as_str().unwrap_or_else(|| panic!("no manifest in {v}"));
        Ok(crds.into_iter().chain([manifest.to_string()]).collect::<Vec<_>>().join("---\n"))
    }
}

/// An API server that knows the groups the chart uses, has nothing stored,
/// and accepts every object created; it keeps the JSON ones it was sent.
struct StandInApiServer {
    url: String,
    created: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

/// (resource, kind, namespaced).
type Resource = (&'static str, &'static str, bool);
/// (group/version, its resources).
const RESOURCES: &[(&str, &[Resource])] = &[
    ("v1", &[("secrets", "Secret", true), ("configmaps", "ConfigMap", true), ("serviceaccounts", "ServiceAccount", true), ("services", "Service", true)]),
    ("apps/v1", &[("deployments", "Deployment", true), ("statefulsets", "StatefulSet", true)]),
    ("apiextensions.k8s.io/v1", &[("customresourcedefinitions", "CustomResourceDefinition", false)]),
    (
        "rbac.authorization.k8s.io/v1",
        &[
            ("roles", "Role", true),
            ("rolebindings", "RoleBinding", true),
            ("clusterroles", "ClusterRole", false),
            ("clusterrolebindings", "ClusterRoleBinding", false),
        ],
    ),
    ("networking.k8s.io/v1", &[("networkpolicies", "NetworkPolicy", true)]),
    ("policy/v1", &[("poddisruptionbudgets", "PodDisruptionBudget", true)]),
    ("validatoros.com/v1alpha1", &[("blockchainnodes", "BlockchainNode", true)]),
];

impl StandInApiServer {
    fn start() -> StandInApiServer {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let created = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let kept = created.clone();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(move |req: Request| {
            let kept = kept.clone();
            async move { answer(req, &kept).await }
        });
        runtime.spawn(async move { axum::serve(listener, app).await });
        StandInApiServer { url, created, _runtime: runtime }
    }

    fn created(&self) -> Vec<Value> {
        self.created.lock().unwrap().clone()
    }
}

async fn answer(req: Request, created: &std::sync::Mutex<Vec<Value>>) -> axum::response::Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = axum::body::to_bytes(req.into_body(), 64 << 20).await.unwrap();
    let discovery = |gv: &str| RESOURCES.iter().find(|(g, _)| *g == gv);
    if path == "/version" {
        return Json(json!({ "major": "1", "minor": "33", "gitVersion": "v1.33.0" })).into_response();
    }
    if path == "/api" {
        return Json(json!({ "kind": "APIVersions", "versions": ["v1"] })).into_response();
    }
    if path == "/apis" {
        let groups: Vec<Value> = RESOURCES
            .iter()
            .filter_map(|(gv, _)| gv.split_once('/'))
            .map(|(g, v)| {
                let version = json!({ "groupVersion": format!("{g}/{v}"), "version": v });
                json!({ "name": g, "versions": [version.clone()], "preferredVersion": version })
            })
            .collect();
        return Json(json!({ "kind": "APIGroupList", "groups": groups })).into_response();
    }
    let gv = path.strip_prefix("/api/").or_else(|| path.strip_prefix("/apis/")).unwrap_or_default();
    if let Some((gv, resources)) = discovery(gv) {
        let resources: Vec<Value> = resources
            .iter()
            .map(|(name, kind, namespaced)| {
                json!({ "name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"] })
            })
            .collect();
        return Json(json!({ "kind": "APIResourceList", "groupVersion": gv, "resources": resources })).into_response();
    }
    match method {
        // Nothing is stored: every lookup misses, so everything is created.
        Method::GET => (StatusCode::NOT_FOUND, Json(json!({ "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404 }))).into_response(),
        Method::POST | Method::PUT | Method::PATCH => match serde_json::from_slice::<Value>(&body) {
            Ok(object) => {
                created.lock().unwrap().push(object.clone());
                (StatusCode::CREATED, Json(object)).into_response()
            }
            // Helm's release record is sent as protobuf; any Secret answers it.
            Err(_) => (StatusCode::CREATED, Json(json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "release", "namespace": NAMESPACE } })))
                .into_response(),
        },
        _ => Json(json!({})).into_response(),
    }
}
