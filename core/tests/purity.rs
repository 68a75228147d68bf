//! Core must stay deterministic: no async runtime, no clock, no randomness.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use std::path::Path;
use std::process::Command;

const FORBIDDEN_CRATES: &[&str] = &["tokio", "rand", "getrandom", "chrono", "time", "async-std", "mio"];
const FORBIDDEN_CALLS: &[&str] = &["SystemTime::now", "Instant::now", "std::fs", "std::net", "std::thread", "std::env"];

#[test]
fn dependency_tree_has_no_runtime_clock_or_rng() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "novacula-core", "-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(tree.contains("postcard"), "unexpected cargo tree output: {tree}");
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        assert!(!FORBIDDEN_CRATES.contains(&name), "core depends on {name}: {line}");
    }
}

#[test]
fn sources_read_no_clock_io_or_environment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for call in FORBIDDEN_CALLS {
                assert!(!text.contains(call), "{} uses {call}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "expected the core modules under {}", src.display());
}
