//! A flood of wrong passwords must not starve executor heartbeats: password
//! hashing runs on a bounded pool off the async workers. Its own test binary,
//! so no other test shares the machine while it measures.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::Method;
use novacula_control_plane::Config;
use novacula_core::ExecutorKind;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXECUTORS: usize = 100;
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
/// As measured in the issue: 128 connections offering about 100 sign-ins a second in all.
const FLOODERS: usize = 128;
const FLOOD_PACE: Duration = Duration::from_secs(1);
const FLOOD_DURATION: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_does_not_starve_heartbeats() {
    // A distributed flood: many addresses, so the per-address throttle does not save us here.
    let config = Config {
        login_address_limit: novacula_core::throttle::Limit { failures_max: usize::MAX, ..novacula_core::throttle::ADDRESS_LIMIT },
        ..Config::default()
    };
    let cp = Cp::with_orgs(config).await;
    let alice = cp.login("alice").await;
    let mut executors = Vec::new();
    for i in 0..EXECUTORS {
        let (exec, _) = cp.executor_client(&alice, Some(&format!("edge-{i}"))).await;
        exec.sync_executor(&sync_req(&format!("edge-{i}"), ExecutorKind::Agent, "1.0.0")).await.unwrap();
        executors.push(exec);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (refused, busy) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let flood: Vec<_> = (0..FLOODERS)
        .map(|f| {
            let (anon, stop, refused, busy) = (cp.anon(), stop.clone(), refused.clone(), busy.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                tokio::time::sleep(FLOOD_PACE * f as u32 / FLOODERS as u32).await;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let next = tokio::time::Instant::now() + FLOOD_PACE;
                    let body = json!({"username": format!("flood-{f}-{n}"), "password": "not-the-password"});
                    match anon.call::<_, Value>(Method::POST, "/api/v1/login", Some(&body)).await.unwrap_err().status() {
                        Some(401) => refused.fetch_add(1, Ordering::Relaxed),
                        Some(503) => busy.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected answer to a flooding sign-in: {other:?}"),
                    };
                    tokio::time::sleep_until(next).await;
                }
            })
        })
        .collect();

    let started = Instant::now();
    let beats: Vec<_> = executors
        .into_iter()
        .enumerate()
        .map(|(i, exec)| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                // spread the executors over the interval, as real ones are
                tokio::time::sleep(HEARTBEAT_INTERVAL * i as u32 / EXECUTORS as u32).await;
                while started.elapsed() < FLOOD_DURATION {
                    let t = Instant::now();
                    exec.sync_executor(&sync_req(&format!("edge-{i}"), ExecutorKind::Agent, "1.0.0")).await.expect("heartbeat during the flood");
                    latencies.push(t.elapsed());
                    tokio::time::sleep(HEARTBEAT_INTERVAL).await;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for b in beats {
        latencies.extend(b.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }

    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let (refused, busy) = (refused.load(Ordering::Relaxed), busy.load(Ordering::Relaxed));
    println!(
        "heartbeats: {} p50 {:?} p99 {:?} max {:?}; flood: {refused} refused after hashing, {busy} turned away busy",
        latencies.len(),
        latencies[latencies.len() / 2],
        p99,
        latencies.last().unwrap()
    );
    assert!(refused > 0, "the flood reached password checking");
    assert!(busy > 0, "the flood was more than the pool takes, and was turned away");
    assert!(p99 < Duration::from_millis(50), "heartbeat p99 {p99:?} under a sign-in flood");
    let listed: Vec<Value> = alice.get("/api/v1/executors").await.unwrap();
    assert_eq!(listed.iter().filter(|e| e["online"] == true).count(), EXECUTORS, "every executor stayed online");
    cp.stop().await;
}
