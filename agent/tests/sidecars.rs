//! Sidecars on an agent host run only the programs agent.toml lists, from
//! their configured path, while the file is the one pinned by SHA-256.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_agent::backend::Processes;
use novacula_agent::config::SidecarProgram;
use novacula_agent::driver::{LocalDriver, ProcessDriver};
use novacula_core::spec::Sidecar;
use novacula_core::{DesiredNode, ObservedNodeStatus, Revision};
use novacula_executor::adapter::{Adapters, StandIn};
use novacula_executor::backend::Backend;
use std::os::unix::fs::PermissionsExt;

fn sidecar_spec() -> novacula_core::NodeSpec {
    let mut spec = StandIn::spec("side");
    spec.sidecars.push(Sidecar { name: "watch".into(), image: "watcher".into(), command: vec!["600".into()], env: Default::default(), volumes: vec![] });
    spec
}

async fn converge<B: Backend>(b: &B, d: &DesiredNode) {
    for _ in 0..5 {
        if b.reconcile(d).await == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn a_listed_sidecar_runs_from_its_configured_path_and_a_swapped_file_does_not() {
    let dir = tempfile::tempdir().unwrap();
    // the host's program: a copy of sleep, pinned by its hash
    let program = dir.path().join("watcher");
    std::fs::copy("/bin/sleep", &program).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sha256 = novacula_agent::files::sha256_file(&program).unwrap();
    let listed = vec![SidecarProgram { name: "watcher".into(), path: program.clone(), sha256 }];
    let backend =
        Processes::new(LocalDriver::new(dir.path().join("data")).unwrap(), Adapters::standard().with_demo_chain()).with_sidecar_programs(listed.clone());
    assert_eq!(backend.capabilities().programs.sidecar_programs, ["watcher"]);
    let node = DesiredNode::new(Revision(1), sidecar_spec(), false);
    converge(&backend, &node).await;
    let seen = backend.observe(&node).await.unwrap();
    assert!(seen.processes.iter().all(|p| p.status == ObservedNodeStatus::Running), "{seen:?}");
    let unit: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("data/nodes/side/units/watch.json")).unwrap()).unwrap();
    assert_eq!(unit["command"], serde_json::json!([program.display().to_string(), "600"]), "the configured path, then the spec's arguments");

    // the file changes under the pin: a new start is refused
    let stop = DesiredNode {
        revision: Revision(2),
        spec: novacula_core::NodeSpec { desired_state: novacula_core::DesiredState::Stopped, ..sidecar_spec() },
        deleted: false,
    };
    converge(&backend, &stop).await;
    std::fs::write(&program, "#!/bin/sh\nid > /tmp/pwned\n").unwrap();
    let start = DesiredNode::new(Revision(3), sidecar_spec(), false);
    converge(&backend, &start).await;
    let seen = backend.observe(&start).await.unwrap();
    let watch = seen.processes.iter().find(|p| p.name == "watch").unwrap();
    assert_eq!(watch.status, ObservedNodeStatus::Error, "{seen:?}");
    assert!(watch.message.as_deref().unwrap_or_default().contains("SHA-256"), "{watch:?}");
    assert_eq!(backend.driver().observe("side").await.unwrap().process("watch").and_then(|p| p.running), None, "not started");
    let gone = DesiredNode::new(Revision(4), sidecar_spec(), true);
    converge(&backend, &gone).await;
}
