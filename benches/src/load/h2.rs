//! HTTP/2 over cleartext with prior knowledge (h2c), as an L7 load balancer
//! speaks to its upstream: many executors' syncs in flight on one
//! connection, written together and answered together. Only what the
//! saturation sender needs, framed by hand (RFC 9113) so the generator
//! spends as little of the shared cores as it can: each request's header
//! block is encoded once (HPACK literals, no dynamic table), a 200 is told by
//! its status byte (static entry 8) and the answer's digest field.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame a peer must accept (SETTINGS_MAX_FRAME_SIZE's default).
const FRAME_MAX: usize = 16_384;
/// What this side lets the server send before it hears of more: large, so
/// answers never wait for a window update.
const RECEIVE_WINDOW: u32 = 1 << 30;
/// Stream ids are odd and below 2^31: a connection that used them up is opened again.
const STREAM_ID_MAX: u32 = (1 << 31) - 1;
/// HPACK's static table entry `:status: 200`, as an indexed field.
const STATUS_200: u8 = 0x80 | 8;

/// A request that does not fit in one frame (bodies and headers are sent as one each).
#[derive(Debug, thiserror::Error)]
pub enum TooLarge {
    #[error("a sync body of {0} bytes is over one HTTP/2 frame")]
    Body(usize),
    #[error("a sync's headers are over one HTTP/2 frame")]
    Headers,
}

/// One sync as frames to send: its header block and its body.
pub struct Request {
    header_block: Vec<u8>,
    body: Vec<u8>,
}

impl Request {
    /// `POST path` to `host` with bearer `key` and a JSON `body` (at most one frame).
    pub fn new(host: &str, path: &str, key: &str, body: &[u8]) -> Result<Request, TooLarge> {
        if body.len() > FRAME_MAX {
            return Err(TooLarge::Body(body.len()));
        }
        // Indexed `:method: POST` (3) and `:scheme: http` (6); the rest literal
        // without indexing, their names from the static table (RFC 7541 appendix A).
        let mut b = vec![0x80 | 3, 0x80 | 6];
        literal(&mut b, 4, path.as_bytes()); // :path
        literal(&mut b, 1, host.as_bytes()); // :authority
        literal(&mut b, 23, format!("Bearer {key}").as_bytes()); // authorization
        literal(&mut b, 31, b"application/json"); // content-type
        literal(&mut b, 28, body.len().to_string().as_bytes()); // content-length
        if b.len() > FRAME_MAX {
            return Err(TooLarge::Headers);
        }
        Ok(Request { header_block: b, body: body.to_vec() })
    }
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 5.1).
fn integer(out: &mut Vec<u8>, first: u8, n: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A literal header field without indexing, its name static entry `name` (RFC 7541 6.2.2).
fn literal(out: &mut Vec<u8>, name: usize, value: &[u8]) {
    integer(out, 0x00, 4, name);
    integer(out, 0x00, 7, value.len()); // not Huffman-coded
    out.extend_from_slice(value);
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A sync in flight.
struct Open {
    sent: Instant,
    /// From the answer's headers: `Err(first byte of its header block)` when not a 200.
    status: Option<Result<(), u8>>,
    body: Vec<u8>,
}

/// What one connection measured: latencies of the syncs answered as they
/// should be, and the first error.
pub trait Tally {
    fn done(&mut self, latency: Duration);
    fn failed(&mut self, e: String);
}

/// Syncs on one connection, `streams` in flight, until `until`; a
/// connection that fails is counted as an error and opened again.
pub async fn connection(addr: &str, requests: &[Request], next: &AtomicUsize, until: Instant, streams: usize, answer_within: Duration, m: &mut impl Tally) {
    while Instant::now() < until {
        let Some(mut stream) = super::saturate::connect(addr, answer_within, m).await else { continue };
        if let Err(e) = session(&mut stream, requests, next, until, streams, answer_within, m).await {
            m.failed(e);
        }
    }
}

/// One connection's life: its preface and settings, then syncs written
/// while fewer than `streams` are in flight and answers read as they come.
async fn session(
    stream: &mut TcpStream,
    requests: &[Request],
    next: &AtomicUsize,
    until: Instant,
    streams: usize,
    answer_within: Duration,
    m: &mut impl Tally,
) -> Result<(), String> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(PREFACE);
    // No server push; a large window for each answer, and for the connection.
    let mut settings = Vec::new();
    for (id, value) in [(0x2u16, 0u32), (0x4, RECEIVE_WINDOW)] {
        settings.extend_from_slice(&id.to_be_bytes());
        settings.extend_from_slice(&value.to_be_bytes());
    }
    frame(&mut out, SETTINGS, 0, 0, &settings);
    frame(&mut out, WINDOW_UPDATE, 0, 0, &(RECEIVE_WINDOW - 65_535).to_be_bytes());
    let (mut open, mut next_id, mut streams_max) = (HashMap::<u32, Open>::with_capacity(streams), 1u32, streams);
    // What this side may still send (the server's connection window), and
    // what it has received since it last widened its own.
    let (mut send_window, mut received) = (65_535i64, 0usize);
    let mut inbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let now = Instant::now();
        while now < until && open.len() < streams_max && send_window >= FRAME_MAX as i64 && next_id < STREAM_ID_MAX {
            let r = &requests[next.fetch_add(1, Ordering::Relaxed) % requests.len()];
            frame(&mut out, HEADERS, END_HEADERS, next_id, &r.header_block);
            frame(&mut out, DATA, END_STREAM, next_id, &r.body);
            send_window -= r.body.len() as i64;
            open.insert(next_id, Open { sent: Instant::now(), status: None, body: Vec::new() });
            next_id += 2;
        }
        if open.is_empty() && (now >= until || next_id >= STREAM_ID_MAX) {
            return Ok(()); // done, or its ids used up: the caller opens another
        }
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| format!("sending: {e}"))?;
            out.clear();
        }
        let read = tokio::time::timeout(answer_within, stream.read_buf(&mut inbuf)).await;
        match read.map_err(|_| format!("no answer within {answer_within:?}"))? {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading: {e}")),
        }
        let mut at = 0;
        while inbuf.len() - at >= 9 {
            let h = &inbuf[at..at + 9];
            let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
            if inbuf.len() - at < 9 + len {
                break;
            }
            let (kind, flags) = (h[3], h[4]);
            let id = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & STREAM_ID_MAX;
            let payload = &inbuf[at + 9..at + 9 + len];
            at += 9 + len;
            match kind {
                SETTINGS if flags & ACK == 0 => {
                    for s in payload.chunks_exact(6) {
                        if u16::from_be_bytes([s[0], s[1]]) == 0x3 {
                            let max = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                            streams_max = streams.min(usize::try_from(max).unwrap_or(usize::MAX));
                        }
                    }
                    frame(&mut out, SETTINGS, ACK, 0, &[]);
                }
                PING if flags & ACK == 0 => frame(&mut out, PING, ACK, 0, payload),
                WINDOW_UPDATE if id == 0 && payload.len() == 4 => {
                    send_window += i64::from(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & STREAM_ID_MAX);
                }
                GOAWAY => return Err(format!("the server sent GOAWAY with {} syncs in flight", open.len())),
                RST_STREAM if open.remove(&id).is_some() => m.failed(format!("stream {id} reset by the server: {payload:?}")),
                HEADERS => {
                    let mut block = payload;
                    if flags & PADDED != 0 {
                        let pad = usize::from(*block.first().unwrap_or(&0));
                        block = block.get(1..block.len().saturating_sub(pad)).unwrap_or_default();
                    }
                    if flags & PRIORITY != 0 {
                        block = block.get(5..).unwrap_or_default();
                    }
                    if let Some(o) = open.get_mut(&id) {
                        o.status = Some(match block.first() {
                            Some(&STATUS_200) => Ok(()),
                            other => Err(other.copied().unwrap_or(0)),
                        });
                    }
                    if flags & END_STREAM != 0 {
                        finish(&mut open, id, m);
                    }
                }
                DATA => {
                    received += len;
                    if let Some(o) = open.get_mut(&id) {
                        if o.body.len() < 1024 * 1024 {
                            o.body.extend_from_slice(payload);
                        }
                    }
                    if flags & END_STREAM != 0 {
                        finish(&mut open, id, m);
                    }
                }
                _ => {} // acknowledgements, priorities, unknown types: nothing to do
            }
        }
        inbuf.drain(..at);
        if received >= (RECEIVE_WINDOW / 2) as usize {
            frame(&mut out, WINDOW_UPDATE, 0, 0, &(received as u32).to_be_bytes());
            received = 0;
        }
    }
}

/// A stream's answer is complete: a sync done, or an error.
fn finish(open: &mut HashMap<u32, Open>, id: u32, m: &mut impl Tally) {
    let Some(o) = open.remove(&id) else { return };
    match o.status {
        Some(Ok(())) if contains(&o.body, super::saturate::DIGEST_FIELD) => m.done(o.sent.elapsed()),
        Some(Ok(())) => m.failed(format!("no capabilitiesDigest in the answer: {}", String::from_utf8_lossy(&o.body))),
        Some(Err(status)) => m.failed(format!("not a 200 (status field {status:#04x}): {}", String::from_utf8_lossy(&o.body))),
        None => m.failed(format!("stream {id} ended without headers")),
    }
}

fn contains(body: &[u8], field: &[u8]) -> bool {
    body.windows(field.len()).any(|w| w == field)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7541 C.1's examples: 10 and 1337 with a 5-bit prefix, 42 with 8.
    #[test]
    fn integers_are_encoded_as_hpack_says() {
        let enc = |n: u8, v: usize| {
            let mut out = Vec::new();
            integer(&mut out, 0, n, v);
            out
        };
        assert_eq!(enc(5, 10), [0b01010]);
        assert_eq!(enc(5, 1337), [0b11111, 0b10011010, 0b00001010]);
        assert_eq!(enc(8, 42), [42]);
        assert_eq!(enc(4, 15), [15, 0]);
    }

    #[test]
    fn a_body_over_one_frame_is_refused() {
        assert!(Request::new("h", "/p", "k", &vec![b'x'; FRAME_MAX + 1]).is_err());
        let r = Request::new("h", "/p", "k", b"{}").unwrap();
        assert_eq!(r.header_block[..2], [0x83, 0x86]);
    }
}
