//! The agent's Debian package (cargo-deb, installed with dpkg into a fresh
//! root): its binary, which `install` then makes a service.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

#[path = "../../packaging/deb.rs"]
mod deb;

#[test]
fn the_agents_package_installs_the_binary_that_installs_the_service() {
    let p = deb::build_and_install("novacula-agent");
    assert_eq!(p.field("Package"), "novacula-agent");
    let depends = p.field("Depends");
    assert!(depends.contains("systemd") && depends.contains("dbus"), "{depends}");
    let files = p.listed("novacula-agent");
    assert!(files.iter().any(|l| l == "/usr/bin/novacula-agent"), "{files:?}");
    let out = std::process::Command::new(p.path("/usr/bin/novacula-agent")).args(["install", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && help.contains("--api-key-file") && help.contains("--control-plane"), "{help}");
}
