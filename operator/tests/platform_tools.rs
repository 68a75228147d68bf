//! What a platform team runs before admitting the operator to a cluster, on
//! every object it renders for a matrix of specs (every client the adapters
//! know, with storage volumes and a sidecar) and on the CRD:
//! - `kubernetes-validate --strict` against the oldest and newest Kubernetes
//!   versions the operator supports;
//! - `checkov`, with the checks skipped in `.ci/checkov-skips.txt`, each with
//!   its reason; any other failure fails the test.
//!
//! The same for the Helm chart's output, as Helm's own code renders it (see
//! `helm/mod.rs`), with every optional part switched on.
//!
//! Both tools come from PyPI through `.ci/prerequisites`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;
mod helm;

use common::{matrix, objects};
use novacula_executor::adapter::Adapters;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Kubernetes versions the operator supports, oldest and newest.
const KUBERNETES: [&str; 2] = ["1.27.0", "1.37.0"];

/// Every rendered object of the matrix, one YAML file each, and the CRD.
fn write_objects(dir: &Path) -> Vec<PathBuf> {
    let adapters = Adapters::standard().with_demo_chain();
    let mut files = vec![];
    let mut write = |name: String, yaml: String| {
        let path = dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        files.push(path);
    };
    for (i, spec) in matrix().into_iter().enumerate() {
        let name = spec.name.clone();
        for (kind, yaml) in objects(i, spec, &adapters) {
            write(format!("{name}-{kind}.yaml"), yaml);
        }
    }
    write("crd.yaml".into(), novacula_operator::crd::crd_yaml());
    files
}

/// The chart as Helm renders it with every optional part on, one file per
/// object. Rendered once per process (Helm's library is loaded once).
fn write_chart_objects(dir: &Path) -> Vec<PathBuf> {
    static RENDERED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let yaml = RENDERED.get_or_init(|| {
        let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/novacula-operator");
        let values = serde_json::json!({
            "crd": { "manage": true },
            "controlPlane": { "caConfigMap": "novacula-ca" },
            "allowedImages": ["ghcr.io/ethpandaops/ethereum-metrics-exporter:"],
            "checkpointSyncUrls": ["mainnet=https://beacon.internal.example"],
            "nodePods": { "podDisruptionBudget": true, "antiAffinity": "required" },
        });
        helm::Helm::load().render(&chart, &values).unwrap_or_else(|e| panic!("helm install: {e}"))
    });
    let mut files = vec![];
    for (i, doc) in yaml.split("\n---").map(str::trim).filter(|d| !d.is_empty() && *d != "---").enumerate() {
        let object: serde_yaml::Value = serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let kind = object["kind"].as_str().unwrap_or_else(|| panic!("no kind: {doc}")).to_lowercase();
        let path = dir.join(format!("chart-{i:02}-{kind}.yaml"));
        std::fs::write(&path, doc).unwrap();
        files.push(path);
    }
    let kinds: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for kind in ["customresourcedefinition", "deployment", "serviceaccount", "role", "rolebinding", "clusterrole", "clusterrolebinding"] {
        assert!(kinds.iter().any(|k| k.ends_with(&format!("-{kind}.yaml"))), "the chart rendered no {kind}: {kinds:?}");
    }
    files
}

/// A directory checkov scans (it skips hidden ones, such as tempfile's default `.tmpXXXX`).
fn objects_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("novacula-objects-").tempdir().unwrap()
}

fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.exists());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{name} is missing: run .ci/prerequisites");
        eprintln!("skipped: {name} is not installed (run .ci/prerequisites)");
    }
    found
}

#[test]
fn every_rendered_object_passes_kubernetes_validate_strict() {
    let Some(kv) = tool("kubernetes-validate") else { return };
    let dir = objects_dir();
    let mut files = write_objects(dir.path());
    files.extend(write_chart_objects(dir.path()));
    for version in KUBERNETES {
        let out = Command::new(&kv).args(["--strict", "--quiet", "-k", version]).args(&files).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && !text.contains("ERROR"), "kubernetes-validate {version}:\n{text}");
    }
}

/// The checks skipped on purpose, from `.ci/checkov-skips.txt` (`ID  # reason`).
fn skips() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/checkov-skips.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once('#').unwrap_or_else(|| panic!("{}: {l:?} gives no reason", path.display()));
            assert!(!reason.trim().is_empty(), "{}: {l:?} gives no reason", path.display());
            id.trim().to_string()
        })
        .collect()
}

#[test]
fn checkov_finds_nothing_beyond_the_documented_skips() {
    let Some(checkov) = tool("checkov") else { return };
    let dir = objects_dir();
    let files = write_objects(dir.path());
    assert!(files.len() > 30, "the matrix renders every object");
    write_chart_objects(dir.path());
    let out = Command::new(&checkov)
        .args(["--framework", "kubernetes", "--quiet", "--compact", "--skip-download", "--skip-check", &skips().join(","), "-d"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "checkov failed:\n{text}");
    // It did scan them: without the skips, what is skipped shows as failed.
    let all = Command::new(&checkov).args(["--framework", "kubernetes", "--quiet", "--compact", "--skip-download", "-d"]).arg(dir.path()).output().unwrap();
    let all = String::from_utf8_lossy(&all.stdout);
    assert!(all.contains("CKV_K8S_11") && all.contains("FAILED for resource: StatefulSet.validators."), "checkov saw no StatefulSet:\n{all}");
    assert!(all.contains("Deployment.validators.novacula"), "checkov saw not the chart's Deployment:\n{all}");
}
