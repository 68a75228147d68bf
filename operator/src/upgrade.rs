//! Self-upgrade: patch the operator's own Deployment to the new image, watch
//! the rollout, and put the old image back if the new pods cannot pull their
//! image or crash-loop. The Deployment keeps the old pod (this one) running
//! until a new one is ready, so this process is there to roll back.

use crate::status::failing;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use std::time::Duration;

pub struct SelfDeployment {
    pub deployments: Api<Deployment>,
    pub pods: Api<Pod>,
    pub name: String,
    /// The operator's container in the pod template.
    pub container: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already running that image.
    Current,
    /// Every replica runs the new image; the Deployment now replaces this pod.
    RolledOut,
    /// The new pods failed; the old image is back.
    RolledBack { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("deployment {0} has no container {1:?}")]
    NoContainer(String, String),
    #[error("image {new:?} refused: {why}")]
    Refused { new: String, why: ImageRefusal },
}

/// Why a self-upgrade image is not one the operator will run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefusal {
    #[error("not pinned by digest (repository@sha256:...)")]
    NotPinned,
    #[error("not the operator's own repository {own:?}")]
    OtherRepository { own: String },
}

/// The repository of an image reference (`registry/path` without tag or digest).
pub fn repository(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(r, _)| r);
    // A ':' after the last '/' starts a tag; one before it is a registry port.
    match image.rfind(':') {
        Some(i) if i > image.rfind('/').unwrap_or(0) => &image[..i],
        _ => image,
    }
}

/// The cluster trusts its own Helm values, not the control plane: a self-upgrade
/// may only move to another digest of the repository the operator runs from.
pub fn check_upgrade_image(current: &str, new: &str) -> Result<(), ImageRefusal> {
    let digest_ok = new.rsplit_once("@sha256:").is_some_and(|(_, d)| novacula_core::wire::is_sha256_hex(d));
    if !digest_ok {
        return Err(ImageRefusal::NotPinned);
    }
    if repository(current) != repository(new) {
        return Err(ImageRefusal::OtherRepository { own: repository(current).to_string() });
    }
    Ok(())
}

impl SelfDeployment {
    fn image_of(&self, d: &Deployment) -> Option<String> {
        d.spec.as_ref()?.template.spec.as_ref()?.containers.iter().find(|c| c.name == self.container)?.image.clone()
    }

    async fn set_image(&self, image: &str) -> Result<(), Error> {
        // A strategic merge keyed by container name: touches only the image, leaves Helm's other fields alone.
        let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": self.container, "image": image}]}}}});
        self.deployments.patch(&self.name, &PatchParams::default(), &Patch::Strategic(&patch)).await?;
        Ok(())
    }

    /// Why a pod running `image` is failing, if it is.
    fn failure(pod: &Pod, image: &str) -> Option<String> {
        let spec = pod.spec.as_ref()?;
        if !spec.containers.iter().any(|c| c.image.as_deref() == Some(image)) {
            return None;
        }
        pod.status.as_ref()?.container_statuses.as_ref()?.iter().find_map(failing)
    }

    fn rolled_out(d: &Deployment) -> bool {
        let (Some(spec), Some(s)) = (&d.spec, &d.status) else { return false };
        let want = spec.replicas.unwrap_or(1);
        s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
            && s.updated_replicas.unwrap_or(0) == want
            && s.available_replicas.unwrap_or(0) == want
            && s.replicas.unwrap_or(0) == want
    }

    /// Move to `image`, checking every `poll` for at most `timeout`.
    pub async fn upgrade(&self, image: &str, poll: Duration, timeout: Duration) -> Result<Outcome, Error> {
        let d = self.deployments.get(&self.name).await?;
        let old = self.image_of(&d).ok_or_else(|| Error::NoContainer(self.name.clone(), self.container.clone()))?;
        if old == image {
            return Ok(Outcome::Current);
        }
        check_upgrade_image(&old, image).map_err(|why| Error::Refused { new: image.to_string(), why })?;
        tracing::info!(from = %old, to = %image, "self-upgrade: patching the operator deployment");
        self.set_image(image).await?;
        let selector = d
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .map(|l| l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let mut waited = Duration::ZERO;
        let reason = loop {
            if waited >= timeout {
                break format!("rollout did not finish within {timeout:?}");
            }
            tokio::time::sleep(poll).await;
            waited += poll;
            if Self::rolled_out(&self.deployments.get(&self.name).await?) {
                tracing::info!(image = %image, "self-upgrade rolled out");
                return Ok(Outcome::RolledOut);
            }
            let pods = self.pods.list(&ListParams::default().labels(&selector)).await?;
            if let Some(why) = pods.items.iter().find_map(|p| Self::failure(p, image)) {
                break why;
            }
        };
        tracing::error!(image = %image, reason = %reason, back_to = %old, "self-upgrade failed; rolling back");
        self.set_image(&old).await?;
        Ok(Outcome::RolledBack { reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_to_an_image_of_the_attackers_choosing_is_refused() {
        let d = "a".repeat(64);
        let current = "ghcr.io/novacula/novacula-operator:1.0.0";
        assert!(check_upgrade_image(current, &format!("ghcr.io/novacula/novacula-operator@sha256:{d}")).is_ok());
        assert!(check_upgrade_image(current, &format!("ghcr.io/novacula/novacula-operator:1.1.0@sha256:{d}")).is_ok());
        assert_eq!(check_upgrade_image(current, "ghcr.io/novacula/novacula-operator:1.1.0").unwrap_err(), ImageRefusal::NotPinned);
        assert!(matches!(check_upgrade_image(current, &format!("evil.example/novacula-operator@sha256:{d}")), Err(ImageRefusal::OtherRepository { .. })));
        assert!(check_upgrade_image("registry:5000/ops/op:1", &format!("registry:5000/ops/op@sha256:{d}")).is_ok());
        assert_eq!(repository("registry:5000/ops/op:1"), "registry:5000/ops/op");
    }
}
