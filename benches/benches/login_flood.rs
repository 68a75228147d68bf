//! Heartbeat latency of 1,000 executors (a sync every 5 s each, over real
//! sockets) alone, then under an unauthenticated flood of wrong passwords for
//! random usernames from 16, 64 and 128 connections (about one sign-in a
//! second each, as measured in the security issue). Password hashing runs on
//! a bounded pool off the async workers, so the flood must not reach the
//! heartbeats. Prints p50/p99/max per phase; asserts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_client::HttpApi;
use novacula_control_plane::clock::SystemClock;
use novacula_control_plane::services::{keys, orgs};
use novacula_control_plane::{AppState, Config, Store};
use novacula_core::entropy::OsEntropy;
use novacula_core::executor::ExecutorCapabilities;
use novacula_core::wire::SyncExecutorRequest;
use novacula_core::{Channel, ExecutorKind, Timestamp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXECUTORS: usize = 1000;
const INTERVAL: Duration = Duration::from_secs(5);
const PHASE: Duration = Duration::from_secs(15);

fn sync(name: &str) -> SyncExecutorRequest {
    SyncExecutorRequest {
        name: name.into(),
        kind: ExecutorKind::Agent,
        version: "1.0.0".into(),
        channel: Channel::Stable,
        capabilities: Some(ExecutorCapabilities::default()),
        capabilities_digest: None,
    }
}

async fn phase(url: &str, executors: &[HttpApi], flooders: usize) -> (Duration, Duration, Duration, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..flooders)
        .map(|f| {
            let (anon, stop) = (HttpApi::new(url, None).unwrap(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let next = tokio::time::Instant::now() + Duration::from_secs(1);
                    let _ = anon.login(&format!("flood-{f}-{n}"), "not-the-password").await;
                    tokio::time::sleep_until(next).await;
                }
            })
        })
        .collect();
    let started = Instant::now();
    let beats: Vec<_> = executors
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, exec)| {
            tokio::spawn(async move {
                let mut out = Vec::new();
                tokio::time::sleep(INTERVAL * i as u32 / EXECUTORS as u32).await;
                while started.elapsed() < PHASE {
                    let t = Instant::now();
                    let ok = exec.sync_executor(&sync(&format!("edge-{i}"))).await.is_ok();
                    out.push((t.elapsed(), ok));
                    tokio::time::sleep(INTERVAL).await;
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for b in beats {
        all.extend(b.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        let _ = f.await;
    }
    let errors = all.iter().filter(|(_, ok)| !ok).count();
    let mut lat: Vec<Duration> = all.into_iter().map(|(d, _)| d).collect();
    lat.sort();
    (lat[lat.len() / 2], lat[lat.len() * 99 / 100], *lat.last().unwrap(), errors)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.redb")).unwrap();
    orgs::create_org_with_owner(&store, &OsEntropy, Timestamp(0), "bench", "admin", "bench-password").unwrap();
    let keys: Vec<String> =
        (0..EXECUTORS).map(|i| keys::issue(&store, &OsEntropy, "bench", "bench".into(), Some(format!("edge-{i}")), "admin", Timestamp(0)).unwrap().0).collect();
    // A distributed flood: many addresses, so the per-address throttle does not stop it here.
    let config = Config {
        login_address_limit: novacula_core::throttle::Limit { failures_max: usize::MAX, ..novacula_core::throttle::ADDRESS_LIMIT },
        ..Config::default()
    };
    let state = AppState::new(store, SystemClock, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(novacula_control_plane::serve(listener, state, std::future::pending()));
    let executors: Vec<HttpApi> = keys.into_iter().map(|k| HttpApi::new(&url, Some(k)).unwrap()).collect();
    println!("heartbeats of {EXECUTORS} executors every {INTERVAL:?}, {PHASE:?} per phase");
    for flooders in [0, 16, 64, 128] {
        let (p50, p99, max, errors) = phase(&url, &executors, flooders).await;
        println!("login flood from {flooders:>3} connections: heartbeat p50 {p50:>9.2?}  p99 {p99:>9.2?}  max {max:>9.2?}  errors {errors}");
    }
}
