//! The Dockerfiles of the control plane and the operator: hadolint's checks
//! pass (the prebuilt hadolint from PyPI, .ci/prerequisites), and the
//! operator's image is the one the Helm chart deploys, with the user its
//! securityContext names.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use std::path::{Path, PathBuf};

const HADOLINT: &str = "/usr/local/lib/novacula/hadolint";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn dockerfile(name: &str) -> (PathBuf, String) {
    let p = workspace().join("packaging/docker").join(name);
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

#[test]
fn dockerfiles_pass_hadolint() {
    assert!(Path::new(HADOLINT).exists(), "{HADOLINT} is missing: run .ci/prerequisites");
    for name in ["control-plane.Dockerfile", "operator.Dockerfile"] {
        let (path, _) = dockerfile(name);
        let out = std::process::Command::new(HADOLINT).arg("--failure-threshold").arg("info").arg(&path).output().unwrap();
        assert!(out.status.success(), "hadolint {name}:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    // and it does fail a Dockerfile with a known mistake
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "FROM debian:latest\nRUN apt-get install curl\n").unwrap();
    assert!(!std::process::Command::new(HADOLINT).arg(bad.path()).status().unwrap().success());
}

#[test]
fn the_charts_default_image_is_the_operator_dockerfiles() {
    let values = std::fs::read_to_string(workspace().join("charts/novacula-operator/values.yaml")).unwrap();
    let field = |k: &str| values.lines().find_map(|l| l.trim().strip_prefix(&format!("{k}: "))).unwrap().trim_matches('"').to_string();
    let image = format!("{}:{}", field("repository"), field("tag"));
    assert_eq!(field("tag"), env!("CARGO_PKG_VERSION"), "the chart deploys this release");
    let (_, text) = dockerfile("operator.Dockerfile");
    assert!(text.contains(&format!("-t {image} .")), "operator.Dockerfile builds {image}:\n{text}");
    assert!(text.contains("ENTRYPOINT [\"/usr/local/bin/novacula-operator\"]"));
    let deployment = std::fs::read_to_string(workspace().join("charts/novacula-operator/templates/deployment.yaml")).unwrap();
    assert!(text.contains("USER 65532:65532") && deployment.contains("runAsUser: 65532"), "the image's user is the one the chart runs as");
}
