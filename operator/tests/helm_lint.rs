//! `helm lint` on the chart, by Helm's own code (see `helm/mod.rs`). Lint
//! renders every template with the chart's values, so a template that does
//! not render, or renders to bad YAML, fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod helm;

use helm::{Helm, Lint, WARNING};
use std::path::{Path, PathBuf};

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
