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
    /// The next request must be `method path`; `reply` builds the answer from its JSON body.
    pub async fn answer(&mut self, method: &str, path: &str, status: u16, reply: impl FnOnce(&Value) -> Value) -> Seen {
        let (req, send) = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request arrived; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        assert_eq!((req.method().as_str(), req.uri().path()), (method, path), "unexpected request {}", req.uri());
        let query = req.uri().query().unwrap_or_default().to_string();
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
        StorageVolume { name: "chain".into(), size_gib: 500, mount_path: "/chain".into(), storage_class: Some("fast-ssd".into()) },
        StorageVolume { name: "ancient".into(), size_gib: 1000, mount_path: "/ancient".into(), storage_class: None },
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
