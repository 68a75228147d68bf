//! Disk usage of a node's data: what its files take (walked at most once a
//! minute per node, off the async workers, since a mainnet data dir holds
//! hundreds of thousands of files) and what the filesystem under it has.

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
    walked: Mutex<HashMap<PathBuf, (Instant, u64)>>,
}

impl DiskMeter {
    /// Usage under `dir`, or `None` when it does not exist (yet).
    pub async fn measure(&self, dir: &Path) -> Option<DiskUsage> {
        let fresh = self.walked.locked().get(dir).filter(|(at, _)| at.elapsed() < REUSE).map(|(_, used)| *used);
        let owned = dir.to_path_buf();
        let (used, (free, total)) = tokio::task::spawn_blocking(move || {
            let fs = filesystem(&owned)?;
            Some((fresh.unwrap_or_else(|| used_bytes(&owned)), fs))
        })
        .await
        .ok()??;
        if fresh.is_none() {
            self.walked.locked().insert(dir.to_path_buf(), (Instant::now(), used));
        }
        Some(DiskUsage { used_bytes: used, free_bytes: free, total_bytes: total })
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
        meter.forget(dir.path());
        assert!(meter.measure(dir.path()).await.unwrap().used_bytes >= u.used_bytes + 512 * 1024);
        assert_eq!(meter.measure(&dir.path().join("absent")).await, None);
    }
}
