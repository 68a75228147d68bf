//! The load generator in CI: 1,000 executors over real sockets against a
//! control plane on a redb file. It asserts that no call failed and that the
//! fleet converged (every node running at its latest revision, restarts
//! included), not how fast: speed is the benchmark's (`--bin load`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use novacula_benches::load::stats::{NODES_PAGE, NODE_READ, POLL, PROPAGATION, REPORT, RESTART, SYNC};
use novacula_benches::load::{run, server, Options};
use novacula_control_plane::Store;
use std::time::Duration;

#[test]
fn a_thousand_executors_run_without_errors_and_converge() {
    server::raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let target = server::Target::in_process(Store::open(&dir.path().join("load.redb")).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let executors = 1_000;
    let window = Duration::from_secs(20);
    let options = Options {
        executors,
        nodes_per_executor: 3,
        duration: window,
        warmup: Duration::from_secs(11),
        restarts_per_sec: 5.0,
        readers: 1,
        // Two connections per executor, as agents that connect directly.
        own_connections: true,
        converge_within: Duration::from_secs(90),
        saturate: Some(Duration::from_secs(2)),
        ..Options::default()
    };
    let out = rt.block_on(run(&target, options)).unwrap();
    println!("{out}");
    assert_eq!(out.errors(), 0, "{out}");
    assert_eq!(out.not_converged, None, "{out}");
    // Every executor kept its rhythm through the window: a sync every 5 s, a
    // long-poll every 5 s, a report every 10 s (each within ±10%, so at least
    // 80% of the nominal count however the window falls).
    let at_least = |name: &str, period: u64| {
        let nominal = executors as u64 * window.as_secs() / period;
        let c = out.call(name).unwrap_or_else(|| panic!("no {name} calls\n{out}"));
        assert!(c.count * 10 >= nominal * 8, "{name}: {} calls, {nominal} expected\n{out}", c.count);
    };
    at_least(SYNC, 5);
    at_least(POLL, 5);
    at_least(REPORT, 10);
    // Users were served, and restarts reached their executors' polls.
    for name in [NODES_PAGE, NODE_READ, RESTART, PROPAGATION] {
        assert!(out.call(name).is_some_and(|c| c.count > 0), "no {name}\n{out}");
    }
    // Reports changed the nodes' heads: the store committed them.
    assert!(out.server.commits_per_sec.is_some_and(|c| c > 0.0), "{out}");
    // Heartbeats at saturation were all answered, over HTTP/1.1 and over
    // HTTP/2 (h2c, as a load balancer multiplexes), and the disk was measured.
    let wires: Vec<_> = out.saturation.iter().map(|s| s.wire).collect();
    assert_eq!(wires, novacula_benches::load::saturate::WIRES, "{out}");
    for sat in &out.saturation {
        assert!(sat.syncs_per_sec > 0.0 && sat.errors == 0, "{out}");
        assert!(sat.disk_flushes_per_sec.is_some_and(|f| f > 0.0), "{out}");
    }
}
