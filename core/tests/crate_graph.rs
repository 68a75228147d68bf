//! The crate graph is the architecture: `core` <- `client` <- `executor` <-
//! `agent` | `operator`; the control-plane library depends on no executor
//! crate; the operator binary links no systemd, D-Bus or archive code.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use std::process::Command;

/// The crates `package` depends on to build (normal edges only, not tests').
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none", "--offline", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree -p {package} failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    let mut names: Vec<String> = tree.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
    names.sort();
    names.dedup();
    assert!(names.iter().any(|n| n == package), "unexpected cargo tree output for {package}: {tree}");
    names
}

fn assert_none(package: &str, forbidden: &[&str]) {
    let deps = normal_dependencies(package);
    for f in forbidden {
        assert!(!deps.iter().any(|d| d == f), "{package} depends on {f}; the crate graph says it must not");
    }
}

#[test]
fn control_plane_library_depends_on_no_executor_crate() {
    assert_none("novacula-control-plane", &["novacula-agent", "novacula-executor", "novacula-client", "novacula-operator", "zbus"]);
}

#[test]
fn operator_links_no_systemd_dbus_or_archive_code() {
    assert_none("novacula-operator", &["novacula-agent", "zbus", "tar", "flate2", "novacula-control-plane"]);
    let deps = normal_dependencies("novacula-operator");
    assert!(deps.iter().any(|d| d == "novacula-executor"), "the operator runs the shared executor runtime");
}

#[test]
fn runtime_and_client_sit_below_the_backends() {
    assert_none("novacula-client", &["novacula-executor", "novacula-agent", "novacula-control-plane", "zbus"]);
    assert_none("novacula-executor", &["novacula-agent", "novacula-operator", "novacula-control-plane", "zbus", "kube", "tar"]);
    let agent = normal_dependencies("novacula-agent");
    assert!(agent.iter().any(|d| d == "novacula-executor") && !agent.iter().any(|d| d == "kube"), "the agent runs the runtime, without Kubernetes code");
}

/// Every `.rs` file under the workspace's crates' `src/` folders.
fn workspace_sources() -> Vec<(std::path::PathBuf, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut out = Vec::new();
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path().join("src")).filter(|p| p.is_dir()).collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    assert!(out.len() > 40, "expected the workspace's sources under {}", root.display());
    out
}

/// Errors are typed, with a category where someone retries them: a bare
/// `String` error cannot be matched on, only read.
#[test]
fn no_public_function_returns_a_string_error() {
    for (path, text) in workspace_sources() {
        for (n, line) in text.lines().enumerate() {
            let l = line.trim_start();
            let public = l.starts_with("pub fn") || l.starts_with("pub async fn") || l.starts_with("fn ") && text.contains("pub trait");
            let returns = l.split_once("->").map_or("", |(_, r)| r);
            if public && returns.contains("Result<") && returns.contains(", String>") {
                panic!("{}:{}: returns Result<_, String>: {l}", path.display(), n + 1);
            }
        }
    }
}

/// Randomness is injected like the clock: the OS generator is read in one place.
#[test]
fn the_operating_systems_generator_is_read_once() {
    let readers: Vec<String> = workspace_sources()
        .into_iter()
        .filter(|(_, text)| text.contains("getrandom::") || text.contains("rand::"))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(readers.len() == 1 && readers[0].ends_with("core/src/entropy.rs"), "OS randomness read outside core::entropy: {readers:?}");
}

/// The control plane's layers: only its `store` folder names the storage engine.
#[test]
fn only_the_store_names_the_engine() {
    for (path, text) in workspace_sources() {
        let p = path.display().to_string();
        if p.contains("control-plane/src/") && !p.contains("control-plane/src/store/") {
            assert!(!text.contains("redb::") && !text.contains("use redb"), "{p} names redb; go through store::Store");
        }
    }
}

/// The control plane's layers point down only: `api` -> `services` -> `store`.
#[test]
fn control_plane_layers_point_down() {
    for (path, text) in workspace_sources() {
        let p = path.display().to_string();
        if p.contains("control-plane/src/services/") {
            assert!(!text.contains("crate::api"), "{p}: a service uses the HTTP layer");
        }
        if p.contains("control-plane/src/store/") {
            assert!(!text.contains("crate::api") && !text.contains("crate::services"), "{p}: the store uses a layer above it");
        }
    }
}
