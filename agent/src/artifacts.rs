//! Client binaries fetched from a catalog pinned in `agent.toml`: for each
//! client and version, a URL and the SHA-256 of what it serves. A binary is
//! fetched when a node needs it and it is not in `data_dir/bin` yet; nothing
//! whose checksum differs is ever installed.

use crate::config::ConfigError;
use novacula_client::download_to;
use novacula_core::error::ErrorCategory;
use novacula_core::sync::LockExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Larger downloads are refused (client releases are tens of MiB).
const MAX_DOWNLOAD: u64 = 1 << 30;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A failed fetch is not tried again sooner: the reconciler runs every 5 s.
pub const RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub client: String,
    pub version: String,
    /// `https://...`: the bare executable, or a gzipped tarball holding it
    /// (told apart by content, so a redirecting URL needs no extension).
    pub url: String,
    /// Hex SHA-256 of the file at `url`.
    pub sha256: String,
    /// Path of the executable inside the archive; by default the entry named like the client.
    #[serde(default)]
    pub member: Option<String>,
}

#[derive(Debug)]
pub struct Artifacts {
    list: Vec<Artifact>,
    ca_file: Option<PathBuf>,
    /// Last failure per (client, version): when, and why.
    failed: Mutex<HashMap<(String, String), (Instant, String)>>,
}

impl Artifacts {
    /// A checked catalog (see [`Artifacts::check`]).
    pub fn new(list: Vec<Artifact>, ca_file: Option<PathBuf>) -> Result<Artifacts, ConfigError> {
        Self::check(&list)?;
        Ok(Artifacts { list, ca_file, failed: Mutex::default() })
    }

    /// Well-formed URLs and checksums, one entry per client version.
    pub fn check(list: &[Artifact]) -> Result<(), ConfigError> {
        for (i, a) in list.iter().enumerate() {
            let what = format!("artifact {} {}", a.client, a.version);
            if !(a.url.starts_with("https://") || a.url.starts_with("http://")) {
                return Err(ConfigError::Invalid(format!("{what}: url {:?} must start with https:// (or http://)", a.url)));
            }
            if !novacula_core::wire::is_sha256_hex(&a.sha256) {
                return Err(ConfigError::Invalid(format!("{what}: sha256 must be 64 hex digits")));
            }
            if list[..i].iter().any(|b| b.client == a.client && b.version == a.version) {
                return Err(ConfigError::Invalid(format!("{what} is listed twice")));
            }
        }
        Ok(())
    }

    pub fn find(&self, client: &str, version: &str) -> Option<&Artifact> {
        self.list.iter().find(|a| a.client == client && a.version == version)
    }

    /// Download `a`, check it, and install its executable at `dest` atomically.
    /// After a failure, the same error is answered for [`RETRY_AFTER`].
    pub async fn fetch(&self, a: &Artifact, dest: &Path) -> Result<(), ArtifactError> {
        let key = (a.client.clone(), a.version.clone());
        if let Some((at, why)) = self.failed.locked().get(&key) {
            if at.elapsed() < RETRY_AFTER {
                return Err(ArtifactError::Cooling { why: why.clone(), retry_min: RETRY_AFTER.as_secs() / 60 });
            }
        }
        let result = self.download_and_install(a, dest).await;
        let mut failed = self.failed.locked();
        match &result {
            Ok(()) => failed.remove(&key),
            Err(why) => failed.insert(key, (Instant::now(), why.to_string())),
        };
        result
    }

    async fn download_and_install(&self, a: &Artifact, dest: &Path) -> Result<(), ArtifactError> {
        tracing::info!(client = %a.client, version = %a.version, url = %a.url, "downloading client binary");
        let dir = dest.parent().ok_or_else(|| io_error("installing", dest)(std::io::ErrorKind::InvalidInput.into()))?.to_path_buf();
        let (download, actual) = download_hashed(&a.url, MAX_DOWNLOAD, self.ca_file.as_deref(), &dir).await.map_err(|e| match e {
            ArtifactError::Fetch { source, .. } => ArtifactError::Download { client: a.client.clone(), version: a.version.clone(), source },
            other => other,
        })?;
        if !actual.eq_ignore_ascii_case(&a.sha256) {
            return Err(ArtifactError::Checksum { artifact: Box::new(a.clone()), actual });
        }
        let (artifact, dest_owned) = (a.clone(), dest.to_path_buf());
        // Decompressing and unpacking is CPU and disk work: off the async workers.
        tokio::task::spawn_blocking(move || install(download, &artifact, &dest_owned)).await??;
        tracing::info!(client = %a.client, version = %a.version, path = %dest.display(), "client binary installed");
        Ok(())
    }
}

/// `url` streamed to a temporary file in `dir` (created if missing), and the
/// hex SHA-256 of its bytes: nothing is held in memory, and the caller
/// installs it only when the hash is the pinned one.
async fn download_hashed(url: &str, limit: u64, ca_file: Option<&Path>, dir: &Path) -> Result<(tempfile::NamedTempFile, String), ArtifactError> {
    tokio::fs::create_dir_all(dir).await.map_err(io_error("creating", dir))?;
    let download = tempfile::NamedTempFile::new_in(dir).map_err(io_error("temporary file in", dir))?;
    let mut out = Hashing { inner: tokio::fs::File::from_std(download.reopen().map_err(io_error("temporary file in", dir))?), hash: Sha256::new() };
    download_to(url, ca_file, limit, DOWNLOAD_TIMEOUT, &mut out).await.map_err(|source| ArtifactError::Fetch { url: url.into(), source })?;
    Ok((download, hex::encode(out.hash.finalize())))
}

/// A file an adapter names for a node (a genesis the client does not
/// carry): downloaded to `dest` unless it is there, checked against its pin,
/// and made readable by the clients' `group`.
pub async fn fetch_file(f: &novacula_executor::adapter::Fetched, dest: &Path, ca_file: Option<&Path>, group: Option<u32>) -> Result<(), ArtifactError> {
    if tokio::fs::symlink_metadata(dest).await.is_ok() {
        return Ok(()); // kept: fetched once
    }
    let dir = dest.parent().ok_or_else(|| io_error("fetching", dest)(std::io::ErrorKind::InvalidInput.into()))?;
    tracing::info!(url = %f.url, path = %dest.display(), "fetching a file the node needs");
    let (download, actual) = download_hashed(&f.url, f.max_bytes, ca_file, dir).await?;
    if !actual.eq_ignore_ascii_case(&f.sha256) {
        return Err(ArtifactError::Pin { url: f.url.clone(), pinned: f.sha256.clone(), actual });
    }
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<(), ArtifactError> {
        use std::os::unix::fs::PermissionsExt;
        let installing = io_error("installing", &dest);
        download.as_file().sync_all().map_err(&installing)?;
        std::fs::set_permissions(download.path(), std::fs::Permissions::from_mode(0o640)).map_err(&installing)?;
        if let Some(gid) = group {
            rustix::fs::chown(download.path(), None, Some(rustix::fs::Gid::from_raw(gid))).map_err(|e| installing(e.into()))?;
        }
        download.persist(&dest).map_err(|e| installing(e.error))?;
        Ok(())
    })
    .await??;
    Ok(())
}

/// An `AsyncWrite` that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Hashing<W> {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        let me = &mut *self;
        let written = std::task::ready!(std::pin::Pin::new(&mut me.inner).poll_write(cx, buf))?;
        me.hash.update(&buf[..written]);
        std::task::Poll::Ready(Ok(written))
    }
    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// gzip's magic number; no executable starts with it.
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Put the checked download (or, for a tar.gz, its executable) at `dest`:
/// executable, fsynced, renamed into place (blocking).
fn install(download: tempfile::NamedTempFile, a: &Artifact, dest: &Path) -> Result<(), ArtifactError> {
    use std::io::{Seek, Write};
    use std::os::unix::fs::PermissionsExt;
    let installing = io_error("installing", dest);
    let dir = dest.parent().ok_or_else(|| installing(std::io::ErrorKind::InvalidInput.into()))?;
    let mut file = download.reopen().map_err(&installing)?;
    let mut magic = [0u8; 2];
    let gzip = std::io::Read::read(&mut file, &mut magic).is_ok_and(|n| n == 2 && is_gzip(&magic));
    file.rewind().map_err(&installing)?;
    let exe = if gzip {
        let mut out = tempfile::NamedTempFile::new_in(dir).map_err(io_error("temporary file in", dir))?;
        unpack(file, a, out.as_file_mut())?;
        out.as_file_mut().flush().map_err(&installing)?;
        out
    } else {
        download
    };
    let f = exe.as_file();
    f.set_permissions(std::fs::Permissions::from_mode(0o755)).map_err(&installing)?;
    f.sync_all().map_err(&installing)?;
    exe.persist(dest).map_err(|e| installing(e.error))?;
    Ok(())
}

/// Copy the executable out of a gzipped tarball into `out`: `member`, or the file named like the client.
fn unpack(archive: std::fs::File, a: &Artifact, out: &mut std::fs::File) -> Result<(), ArtifactError> {
    let bad = |what: &'static str| move |source| ArtifactError::Archive { url: a.url.clone(), what, source };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(archive)));
    let entries = archive.entries().map_err(bad("not a tar.gz"))?;
    for entry in entries {
        let mut entry = entry.map_err(bad("bad archive"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad("bad entry name"))?.into_owned();
        let wanted = match &a.member {
            Some(m) => path == Path::new(m),
            None => path.file_name().is_some_and(|n| n == a.client.as_str()),
        };
        if wanted {
            std::io::copy(&mut entry, out).map_err(bad("reading the executable"))?;
            return Ok(());
        }
    }
    Err(ArtifactError::NotInArchive { url: a.url.clone(), member: a.member.clone().unwrap_or_else(|| a.client.clone()) })
}

/// Why a client binary could not be installed from the catalog.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("downloading {client} {version}: {source}")]
    Download { client: String, version: String, source: novacula_client::ClientError },
    #[error("downloading {url}: {source}")]
    Fetch { url: String, source: novacula_client::ClientError },
    #[error("{url}: sha256 is {actual}, the adapter pins {pinned}; not kept")]
    Pin { url: String, pinned: String, actual: String },
    #[error("{} {} from {}: sha256 is {actual}, the catalog pins {}; not installed", artifact.client, artifact.version, artifact.url, artifact.sha256)]
    Checksum { artifact: Box<Artifact>, actual: String },
    #[error("{url}: {what}: {source}")]
    Archive { url: String, what: &'static str, source: std::io::Error },
    #[error("{url}: no {member} in the archive")]
    NotInArchive { url: String, member: String },
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("installing: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The last try failed a moment ago; not retried before [`RETRY_AFTER`].
    #[error("{why} (next try in {retry_min} min)")]
    Cooling { why: String, retry_min: u64 },
}

impl ArtifactError {
    pub fn category(&self) -> ErrorCategory {
        match self {
            ArtifactError::Download { source, .. } | ArtifactError::Fetch { source, .. } => source.category(),
            ArtifactError::Io { .. } | ArtifactError::Task(_) | ArtifactError::Cooling { .. } => ErrorCategory::Transient,
            // The catalog's pin and the published file disagree: someone must look.
            ArtifactError::Checksum { .. } | ArtifactError::Pin { .. } | ArtifactError::Archive { .. } | ArtifactError::NotInArchive { .. } => {
                ErrorCategory::Refused
            }
        }
    }
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> ArtifactError + 'a {
    move |source| ArtifactError::Io { what, path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(client: &str, version: &str, sha256: &str) -> Artifact {
        Artifact { client: client.into(), version: version.into(), url: "https://example.invalid/x".into(), sha256: sha256.into(), member: None }
    }

    #[test]
    fn catalog_is_checked() {
        let ok = "ab".repeat(32);
        assert!(Artifacts::new(vec![art("geth", "1", &ok), art("geth", "2", &ok)], None).is_ok());
        assert!(Artifacts::new(vec![art("geth", "1", "abc")], None).unwrap_err().to_string().contains("64 hex"));
        assert!(Artifacts::new(vec![art("geth", "1", &ok), art("geth", "1", &ok)], None).unwrap_err().to_string().contains("twice"));
        let mut ftp = art("geth", "1", &ok);
        ftp.url = "ftp://x".into();
        assert!(Artifacts::new(vec![ftp], None).unwrap_err().to_string().contains("https://"));
        assert!(is_gzip(&[0x1f, 0x8b, 8]) && !is_gzip(b"\x7fELF") && !is_gzip(b"#!/bin/sh"));
    }
}
