//! `helm lint` on the chart, by Helm's own code: the Helm v4 library that the
//! PyPI package helm-sdkpy ships (`.ci/prerequisites` installs it at
//! `/usr/local/lib/novacula/libhelm_sdkpy.so`; `NOVACULA_HELM_LIB` points
//! elsewhere). Lint renders every template with the chart's values, so a
//! template that does not render, or renders to bad YAML, fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use libloading::{Library, Symbol};
use serde_json::Value;
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};

type Handle = u64;

const DEFAULT_LIB: &str = "/usr/local/lib/novacula/libhelm_sdkpy.so";
// Helm's support.Severity: 1 info, 2 warning, 3 error.
const WARNING: u64 = 2;

struct Helm {
    lib: Library,
}

/// What `helm lint` said: (severity, path) per message.
struct Lint {
    messages: Vec<(u64, String)>,
    errors: usize,
}

impl Helm {
    fn load() -> Helm {
        let path = std::env::var("NOVACULA_HELM_LIB").unwrap_or_else(|_| DEFAULT_LIB.into());
        // SAFETY: a Go c-shared library whose initialisers only start its runtime.
        let lib = unsafe { Library::new(&path) }.unwrap_or_else(|e| panic!("cannot load Helm's library at {path} ({e}); run .ci/prerequisites"));
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

    fn lint(&self, chart: &Path) -> Lint {
        let namespace = CString::new("validators").unwrap();
        let options = CString::new("{}").unwrap();
        let chart = CString::new(chart.to_str().unwrap()).unwrap();
        // SAFETY: signatures as in the library's header (libhelm_sdkpy.h).
        let json = unsafe {
            let create: Symbol<unsafe extern "C" fn(*const c_char, *const c_char, *const c_char, *const c_char, *mut Handle) -> c_int> =
                self.lib.get(b"helm_sdkpy_config_create").unwrap();
            let lint: Symbol<unsafe extern "C" fn(Handle, *const c_char, *mut *mut c_char) -> c_int> = self.lib.get(b"helm_sdkpy_lint").unwrap();
            let free: Symbol<unsafe extern "C" fn(*mut c_char)> = self.lib.get(b"helm_sdkpy_free").unwrap();
            let destroy: Symbol<unsafe extern "C" fn(Handle)> = self.lib.get(b"helm_sdkpy_config_destroy").unwrap();

            let mut handle: Handle = 0;
            let rc = create(namespace.as_ptr(), std::ptr::null(), std::ptr::null(), options.as_ptr(), &mut handle);
            assert_eq!(rc, 0, "helm config: {}", self.last_error());
            let mut out: *mut c_char = std::ptr::null_mut();
            let rc = lint(handle, chart.as_ptr(), &mut out);
            assert_eq!(rc, 0, "helm lint did not run: {}", self.last_error());
            let json = CStr::from_ptr(out).to_string_lossy().into_owned();
            free(out);
            destroy(handle);
            json
        };
        let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("lint result {json}: {e}"));
        assert_eq!(v["TotalChartsLinted"], 1, "{json}");
        let messages =
            v["Messages"].as_array().into_iter().flatten().map(|m| (m["Severity"].as_u64().unwrap(), m["Path"].as_str().unwrap_or("").to_string())).collect();
        let errors = v["Errors"].as_array().map_or(0, Vec::len);
        Lint { messages, errors }
    }
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/novacula-operator")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the chart with one file edited, in a temporary directory.
fn edited_copy(file: &str, edit: impl FnOnce(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("novacula-operator");
    copy_dir(&chart(), &copy);
    let path = copy.join(file);
    std::fs::write(&path, edit(std::fs::read_to_string(&path).unwrap())).unwrap();
    (dir, copy)
}

fn assert_rejected(lint: &Lint, path_prefix: &str) {
    assert!(lint.errors > 0, "helm lint accepted it: {:?}", lint.messages);
    assert!(lint.messages.iter().any(|(sev, path)| *sev > WARNING && path.starts_with(path_prefix)), "no error on {path_prefix}: {:?}", lint.messages);
}

// One test function: the Go runtime inside the library is loaded once per process.
#[test]
fn helm_lint_passes_on_the_chart_and_rejects_broken_ones() {
    let helm = Helm::load();

    let lint = helm.lint(&chart());
    let serious: Vec<_> = lint.messages.iter().filter(|(sev, _)| *sev >= WARNING).collect();
    assert!(lint.errors == 0 && serious.is_empty(), "helm lint on the chart: {serious:?}");

    // With the optional private-CA mount switched on, too.
    let (_dir, with_ca) = edited_copy("values.yaml", |v| v.replace("caConfigMap: \"\"", "caConfigMap: novacula-ca"));
    let lint = helm.lint(&with_ca);
    let serious: Vec<_> = lint.messages.iter().filter(|(sev, _)| *sev >= WARNING).collect();
    assert!(lint.errors == 0 && serious.is_empty(), "helm lint with caConfigMap: {serious:?}");

    // The same lint must fail on broken copies, so the pass above means something:
    // a template that cannot render...
    let (_dir, broken) = edited_copy("templates/deployment.yaml", |t| t + "  oops: {{ .Values.missing.deeper }}\n");
    assert_rejected(&helm.lint(&broken), "templates");
    // ...and values that values.schema.json refuses (no such release channel).
    let (_dir, broken) = edited_copy("values.yaml", |v| v.replace("channel: stable", "channel: nightly"));
    assert_rejected(&helm.lint(&broken), "values.yaml");
}
