//! Reconcile diff throughput (nodes/s) at 1k, 10k and 100k nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use novacula_core::reconcile::{diff, simulate, LocalNode};
use novacula_core::spec::{ClientSpec, NodeType, Resources};
use novacula_core::{DesiredNode, DesiredState, NodeSpec, Revision};

fn node(i: usize) -> DesiredNode {
    let c = |role: &str, client: &str| ClientSpec {
        role: role.into(),
        client: client.into(),
        version: "1.14.11".into(),
        image: None,
        config_overrides: [("cache".to_string(), i.to_string())].into(),
        resources: Resources::default(),
        ports: Default::default(),
    };
    DesiredNode {
        revision: Revision(3),
        spec: NodeSpec {
            name: format!("node-{i}"),
            chain: "ethereum".into(),
            network: "mainnet".into(),
            node_type: NodeType::Full,
            clients: vec![c("execution", "geth"), c("consensus", "lighthouse")],
            storage: vec![],
            sidecars: vec![],
            desired_state: DesiredState::Running,
            restart_generation: 1,
            p2p_exposure: Default::default(),
        },
        deleted: false,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("reconcile_diff");
    g.sample_size(10);
    for n in [1_000usize, 10_000, 100_000] {
        let desired: Vec<DesiredNode> = (0..n).map(node).collect();
        let converged: Vec<LocalNode> = desired.iter().map(|d| simulate(&LocalNode::default(), &diff(Some(d), &LocalNode::default()))).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("converged", n), &n, |b, _| {
            b.iter(|| desired.iter().zip(&converged).map(|(d, l)| diff(Some(d), l).len()).sum::<usize>());
        });
        g.bench_with_input(BenchmarkId::new("from_empty", n), &n, |b, _| {
            let empty = LocalNode::default();
            b.iter(|| desired.iter().map(|d| diff(Some(d), &empty).len()).sum::<usize>());
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
