//! The HTTP server loop: the router behind the limits a public endpoint needs.
//! A client that sends its headers or body too slowly is cut off, the number
//! of open connections is bounded (a new one waits in the kernel's backlog
//! until one closes), and each request carries its peer address for
//! per-address sign-in throttling.

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Open connections at most (executors hold one each for their long-poll).
    pub connections_max: usize,
    /// From accepting a connection (or finishing a request) to a complete
    /// request head: this also bounds how long a keep-alive connection may sit
    /// idle (clients drop theirs sooner, see `client::POOL_IDLE_TIMEOUT`).
    pub header_read_timeout: Duration,
    /// For a request body to arrive in full once its head has.
    pub body_read_timeout: Duration,
    /// How long shutdown waits for requests in flight (long-polls included).
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connections_max: 16_384,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then let requests in
/// flight finish for at most `limits.shutdown_grace`.
pub async fn serve<L>(mut listener: L, app: Router, limits: HttpLimits, shutdown: impl std::future::Future<Output = ()> + Send) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_read_timeout));
    let permits = Arc::new(Semaphore::new(limits.connections_max.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Take a connection only when it may be served.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // closed: never, as nothing closes it
            },
            () = &mut shutdown => break,
        };
        let (io, peer) = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        let svc = app.clone().map_request(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
        let conn = graceful.watch(http.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc)));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace_secs = limits.shutdown_grace.as_secs(), "requests still in flight at shutdown were cut off");
    }
    Ok(())
}

/// The peer address of a request, when it came through [`serve`].
pub fn peer(parts: &axum::http::request::Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
