//! The control plane's Debian package (cargo-deb, installed with dpkg into a
//! fresh root): its binary, its hardened unit (checked by systemd-analyze),
//! its settings file (root's alone, a conffile), and the installed binary
//! serving with those settings.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

#[path = "../../packaging/deb.rs"]
mod deb;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The status line of `GET /healthz`, if the server answers.
fn healthz(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(String::from)
}

#[test]
fn the_control_planes_package_installs_a_hardened_service_and_settings_it_serves_with() {
    let p = deb::build_and_install("novacula");
    assert_eq!((p.field("Package"), p.field("Section")), ("novacula".to_string(), "net".to_string()));
    assert_eq!(p.field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    let files = p.listed("novacula");
    for f in ["/usr/bin/novacula", "/lib/systemd/system/novacula.service", "/etc/novacula/novacula.env", "/usr/share/doc/novacula/copyright"] {
        assert!(files.iter().any(|l| l == f), "{f} not in the package: {files:?}");
    }
    assert_eq!(mode(&p.path("/usr/bin/novacula")), 0o755);
    assert_eq!(mode(&p.path("/etc/novacula/novacula.env")), 0o600, "the settings may hold secrets");
    let conffiles = std::fs::read_to_string(p.path("/var/lib/dpkg/info/novacula.conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/novacula/novacula.env", "an upgrade keeps the administrator's settings");

    let unit = std::fs::read_to_string(p.path("/lib/systemd/system/novacula.service")).unwrap();
    for line in [
        "ExecStart=/usr/bin/novacula serve",
        "EnvironmentFile=/etc/novacula/novacula.env",
        "DynamicUser=yes",
        "StateDirectory=novacula",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line:?} in\n{unit}");
    }
    let verified = p.verify_unit("novacula.service");
    assert!(!verified.contains("Unknown") && !verified.contains("ignoring"), "systemd-analyze: {verified}");

    // the installed binary serves with the shipped settings (the database and port moved for the test)
    let settings = std::fs::read_to_string(p.path("/etc/novacula/novacula.env")).unwrap();
    let vars: Vec<(String, String)> = settings
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).unwrap())
        .collect();
    assert!(vars.iter().any(|(k, v)| k == "NOVACULA_DB" && v == "/var/lib/novacula/novacula.redb"), "{vars:?}");
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut serve = std::process::Command::new(p.path("/usr/bin/novacula"))
        .arg("serve")
        .env_clear()
        .envs(vars)
        .env("NOVACULA_DB", data.path().join("novacula.redb"))
        .env("NOVACULA_LISTEN", format!("127.0.0.1:{port}"))
        .env("NOVACULA_BOOTSTRAP_PASSWORD", "package-test-password")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..100 {
        status = healthz(port);
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    assert!(data.path().join("novacula.redb").exists());
}
