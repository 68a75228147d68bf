//! Deterministic simulation glue: the real control-plane router and the real
//! executor loops talking over a turmoil network, with time from turmoil.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test harness: failing loudly is its job")]

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use novacula_control_plane::clock::Clock;
use novacula_core::Timestamp;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub mod fleet;
pub mod hunt;

pub const CP_HOST: &str = "cp";
pub const CP_PORT: u16 = 8080;
/// Simulated wall clock starts here (2025-06-15).
pub const EPOCH: Timestamp = Timestamp(1_750_000_000_000);

pub fn cp_url() -> String {
    format!("http://{CP_HOST}:{CP_PORT}")
}

/// Control-plane time inside the simulation.
/// The control plane's clock in the simulation: simulated time plus a skew
/// the hunter can step, as NTP or a resumed VM steps a real one. Executors
/// never read a wall clock (their loops wait on durations), so skew between
/// hosts comes down to this clock's steps.
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    skew_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl SimClock {
    /// Step the clock by `ms` (backwards when negative).
    pub fn step(&self, ms: i64) {
        self.skew_ms.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// How far it has been stepped in all.
    pub fn skew_ms(&self) -> i64 {
        self.skew_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        let skew = self.skew_ms.load(std::sync::atomic::Ordering::SeqCst);
        Timestamp(EPOCH.plus(turmoil::elapsed()).0.saturating_add_signed(skew))
    }
}

/// Milliseconds every write request waits before it is handled: a slow disk
/// under the control plane's store, in simulated time.
pub type WriteDelay = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// A turmoil TCP stream usable by hyper-util's client.
pub struct SimStream(turmoil::net::TcpStream);

impl AsyncRead for SimStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for SimStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// hyper-util connector dialing through turmoil.
#[derive(Clone, Copy, Default)]
pub struct SimConnector;

impl tower::Service<hyper::Uri> for SimConnector {
    type Response = TokioIo<SimStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri.host().unwrap_or(CP_HOST).to_string();
            let port = uri.port_u16().unwrap_or(80);
            Ok(TokioIo::new(SimStream(turmoil::net::TcpStream::connect((host, port)).await?)))
        })
    }
}

pub fn api(token: Option<String>) -> novacula_client::HttpApi<SimConnector> {
    novacula_client::HttpApi::with_connector(&cp_url(), token, SimConnector).expect("valid sim URL")
}

/// Serve the control-plane router on a turmoil listener, with the sweeper beside it.
pub async fn serve(state: std::sync::Arc<novacula_control_plane::AppState>, write_delay: WriteDelay) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", CP_PORT)).await?;
    let slow_writes = move |req: axum::extract::Request, next: axum::middleware::Next| {
        let ms = write_delay.load(std::sync::atomic::Ordering::SeqCst);
        async move {
            if req.method() != axum::http::Method::GET && ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            next.run(req).await
        }
    };
    let router = novacula_control_plane::router(state.clone()).layer(axum::middleware::from_fn(slow_writes));
    tokio::spawn(novacula_control_plane::sweeper::run(state));
    loop {
        let (stream, _) = listener.accept().await?;
        let svc = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
