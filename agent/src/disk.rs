//! Disk usage of a node's data: what its files take (walked at most once a
//! minute per node, off the async workers and, after the first time, off the
//! report's path, since a mainnet data dir holds hundreds of thousands of
//! files) and what the filesystem under it has.

use novacula_core::sync::LockExt;
use novacula_core::DiskUsage;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a walked size is reused.
const REUSE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct DiskMeter {
    /// Per data dir: when it was last walked and what it held, and whether a walk is under way.
    walked: std::sync::Arc<Mutex<HashMap<PathBuf, Walked>>>,
}

#[derive(Clone, Copy)]
struct Walked {
    at: Instant,
    used: u64,
    walking: bool,
}

impl DiskMeter {
    /// Usage under `dir`, or `None` when it does not exist (yet). The first
    /// measure of a dir walks it before answering; later ones answer at once
    /// with the last size and walk again in the background once it is a minute old.
    pub async fn measure(&self, dir: &Path) -> Option<DiskUsage> {
        let owned = dir.to_path_buf();
        let (free, total) = tokio::task::spawn_blocking(move || filesystem(&owned)).await.ok()??;
        let known = self.walked.locked().get(dir).copied();
        let used = match known {
            None => {
                let owned = dir.to_path_buf();
                let used = tokio::task::spawn_blocking(move || used_bytes(&owned)).await.ok()?;
                self.walked.locked().insert(dir.to_path_buf(), Walked { at: Instant::now(), used, walking: false });
                used
            }
            Some(w) => {
                if w.at.elapsed() >= REUSE && !w.walking {
                    self.walk_in_background(dir);
                }
                w.used
            }
        };
        Some(DiskUsage { used_bytes: used, free_bytes: free, total_bytes: total })
    }

    fn walk_in_background(&self, dir: &Path) {
        let dir = dir.to_path_buf();
        if let Some(w) = self.walked.locked().get_mut(&dir) {
            w.walking = true;
        }
        let walked = self.walked.clone();
        tokio::task::spawn_blocking(move || {
            let used = used_bytes(&dir);
            // A node deleted meanwhile was forgotten: do not bring it back.
            if let Some(w) = walked.locked().get_mut(&dir) {
                *w = Walked { at: Instant::now(), used, walking: false };
            }
        });
    }

    /// Forget a node's walked size (its data was removed).
    pub fn forget(&self, dir: &Path) {
        self.walked.locked().remove(dir);
    }
}

/// Free (for unprivileged users) and total bytes of the filesystem holding `dir`.
fn filesystem(dir: &Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some((s.f_bavail.saturating_mul(s.f_frsize), s.f_blocks.saturating_mul(s.f_frsize)))
}

/// Bytes the files under `dir` take on disk (allocated blocks, so sparse
/// files count for what they use), not following symlinks.
fn used_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            total = total.saturating_add(m.blocks().saturating_mul(512));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_the_files_and_reads_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/execution")).unwrap();
        std::fs::write(dir.path().join("data/execution/chain"), vec![7u8; 256 * 1024]).unwrap();
        let meter = DiskMeter::default();
        let u = meter.measure(dir.path()).await.unwrap();
        assert!(u.used_bytes >= 256 * 1024, "{u:?}");
        assert!(u.total_bytes >= u.free_bytes && u.total_bytes > 0, "{u:?}");
        // Within a minute the walked size is reused; the filesystem is read again.
        std::fs::write(dir.path().join("more"), vec![1u8; 512 * 1024]).unwrap();
        assert_eq!(meter.measure(dir.path()).await.unwrap().used_bytes, u.used_bytes);
        // Once stale, the last size answers while a walk runs in the background.
        meter.walked.locked().get_mut(dir.path()).unwrap().at -= REUSE;
        assert_eq!(meter.measure(dir.path()).await.unwrap().used_bytes, u.used_bytes);
        let mut grown = 0;
        for _ in 0..100 {
            grown = meter.measure(dir.path()).await.unwrap().used_bytes;
            if grown > u.used_bytes {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(grown >= u.used_bytes + 512 * 1024, "the background walk saw the new file");
        meter.forget(dir.path());
        assert!(meter.measure(dir.path()).await.unwrap().used_bytes >= u.used_bytes + 512 * 1024);
        assert_eq!(meter.measure(&dir.path().join("absent")).await, None);
    }
}
