//! Control-plane `syncExecutor` and spec-poll throughput on a redb file in a temp dir
//! (requests go through the real router, without a socket).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use novacula_control_plane::clock::SystemClock;
use novacula_control_plane::services::{keys, orgs};
use novacula_control_plane::{router, AppState, Config, Store};
use novacula_core::entropy::OsEntropy;
use novacula_core::Timestamp;
use serde_json::json;
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.redb")).unwrap();
    orgs::create_org_with_owner(&store, &OsEntropy, Timestamp(0), "bench", "admin", "bench-password").unwrap();
    let key = keys::issue(&store, &OsEntropy, "bench", "bench".into(), None, "admin", Timestamp(0)).unwrap().0;
    let app = router(AppState::new(store, SystemClock, Config::default()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let body = json!({"name": "edge-1", "kind": "agent", "version": "1.0.0", "capabilities": {"chains": []}}).to_string();
    let call = |req: Request<Body>| {
        let app = app.clone();
        rt.block_on(async move { app.oneshot(req).await.unwrap().status() })
    };
    let sync = || {
        Request::post("/api/v1/executor/sync")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    assert_eq!(call(sync()), StatusCode::OK);

    let mut g = c.benchmark_group("control_plane");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    g.bench_function("sync_executor", |b| b.iter(|| assert_eq!(call(sync()), StatusCode::OK)));
    g.bench_function("spec_poll", |b| {
        b.iter(|| {
            let req =
                Request::get("/api/v1/executor/specs?executor=edge-1&since=1").header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap();
            assert_eq!(call(req), StatusCode::OK);
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
