//! The HTTP server loop: the router behind the limits a public endpoint needs.
//! A client that sends its headers or body too slowly is cut off, the number
//! of open connections is bounded (a new one waits in the kernel's backlog
//! until one closes), and each request carries its peer address for
//! per-address sign-in throttling.
//!
//! HTTP/1.1 and HTTP/2 over cleartext with prior knowledge (h2c) are served
//! on the same port, told apart by the connection's first bytes: an L7 load
//! balancer may carry many executors' calls over a few HTTP/2 connections
//! (one read and one write for many requests, not one each).

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Open connections at most (executors hold one each for their long-poll).
    pub connections_max: usize,
    /// From accepting a connection (or finishing a request) to a complete
    /// request head: this also bounds how long a keep-alive connection may sit
    /// idle (clients drop theirs sooner, see `client::POOL_IDLE_TIMEOUT`).
    /// A new connection has this long to tell its protocol by its first
    /// bytes, and then, on HTTP/1, this long again for its first head.
    pub header_read_timeout: Duration,
    /// For a request body to arrive in full once its head has.
    pub body_read_timeout: Duration,
    /// How long shutdown waits for requests in flight (long-polls included).
    pub shutdown_grace: Duration,
    /// Requests in flight at once on one HTTP/2 connection (and, however
    /// many that makes, `connections_max` on the whole server).
    pub h2_streams_max: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connections_max: 16_384,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            h2_streams_max: 128,
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then let requests in
/// flight finish for at most `limits.shutdown_grace`.
pub async fn serve<L>(mut listener: L, app: Router, limits: HttpLimits, shutdown: impl std::future::Future<Output = ()> + Send) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let body_within = limits.body_read_timeout;
    // On HTTP/1 a request in flight holds a connection; on HTTP/2 many share
    // one: the server as a whole still runs as many at most.
    let app = app.layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.connections_max.max(1)));
    let permits = Arc::new(Semaphore::new(limits.connections_max.max(1)));
    // Shutdown: `stopping` tells every connection to finish what it has;
    // each holds an `alive` sender, so `all_gone` ends when they all have.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let (alive, mut all_gone) = tokio::sync::mpsc::channel::<()>(1);
    let mut http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    http.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    // A peer that stops answering pings is gone: its connection (and permit) is freed.
    http.http2().timer(TokioTimer::new()).max_concurrent_streams(limits.h2_streams_max).keep_alive_interval(H2_PING_EVERY).keep_alive_timeout(H2_PING_EVERY);
    let http = Arc::new(http);
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
        let seen = Arc::new(Seen::new());
        let on_request = seen.clone();
        let svc = app
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(|body| BodyTimeout { body, within: body_within, timer: None })
            })
            .map_future(move |answer| {
                let in_flight = InFlight::enter(&on_request);
                async move { answer.await.map(|resp: axum::response::Response| resp.map(|body| Answer { body, _in_flight: in_flight })) }
            });
        let (http, mut stop, alive, within) = (http.clone(), stop.clone(), alive.clone(), limits.header_read_timeout);
        tokio::spawn(async move {
            let _alive = alive;
            let io = TokioIo::new(Spoken { io, seen: seen.clone(), matched: 0, yielded: false });
            let conn = http.serve_connection(io, TowerToHyperService::new(svc));
            let mut conn = std::pin::pin!(conn);
            let mut closing = false;
            let ended = loop {
                // Which protocol a connection speaks is read from its first
                // bytes (as long as they could be HTTP/2's preface) with no
                // timer of hyper's running: one that has not told it in time
                // is cut off, or it would hold its permit for ever. HTTP/2 has
                // no idle timeout of its own: one with no request for as long
                // is asked to close (its streams in flight finish first), as
                // HTTP/1's header timeout closes an idle keep-alive.
                let check = match (seen.told.load(Ordering::Relaxed), seen.h2.load(Ordering::Relaxed)) {
                    (false, _) => Some(seen.since + within),
                    // With a request in flight (a long-poll, a followed log), it is not idle.
                    (true, true) if !closing && seen.in_flight.load(Ordering::Relaxed) > 0 => Some(Instant::now() + within),
                    (true, true) if !closing => Some(seen.last_request() + within),
                    (true, _) => None,
                };
                tokio::select! {
                    ended = conn.as_mut() => break Some(ended),
                    // (An error: the server loop is gone; stop as well.)
                    _ = stop.wait_for(|s| *s), if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    () = tokio::time::sleep_until(check.unwrap_or_else(Instant::now).into()), if check.is_some() => {
                        if !seen.told.load(Ordering::Relaxed) {
                            break None;
                        }
                        let idle = seen.in_flight.load(Ordering::Relaxed) == 0 && seen.last_request().elapsed() >= within;
                        if seen.h2.load(Ordering::Relaxed) && idle {
                            tracing::debug!(%peer, "an HTTP/2 connection sent no request for {within:?}; closing it");
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                }
            };
            match ended {
                Some(Err(e)) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
                None => tracing::debug!(%peer, "connection did not tell its protocol in time; closed"),
                Some(Ok(())) => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(alive);
    if tokio::time::timeout(limits.shutdown_grace, all_gone.recv()).await.is_err() {
        tracing::warn!(grace_secs = limits.shutdown_grace.as_secs(), "requests still in flight at shutdown were cut off");
    }
    Ok(())
}

/// How often an idle HTTP/2 connection is pinged, and how long its answer may take.
const H2_PING_EVERY: Duration = Duration::from_secs(20);

/// What an HTTP/2 connection opens with (RFC 9113 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection's task knows of its peer.
struct Seen {
    /// A byte differed from HTTP/2's preface (HTTP/1), or all of it came.
    told: AtomicBool,
    /// The peer sent HTTP/2's preface.
    h2: AtomicBool,
    /// When the connection was accepted.
    since: Instant,
    /// Its last request's start or end, in milliseconds after `since`.
    request_ms: AtomicU64,
    /// Requests whose answers are not done yet.
    in_flight: AtomicUsize,
}

impl Seen {
    fn new() -> Seen {
        Seen { told: AtomicBool::new(false), h2: AtomicBool::new(false), since: Instant::now(), request_ms: AtomicU64::new(0), in_flight: AtomicUsize::new(0) }
    }

    fn requested(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.request_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The connection's last request (its start, before any).
    fn last_request(&self) -> Instant {
        self.since + Duration::from_millis(self.request_ms.load(Ordering::Relaxed))
    }
}

/// A request on a connection from its call until its answer's body is done
/// (or dropped): while any is, the connection is not idle.
struct InFlight(Arc<Seen>);

impl InFlight {
    fn enter(seen: &Arc<Seen>) -> InFlight {
        seen.in_flight.fetch_add(1, Ordering::Relaxed);
        seen.requested();
        InFlight(seen.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.requested();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An answer's body, holding its request's [`InFlight`] until it is done.
struct Answer<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Answer<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's IO that notes when its peer has told its protocol and,
/// on HTTP/2, lets answers gather before they are written.
struct Spoken<I> {
    io: I,
    seen: Arc<Seen>,
    /// How many of the first bytes were HTTP/2's preface, so far.
    matched: usize,
    /// This batch of writes has given way once already.
    yielded: bool,
}

impl<I: AsyncRead + Unpin> AsyncRead for Spoken<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if !self.seen.told.load(Ordering::Relaxed) {
            for &b in &buf.filled()[before..] {
                if H2_PREFACE.get(self.matched) != Some(&b) {
                    self.seen.told.store(true, Ordering::Relaxed);
                    break;
                }
                self.matched += 1;
                if self.matched == H2_PREFACE.len() {
                    self.seen.h2.store(true, Ordering::Relaxed);
                    self.seen.told.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> Spoken<I> {
    /// On HTTP/2, a batch's first write gives way once: the connection's
    /// other streams ready to answer run first, and one write carries all
    /// their answers instead of one write (and one wakeup of the peer) each.
    fn give_way(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.yielded && self.seen.h2.load(Ordering::Relaxed) {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return true;
        }
        false
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Spoken<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.give_way(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        if self.give_way(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if flushed.is_ready() {
            self.yielded = false; // the batch is out: the next one gives way again
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request body that must arrive within `within` once it is waited for.
/// The timer starts only when the body is not already there: a small body
/// arrives with its headers and needs none (a timer per request, set and
/// cleared, had been a few percent of a heartbeat's cost).
struct BodyTimeout<B> {
    body: B,
    within: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// A request body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(Duration);

impl<B> hyper::body::Body for BodyTimeout<B>
where
    B: hyper::body::Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<hyper::body::Frame<B::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None; // the next wait has its own `within`
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let within = this.within;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(within)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(within))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The peer address of a request, when it came through [`serve`].
pub fn peer(parts: &axum::http::request::Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// Reads what it was given; keeps what is written.
    struct Pipe(std::io::Cursor<Vec<u8>>, Vec<u8>);
    impl AsyncRead for Pipe {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }
    impl AsyncWrite for Pipe {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.1).poll_write(cx, buf)
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// On HTTP/2 a batch of writes gives way once (and asks to be polled
    /// again), then writes; after its flush the next batch gives way again.
    /// HTTP/1 writes at once.
    #[test]
    fn an_http2_batch_gives_way_once_before_it_is_written() {
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let spoken = |first: &[u8]| {
            let mut s = Spoken { io: Pipe(std::io::Cursor::new(first.to_vec()), Vec::new()), seen: Arc::new(Seen::new()), matched: 0, yielded: false };
            let mut buf = [0u8; 64];
            let mut rb = ReadBuf::new(&mut buf);
            assert!(Pin::new(&mut s).poll_read(&mut Context::from_waker(std::task::Waker::noop()), &mut rb).is_ready());
            s
        };
        let mut h2 = spoken(H2_PREFACE);
        assert!(h2.seen.h2.load(Ordering::Relaxed) && h2.seen.told.load(Ordering::Relaxed));
        let part = spoken(&H2_PREFACE[..3]);
        assert!(!part.seen.h2.load(Ordering::Relaxed) && !part.seen.told.load(Ordering::Relaxed), "a part of the preface tells nothing yet");
        assert!(Pin::new(&mut h2).poll_write(&mut cx, b"one").is_pending());
        assert_eq!(woken.0.load(Ordering::Relaxed), 1, "it asks to be polled again");
        assert!(matches!(Pin::new(&mut h2).poll_write(&mut cx, b"one"), Poll::Ready(Ok(3))));
        assert!(matches!(Pin::new(&mut h2).poll_write(&mut cx, b"two"), Poll::Ready(Ok(3))), "within a batch, once");
        assert!(Pin::new(&mut h2).poll_flush(&mut cx).is_ready());
        assert!(Pin::new(&mut h2).poll_write(&mut cx, b"next").is_pending(), "the next batch gives way again");
        assert_eq!(h2.io.1, b"onetwo");

        let mut h1 = spoken(b"POST /api/v1/executor/sync HTTP/1.1\r\n");
        assert!(!h1.seen.h2.load(Ordering::Relaxed) && h1.seen.told.load(Ordering::Relaxed));
        assert!(matches!(Pin::new(&mut h1).poll_write(&mut cx, b"answer"), Poll::Ready(Ok(6))));
    }
}
