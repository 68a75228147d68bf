//! Files the agent writes, as root, in directories a node's client may own.
//!
//! Two rules make a client user who plants a symlink harmless: every write goes
//! to a fresh temporary file (created exclusively, so never through a link),
//! fsynced before it is renamed over the target (rename replaces a link, it
//! does not follow it); and a directory handed to the client is walked from
//! directory descriptors opened without following links, so a chown never
//! lands outside it. A crash leaves the old file or the new one, never half
//! of one, and never an empty secret.

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Directories below a handed-over one deeper than this are refused (chain
/// data is a few levels deep; this bounds the walk's stack).
const HAND_OVER_DEPTH_MAX: usize = 64;

/// A Unix account, resolved once at start so a typo fails the agent early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Why `run_as` names no usable account.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("run_as: no such user {0:?} on this host (create it, e.g. useradd --system {0})")]
    NoSuchUser(String),
    #[error("run_as: cannot look up user {name:?}: {source}")]
    Lookup { name: String, source: nix::errno::Errno },
}

impl Account {
    pub fn lookup(name: &str) -> Result<Account, AccountError> {
        // nix grows getpwnam_r's buffer on ERANGE, so a large entry is not "no such user".
        match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Ok(Account { name: name.to_string(), uid: u.uid.as_raw(), gid: u.gid.as_raw() }),
            Ok(None) => Err(AccountError::NoSuchUser(name.to_string())),
            Err(source) => Err(AccountError::Lookup { name: name.to_string(), source }),
        }
    }
}

/// Write `contents` to `path` atomically with `mode`, group-owned by `group`
/// when given (owner: the agent). The parent directory must be the agent's.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32, group: Option<u32>) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".novacula-").tempfile_in(dir)?;
    tmp.write_all(contents)?;
    rustix::fs::fchmod(tmp.as_file(), Mode::from_raw_mode(mode))?;
    if let Some(gid) = group {
        rustix::fs::fchown(tmp.as_file(), None, Some(Gid::from_raw(gid)))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable once the directory is.
    std::fs::File::open(dir)?.sync_all()
}

/// Create `path` (and missing parents) as a directory of the agent's with
/// `mode` and group `group`; an existing one is set to them. Refuses a symlink.
pub fn agent_dir(path: &Path, mode: u32, group: Option<u32>) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    let fd = open_dir_nofollow(path)?;
    // The agent's own uid (root in production): a directory a client once owned comes back.
    rustix::fs::fchown(&fd, Some(rustix::process::geteuid()), group.map(Gid::from_raw))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(())
}

fn open_dir_nofollow(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?)
}

/// The owner of `path` itself (a link is not followed).
pub fn owner_uid(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::symlink_metadata(path)?.uid())
}

/// Give `dir` and everything below it to `account`, without ever following a
/// link: links themselves change owner, their targets do not.
pub fn hand_over(dir: &Path, account: &Account) -> std::io::Result<()> {
    let fd = open_dir_nofollow(dir)?;
    hand_over_fd(&fd, Uid::from_raw(account.uid), Gid::from_raw(account.gid), 0)
}

fn hand_over_fd(fd: &OwnedFd, uid: Uid, gid: Gid, depth: usize) -> std::io::Result<()> {
    if depth > HAND_OVER_DEPTH_MAX {
        return Err(std::io::Error::other(format!("directory tree deeper than {HAND_OVER_DEPTH_MAX} levels")));
    }
    rustix::fs::fchown(fd, Some(uid), Some(gid))?;
    for entry in rustix::fs::Dir::read_from(fd)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => FileType::from_raw_mode(rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)?.st_mode) == FileType::Directory,
            _ => false,
        };
        if is_dir {
            match rustix::fs::openat(fd, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                Ok(sub) => {
                    hand_over_fd(&sub, uid, gid, depth + 1)?;
                    continue;
                }
                // Swapped for a link or a file since it was listed: treat it as one.
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match rustix::fs::chownat(fd, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Hex SHA-256 of a file, read in chunks (blocking).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    hash_through(std::fs::File::open(path)?, std::io::sink())
}

/// Copy `from` to a new file `to` (0755) and return the SHA-256 of the bytes
/// written, which are fsynced before this returns (blocking).
pub fn copy_hashing(from: &Path, to: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut dst = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o755).open(to)?;
    let hash = hash_through(std::fs::File::open(from)?, &mut dst)?;
    dst.sync_all()?;
    Ok(hash)
}

/// Stream `src` into `sink` in chunks, hashing what passes.
fn hash_through(mut src: impl Read, mut sink: impl Write) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        sink.write_all(&buf[..n])?;
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_a_planted_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("jwt.hex");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomic(&target, b"secret", 0o640, None).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&target).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret");
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o640);
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".novacula-")).collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn sha256_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, "abc").unwrap();
        assert_eq!(sha256_file(&f).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn agent_dir_refuses_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("config");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(agent_dir(&link, 0o750, None).is_err());
        agent_dir(&dir.path().join("fresh"), 0o750, None).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("fresh")).unwrap().permissions().mode() & 0o777, 0o750);
    }
}
