//! The Helm chart: its CRD is the one the binary generates, and its templates
//! render (with the chart's own values) into objects that match what the
//! operator reads and the permissions it uses. Helm itself is not needed:
//! the templates use only `{{ .Values.x }}`, `{{ .Release.* }}`, `{{ .Chart.* }}`,
//! `| quote` and `{{- if .Values.x }}`/`{{- end }}` on lines of their own,
//! which this test renders. (`helm_lint.rs` runs Helm's own lint as well.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_operator::crd::crd_yaml;
use novacula_operator::rbac::RULES;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const RELEASE: &str = "novacula-operator";
const NAMESPACE: &str = "validators";

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/novacula-operator")
}

fn lookup<'a>(root: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(root, |v, k| v.get(k).unwrap_or_else(|| panic!("values.yaml has no {path}")))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Helm's truthiness: empty, false, zero and null are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}

/// Render one template the way Helm does for the constructs the chart uses.
fn render(template: &str, values: &Value, chart: &Value) -> String {
    // `{{- if .Values.x }}` / `{{- end }}` lines: keep what is between when x is truthy.
    let mut kept = String::new();
    let mut open: Vec<bool> = Vec::new();
    for line in template.lines() {
        let t = line.trim();
        if let Some(cond) = t.strip_prefix("{{- if ").and_then(|c| c.strip_suffix("}}")) {
            let path = cond.trim().strip_prefix(".Values.").unwrap_or_else(|| panic!("unsupported condition: {cond}"));
            open.push(truthy(lookup(values, path)));
        } else if t == "{{- end }}" {
            open.pop().expect("{{- end }} without if");
        } else if open.iter().all(|&on| on) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    assert!(open.is_empty(), "unclosed {{{{- if }}}}");
    let mut out = String::new();
    let mut rest = kept.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("unclosed {{") + start;
        let expr = rest[start + 2..end].trim();
        let (path, filter) = match expr.split_once('|') {
            Some((p, f)) => (p.trim(), Some(f.trim())),
            None => (expr, None),
        };
        let value = match path {
            ".Release.Name" => RELEASE.to_string(),
            ".Release.Namespace" => NAMESPACE.to_string(),
            p if p.starts_with(".Values.") => scalar(lookup(values, &p[".Values.".len()..])),
            // sprig's `join "," .Values.list`
            p if p.starts_with("join \",\" .Values.") => match lookup(values, &p["join \",\" .Values.".len()..]) {
                Value::Sequence(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
                Value::Null => String::new(),
                other => panic!("join of a non-list: {other:?}"),
            },
            ".Chart.AppVersion" => scalar(lookup(chart, "appVersion")),
            other => panic!("template construct not supported by the chart test: {other}"),
        };
        match filter {
            None => out.push_str(&value),
            Some("quote") => out.push_str(&format!("{value:?}")),
            Some(f) => panic!("filter not supported by the chart test: {f}"),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn rendered() -> Vec<Value> {
    rendered_with(&[])
}

/// Render with some values set, like `helm template --set a.b=v`.
fn rendered_with(set: &[(&str, &str)]) -> Vec<Value> {
    let dir = chart();
    let mut values: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    for (path, v) in set {
        let mut at = &mut values;
        for k in path.split('.') {
            at = at.get_mut(k).unwrap_or_else(|| panic!("values.yaml has no {path}"));
        }
        // As `--set` reads it: true and false are booleans.
        *at = serde_yaml::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
    }
    let chart: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("Chart.yaml")).unwrap()).unwrap();
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("templates")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        let text = render(&std::fs::read_to_string(&f).unwrap(), &values, &chart);
        if f.extension().is_some_and(|e| e == "yaml") {
            let doc: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} does not render to YAML: {e}\n{text}", f.display()));
            docs.push(doc);
        }
    }
    docs
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("chart renders no {kind}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence().map(|s| s.iter().map(scalar).collect()).unwrap_or_default()
}

#[test]
fn chart_crd_is_the_generated_one() {
    let shipped = std::fs::read_to_string(chart().join("crds/blockchainnodes.validatoros.com.yaml")).unwrap();
    assert!(
        shipped == crd_yaml(),
        "charts/novacula-operator/crds is out of date; regenerate it with\n  cargo run -p novacula-operator -- crd > charts/novacula-operator/crds/blockchainnodes.validatoros.com.yaml"
    );
}

#[test]
fn role_grants_exactly_what_the_operator_uses() {
    let docs = rendered();
    let role = kind(&docs, "Role");
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
        if strings(&rule["resources"]) == ["deployments"] {
            assert_eq!(strings(&rule["resourceNames"]), [RELEASE], "only its own Deployment");
        }
    }
    let wanted: BTreeSet<_> = RULES.iter().flat_map(|(g, r, vs)| vs.iter().map(move |v| (g.to_string(), r.to_string(), v.to_string()))).collect();
    assert_eq!(granted, wanted);
    let binding = kind(&docs, "RoleBinding");
    assert_eq!(scalar(&binding["roleRef"]["name"]), scalar(&role["metadata"]["name"]));
    assert_eq!(scalar(&binding["subjects"][0]["name"]), scalar(&kind(&docs, "ServiceAccount")["metadata"]["name"]));
}

#[test]
fn allowed_images_reach_the_operator_as_one_list() {
    let dir = chart();
    let mut values: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    values["allowedImages"] = serde_yaml::from_str("[\"ghcr.io/ethpandaops/\", \"docker.io/library/busybox:1.36\"]").unwrap();
    let chart_meta: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("Chart.yaml")).unwrap()).unwrap();
    let text = render(&std::fs::read_to_string(dir.join("templates/deployment.yaml")).unwrap(), &values, &chart_meta);
    let d: Value = serde_yaml::from_str(&text).unwrap();
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let allowed = env.iter().find(|e| e["name"] == "NOVACULA_ALLOWED_IMAGES").unwrap();
    assert_eq!(scalar(&allowed["value"]), "ghcr.io/ethpandaops/,docker.io/library/busybox:1.36");
}

#[test]
fn checkpoint_sync_urls_reach_the_operator_as_pairs() {
    let dir = chart();
    let mut values: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    let chart_meta: Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("Chart.yaml")).unwrap()).unwrap();
    let env_of = |values: &Value| {
        let text = render(&std::fs::read_to_string(dir.join("templates/deployment.yaml")).unwrap(), values, &chart_meta);
        let d: Value = serde_yaml::from_str(&text).unwrap();
        let env = d["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap().clone();
        scalar(&env.iter().find(|e| e["name"] == "NOVACULA_CHECKPOINT_SYNC_URLS").unwrap()["value"])
    };
    assert_eq!(env_of(&values), "", "the public defaults unless set");
    values["checkpointSyncUrls"] = serde_yaml::from_str("[\"mainnet=https://beacon.internal\", \"hoodi=https://hoodi.internal\"]").unwrap();
    let pairs = env_of(&values);
    assert_eq!(pairs, "mainnet=https://beacon.internal,hoodi=https://hoodi.internal");
    // What the operator makes of them (its --checkpoint-sync-urls parser).
    let parsed = novacula_executor::adapter::Ethereum::parse_checkpoint_pairs(&pairs.split(',').map(String::from).collect::<Vec<_>>()).unwrap();
    assert_eq!(parsed[0], ("mainnet".to_string(), "https://beacon.internal".to_string()));
}

#[test]
fn deployment_configures_the_operator_by_env_with_the_key_from_a_secret() {
    let docs = rendered();
    let d = kind(&docs, "Deployment");
    assert_eq!(scalar(&d["metadata"]["namespace"]), NAMESPACE);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(scalar(&pod["serviceAccountName"]), scalar(&kind(&docs, "ServiceAccount")["metadata"]["name"]));
    let c = &pod["containers"][0];
    assert_eq!(scalar(&c["name"]), "operator");
    assert_eq!(scalar(&c["image"]), "ghcr.io/novacula/novacula-operator:1.0.0");
    assert_eq!(strings(&c["args"]), ["run"]);
    let env = c["env"].as_sequence().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no env {name}"));
    assert_eq!(scalar(&var("NOVACULA_OPERATOR_NAME")["value"]), "k8s-executor");
    assert_eq!(scalar(&var("NOVACULA_CHANNEL")["value"]), "stable");
    // The key is a file from the Secret, never an environment variable (nor in the Deployment).
    assert!(env.iter().all(|e| e["name"] != "NOVACULA_API_KEY"), "no key in the environment");
    let key_file = scalar(&var("NOVACULA_API_KEY_FILE")["value"]);
    let key_volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"] == "api-key").expect("the key's volume");
    assert_eq!(scalar(&key_volume["secret"]["secretName"]), "novacula-api-key");
    assert_eq!(key_volume["secret"]["defaultMode"], Value::from(0o440), "the operator reads it through its group");
    assert_eq!(pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsUser"]);
    let mount = c["volumeMounts"].as_sequence().unwrap().iter().find(|m| m["name"] == "api-key").expect("mounted");
    assert_eq!(key_file, format!("{}/{}", scalar(&mount["mountPath"]), scalar(&key_volume["secret"]["items"][0]["path"])));
    assert_eq!(scalar(&var("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"]), "metadata.namespace");
    assert_eq!(scalar(&var("NOVACULA_ALLOWED_IMAGES")["value"]), "", "specs may name no image unless the chart allows it");
    // self-upgrade patches this very Deployment and container
    assert_eq!(scalar(&var("NOVACULA_OPERATOR_DEPLOYMENT")["value"]), scalar(&d["metadata"]["name"]));
    assert_eq!(scalar(&var("NOVACULA_OPERATOR_CONTAINER")["value"]), scalar(&c["name"]));
    // the old pod stays until the new one is available, to roll back a bad image: available means
    // ready (the operator's probe) and still up minReadySeconds later, so a crash soon after start is caught
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], Value::from(0));
    assert!(d["spec"]["minReadySeconds"].as_i64().unwrap() >= 30);
    assert_eq!(scalar(&c["readinessProbe"]["httpGet"]["path"]), "/readyz");
    assert_eq!(scalar(&c["readinessProbe"]["httpGet"]["port"]), "health");
    assert!(c["ports"].as_sequence().unwrap().iter().any(|p| p["name"] == "health" && p["containerPort"] == 8081));
    // the restricted profile for the operator's own pod
    assert_eq!(scalar(&pod["securityContext"]["seccompProfile"]["type"]), "RuntimeDefault");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], Value::Bool(false));
    let selector = &d["spec"]["selector"]["matchLabels"];
    for (k, v) in selector.as_mapping().unwrap() {
        assert_eq!(&d["spec"]["template"]["metadata"]["labels"][k], v);
    }
}

#[test]
fn chart_version_follows_the_workspace() {
    let meta: Value = serde_yaml::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap()).unwrap();
    assert_eq!(scalar(&meta["appVersion"]), env!("CARGO_PKG_VERSION"));
    let values: Value = serde_yaml::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap()).unwrap();
    assert_eq!(scalar(&values["image"]["tag"]), env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_private_ca_is_mounted_from_a_config_map_when_named() {
    let env_names = |docs: &[Value]| -> Vec<String> {
        let c = &kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        c["env"].as_sequence().unwrap().iter().map(|e| scalar(&e["name"])).collect()
    };
    // by default: system roots only, no CA volume
    let docs = rendered();
    assert!(!env_names(&docs).contains(&"NOVACULA_CA_FILE".to_string()));
    let volumes = kind(&docs, "Deployment")["spec"]["template"]["spec"]["volumes"].as_sequence().unwrap().clone();
    assert!(volumes.iter().all(|v| v["name"] != "control-plane-ca"));

    let docs = rendered_with(&[("controlPlane.caConfigMap", "novacula-ca")]);
    let pod = &kind(&docs, "Deployment")["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let env = c["env"].as_sequence().unwrap();
    let ca_file = scalar(&env.iter().find(|e| e["name"] == "NOVACULA_CA_FILE").expect("NOVACULA_CA_FILE set")["value"]);
    let volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"] == "control-plane-ca").expect("the CA volume").clone();
    assert_eq!(scalar(&volume["configMap"]["name"]), "novacula-ca");
    let m = c["volumeMounts"].as_sequence().unwrap().iter().find(|m| m["name"] == "control-plane-ca").expect("mounted").clone();
    assert_eq!(ca_file, format!("{}/ca.crt", scalar(&m["mountPath"])), "the file the operator reads is the mounted key");
    assert_eq!(m["readOnly"], Value::Bool(true));
}

#[test]
fn the_crd_is_the_operators_to_update_only_when_asked() {
    let cluster_wide = |docs: &[Value]| -> Vec<serde_json::Value> {
        docs.iter().filter(|d| d["kind"] == "ClusterRole").map(|d| serde_json::to_value(&d["rules"]).unwrap()).collect()
    };
    // By default the one cluster-wide permission is listing StorageClasses; none without it.
    let docs = rendered();
    assert_eq!(cluster_wide(&docs), [serde_json::json!([{"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["list"]}])]);
    let docs = rendered_with(&[("reportStorageClasses", "false")]);
    assert!(docs.iter().all(|d| d["kind"] != "ClusterRole" && d["kind"] != "ClusterRoleBinding"), "no cluster-wide permission");
    let docs = rendered_with(&[("crd.manage", "true"), ("reportStorageClasses", "false")]);
    let role = kind(&docs, "ClusterRole");
    assert_eq!(strings(&role["rules"][0]["resourceNames"]), ["blockchainnodes.validatoros.com"], "its own CRD and no other");
    assert_eq!(strings(&role["rules"][0]["verbs"]), ["get", "patch"]);
    let binding = kind(&docs, "ClusterRoleBinding");
    assert_eq!(scalar(&binding["roleRef"]["name"]), scalar(&role["metadata"]["name"]));
    assert_eq!(scalar(&binding["subjects"][0]["name"]), scalar(&kind(&docs, "ServiceAccount")["metadata"]["name"]));
}

#[test]
fn a_pod_monitor_scrapes_the_operators_metrics_only_when_asked() {
    assert!(rendered().iter().all(|d| d["kind"] != "PodMonitor"), "off by default: not every cluster has the Prometheus Operator");
    let docs = rendered_with(&[("metrics.podMonitor.enabled", "true"), ("metrics.podMonitor.prometheusRelease", "kps")]);
    let monitor = kind(&docs, "PodMonitor");
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!((scalar(&endpoint["port"]), scalar(&endpoint["path"]), scalar(&endpoint["interval"])), ("health".into(), "/metrics".into(), "30s".into()));
    assert_eq!(scalar(&monitor["metadata"]["labels"]["release"]), "kps");
    // It selects the operator's pod, whose port of that name serves /metrics.
    let deployment = kind(&docs, "Deployment");
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (k, v) in monitor["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(&pod_labels[k], v, "{k:?}");
    }
    let ports = &deployment["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert!(ports.as_sequence().unwrap().iter().any(|p| p["name"] == "health" && p["containerPort"] == 8081));
    let without_release = rendered_with(&[("metrics.podMonitor.enabled", "true")]);
    assert!(kind(&without_release, "PodMonitor")["metadata"]["labels"].get("release").is_none());
}
