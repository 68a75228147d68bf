//! Self-upgrade: an atomic swap of the agent binary, rolled back if the new one
//! fails its health check. Download-free: the artifact is a path on the host.

use novacula_core::wire::UpgradeSpec;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new binary is in place; restart into it.
    Upgraded { previous: PathBuf },
    /// The new binary failed its check; the old one is back.
    RolledBack { reason: String },
}

/// The health check: the binary runs and reports the expected version.
pub fn check_binary(bin: &Path, version: &str) -> Result<(), String> {
    let out = run_version(bin).map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{} --version exited with {}", bin.display(), out.status));
    }
    if !text.split_whitespace().any(|w| w.trim_start_matches('v') == version.trim_start_matches('v')) {
        return Err(format!("{} reports {:?}, expected version {version}", bin.display(), text.trim()));
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
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// Swap `current` for the artifact of `spec`. Every step is a rename within one
/// directory, so a crash leaves either the old or the new binary in place, and
/// the previous one stays at `<current>.prev` for rollback.
pub fn apply(current: &Path, spec: &UpgradeSpec) -> Result<Outcome, String> {
    let artifact = Path::new(&spec.artifact);
    // Refuse before touching anything if the artifact itself is bad.
    check_binary(artifact, &spec.version).map_err(|e| format!("upgrade artifact rejected: {e}"))?;
    let staged = current.with_extension("new");
    let previous = current.with_extension("prev");
    std::fs::copy(artifact, &staged).map_err(|e| format!("stage {}: {e}", staged.display()))?;
    let _ = std::fs::remove_file(&previous);
    std::fs::hard_link(current, &previous).map_err(|e| format!("keep {}: {e}", previous.display()))?;
    std::fs::rename(&staged, current).map_err(|e| format!("swap {}: {e}", current.display()))?;
    match check_binary(current, &spec.version) {
        Ok(()) => Ok(Outcome::Upgraded { previous }),
        Err(reason) => {
            std::fs::rename(&previous, current).map_err(|e| format!("ROLLBACK FAILED for {}: {e}", current.display()))?;
            Ok(Outcome::RolledBack { reason })
        }
    }
}

/// Apply upgrade specs as they arrive. Returns the spec once a new binary is in
/// place (the caller restarts into it); a spec that failed is not retried.
pub async fn watch(rx: &mut tokio::sync::watch::Receiver<Option<UpgradeSpec>>, current: PathBuf) -> UpgradeSpec {
    let mut refused = std::collections::HashSet::new();
    loop {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        let Some(spec) = rx.borrow_and_update().clone() else { continue };
        if !refused.insert(spec.clone()) {
            continue; // already tried: wait for a different release
        }
        let (cur, sp) = (current.clone(), spec.clone());
        match tokio::task::spawn_blocking(move || apply(&cur, &sp)).await {
            Ok(Ok(Outcome::Upgraded { .. })) => {
                tracing::info!(version = %spec.version, "upgraded");
                return spec;
            }
            Ok(Ok(Outcome::RolledBack { reason })) => tracing::error!(version = %spec.version, %reason, "upgrade rolled back; still on the old version"),
            Ok(Err(e)) => tracing::error!(version = %spec.version, error = %e, "upgrade not applied"),
            Err(e) => tracing::error!(error = %e, "upgrade task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use novacula_core::Channel;
    use std::os::unix::fs::PermissionsExt;

    fn script(path: &Path, body: &str) {
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn spec(artifact: &Path, version: &str) -> UpgradeSpec {
        UpgradeSpec { channel: Channel::Stable, version: version.into(), artifact: artifact.display().to_string() }
    }

    #[test]
    fn good_artifact_is_swapped_in_and_old_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cur = dir.path().join("novacula-agent");
        let new = dir.path().join("agent-1.1.0");
        script(&cur, "echo novacula-agent 1.0.0");
        script(&new, "echo novacula-agent 1.1.0");
        let out = apply(&cur, &spec(&new, "1.1.0")).unwrap();
        assert!(matches!(out, Outcome::Upgraded { .. }));
        check_binary(&cur, "1.1.0").unwrap();
        check_binary(&cur.with_extension("prev"), "1.0.0").unwrap();
    }

    #[test]
    fn bad_artifact_is_refused_without_touching_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let cur = dir.path().join("novacula-agent");
        let new = dir.path().join("broken");
        script(&cur, "echo novacula-agent 1.0.0");
        script(&new, "exit 3");
        assert!(apply(&cur, &spec(&new, "1.1.0")).unwrap_err().contains("rejected"));
        assert!(apply(&cur, &spec(&dir.path().join("missing"), "1.1.0")).is_err());
        check_binary(&cur, "1.0.0").unwrap();
    }

    #[test]
    fn binary_failing_after_the_swap_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let cur = dir.path().join("novacula-agent");
        let new = dir.path().join("agent-1.1.0");
        script(&cur, "echo novacula-agent 1.0.0");
        // Healthy where it is staged, broken once it runs as the installed agent.
        script(&new, "case \"$0\" in *novacula-agent) exit 1;; esac\necho novacula-agent 1.1.0");
        let out = apply(&cur, &spec(&new, "1.1.0")).unwrap();
        assert!(matches!(out, Outcome::RolledBack { .. }), "{out:?}");
        check_binary(&cur, "1.0.0").unwrap();
    }
}
