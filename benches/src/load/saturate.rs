//! Heartbeats at saturation: digest syncs (an agent's steady ones), round
//! robin over the fleet's executors, as fast as the control plane answers
//! them, over either wire: plain HTTP/1.1 keep-alive with one request in
//! flight per connection, as agents that connect directly send them; or
//! HTTP/2 (h2c) with many in flight per connection, as an L7 load balancer
//! in front of the control plane carries them. The requests are made once
//! and written as bytes so that the generator, which shares the machine's
//! cores with the server, spends as little of them as it can (as `wrk` or
//! `h2load` would). The server does all it does for any client: HTTP
//! parsing, authentication, JSON. The sender runs on a thread of its own
//! (one core at most), so the server's workers are not also the generator's.

use super::{Emulated, Sampler, Saturation, Target};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the syncs travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// HTTP/1.1, `connections` each with one sync in flight.
    Http1 { connections: usize },
    /// HTTP/2 with prior knowledge, `connections` each with `streams` syncs in flight.
    Http2 { connections: usize, streams: usize },
}

/// Both wires with 256 syncs in flight: enough to keep the server's workers busy.
pub const WIRES: [Wire; 2] = [Wire::Http1 { connections: 256 }, Wire::Http2 { connections: 8, streams: 32 }];

impl std::fmt::Display for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wire::Http1 { connections } => write!(f, "HTTP/1.1, {connections} connections, a sync in flight on each"),
            Wire::Http2 { connections, streams } => {
                write!(f, "HTTP/2 as a load balancer multiplexes, {connections} connections, {streams} syncs in flight on each")
            }
        }
    }
}

/// As the fleet's calls: slower is an error.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// What an answer must hold to count as a sync done.
pub(super) const DIGEST_FIELD: &[u8] = b"\"capabilitiesDigest\":\"";

/// What one connection measured.
struct Measured {
    latency: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl super::h2::Tally for Measured {
    fn done(&mut self, latency: Duration) {
        self.latency.saturating_record(latency.as_micros().try_into().unwrap_or(u64::MAX));
    }

    fn failed(&mut self, e: String) {
        Measured::failed(self, e);
    }
}

/// The requests of one wire, made once.
enum Requests {
    Http1(Vec<Vec<u8>>),
    Http2(Vec<super::h2::Request>),
}

pub async fn run(target: &Target, fleet: &[(Arc<Emulated>, Arc<Vec<u8>>)], duration: Duration, disk_flushes_per_sec: Option<f64>, wire: Wire) -> Saturation {
    let Some(addr) = target.url.strip_prefix("http://").map(|a| a.trim_end_matches('/').to_string()) else {
        return Saturation::failed(wire, format!("heartbeats at saturation are sent over plain http://, not to {}", target.url), disk_flushes_per_sec);
    };
    let (requests, conns) = match wire {
        Wire::Http1 { connections } => (Requests::Http1(fleet.iter().map(|(e, body)| request(&addr, e.key(), body)).collect()), connections.min(fleet.len())),
        Wire::Http2 { connections, streams } => {
            let made: Result<Vec<_>, super::h2::TooLarge> = fleet.iter().map(|(e, body)| super::h2::Request::new(&addr, SYNC_PATH, e.key(), body)).collect();
            match made {
                Ok(made) => (Requests::Http2(made), connections.min(fleet.len().div_ceil(streams.max(1)))),
                Err(e) => return Saturation::failed(wire, e.to_string(), disk_flushes_per_sec),
            }
        }
    };
    let requests = Arc::new(requests);
    let sampler = Sampler::start(target);
    let started = Instant::now();
    // On a thread of its own, one task per connection: the generator takes
    // at most one core, and its connections never wake another thread.
    let (done, measured) = tokio::sync::oneshot::channel();
    let sender = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return drop(done.send(Err(e.to_string()))),
        };
        let all = rt.block_on(async move {
            let next = Arc::new(AtomicUsize::new(0));
            let mut connections = tokio::task::JoinSet::new();
            for _ in 0..conns {
                let (addr, requests, next) = (addr.clone(), requests.clone(), next.clone());
                connections.spawn(async move {
                    match (&*requests, wire) {
                        (Requests::Http1(requests), _) => connection(&addr, requests, &next, started + duration).await,
                        (Requests::Http2(requests), Wire::Http2 { streams, .. }) => {
                            let mut m = Measured { latency: histogram(), errors: 0, first_error: None };
                            super::h2::connection(&addr, requests, &next, started + duration, streams, ANSWER_WITHIN, &mut m).await;
                            m
                        }
                        (Requests::Http2(_), Wire::Http1 { .. }) => unreachable!("requests are made for their wire"),
                    }
                });
            }
            let mut all = Measured { latency: histogram(), errors: 0, first_error: None };
            while let Some(m) = connections.join_next().await {
                match m {
                    Ok(m) => {
                        let _ = all.latency.add(&m.latency);
                        all.errors += m.errors;
                        all.first_error = all.first_error.or(m.first_error);
                    }
                    Err(e) => all.failed(e.to_string()),
                }
            }
            all
        });
        let _ = done.send(Ok(all));
    });
    let all = match measured.await {
        Ok(Ok(all)) => all,
        Ok(Err(e)) => return Saturation::failed(wire, format!("starting the sender's runtime: {e}"), disk_flushes_per_sec),
        Err(_) => return Saturation::failed(wire, "the sender's thread ended early".into(), disk_flushes_per_sec),
    };
    let _ = sender.join();
    let window = started.elapsed();
    Saturation {
        wire,
        syncs_per_sec: all.latency.len() as f64 / window.as_secs_f64().max(1e-9),
        p99: Duration::from_micros(all.latency.value_at_quantile(0.99)),
        errors: all.errors,
        first_error: all.first_error,
        server: sampler.finish(target, window),
        disk_flushes_per_sec,
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits: always constructible.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

const SYNC_PATH: &str = "/api/v1/executor/sync";

/// `syncExecutor` as bytes on the wire.
fn request(host: &str, key: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {SYNC_PATH} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A connection to `addr` (no Nagle delay), or an error counted and a
/// pause before the caller tries again.
pub(super) async fn connect(addr: &str, within: Duration, m: &mut impl super::h2::Tally) -> Option<TcpStream> {
    let connected = tokio::time::timeout(within, TcpStream::connect(addr)).await;
    match connected.unwrap_or_else(|_| Err(std::io::Error::other(format!("no connection within {within:?}")))) {
        Ok(s) => {
            let _ = s.set_nodelay(true);
            Some(s)
        }
        Err(e) => {
            m.failed(format!("connecting to {addr}: {e}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// Syncs over one connection until `until`; a connection that fails is
/// counted as an error and opened again.
async fn connection(addr: &str, requests: &[Vec<u8>], next: &AtomicUsize, until: Instant) -> Measured {
    let mut m = Measured { latency: histogram(), errors: 0, first_error: None };
    let mut buf = Vec::with_capacity(16 * 1024);
    while Instant::now() < until {
        let Some(mut stream) = connect(addr, ANSWER_WITHIN, &mut m).await else { continue };
        while Instant::now() < until {
            let req = &requests[next.fetch_add(1, Ordering::Relaxed) % requests.len()];
            let t = Instant::now();
            // A server that stops answering ends the connection's run, counted.
            let answered = tokio::time::timeout(ANSWER_WITHIN, exchange(&mut stream, req, &mut buf)).await;
            match answered.unwrap_or_else(|_| Err(format!("no answer within {ANSWER_WITHIN:?}"))) {
                Ok(()) => {
                    m.latency.saturating_record(t.elapsed().as_micros().try_into().unwrap_or(u64::MAX));
                }
                Err(e) => {
                    m.failed(e);
                    break; // the connection's state is unknown: open another
                }
            }
        }
    }
    m
}

impl Measured {
    fn failed(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// Send one request and read its answer: a 200 with a digest in its body.
async fn exchange(stream: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> Result<(), String> {
    stream.write_all(req).await.map_err(|e| format!("sending: {e}"))?;
    buf.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 24];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = resp.parse(buf).map_err(|e| format!("answer: {e}"))? {
            let code = resp.code.unwrap_or(0);
            let length = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .ok_or("an answer without content-length")?;
            while buf.len() < head + length {
                read_more(stream, buf).await?;
            }
            let body = &buf[head..head + length];
            if code != 200 {
                return Err(format!("{code}: {}", String::from_utf8_lossy(body)));
            }
            if !body.windows(DIGEST_FIELD.len()).any(|w| w == DIGEST_FIELD) {
                return Err(format!("no capabilitiesDigest in the answer: {}", String::from_utf8_lossy(body)));
            }
            return Ok(());
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    if buf.len() > 1024 * 1024 {
        return Err("an answer over 1 MiB".into());
    }
    buf.reserve(8 * 1024);
    match stream.read_buf(buf).await {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("reading: {e}")),
    }
}
