//! A systemd unit's log, from the journal, for a viewer: `journalctl`
//! (the host's own program, never one a spec names) as JSON, the last lines
//! first, then the entries after the last one's cursor.

use crate::driver::{DriverError, Result};
use novacula_core::logs::{clean, level_of, LogLevel, LogLine};
use novacula_core::Timestamp;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// The most entries one read takes.
pub const ENTRIES_MAX: usize = 2000;
const READ_WAIT: Duration = Duration::from_secs(5);

/// The level of a journal `PRIORITY` (syslog's 0..7).
fn priority(p: Option<&str>) -> LogLevel {
    match p.and_then(|p| p.parse::<u8>().ok()) {
        Some(0..=3) => LogLevel::Error,
        Some(4) => LogLevel::Warn,
        Some(7) => LogLevel::Debug,
        _ => LogLevel::Info,
    }
}

/// A field as text: journald writes non-UTF-8 messages as byte arrays.
fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(bytes) => {
            Some(String::from_utf8_lossy(&bytes.iter().filter_map(|b| b.as_u64().map(|b| b as u8)).collect::<Vec<u8>>()).into_owned())
        }
        _ => None,
    }
}

/// One `journalctl -o json` line as a log line and its cursor.
pub fn entry(json: &str) -> Option<(LogLine, String)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let message = clean(&text(&v["MESSAGE"])?);
    let at = v["__REALTIME_TIMESTAMP"].as_str().and_then(|t| t.parse::<u64>().ok()).map_or(0, |us| us / 1000);
    let level = level_of(&message, priority(v["PRIORITY"].as_str()));
    Some((LogLine { at: Timestamp(at), level, text: message }, v["__CURSOR"].as_str()?.to_string()))
}

/// The last `tail` entries of `unit` (`after: None`), or those after a
/// cursor this function returned (`c:<journal cursor>`, or `t:<seconds>`
/// when there was none yet); `journal`: a journal directory instead of the
/// host's.
pub async fn read(unit: &str, journal: Option<&Path>, after: Option<&str>, tail: u32) -> Result<(Vec<LogLine>, String)> {
    let mut cmd = tokio::process::Command::new("journalctl");
    cmd.arg(format!("--unit={unit}")).args(["--output=json", "--no-pager", "--quiet"]);
    if let Some(dir) = journal {
        cmd.arg(format!("--directory={}", dir.display()));
    }
    match after.map(|a| a.split_at(a.find(':').map_or(0, |i| i + 1))) {
        Some(("c:", cursor)) => cmd.arg(format!("--after-cursor={cursor}")),
        Some(("t:", secs)) => cmd.arg(format!("--since=@{secs}")),
        _ => cmd.arg(format!("--lines={tail}")),
    };
    let now_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut child =
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).kill_on_drop(true).spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| DriverError::Other("journalctl without its output".into()))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let (mut out, mut cursor) = (Vec::new(), None);
    let read = async {
        while let Some(l) = lines.next_line().await? {
            if let Some((line, c)) = entry(&l) {
                out.push(line);
                cursor = Some(c);
            }
            if out.len() == ENTRIES_MAX {
                break; // the rest on the next read, after this cursor
            }
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(READ_WAIT, read).await.map_err(|_| DriverError::Other(format!("journalctl gave no end within {} s", READ_WAIT.as_secs())))??;
    if out.len() < ENTRIES_MAX {
        let status = child.wait_with_output().await?;
        if !status.status.success() {
            return Err(DriverError::Other(format!("journalctl: {}", String::from_utf8_lossy(&status.stderr).trim())));
        }
    }
    let next = match (cursor, after) {
        (Some(c), _) => format!("c:{c}"),
        (None, Some(a)) if a.starts_with("c:") || a.starts_with("t:") => a.to_string(),
        (None, _) => format!("t:{now_secs}"),
    };
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_text_time_level_and_cursor() {
        let (l, c) =
            entry(r#"{"MESSAGE":"WARN [12-02|10:00:00] peer dropped","__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1796215994581000","PRIORITY":"6"}"#)
                .unwrap();
        assert_eq!(
            (l.text.as_str(), l.at, l.level, c.as_str()),
            ("WARN [12-02|10:00:00] peer dropped", Timestamp(1_796_215_994_581), LogLevel::Warn, "s=abc;i=1")
        );
        let (l, _) = entry(r#"{"MESSAGE":[104,105,255],"__CURSOR":"x","PRIORITY":"3"}"#).unwrap();
        assert_eq!((l.text.as_str(), l.level), ("hi\u{fffd}", LogLevel::Error), "bytes, and the priority when the text names no level");
        assert!(entry("not json").is_none() && entry(r#"{"__CURSOR":"x"}"#).is_none());
    }
}
