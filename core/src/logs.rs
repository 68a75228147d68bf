//! A node's logs as Novacula carries them: lines cut to size, each with a
//! level normalised from the client's own format, in bounded batches.
//!
//! Executors stay outbound-only: a sync answer names the logs someone
//! watches ([`LogWatch`]); the executor pushes their lines ([`LogBatch`])
//! until a sync answer no longer names them.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Lines replayed when a viewer opens a process's log, unless it asks.
pub const REPLAY_DEFAULT: u32 = 200;
/// The most lines replayed, and kept per watched process by the control plane.
pub const REPLAY_MAX: u32 = 1000;
/// The most lines in one push.
pub const BATCH_MAX: usize = 500;
/// Longer lines are cut here (characters), with a marker.
pub const LINE_MAX: usize = 2000;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// The level a client's own word stands for (geth's `EROR`, Lighthouse's
    /// `CRIT`, Lodestar's `verbose`, ...).
    fn of_word(word: &str) -> Option<LogLevel> {
        Some(match word.to_ascii_lowercase().as_str() {
            "trace" | "trce" | "debug" | "dbug" | "debg" | "verbose" | "verb" => LogLevel::Debug,
            "info" | "inf" | "notice" => LogLevel::Info,
            "warn" | "warning" | "wrn" => LogLevel::Warn,
            "error" | "eror" | "err" | "crit" | "critical" | "fatal" | "panic" => LogLevel::Error,
            _ => return None,
        })
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error]
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("level {s:?}: one of debug, info, warn, error"))
    }
}

/// The level of a client's log line: the first level word among its first
/// few tokens (`INFO [12-02|10:00:00.000] ...` (geth), `Dec 02 10:00:00.000
/// WARN ...` (Lighthouse), `2026-12-02T10:00:00Z ERROR ...` (reth),
/// `Dec-02 10:00:00.000 [chain] info: ...` (Lodestar), `level=warn`
/// (logfmt)); `default` when none is found (a continuation line, a panic's
/// backtrace keeps the level the caller gives).
pub fn level_of(line: &str, default: LogLevel) -> LogLevel {
    let head: String = line.chars().take(120).collect();
    for token in head.split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '|' | ':' | '=' | '"' | '(' | ')')).filter(|t| !t.is_empty()).take(8) {
        if let Some(level) = LogLevel::of_word(token) {
            return level;
        }
    }
    default
}

/// A line fit to carry: terminal colours and control characters gone, cut
/// at [`LINE_MAX`] characters.
pub fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(LINE_MAX + 16));
    let mut chars = line.chars().peekable();
    let mut n = 0;
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences (`ESC [ ... letter`): colours and cursor moves.
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c.is_control() && c != '\t' {
            continue;
        }
        if n == LINE_MAX {
            out.push_str(" [cut]");
            break;
        }
        out.push(c);
        n += 1;
    }
    out
}

/// One line of a process's log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogLine {
    /// When the executor read it (the journal's own time where it has one).
    pub at: Timestamp,
    pub level: LogLevel,
    pub text: String,
}

impl LogLine {
    pub fn new(at: Timestamp, raw: &str) -> LogLine {
        let text = clean(raw);
        LogLine { at, level: level_of(&text, LogLevel::Info), text }
    }
}

/// A process's log someone watches, as a sync answer names it. A new `id`
/// asks for a replay of the last `tail` lines first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogWatch {
    pub id: u64,
    pub node: String,
    pub process: String,
    pub tail: u32,
}

/// Lines an executor pushes for a watch (`POST /executor/logs`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogBatch {
    pub watch: u64,
    pub node: String,
    pub process: String,
    /// The replay of the last lines (the first batch of a watch).
    #[serde(default)]
    pub replay: bool,
    /// Why there are no lines, when the executor cannot read them.
    #[serde(default)]
    pub error: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_items = 500))]
    pub lines: Vec<LogLine>,
}

/// The answer to a push: whether anyone still watches that log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogPushResponse {
    /// False: nobody watches it any more; stop pushing.
    pub watched: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_read_from_each_clients_format() {
        use LogLevel::*;
        for (line, want) in [
            ("INFO [12-02|10:00:00.000] Imported new chain segment number=1", Info),
            ("EROR [12-02|10:00:00.000] Beacon backfilling failed", Error),
            ("WARN [12-02|10:00:00.000] Snapshot extension registration failed", Warn),
            ("Dec 02 10:00:00.000 WARN Low peer count   peer_count: 1", Warn),
            ("Dec 02 10:00:00.000 CRIT Failed to start beacon node", Error),
            ("2026-12-02T10:00:00.123456Z  INFO reth::cli: Starting reth", Info),
            ("2026-12-02T10:00:00.123456Z DEBUG sync: headers", Debug),
            ("Dec-02 10:00:00.000[chain]         info: Synced - slot: 100", Info),
            ("Dec-02 10:00:00.000 []                 error: Execution client offline", Error),
            ("time=2026-12-02T10:00:00Z level=warn msg=\"slow block\"", Warn),
            ("\tat java.lang.Thread.run(Thread.java:750)", Info),
        ] {
            assert_eq!(level_of(line, Info), want, "{line}");
        }
        assert_eq!(level_of("    0: std::panicking::begin_panic", Error), Error, "a continuation keeps the caller's level");
        assert_eq!("warn".parse::<LogLevel>(), Ok(Warn));
        assert!("loud".parse::<LogLevel>().is_err());
    }

    #[test]
    fn lines_lose_colours_and_controls_and_are_cut() {
        assert_eq!(clean("\u{1b}[32mINFO\u{1b}[0m ready\r"), "INFO ready");
        assert_eq!(clean("a\u{0}b\tc"), "ab\tc");
        let long = "x".repeat(LINE_MAX + 50);
        let cut = clean(&long);
        assert_eq!(cut.chars().count(), LINE_MAX + " [cut]".len());
        assert!(cut.ends_with(" [cut]"));
        assert_eq!(LogLine::new(Timestamp(1), "\u{1b}[31mERROR\u{1b}[0m boom").level, LogLevel::Error);
    }
}
