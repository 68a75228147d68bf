//! What the load generator measures: latency per call kind, errors with a
//! few of their messages, and samples of the server's CPU, memory and commits.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The calls timed, by name.
pub const SYNC: &str = "sync";
pub const POLL: &str = "poll";
pub const REPORT: &str = "report";
pub const RESTART: &str = "restart";
/// From a restart's answer to the executor's poll seeing its revision.
pub const PROPAGATION: &str = "propagation";
pub const NODES_PAGE: &str = "nodes page";
pub const NODE_READ: &str = "node read";

/// Error messages kept per call kind (the count is kept in full).
const MESSAGES_KEPT: usize = 5;

#[derive(Default)]
struct Kind {
    latency: Option<Histogram<u64>>,
    errors: u64,
    messages: Vec<String>,
}

/// The latency target of every call: slower calls are counted per second.
pub const TARGET: Duration = Duration::from_millis(50);

/// Latencies and errors of the window being measured; calls outside it
/// (setup, shutdown) are not counted.
pub struct Calls {
    recording: AtomicBool,
    kinds: Mutex<BTreeMap<&'static str, Kind>>,
    /// Per second of the window: calls over [`TARGET`] and the slowest, to
    /// tell periodic work (every 5 s, every minute) from load.
    seconds: Mutex<(Option<Instant>, Vec<SlowSecond>)>,
}

/// One second of the window with calls over [`TARGET`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SlowSecond {
    /// Seconds since the window opened.
    pub at: u64,
    pub over: u64,
    pub max: Duration,
}

impl Default for Calls {
    fn default() -> Self {
        Calls { recording: AtomicBool::new(false), kinds: Mutex::new(BTreeMap::new()), seconds: Mutex::new((None, Vec::new())) }
    }
}

impl Calls {
    pub fn start(&self) {
        self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        *self.seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (Some(Instant::now()), Vec::new());
        self.recording.store(true, Ordering::SeqCst);
    }

    /// The seconds of the window that had calls over [`TARGET`], in order.
    pub fn slow_seconds(&self) -> Vec<SlowSecond> {
        let seconds = self.seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seconds.1.iter().copied().filter(|s| s.over > 0).collect()
    }

    pub fn stop(&self) {
        self.recording.store(false, Ordering::SeqCst);
    }

    pub fn ok(&self, kind: &'static str, took: Duration) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let mut kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let k = kinds.entry(kind).or_default();
        // 1 µs to 10 min at 3 significant digits: always constructible.
        let h = k.latency.get_or_insert_with(|| Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds")));
        h.saturating_record(took.as_micros().try_into().unwrap_or(u64::MAX));
        drop(kinds);
        if took > TARGET {
            let mut seconds = self.seconds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let at = seconds.0.map_or(0, |t| t.elapsed().as_secs());
            let list = &mut seconds.1;
            if list.len() <= at as usize {
                list.resize_with(at as usize + 1, SlowSecond::default);
            }
            let s = &mut list[at as usize];
            (s.at, s.over, s.max) = (at, s.over + 1, s.max.max(took));
        }
    }

    pub fn error(&self, kind: &'static str, message: impl std::fmt::Display) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let mut kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let k = kinds.entry(kind).or_default();
        k.errors += 1;
        if k.messages.len() < MESSAGES_KEPT {
            k.messages.push(message.to_string());
        }
    }

    /// Per call kind: count, rate over `window`, p50/p99/max, errors.
    pub fn summary(&self, window: Duration) -> Vec<CallSummary> {
        let kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kinds
            .iter()
            .map(|(name, k)| {
                let (count, p50, p99, max) = match &k.latency {
                    Some(h) => (h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()),
                    None => (0, 0, 0, 0),
                };
                let us = Duration::from_micros;
                CallSummary {
                    name,
                    count,
                    per_sec: count as f64 / window.as_secs_f64().max(1e-9),
                    p50: us(p50),
                    p99: us(p99),
                    max: us(max),
                    errors: k.errors,
                    messages: k.messages.clone(),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct CallSummary {
    pub name: &'static str,
    pub count: u64,
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub errors: u64,
    pub messages: Vec<String>,
}

/// The server's use of the machine over the window, when it can be read.
#[derive(Debug, Clone, Default)]
pub struct ServerUse {
    /// CPU time over wall time (1.0 is one core busy).
    pub cpu_cores: Option<f64>,
    pub rss_max_bytes: Option<u64>,
    pub commits_per_sec: Option<f64>,
    pub reads_per_sec: Option<f64>,
    /// The generator's own CPU (it shares the machine).
    pub generator_cpu_cores: Option<f64>,
}

/// CPU seconds (user + system) and resident bytes of process `pid`, from /proc.
pub fn process_use(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux architecture Rust targets.
    let cpu = ticks as f64 / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?;
    Some((cpu, rss_kb * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_window_is_counted() {
        let c = Calls::default();
        c.ok(SYNC, Duration::from_millis(1));
        c.error(SYNC, "before");
        c.start();
        for ms in 1..=100 {
            c.ok(SYNC, Duration::from_millis(ms));
        }
        c.error(REPORT, "refused");
        c.stop();
        c.ok(SYNC, Duration::from_secs(9));
        let s = c.summary(Duration::from_secs(10));
        let sync = s.iter().find(|k| k.name == SYNC).unwrap();
        assert_eq!((sync.count, sync.errors), (100, 0));
        assert!((sync.per_sec - 10.0).abs() < 1e-9);
        assert!(sync.p99 >= Duration::from_millis(98) && sync.p99 <= Duration::from_millis(100), "{:?}", sync.p99);
        assert!(sync.max < Duration::from_millis(101));
        let report = s.iter().find(|k| k.name == REPORT).unwrap();
        assert_eq!((report.count, report.errors, report.messages.as_slice()), (0, 1, ["refused".to_string()].as_slice()));
        // 50 calls over the 50 ms target, all in the window's first second
        assert_eq!(c.slow_seconds(), [SlowSecond { at: 0, over: 50, max: Duration::from_millis(100) }]);
    }

    #[test]
    fn reads_this_process() {
        let (cpu, rss) = process_use(std::process::id()).unwrap();
        assert!(cpu >= 0.0 && rss > 1024 * 1024, "cpu {cpu} rss {rss}");
    }
}
