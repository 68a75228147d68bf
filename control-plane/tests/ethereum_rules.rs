//! The control plane applies what an agent's Ethereum adapter declares:
//! ports allocated per executor (three nodes on one host share none, as the
//! units the agent renders show), pinned ports checked, per-network client
//! floors and managed flags refused, network defaults filled in.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::ClientError;
use novacula_control_plane::Config;
use novacula_core::fixtures::client;
use novacula_core::wire::SyncExecutorRequest;
use novacula_core::{Channel, ExecutorKind, NodeSpec};
use novacula_executor::adapter::{Adapters, NodePaths};
use std::collections::BTreeSet;

fn node(name: &str, network: &str, el: (&str, &str), cl: (&str, &str)) -> NodeSpec {
    let mut s = spec(name);
    s.network = network.into();
    s.clients = vec![client("execution", el.0, el.1), client("consensus", cl.0, cl.1)];
    s
}

/// Every number a rendered unit listens on: the value of each flag that
/// names a port or an address with one.
fn listened_ports(args: &[String]) -> BTreeSet<u16> {
    args.iter()
        .filter_map(|a| a.strip_prefix("--")?.split_once('='))
        .filter(|(k, _)| k.to_ascii_lowercase().contains("port") || matches!(*k, "metrics" | "private.api.addr"))
        .flat_map(|(_, v)| v.split([',', ':']).filter_map(|p| p.parse::<u16>().ok()).collect::<Vec<_>>())
        .collect()
}

fn status(e: &ClientError) -> u16 {
    e.status().unwrap_or(0)
}

/// The error's message and details, one string.
fn text(e: &ClientError) -> String {
    match e {
        ClientError::Status { error, details, .. } => format!("{error}: {}", details.join("; ")),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn three_nodes_on_one_agent_share_no_port_and_the_network_rules_hold() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (exec, _) = cp.executor_client(&alice, Some("edge-1")).await;
    let adapters = Adapters::standard();
    let req = SyncExecutorRequest {
        name: "edge-1".into(),
        kind: ExecutorKind::Agent,
        version: "1.0.0".into(),
        channel: Channel::Stable,
        capabilities: Some(adapters.capabilities()),
        capabilities_digest: None,
    };
    exec.sync_executor(&req).await.unwrap();

    let specs = [
        node("eth-a", "mainnet", ("geth", "1.16.7"), ("lighthouse", "v8.0.0")),
        node("eth-b", "mainnet", ("geth", "1.16.7"), ("lighthouse", "v8.0.0")),
        node("eth-c", "hoodi", ("reth", "2.5.1"), ("teku", "26.8.0")),
    ];
    let mut seen: Vec<(String, BTreeSet<u16>)> = Vec::new();
    for s in specs {
        let view = alice.deploy("edge-1", s).await.unwrap();
        let mut mine = BTreeSet::new();
        for c in &view.spec.clients {
            assert!(!c.ports.is_empty(), "{}: ports are allocated and shown", view.name);
            let paths = NodePaths::host(format!("/var/lib/novacula/nodes/{}", view.name));
            let unit = adapters.render(&view.spec, &c.role, &paths).unwrap();
            let listened = listened_ports(&unit.args);
            for p in c.ports.values() {
                assert!(listened.contains(p), "{} {}: port {p} allocated but not rendered in {:?}", view.name, c.role, unit.args);
            }
            mine.extend(listened);
        }
        for (other, theirs) in &seen {
            assert!(mine.is_disjoint(theirs), "{} and {other} share ports: {:?}", view.name, mine.intersection(theirs).collect::<Vec<_>>());
        }
        seen.push((view.name.clone(), mine));
    }
    // The first node got the clients' own defaults; the defaults of mainnet filled in its resources.
    let a = alice.node("eth-a").await.unwrap();
    assert_eq!(a.spec.clients[0].ports["http"], 8545);
    assert_eq!(a.spec.clients[1].ports["http"], 5052);
    assert_eq!(a.spec.clients[0].resources.memory_mib, 12288);

    // A pinned port another node holds: 409, naming the holder.
    let mut clash = node("eth-d", "mainnet", ("besu", "26.8.0"), ("nimbus", "25.11.0"));
    clash.clients[1].ports.insert("http".into(), 8545);
    let err = alice.deploy("edge-1", clash.clone()).await.unwrap_err();
    assert_eq!(status(&err), 409, "{err}");
    assert!(text(&err).contains("eth-a"), "{err}");
    // Free, it is kept as pinned.
    clash.clients[1].ports.insert("http".into(), 15052);
    let d = alice.deploy("edge-1", clash).await.unwrap();
    assert_eq!(d.spec.clients[1].ports["http"], 15052);

    // An edit keeps every port it does not change.
    let mut edited = a.spec.clone();
    edited.clients[0].ports.clear();
    edited.clients[0].config_overrides.insert("cache".into(), "4096".into());
    let e = alice.edit_spec("eth-a", edited).await.unwrap();
    assert_eq!(e.spec.clients[0].ports, a.spec.clients[0].ports);

    // Hoodi needs a newer geth: 422 with the floor in the message.
    let old = node("eth-e", "hoodi", ("geth", "1.14.11"), ("lighthouse", "v8.0.0"));
    let err = alice.deploy("edge-1", old).await.unwrap_err();
    assert_eq!(status(&err), 422, "{err}");
    assert!(text(&err).contains("hoodi needs geth >= 1.15.6"), "{err:?}");
    // A managed flag as an override: 422 naming it, not a second --datadir.
    let mut managed = node("eth-f", "sepolia", ("geth", "1.16.7"), ("lighthouse", "v8.0.0"));
    managed.clients[0].config_overrides.insert("datadir".into(), "/tmp/x".into());
    let err = alice.deploy("edge-1", managed).await.unwrap_err();
    assert_eq!(status(&err), 422, "{err}");
    assert!(text(&err).contains("\"datadir\" is set by the adapter"), "{err:?}");
    // A port name the client does not have: 422.
    let mut unknown = node("eth-g", "sepolia", ("geth", "1.16.7"), ("lighthouse", "v8.0.0"));
    unknown.clients[0].ports.insert("grpc".into(), 31000);
    assert_eq!(status(&alice.deploy("edge-1", unknown).await.unwrap_err()), 422);
    // Names a Service or a StatefulSet's pods could not carry: 422 naming the rule.
    let digit = node("1eth", "sepolia", ("geth", "1.16.7"), ("lighthouse", "v8.0.0"));
    let err = alice.deploy("edge-1", digit).await.unwrap_err();
    assert_eq!(status(&err), 422);
    assert!(text(&err).contains("must start with a letter"), "{err:?}");
    let long = node(&"e".repeat(53), "sepolia", ("geth", "1.16.7"), ("lighthouse", "v8.0.0"));
    assert!(text(&alice.deploy("edge-1", long).await.unwrap_err()).contains("longer than 52"));
    // The devnet runs only the clients that support it.
    let devnet = node("eth-h", "devnet", ("geth", "1.16.7"), ("lodestar", "1.5.1"));
    let err = alice.deploy("edge-1", devnet).await.unwrap_err();
    assert!(text(&err).contains("geth does not run network \"devnet\""), "{err:?}");
}

/// What an operator reports of its cluster decides what a spec may ask for:
/// P2P exposure (refused on an agent), storage classes, and volumes beyond
/// the first only where a client puts data on them. A node exposed as
/// `nodePort` gets its peer ports inside the NodePort range.
#[tokio::test]
async fn an_operators_cluster_decides_exposure_storage_classes_and_volumes() {
    use novacula_core::spec::{P2pExposure, StorageVolume};
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let sync = |name: &str, kind: ExecutorKind, capabilities| SyncExecutorRequest {
        name: name.into(),
        kind,
        version: "1.0.0".into(),
        channel: Channel::Stable,
        capabilities: Some(capabilities),
        capabilities_digest: None,
    };
    let (agent, _) = cp.executor_client(&alice, Some("edge-1")).await;
    agent.sync_executor(&sync("edge-1", ExecutorKind::Agent, Adapters::standard().capabilities())).await.unwrap();
    let mut operator_caps = Adapters::standard().capabilities();
    operator_caps.storage_classes = Some(vec!["fast-ssd".into(), "standard".into()]);
    operator_caps.p2p_exposures = vec![P2pExposure::NodePort, P2pExposure::LoadBalancer];
    let (operator, _) = cp.executor_client(&alice, Some("k8s")).await;
    operator.sync_executor(&sync("k8s", ExecutorKind::Operator, operator_caps)).await.unwrap();

    let mut exposed = node("eth-x", "mainnet", ("geth", "1.16.7"), ("lighthouse", "v8.0.0"));
    exposed.p2p_exposure = P2pExposure::NodePort;
    let err = alice.deploy("edge-1", exposed.clone()).await.unwrap_err();
    assert!(status(&err) == 422 && text(&err).contains("p2pExposure"), "{}", text(&err));
    let view = alice.deploy("k8s", exposed).await.unwrap();
    let port = |role: &str| view.spec.client(role).unwrap().ports["p2p"];
    assert_eq!((port("execution"), port("consensus")), (30000, 30001), "peer ports where the cluster opens node ports");
    assert_eq!(view.spec.client("consensus").unwrap().ports["http"], 5052, "the others where they were");

    let volume = |name: &str, class: Option<&str>, holds: Option<&str>| StorageVolume {
        name: name.into(),
        size_gib: 100,
        mount_path: format!("/{name}"),
        storage_class: class.map(Into::into),
        holds: holds.map(Into::into),
    };
    let mut stored = node("eth-y", "mainnet", ("geth", "1.16.7"), ("lighthouse", "v8.0.0"));
    stored.storage = vec![volume("data", Some("premium"), None), volume("cold", None, Some("ancient"))];
    let err = alice.deploy("k8s", stored.clone()).await.unwrap_err();
    assert!(status(&err) == 422 && text(&err).contains("\"premium\" is not a storage class of this executor"), "{}", text(&err));
    stored.storage[0].storage_class = Some("fast-ssd".into());
    stored.storage.push(volume("snapshots", None, None));
    let err = alice.deploy("k8s", stored.clone()).await.unwrap_err();
    assert!(status(&err) == 422 && text(&err).contains("storage[2].holds") && text(&err).contains("ancient (geth)"), "{}", text(&err));
    stored.storage.pop();
    alice.deploy("k8s", stored).await.unwrap();
}

/// Every test of this file again, on PostgreSQL instead of redb.
/// Deploys sent at once may share a commit: each still sees the nodes
/// placed before it in that commit (no port given twice), and one that
/// fails (its name taken) fails alone.
#[tokio::test]
async fn deploys_sent_at_once_get_ports_of_their_own_and_fail_alone() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let (exec, _) = cp.executor_client(&alice, Some("edge-1")).await;
    let req = SyncExecutorRequest {
        name: "edge-1".into(),
        kind: ExecutorKind::Agent,
        version: "1.0.0".into(),
        channel: Channel::Stable,
        capabilities: Some(Adapters::standard().capabilities()),
        capabilities_digest: None,
    };
    exec.sync_executor(&req).await.unwrap();
    let eth = |i: usize| node(&format!("n{i}"), "mainnet", ("geth", "1.16.7"), ("lighthouse", "v8.0.0"));
    alice.deploy("edge-1", eth(0)).await.unwrap();
    let mut sent = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (alice, spec) = (alice.clone(), eth(i)); // n0 again: taken
        sent.spawn(async move { (i, alice.deploy("edge-1", spec).await) });
    }
    let mut ports = std::collections::BTreeMap::new();
    while let Some(done) = sent.join_next().await {
        match done.unwrap() {
            (0, Err(e)) => assert_eq!(status(&e), 409, "{e}"),
            (0, Ok(v)) => panic!("a taken name was deployed again: {v:?}"),
            (i, Err(e)) => panic!("n{i}: {}", text(&e)),
            (_, Ok(view)) => {
                for c in &view.spec.clients {
                    assert!(!c.ports.is_empty(), "{} {}: no ports", view.name, c.role);
                    for (name, port) in &c.ports {
                        let who = format!("{} {} {name}", view.name, c.role);
                        assert!(ports.insert(*port, who.clone()).is_none(), "port {port} given twice: {} and {who}", ports[port]);
                    }
                }
            }
        }
    }
    assert!(ports.len() >= 11 * 2, "{ports:?}");
}

#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}
