//! A scripted Kubernetes API server over `tower_test::mock::pair`: each step
//! asserts the next request's method and path, and answers it.

#![allow(dead_code)]

use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use novacula_core::spec::{NodeSpec, Resources, StorageVolume};
use novacula_operator::crd::{BlockchainNode, BlockchainNodeSpec};
use serde_json::{json, Value};
use std::time::Duration;
use tower_test::mock::{self, Handle};

pub struct ApiServer(Handle<Request<Body>, Response<Body>>);

#[derive(Debug)]
pub struct Seen {
    pub query: String,
    pub body: Value,
}

pub fn mock_client() -> (Client, ApiServer) {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), ApiServer(handle))
}

impl ApiServer {
    /// The next request, which must be `method path`: its query, and where its answer goes.
    async fn next(&mut self, method: &str, path: &str) -> (Request<Body>, String, mock::SendResponse<Response<Body>>) {
        let (req, send) = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request arrived; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        assert_eq!((req.method().as_str(), req.uri().path()), (method, path), "unexpected request {}", req.uri());
        let query = req.uri().query().unwrap_or_default().to_string();
        (req, query, send)
    }

    /// The next request must be `method path`; `reply` builds the answer from its JSON body.
    pub async fn answer(&mut self, method: &str, path: &str, status: u16, reply: impl FnOnce(&Value) -> Value) -> Seen {
        let (req, query, send) = self.next(method, path).await;
        let bytes = req.into_body().collect_bytes().await.expect("request body");
        let body: Value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON request body") };
        let out = reply(&body);
        send.send_response(Response::builder().status(status).body(Body::from(serde_json::to_vec(&out).unwrap())).unwrap());
        Seen { query, body }
    }

    /// Answer with the request body itself (what an apply returns, give or take defaults).
    pub async fn echo(&mut self, method: &str, path: &str) -> Seen {
        self.answer(method, path, 200, std::clone::Clone::clone).await
    }

    pub async fn not_found(&mut self, method: &str, path: &str) -> Seen {
        self.answer(method, path, 404, |_| not_found()).await
    }

    /// After the client is dropped, no request may be left.
    pub async fn done(mut self) {
        if let Ok(Some((req, _))) = tokio::time::timeout(Duration::from_secs(1), self.0.next_request()).await {
            panic!("unexpected extra request {} {}", req.method(), req.uri());
        }
    }
}

pub fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "not found", "reason": "NotFound", "code": 404})
}

#[allow(unused_imports, reason = "not every test binary builds a client by hand")]
pub use novacula_core::fixtures::client;

/// The shared Ethereum fixture with two volumes (one on a storage class) and geth's resources.
pub fn eth_spec(name: &str) -> NodeSpec {
    let mut spec = novacula_core::fixtures::eth_spec(name);
    spec.clients[0].resources = Resources { cpu_millis: 2000, memory_mib: 8192 };
    spec.storage = vec![
        StorageVolume { name: "chain".into(), size_gib: 500, mount_path: "/chain".into(), storage_class: Some("fast-ssd".into()), holds: None },
        StorageVolume { name: "ancient".into(), size_gib: 1000, mount_path: "/ancient".into(), storage_class: None, holds: Some("ancient".into()) },
    ];
    spec
}

/// A CR as the API server returns it: namespaced, with a uid.
pub fn cr(spec: NodeSpec, revision: u64) -> BlockchainNode {
    let mut cr = BlockchainNode::new(&spec.name.clone(), BlockchainNodeSpec { revision, node: spec });
    cr.metadata.namespace = Some("default".into());
    cr.metadata.uid = Some("uid-1".into());
    cr
}

/// Every execution client with a consensus client (all five in turn), on
/// mainnet with every volume the pair uses, a sidecar and each P2P exposure
/// in turn; the devnet pair; the stand-in.
pub fn matrix() -> Vec<NodeSpec> {
    let els: Vec<&str> = novacula_executor::adapter::ethereum::clients().filter(|d| d.role == "execution").map(|d| d.name).collect();
    let cls: Vec<&str> = novacula_executor::adapter::ethereum::clients().filter(|d| d.role == "consensus").map(|d| d.name).collect();
    let mut specs = vec![];
    for (i, el) in els.iter().enumerate() {
        let cl = cls[i % cls.len()];
        let mut s = novacula_core::fixtures::eth_spec(&format!("{el}-{cl}"));
        s.network = "mainnet".into();
        s.clients = vec![client("execution", el, "1.16.7"), client("consensus", cl, "8.0.0")];
        s.clients[0].resources = novacula_core::spec::Resources { cpu_millis: 3000, memory_mib: 12288 };
        s.storage = vec![StorageVolume {
            name: "chain".into(),
            size_gib: 2560,
            mount_path: "/novacula/data".into(),
            storage_class: Some("fast-ssd".into()),
            holds: None,
        }];
        // Each volume a client of the pair puts data on (geth's ancient store, lighthouse's freezer...).
        for def in novacula_executor::adapter::ethereum::clients().filter(|d| d.name == *el || d.name == cl) {
            for (volume, _) in def.volumes {
                s.storage.push(StorageVolume {
                    name: (*volume).into(),
                    size_gib: 500,
                    mount_path: format!("/volumes/{volume}"),
                    storage_class: None,
                    holds: Some((*volume).into()),
                });
            }
        }
        s.p2p_exposure =
            [novacula_core::spec::P2pExposure::None, novacula_core::spec::P2pExposure::NodePort, novacula_core::spec::P2pExposure::LoadBalancer][i % 3];
        s.sidecars = vec![novacula_core::spec::Sidecar {
            name: "exporter".into(),
            image: "ethpandaops/ethereum-metrics-exporter:0.24.0".into(),
            command: vec!["--execution-url=http://127.0.0.1:8545".into()],
            env: [("LOG_LEVEL".to_string(), "info".to_string())].into(),
            volumes: vec![novacula_core::spec::SidecarVolume { name: "chain".into(), writable: false }],
        }];
        specs.push(s);
    }
    let mut devnet = novacula_core::fixtures::eth_spec("devnet");
    devnet.network = "devnet".into();
    devnet.clients = vec![client("execution", "ethereumjs", "0.10.5"), client("consensus", "lodestar", "1.5.1")];
    specs.push(devnet);
    // Bitcoin: one process, its settings in a config file, credentials in the generated Secret.
    let mut btc = novacula_core::fixtures::eth_spec("bitcoin");
    btc.chain = "bitcoin".into();
    btc.network = "mainnet".into();
    btc.node_type = novacula_core::spec::NodeType::Archive;
    btc.clients = vec![client("node", "bitcoind", "28.1.0")];
    btc.clients[0].config_overrides.insert("dbcache".into(), "4096".into());
    btc.storage[0].size_gib = 900;
    specs.push(btc);
    // BSC: one geth process, the network a flag, its P2P port TCP and UDP.
    let mut bsc = novacula_core::fixtures::eth_spec("bsc");
    bsc.chain = "bsc".into();
    bsc.network = "chapel".into();
    bsc.clients = vec![client("node", "bsc", "1.7.8")];
    bsc.clients[0].config_overrides.insert("cache".into(), "8000".into());
    bsc.storage[0].size_gib = 600;
    specs.push(bsc);
    // Tron: java-tron's config includes its network's file; the JVM sized from the memory.
    let mut tron = novacula_core::fixtures::eth_spec("tron");
    tron.chain = "tron".into();
    tron.network = "nile".into();
    tron.clients = vec![client("node", "java-tron", "4.8.2")];
    tron.clients[0].resources = novacula_core::spec::Resources { cpu_millis: 4000, memory_mib: 16384 };
    tron.clients[0].config_overrides.insert("vm.supportConstant".into(), "1".into());
    tron.storage[0].size_gib = 100;
    specs.push(tron);
    // Sui: a generated fullnode.yaml; the genesis fetched into the data volume by an init container.
    let mut sui = novacula_core::fixtures::eth_spec("sui");
    sui.chain = "sui".into();
    sui.network = "testnet".into();
    sui.clients = vec![client("node", "sui-node", "1.78.0")];
    sui.storage[0].size_gib = 2048;
    specs.push(sui);
    // Ink: op-reth and op-node sharing the JWT; the L1 from the namespace's spec Secrets.
    let mut ink = novacula_core::fixtures::eth_spec("ink");
    ink.chain = "ink".into();
    ink.network = "ink-mainnet".into();
    ink.clients = vec![client("execution", "op-reth", "2.8.2"), client("rollup", "op-node", "1.20.1")];
    ink.clients[1].config_overrides = [("l1".to_string(), "eth-l1".to_string()), ("l1.beacon".to_string(), "eth-beacon".to_string())].into();
    ink.storage[0].size_gib = 2048;
    specs.push(ink);
    specs.push(novacula_executor::adapter::StandIn::spec("demo"));
    specs
}

/// Every object the operator renders for the `i`th spec of [`matrix`], as
/// (kind, YAML), in the namespace the chart installs into; every other spec
/// with a PodDisruptionBudget and anti-affinity.
pub fn objects(i: usize, spec: NodeSpec, adapters: &novacula_executor::adapter::Adapters) -> Vec<(&'static str, String)> {
    use novacula_operator::render::{render_with, AntiAffinity, NodePods};
    let mut node = cr(spec, 1);
    node.metadata.namespace = Some("validators".into());
    let pods = [NodePods::default(), NodePods { disruption_budget: true, anti_affinity: AntiAffinity::Preferred }][i % 2];
    let r = render_with(&node, adapters, pods).unwrap();
    fn yaml<T: serde::Serialize>(o: &T) -> String {
        serde_yaml::to_string(o).unwrap()
    }
    let mut out = vec![
        ("configmap", yaml(&r.config_map)),
        ("secret", yaml(&r.secret)),
        ("statefulset", yaml(&r.stateful_set)),
        ("service", yaml(&r.service)),
        ("networkpolicy", yaml(&r.network_policy)),
    ];
    if let Some(svc) = &r.p2p_service {
        out.push(("p2p-service", yaml(svc)));
    }
    if let Some(pdb) = &r.disruption_budget {
        out.push(("pdb", yaml(pdb)));
    }
    out
}

impl ApiServer {
    /// The next request must be `method path`; answered with `text` (a pod's log).
    pub async fn answer_text(&mut self, method: &str, path: &str, status: u16, text: &str) -> Seen {
        let (_, query, send) = self.next(method, path).await;
        send.send_response(Response::builder().status(status).body(Body::from(text.as_bytes().to_vec())).unwrap());
        Seen { query, body: Value::Null }
    }
}
