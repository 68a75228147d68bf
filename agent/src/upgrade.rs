//! Self-upgrade: an atomic swap of the agent binary, rolled back if the new
//! one fails its check, or fails to heartbeat within a bounded time after the
//! restart into it.
//!
//! The control plane only picks among releases this host already has: the
//! artifact must be a file in the host's own `release_dir` (agent.toml), and
//! its bytes must have the SHA-256 the upgrade spec names. No control-plane
//! user can get a program of their choosing installed this way.

use novacula_core::wire::UpgradeSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long a freshly installed binary has to complete a heartbeat before it
/// is rolled back.
pub const PROBATION: Duration = Duration::from_secs(120);

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new binary is in place; restart into it.
    Upgraded { previous: PathBuf },
    /// The new binary failed its check; the old one is back.
    RolledBack { reason: BinaryCheckError },
}

/// Why a binary is not the release it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum BinaryCheckError {
    #[error("cannot run {}: {source}", path.display())]
    Run { path: PathBuf, source: std::io::Error },
    #[error("{} --version exited with {status}", path.display())]
    Exit { path: PathBuf, status: std::process::ExitStatus },
    #[error("{} reports {reported:?}, expected version {expected}", path.display())]
    WrongVersion { path: PathBuf, reported: String, expected: String },
}

impl PartialEq for BinaryCheckError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}
impl Eq for BinaryCheckError {}

/// Why a self-upgrade was not installed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("self-upgrade is off on this host (set release_dir in agent.toml)")]
    Off,
    #[error("the release names no sha256; not installed")]
    NoChecksum,
    #[error("release {artifact:?} is not a file in this host's release_dir {}", dir.display())]
    OutsideReleaseDir { artifact: String, dir: PathBuf },
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("upgrade artifact rejected: {0}")]
    Rejected(BinaryCheckError),
    #[error("release {} has SHA-256 {actual}, the upgrade names {want}; not installed", path.display())]
    Checksum { path: PathBuf, actual: String, want: String },
    /// The old binary could not be put back: the host needs a person.
    #[error("ROLLBACK FAILED for {}: {source}", path.display())]
    RollBack { path: PathBuf, source: std::io::Error },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> UpgradeError + 'a {
    move |source| UpgradeError::Io { what, path: path.to_path_buf(), source }
}

/// What the host allows, from agent.toml.
#[derive(Debug, Clone)]
pub struct UpgradePolicy {
    /// Release binaries live here (root's); `None`: self-upgrade is off.
    pub release_dir: Option<PathBuf>,
    /// Where refused releases and a pending upgrade are remembered across restarts.
    pub state_dir: PathBuf,
}

/// Remembered across restarts under `state_dir/upgrade-state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeState {
    /// Releases that failed here, never tried again: `(version, sha256)`.
    pub refused: Vec<(String, String)>,
    /// An upgrade installed but not yet confirmed by a heartbeat of the new binary.
    pub pending: Option<Pending>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub version: String,
    pub sha256: String,
    /// The binary that was replaced (`<binary>.prev`).
    pub previous: PathBuf,
}

impl UpgradeState {
    fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("upgrade-state.json")
    }

    /// A missing or unreadable file is an empty state (logged): upgrades go on.
    pub fn load(state_dir: &Path) -> UpgradeState {
        match std::fs::read(Self::path(state_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "upgrade state unreadable; starting afresh");
                UpgradeState::default()
            }),
            Err(_) => UpgradeState::default(),
        }
    }

    #[allow(clippy::expect_used, reason = "the upgrade state is plain data; serializing it cannot fail")]
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        crate::files::write_atomic(&Self::path(state_dir), &serde_json::to_vec_pretty(self).expect("plain data"), 0o600, None)
    }

    pub fn is_refused(&self, spec: &UpgradeSpec) -> bool {
        self.refused.iter().any(|(v, h)| same_version(v, &spec.version) && Some(h) == spec.sha256.as_ref())
    }

    fn refuse(&mut self, version: &str, sha256: &str) {
        if !self.refused.iter().any(|(v, h)| v == version && h == sha256) {
            self.refused.push((version.to_string(), sha256.to_string()));
        }
    }
}

use novacula_core::version::same_release as same_version;

/// The health check: the binary runs and reports the expected version.
pub fn check_binary(bin: &Path, version: &str) -> Result<(), BinaryCheckError> {
    let out = run_version(bin).map_err(|source| BinaryCheckError::Run { path: bin.to_path_buf(), source })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(BinaryCheckError::Exit { path: bin.to_path_buf(), status: out.status });
    }
    if !text.split_whitespace().any(|w| same_version(w, version)) {
        return Err(BinaryCheckError::WrongVersion { path: bin.to_path_buf(), reported: text.trim().to_string(), expected: version.to_string() });
    }
    Ok(())
}

/// `bin --version`. A file just written can be busy for a moment (ETXTBSY)
/// while another thread's fork still holds its write descriptor: retry briefly.
fn run_version(bin: &Path) -> std::io::Result<std::process::Output> {
    let mut attempts = 0;
    loop {
        match Command::new(bin).arg("--version").output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// The artifact's path, if the host allows it: a file directly in `release_dir`.
pub fn resolve_artifact(policy: &UpgradePolicy, artifact: &str) -> Result<PathBuf, UpgradeError> {
    let dir = policy.release_dir.as_ref().ok_or(UpgradeError::Off)?;
    let dir = std::fs::canonicalize(dir).map_err(io_err("release_dir", dir))?;
    let name = Path::new(artifact);
    let candidate = if name.is_absolute() { name.to_path_buf() } else { dir.join(name) };
    let real = std::fs::canonicalize(&candidate).map_err(io_err("release", &candidate))?;
    if real.parent() != Some(dir.as_path()) {
        return Err(UpgradeError::OutsideReleaseDir { artifact: artifact.to_string(), dir });
    }
    Ok(real)
}

fn sync_dir(of: &Path) {
    if let Some(dir) = of.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

/// Swap `current` for the artifact of `spec`. Every step is a rename within one
/// directory, so a crash leaves either the old or the new binary in place, and
/// the previous one stays at `<current>.prev` for rollback.
pub fn apply(current: &Path, spec: &UpgradeSpec, policy: &UpgradePolicy) -> Result<Outcome, UpgradeError> {
    let want = spec.sha256.as_deref().filter(|h| novacula_core::wire::is_sha256_hex(h)).ok_or(UpgradeError::NoChecksum)?;
    let artifact = resolve_artifact(policy, &spec.artifact)?;
    swap_in(current, &artifact, &spec.version, Some(want)).map(|(outcome, _)| outcome)
}

/// Where the replaced binary is kept until the new one is confirmed; the
/// rollback unit (`service::render_rollback`) moves it back.
pub fn previous_of(current: &Path) -> PathBuf {
    current.with_extension("prev")
}

/// Swap `artifact` (which must report `version`) in at `current`, keeping the
/// old binary at [`previous_of`]. With `want`, the copied bytes must have that
/// SHA-256. Returns the outcome and the installed bytes' SHA-256.
pub fn swap_in(current: &Path, artifact: &Path, version: &str, want: Option<&str>) -> Result<(Outcome, String), UpgradeError> {
    // Refuse before touching anything if the artifact itself is bad.
    check_binary(artifact, version).map_err(UpgradeError::Rejected)?;
    let staged = current.with_extension("new");
    let previous = previous_of(current);
    // Verify the bytes we copied, not the file we read: it may change under us.
    let _ = std::fs::remove_file(&staged);
    let copied = crate::files::copy_hashing(artifact, &staged).map_err(io_err("stage", &staged))?;
    if let Some(want) = want.filter(|w| !copied.eq_ignore_ascii_case(w)) {
        let _ = std::fs::remove_file(&staged);
        return Err(UpgradeError::Checksum { path: artifact.to_path_buf(), actual: copied, want: want.to_string() });
    }
    let _ = std::fs::remove_file(&previous);
    std::fs::hard_link(current, &previous).map_err(io_err("keep", &previous))?;
    std::fs::rename(&staged, current).map_err(io_err("swap", current))?;
    sync_dir(current);
    match check_binary(current, version) {
        Ok(()) => Ok((Outcome::Upgraded { previous }, copied)),
        Err(reason) => {
            roll_back(current, &previous)?;
            Ok((Outcome::RolledBack { reason }, copied))
        }
    }
}

/// The version a binary reports: the last word of `bin --version`.
pub fn reported_version(bin: &Path) -> Result<String, BinaryCheckError> {
    let out = run_version(bin).map_err(|source| BinaryCheckError::Run { path: bin.to_path_buf(), source })?;
    if !out.status.success() {
        return Err(BinaryCheckError::Exit { path: bin.to_path_buf(), status: out.status });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["novacula-agent", version] => Ok(version.to_string()),
        _ => Err(BinaryCheckError::WrongVersion { path: bin.to_path_buf(), reported: text.trim().to_string(), expected: "novacula-agent <version>".into() }),
    }
}

/// A manual upgrade (`novacula-agent upgrade FILE`, run by root): swap `artifact`
/// in and record it as pending, so the restarted agent confirms it with a
/// heartbeat or puts the old binary back, exactly as after a self-upgrade.
pub fn install_manually(current: &Path, artifact: &Path, policy: &UpgradePolicy) -> Result<String, UpgradeError> {
    let version = reported_version(artifact).map_err(UpgradeError::Rejected)?;
    let mut state = UpgradeState::load(&policy.state_dir);
    match swap_in(current, artifact, &version, None)? {
        (Outcome::Upgraded { previous }, sha256) => {
            state.pending = Some(Pending { version: version.clone(), sha256, previous });
            state.save(&policy.state_dir).map_err(io_err("save upgrade state in", &policy.state_dir))?;
            Ok(version)
        }
        (Outcome::RolledBack { reason }, _) => Err(UpgradeError::Rejected(reason)),
    }
}

/// Put `<binary>.prev` back in place.
pub fn roll_back(current: &Path, previous: &Path) -> Result<(), UpgradeError> {
    std::fs::rename(previous, current).map_err(|source| UpgradeError::RollBack { path: current.to_path_buf(), source })?;
    sync_dir(current);
    Ok(())
}

/// Apply upgrade specs as they arrive. Returns the spec once a new binary is in
/// place and recorded as pending (the caller restarts into it); a release that
/// failed here is remembered and never tried again.
pub async fn watch(rx: &mut tokio::sync::watch::Receiver<Option<UpgradeSpec>>, current: PathBuf, policy: UpgradePolicy) -> UpgradeSpec {
    loop {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        let Some(spec) = rx.borrow_and_update().clone() else { continue };
        let mut state = UpgradeState::load(&policy.state_dir);
        if state.is_refused(&spec) || state.pending.is_some() {
            continue; // already failed here, or the last one is still on probation
        }
        let (cur, sp, pol) = (current.clone(), spec.clone(), policy.clone());
        let result = tokio::task::spawn_blocking(move || apply(&cur, &sp, &pol)).await;
        let hash = spec.sha256.clone().unwrap_or_default();
        match result {
            Ok(Ok(Outcome::Upgraded { previous })) => {
                state.pending = Some(Pending { version: spec.version.clone(), sha256: hash, previous });
                if let Err(e) = state.save(&policy.state_dir) {
                    tracing::error!(error = %e, "cannot record the pending upgrade; it will not be rolled back on a failed heartbeat");
                }
                tracing::info!(version = %spec.version, "upgraded");
                return spec;
            }
            Ok(Ok(Outcome::RolledBack { reason })) => tracing::error!(version = %spec.version, %reason, "upgrade rolled back; still on the old version"),
            Ok(Err(e)) => tracing::error!(version = %spec.version, error = %e, "upgrade not applied"),
            Err(e) => tracing::error!(error = %e, "upgrade task failed"),
        }
        state.refuse(&spec.version, &hash);
        if let Err(e) = state.save(&policy.state_dir) {
            tracing::warn!(error = %e, "cannot remember the refused release");
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Probation {
    /// No upgrade was pending.
    Nothing,
    /// The new binary heartbeated: the upgrade stands.
    Confirmed,
    /// It did not within the probation: the previous binary is back; restart into it.
    RolledBack,
}

/// After a restart: if an upgrade is pending, wait for `heartbeat` (the first
/// successful sync of this process) for at most `within`. Without one, put the
/// previous binary back and refuse that release for good.
pub async fn probation(
    current: &Path,
    policy: &UpgradePolicy,
    running_version: &str,
    heartbeat: impl std::future::Future<Output = ()>,
    within: Duration,
) -> Probation {
    let mut state = UpgradeState::load(&policy.state_dir);
    let Some(pending) = state.pending.clone() else { return Probation::Nothing };
    if !same_version(&pending.version, running_version) {
        // Something else runs (a rollback by systemd's OnFailure unit, say): the release failed.
        tracing::error!(pending = %pending.version, running = %running_version, "pending upgrade is not what runs; refusing it");
        state.pending = None;
        state.refuse(&pending.version, &pending.sha256);
        let _ = state.save(&policy.state_dir);
        return Probation::RolledBack;
    }
    let confirmed = tokio::time::timeout(within, heartbeat).await.is_ok();
    state.pending = None;
    let outcome = if confirmed {
        tracing::info!(version = %pending.version, "upgrade confirmed by a heartbeat");
        // From now on a crash loop is not this upgrade's fault: nothing for the rollback unit to put back.
        if let Err(e) = std::fs::remove_file(&pending.previous) {
            tracing::warn!(error = %e, path = %pending.previous.display(), "cannot remove the replaced binary");
        }
        Probation::Confirmed
    } else {
        tracing::error!(version = %pending.version, secs = within.as_secs(), "no heartbeat from the new binary; rolling back");
        state.refuse(&pending.version, &pending.sha256);
        if let Err(e) = roll_back(current, &pending.previous) {
            tracing::error!(error = %e, "rollback failed");
        }
        Probation::RolledBack
    };
    if let Err(e) = state.save(&policy.state_dir) {
        tracing::error!(error = %e, "cannot save the upgrade state");
    }
    outcome
}

/// Why an agent process should restart into its binary.
#[derive(Debug, PartialEq, Eq)]
pub enum Restart {
    /// The upgrade that started this process did not heartbeat: the previous binary is back.
    RolledBack,
    /// A new release is installed.
    Upgraded(UpgradeSpec),
}

/// One life of an agent process as far as upgrades go: confirm (or roll back)
/// the upgrade that started it, then wait for the next release to land.
/// Returns when the process should restart into `current`.
pub async fn process_life(
    upgrades: &mut tokio::sync::watch::Receiver<Option<UpgradeSpec>>,
    mut syncs: tokio::sync::watch::Receiver<u64>,
    current: &Path,
    policy: &UpgradePolicy,
    running_version: &str,
) -> Restart {
    let heartbeat = async move {
        let _ = syncs.wait_for(|n| *n > 0).await;
    };
    if probation(current, policy, running_version, heartbeat, PROBATION).await == Probation::RolledBack {
        return Restart::RolledBack;
    }
    Restart::Upgraded(watch(upgrades, current.to_path_buf(), policy.clone()).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use novacula_core::Channel;
    use std::os::unix::fs::PermissionsExt;

    fn script(path: &Path, body: &str) -> String {
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        crate::files::sha256_file(path).unwrap()
    }

    struct Host {
        _dir: tempfile::TempDir,
        current: PathBuf,
        releases: PathBuf,
        policy: UpgradePolicy,
    }

    fn host() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let releases = dir.path().join("releases");
        std::fs::create_dir_all(&releases).unwrap();
        let current = dir.path().join("novacula-agent");
        script(&current, "echo novacula-agent 1.0.0");
        let policy = UpgradePolicy { release_dir: Some(releases.clone()), state_dir: dir.path().join("state") };
        Host { current, releases, policy, _dir: dir }
    }

    fn spec(artifact: &str, version: &str, sha256: &str) -> UpgradeSpec {
        UpgradeSpec { channel: Channel::Stable, version: version.into(), artifact: artifact.into(), sha256: Some(sha256.into()) }
    }

    #[test]
    fn good_artifact_is_swapped_in_and_old_kept() {
        let h = host();
        let hash = script(&h.releases.join("agent-1.1.0"), "echo novacula-agent 1.1.0");
        let out = apply(&h.current, &spec("agent-1.1.0", "1.1.0", &hash), &h.policy).unwrap();
        assert!(matches!(out, Outcome::Upgraded { .. }));
        check_binary(&h.current, "1.1.0").unwrap();
        check_binary(&h.current.with_extension("prev"), "1.0.0").unwrap();
    }

    #[test]
    fn bad_artifact_is_refused_without_touching_the_binary() {
        let h = host();
        let hash = script(&h.releases.join("broken"), "exit 3");
        assert!(apply(&h.current, &spec("broken", "1.1.0", &hash), &h.policy).unwrap_err().to_string().contains("rejected"));
        assert!(apply(&h.current, &spec("missing", "1.1.0", &hash), &h.policy).is_err());
        check_binary(&h.current, "1.0.0").unwrap();
    }

    #[test]
    fn upgrade_to_a_program_outside_the_release_dir_is_refused() {
        // An owner (or a compromised control plane) names a program of their choosing.
        let h = host();
        let elsewhere = h.releases.parent().unwrap().join("evil");
        let hash = script(&elsewhere, "echo novacula-agent 1.1.0");
        for artifact in [elsewhere.display().to_string(), "../evil".to_string()] {
            let err = apply(&h.current, &spec(&artifact, "1.1.0", &hash), &h.policy).unwrap_err();
            assert!(err.to_string().contains("release_dir"), "{artifact}: {err}");
        }
        // a link in the release dir pointing out of it is no release either
        std::os::unix::fs::symlink(&elsewhere, h.releases.join("link")).unwrap();
        assert!(apply(&h.current, &spec("link", "1.1.0", &hash), &h.policy).unwrap_err().to_string().contains("release_dir"));
        let off = UpgradePolicy { release_dir: None, ..h.policy.clone() };
        assert!(apply(&h.current, &spec("agent", "1.1.0", &hash), &off).unwrap_err().to_string().contains("off"));
        check_binary(&h.current, "1.0.0").unwrap();
    }

    #[test]
    fn release_whose_bytes_differ_from_the_pinned_hash_is_refused() {
        let h = host();
        script(&h.releases.join("agent-1.1.0"), "echo novacula-agent 1.1.0");
        let err = apply(&h.current, &spec("agent-1.1.0", "1.1.0", &"0".repeat(64)), &h.policy).unwrap_err();
        assert!(matches!(err, UpgradeError::Checksum { .. }), "{err}");
        check_binary(&h.current, "1.0.0").unwrap();
        assert!(!h.current.with_extension("new").exists());
    }

    #[test]
    fn binary_failing_after_the_swap_is_rolled_back() {
        let h = host();
        // Healthy where it is staged, broken once it runs as the installed agent.
        let hash = script(&h.releases.join("agent-1.1.0"), "case \"$0\" in *novacula-agent) exit 1;; esac\necho novacula-agent 1.1.0");
        let out = apply(&h.current, &spec("agent-1.1.0", "1.1.0", &hash), &h.policy).unwrap();
        assert!(matches!(out, Outcome::RolledBack { .. }), "{out:?}");
        check_binary(&h.current, "1.0.0").unwrap();
    }

    #[tokio::test]
    async fn new_binary_that_never_heartbeats_is_rolled_back_and_refused_across_restarts() {
        let h = host();
        let hash = script(&h.releases.join("agent-1.1.0"), "echo novacula-agent 1.1.0");
        let (tx, mut rx) = tokio::sync::watch::channel(None);
        tx.send(Some(spec("agent-1.1.0", "1.1.0", &hash))).unwrap();
        let landed = watch(&mut rx, h.current.clone(), h.policy.clone()).await;
        assert_eq!(landed.version, "1.1.0");
        check_binary(&h.current, "1.1.0").unwrap();
        assert!(UpgradeState::load(&h.policy.state_dir).pending.is_some());

        // "restart" into 1.1.0, which cannot reach the control plane
        let never = std::future::pending::<()>();
        let outcome = probation(&h.current, &h.policy, "1.1.0", never, Duration::from_millis(50)).await;
        assert_eq!(outcome, Probation::RolledBack);
        check_binary(&h.current, "1.0.0").unwrap();
        let state = UpgradeState::load(&h.policy.state_dir);
        assert!(state.pending.is_none() && state.is_refused(&spec("agent-1.1.0", "1.1.0", &hash)), "{state:?}");

        // after the restart back into 1.0.0, the same release is offered again: not retried
        let (tx, mut rx) = tokio::sync::watch::channel(None);
        tx.send(Some(spec("agent-1.1.0", "v1.1.0", &hash))).unwrap();
        let retried = tokio::time::timeout(Duration::from_millis(200), watch(&mut rx, h.current.clone(), h.policy.clone())).await;
        assert!(retried.is_err(), "a refused release was installed again");
        check_binary(&h.current, "1.0.0").unwrap();
    }

    #[tokio::test]
    async fn a_heartbeat_confirms_the_upgrade() {
        let h = host();
        let hash = script(&h.releases.join("agent-1.1.0"), "echo novacula-agent 1.1.0");
        let (tx, mut rx) = tokio::sync::watch::channel(None);
        tx.send(Some(spec("agent-1.1.0", "1.1.0", &hash))).unwrap();
        watch(&mut rx, h.current.clone(), h.policy.clone()).await;
        let outcome = probation(&h.current, &h.policy, "1.1.0", std::future::ready(()), Duration::from_secs(5)).await;
        assert_eq!(outcome, Probation::Confirmed);
        check_binary(&h.current, "1.1.0").unwrap();
        assert!(!previous_of(&h.current).exists(), "a confirmed upgrade leaves nothing for the rollback unit");
        assert_eq!(UpgradeState::load(&h.policy.state_dir), UpgradeState::default());
        assert_eq!(probation(&h.current, &h.policy, "1.1.0", std::future::ready(()), Duration::from_secs(5)).await, Probation::Nothing);
    }
}
