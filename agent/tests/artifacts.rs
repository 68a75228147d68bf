//! Client binaries fetched from the catalog in agent.toml, end to end: a node
//! that needs geth and lighthouse gets them from a loopback server (an archive
//! behind a redirect, a bare file), checked against their SHA-256, and runs;
//! a download whose checksum differs is never installed.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use novacula_agent::artifacts::{Artifact, Artifacts};
use novacula_agent::backend::Processes;
use novacula_agent::driver::{LocalDriver, ProcessDriver};
use novacula_core::{DesiredNode, NodeSpec, ObservedNodeStatus, Revision};
use novacula_executor::adapter::Adapters;
use novacula_executor::backend::Backend;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const SCRIPT: &[u8] = b"#!/bin/sh\nexec sleep 600\n";

fn tar_gz(path: &str, contents: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut readme = tar::Header::new_gnu();
    readme.set_size(6);
    readme.set_mode(0o644);
    builder.append_data(&mut readme, "geth-linux-amd64/README", &b"readme"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(contents.len() as u64);
    h.set_mode(0o755);
    builder.append_data(&mut h, path, contents).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Serves `/geth.tar.gz`, `/latest/geth` (a redirect to it) and `/lighthouse`; counts downloads.
async fn serve(archive: Vec<u8>, hits: Arc<AtomicUsize>) -> String {
    let (archive, bare) = (Arc::new(archive), Arc::new(SCRIPT.to_vec()));
    let counted = |body: Arc<Vec<u8>>, hits: Arc<AtomicUsize>| {
        get(move || async move {
            hits.fetch_add(1, Ordering::SeqCst);
            body.as_ref().clone()
        })
    };
    let app = axum::Router::new()
        .route("/geth.tar.gz", counted(archive, hits.clone()))
        .route("/lighthouse", counted(bare, hits))
        .route("/latest/geth", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/geth.tar.gz")]).into_response() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The shared Ethereum fixture, on a host that runs its clients as local processes.
fn eth_spec() -> NodeSpec {
    NodeSpec { storage: vec![], ..novacula_core::fixtures::eth_spec("eth") }
}

async fn converge<B: Backend>(b: &B, d: &DesiredNode) {
    for _ in 0..5 {
        if b.reconcile(d).await == 0 {
            return;
        }
    }
}

fn running(local: &novacula_core::LocalNode) -> usize {
    local.processes.iter().filter(|p| p.running.is_some()).count()
}

#[tokio::test]
async fn missing_binaries_are_fetched_checked_and_run() {
    let hits = Arc::new(AtomicUsize::new(0));
    let archive = tar_gz("geth-linux-amd64/geth", SCRIPT);
    let url = serve(archive.clone(), hits.clone()).await;
    let catalog = Artifacts::new(
        vec![
            Artifact { client: "geth".into(), version: "1.14.11".into(), url: format!("{url}/latest/geth"), sha256: sha256(&archive), member: None },
            Artifact { client: "lighthouse".into(), version: "v5.3.0".into(), url: format!("{url}/lighthouse"), sha256: sha256(SCRIPT), member: None },
        ],
        None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = Processes::new(LocalDriver::new(dir.path()).unwrap(), Adapters::standard()).with_artifacts(catalog);
    let node = DesiredNode::new(Revision(1), eth_spec(), false);
    converge(&backend, &node).await;

    // behind a redirect, from a URL without .tar.gz: unpacked all the same
    let geth = dir.path().join("bin/geth/1.14.11/geth");
    assert_eq!(std::fs::read(&geth).unwrap(), SCRIPT, "the executable from inside the archive");
    assert!(novacula_agent::driver::is_executable(&geth));
    assert_eq!(std::fs::read(dir.path().join("bin/lighthouse/v5.3.0/lighthouse")).unwrap(), SCRIPT);
    assert_eq!(running(&backend.driver().observe("eth").await.unwrap()), 2, "both clients run");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one download each");

    // a restart does not download again
    let restarted = DesiredNode::new(Revision(2), NodeSpec { restart_generation: 1, ..eth_spec() }, false);
    converge(&backend, &restarted).await;
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    let gone = DesiredNode::new(Revision(3), eth_spec(), true);
    converge(&backend, &gone).await;
    assert!(backend.driver().observe("eth").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_download_with_another_checksum_is_not_installed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let archive = tar_gz("geth-linux-amd64/geth", SCRIPT);
    let url = serve(archive, hits.clone()).await;
    let pinned = "ab".repeat(32);
    let catalog = Artifacts::new(
        vec![Artifact { client: "geth".into(), version: "1.14.11".into(), url: format!("{url}/geth.tar.gz"), sha256: pinned.clone(), member: None }],
        None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = Processes::new(LocalDriver::new(dir.path()).unwrap(), Adapters::standard()).with_artifacts(catalog);
    let mut spec = eth_spec();
    spec.clients.truncate(1);
    let node = DesiredNode::new(Revision(1), spec, false);
    converge(&backend, &node).await;

    assert!(!Path::new(&dir.path().join("bin/geth/1.14.11/geth")).exists(), "nothing installed");
    assert_eq!(running(&backend.driver().observe("eth").await.unwrap()), 0);
    let seen = backend.observe(&node).await.unwrap();
    assert_eq!(seen.processes[0].status, ObservedNodeStatus::Error);
    let message = seen.processes[0].message.clone().unwrap_or_default();
    assert!(message.contains("sha256") && message.contains(&pinned), "{message}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the reconciler's retries do not download again at once");
}

/// A file an adapter names for a node (a genesis blob) is downloaded once
/// with the node's files, kept only when its SHA-256 is the pin, and never
/// fetched again; a download that differs leaves nothing behind and says why.
#[tokio::test]
async fn fetched_files_are_checked_kept_and_fetched_once() {
    use novacula_agent::driver::UnitDef;
    use novacula_executor::adapter::{Fetched, FileContents, RenderedFile};
    let hits = Arc::new(AtomicUsize::new(0));
    let url = serve(tar_gz("x/geth", SCRIPT), hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let driver = LocalDriver::new(dir.path()).unwrap();
    let def = |sha256: String| UnitDef {
        command: vec!["/bin/true".into()],
        env: Default::default(),
        secret_env: Default::default(),
        files: vec![RenderedFile {
            name: "genesis.blob".into(),
            contents: FileContents::Fetched(Fetched { url: format!("{url}/lighthouse"), sha256, max_bytes: 1 << 20 }),
        }],
        stop_grace_secs: 30,
    };
    let kept = driver.paths("sui-1").fetched().join("genesis.blob");
    let fp = novacula_core::fingerprint::Fingerprint(7);
    let err = driver.write_unit("sui-1", "node", &def("00".repeat(32)), fp).await.unwrap_err();
    assert!(err.to_string().contains("the adapter pins"), "{err}");
    assert!(!kept.exists(), "a download that is not the pinned one is not kept");
    assert_eq!(std::fs::read_dir(kept.parent().unwrap()).unwrap().count(), 0, "nor its temporary file");
    driver.write_unit("sui-1", "node", &def(sha256(SCRIPT)), fp).await.unwrap();
    assert_eq!(std::fs::read(&kept).unwrap(), SCRIPT);
    driver.write_unit("sui-1", "node", &def(sha256(SCRIPT)), fp).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2, "fetched once, kept after");
}
