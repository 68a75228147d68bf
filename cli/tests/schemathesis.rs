//! schemathesis (every check) against the served OpenAPI document of a real
//! `novacula serve`: undocumented statuses, server errors, schema-valid
//! requests refused and schema-violating ones accepted, answers that do not
//! match their schemas. The run itself is `.ci/schemathesis` (also usable by
//! hand); `.ci/prerequisites` installs schemathesis from PyPI.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

#[test]
fn schemathesis_finds_no_failure_in_the_served_api() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/schemathesis");
    let out = std::process::Command::new("bash").arg(script).arg(env!("CARGO_BIN_EXE_novacula")).output().expect("bash runs .ci/schemathesis");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found failures:\n{report}");
    assert!(report.matches(" passed").count() >= 3, "the three passes ran:\n{report}");
}
