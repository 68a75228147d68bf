//! Reading a process's log file for a viewer: its last lines, then what was
//! appended since, by byte offset, in bounded reads (a client writing
//! gigabytes of logs costs a viewer at most [`READ_MAX`] a read).

use novacula_core::logs::LogLine;
use novacula_core::Timestamp;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most bytes one read takes from the file.
pub const READ_MAX: u64 = 1 << 20;

/// The wall clock in Unix milliseconds (the agent is a shell: it may read the time).
pub(crate) fn now() -> Timestamp {
    Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
}

/// The last `tail` lines of `path` (`after: None`), or the complete lines
/// appended after the byte offset `after`; with the offset to go on from. A
/// file shorter than the offset was truncated or replaced: read from its
/// start. A missing file has no lines yet.
pub fn read(path: &Path, after: Option<&str>, tail: u32) -> std::io::Result<(Vec<LogLine>, String)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), "0".into())),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let from = match after.map(str::parse::<u64>) {
        None => len.saturating_sub(READ_MAX),
        Some(Ok(offset)) if offset <= len => offset,
        Some(_) => 0,
    };
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.take(READ_MAX).read_to_end(&mut bytes)?;
    // Only whole lines: a line still being written is read next time.
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..whole]);
    let mut lines: Vec<&str> = text.lines().collect();
    if after.is_none() {
        if from > 0 && !lines.is_empty() {
            lines.remove(0); // cut by the read window
        }
        let skip = lines.len().saturating_sub(tail as usize);
        lines.drain(..skip);
    }
    let at = now();
    Ok((lines.into_iter().map(|l| LogLine::new(at, l)).collect(), (from + whole as u64).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn tail_then_follow_by_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("main.log");
        assert_eq!(read(&p, None, 10).unwrap(), (vec![], "0".into()), "no file yet");
        std::fs::write(&p, "one\ntwo\nINFO three\nWARN four\npartial").unwrap();
        let (lines, cursor) = read(&p, None, 2).unwrap();
        assert_eq!(texts(&lines), ["INFO three", "WARN four"]);
        assert_eq!(lines[1].level, novacula_core::logs::LogLevel::Warn);
        let (lines, cursor) = read(&p, Some(&cursor), 2).unwrap();
        assert!(lines.is_empty(), "the partial line waits");
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b" line\nERROR five\n").unwrap();
        let (lines, cursor) = read(&p, Some(&cursor), 2).unwrap();
        assert_eq!(texts(&lines), ["partial line", "ERROR five"], "everything appended, not just the tail");
        std::fs::write(&p, "after truncation\n").unwrap();
        let (lines, _) = read(&p, Some(&cursor), 2).unwrap();
        assert_eq!(texts(&lines), ["after truncation"]);
        assert_eq!(read(&p, Some("garbage"), 2).unwrap().0.len(), 1, "a bad cursor reads from the start");
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        let line = "x".repeat(99) + "\n";
        std::fs::write(&p, line.repeat(30_000)).unwrap(); // 3 MB
        let (lines, cursor) = read(&p, None, 1000).unwrap();
        assert_eq!(lines.len(), 1000);
        assert_eq!(cursor, "3000000");
        let (lines, cursor) = read(&p, Some("0"), 1000).unwrap();
        assert_eq!((lines.len() as u64, cursor.parse::<u64>().unwrap()), (READ_MAX / 100, (READ_MAX / 100) * 100), "one window of whole lines");
    }
}
