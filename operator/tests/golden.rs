//! Every object the operator renders for each (chain, client pair) of the
//! platform-tools matrix, pinned in `tests/golden/<node>.yaml`, so a change
//! to what reaches the cluster shows as a diff in review.
//! Regenerate with `NOVACULA_BLESS=1 cargo test -p novacula-operator --test golden`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::{matrix, objects};
use novacula_executor::adapter::Adapters;
use std::path::Path;

#[test]
fn rendered_objects_match_the_golden_files() {
    let adapters = Adapters::standard().with_demo_chain();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("NOVACULA_BLESS").is_some();
    let mut stale = vec![];
    let specs = matrix();
    assert!(specs.len() >= 8, "every execution client, the devnet pair and the stand-in");
    for (i, spec) in specs.into_iter().enumerate() {
        let name = spec.name.clone();
        let mut text = format!("# Every object the operator renders for node {name:?} (operator/tests/golden.rs).\n");
        for (_, yaml) in objects(i, spec, &adapters) {
            text.push_str("---\n");
            text.push_str(&yaml);
        }
        let path = dir.join(format!("{name}.yaml"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(stale.is_empty(), "rendered objects differ from {stale:?}; review the change and regenerate with NOVACULA_BLESS=1");
}
