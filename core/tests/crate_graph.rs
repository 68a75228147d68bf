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
