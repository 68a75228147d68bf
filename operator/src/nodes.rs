//! The executor side: nodes as `BlockchainNode` CRs. Reconcile applies the CR
//! (server-side apply) or deletes it; observe reads the status the controller wrote.

use crate::controller::kube_category;
use crate::crd::{BlockchainNode, BlockchainNodeSpec, MANAGER};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, LogParams, Patch, PatchParams};
use novacula_core::error::ErrorCategory;
use novacula_core::logs::{clean, level_of, LogLevel, LogLine};
use novacula_core::reconcile::plan;
use novacula_core::spec::P2pExposure;
use novacula_core::sync::LockExt;
use novacula_core::{DesiredNode, DesiredState, ExecutorCapabilities, ObservedNodeState, ObservedNodeStatus, ObservedProcess, Revision};
use novacula_executor::adapter::Adapters;
use novacula_executor::backend::{Backend, BackendError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The cluster's storage classes as last listed, reported in the capabilities
/// so the control plane refuses a volume naming another. `None` while not
/// known (not listed yet, or the chart grants no ClusterRole to list them).
#[derive(Debug, Clone, Default)]
pub struct StorageClasses(Arc<Mutex<Option<Vec<String>>>>);

impl StorageClasses {
    /// How often the list is read again (classes are added rarely).
    pub const REFRESH: Duration = Duration::from_secs(60);

    pub fn get(&self) -> Option<Vec<String>> {
        self.0.locked().clone()
    }

    /// List the classes once. A refusal (403) leaves them unknown; any other
    /// error keeps the last list.
    pub async fn refresh(&self, client: &kube::Client) {
        match Api::<StorageClass>::all(client.clone()).list(&Default::default()).await {
            Ok(list) => {
                let mut names: Vec<String> = list.items.iter().filter_map(|c| c.metadata.name.clone()).collect();
                names.sort();
                *self.0.locked() = Some(names);
            }
            Err(kube::Error::Api(s)) if s.code == 403 => {
                if self.0.locked().take().is_some() {
                    tracing::warn!("no longer allowed to list StorageClasses; volumes' storage classes are not checked");
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot list StorageClasses; keeping the last list"),
        }
    }

    /// Refresh every [`Self::REFRESH`], forever.
    pub async fn follow(self, client: kube::Client) {
        loop {
            self.refresh(&client).await;
            tokio::time::sleep(Self::REFRESH).await;
        }
    }
}

pub struct KubeNodes {
    api: Api<BlockchainNode>,
    adapters: Adapters,
    /// Images specs may name (the chart's `allowedImages`): the cluster's trust boundary.
    allowed_images: Vec<String>,
    /// Last API error per node, reported as the process message until it clears.
    errors: Mutex<HashMap<String, String>>,
    storage_classes: StorageClasses,
    /// The namespace's pods, whose containers' logs viewers read.
    pods: Option<Api<Pod>>,
}

impl KubeNodes {
    pub fn new(api: Api<BlockchainNode>, adapters: Adapters) -> KubeNodes {
        KubeNodes { api, adapters, allowed_images: vec![], errors: Mutex::new(HashMap::new()), storage_classes: StorageClasses::default(), pods: None }
    }

    /// Read node logs from these pods (the nodes' namespace).
    pub fn with_pod_logs(mut self, pods: Api<Pod>) -> KubeNodes {
        self.pods = Some(pods);
        self
    }

    /// Report these storage classes (kept up to date by [`StorageClasses::follow`]).
    pub fn with_storage_classes(mut self, classes: StorageClasses) -> KubeNodes {
        self.storage_classes = classes;
        self
    }

    /// Let specs use these images for sidecars and client images (see [`novacula_core::ProgramAllowlist`]).
    pub fn with_allowed_images(mut self, images: Vec<String>) -> KubeNodes {
        self.allowed_images = images;
        self
    }

    async fn apply(&self, d: &DesiredNode) -> Result<usize, ApplyError> {
        let name = d.spec.name.as_str();
        if d.deleted {
            // PVCs are not owned by the CR: deleting it keeps the chain data.
            return match self.api.delete(name, &DeleteParams::background()).await {
                Ok(_) => Ok(1),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(0),
                Err(e) => Err(e.into()),
            };
        }
        let want = BlockchainNodeSpec { revision: d.revision.0, node: d.spec.clone() };
        if self.api.get_opt(name).await?.is_some_and(|cr| cr.spec == want) {
            return Ok(0);
        }
        let cr = BlockchainNode::new(name, want.clone());
        let applied = self.api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&cr)).await?;
        if applied.spec != want {
            // The API server dropped fields its (older) CRD does not know: the
            // node would silently run without them.
            return Err(ApplyError::OutdatedCrd);
        }
        tracing::info!("applied BlockchainNode");
        Ok(1)
    }
}

#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(
        "the cluster's BlockchainNode CRD is older than this operator and dropped fields of the spec; apply the chart's CRD (crds/) or install with crd.manage=true"
    )]
    OutdatedCrd,
}

impl Backend for KubeNodes {
    fn capabilities(&self) -> ExecutorCapabilities {
        let mut caps = self.adapters.capabilities();
        // Sidecars here are containers: images, not host programs.
        caps.programs = novacula_core::ProgramAllowlist { sidecar_programs: vec![], image_prefixes: self.allowed_images.clone() };
        caps.storage_classes = self.storage_classes.get();
        caps.p2p_exposures = vec![P2pExposure::NodePort, P2pExposure::LoadBalancer];
        caps
    }

    #[tracing::instrument(name = "reconcile", skip_all, fields(node = %d.spec.name, revision = %d.revision))]
    async fn reconcile(&self, d: &DesiredNode) -> usize {
        let name = &d.spec.name;
        match self.apply(d).await {
            Ok(n) => {
                self.errors.locked().remove(name);
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot apply BlockchainNode; will retry");
                self.errors.locked().insert(name.clone(), e.to_string());
                0
            }
        }
    }

    /// The node's pod's container of that process (`<node>-0`, container
    /// `<process>`), read with timestamps: the last lines, then those after
    /// the last one's time (the API's `sinceTime` counts whole seconds: lines
    /// of that second already seen are dropped here). At most 1 MiB a read.
    async fn logs(&self, node: &str, process: &str, after: Option<&str>, tail: u32) -> Result<(Vec<LogLine>, String), BackendError> {
        let Some(pods) = &self.pods else { return Err(BackendError::platform(ErrorCategory::Refused, "this operator reads no pod logs")) };
        if !novacula_core::validate::valid_name(node) || !novacula_core::validate::valid_name(process) {
            return Err(BackendError::platform(ErrorCategory::Refused, format!("no log for {node:?}/{process:?}")));
        }
        let last: Option<jiff::Timestamp> = after.and_then(|a| a.parse().ok());
        let mut lp = LogParams { container: Some(process.to_string()), timestamps: true, limit_bytes: Some(1 << 20), ..Default::default() };
        match last {
            // The whole second it fell in (kube rounds to seconds, which could skip lines after it).
            Some(t) => lp.since_time = Some(jiff::Timestamp::from_second(t.as_second()).unwrap_or(t)),
            None => lp.tail_lines = Some(i64::from(tail)),
        }
        let text = match pods.logs(&format!("{node}-0"), &lp).await {
            Ok(text) => text,
            // No pod (yet, or scaled to zero while stopped): no lines.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 400 => String::new(),
            Err(e) => return Err(BackendError::platform(kube_category(&e), e)),
        };
        let mut newest = last;
        let mut lines = Vec::new();
        for raw in text.lines() {
            let Some((stamp, message)) = raw.split_once(' ') else { continue };
            let Ok(at) = stamp.parse::<jiff::Timestamp>() else { continue };
            if last.is_some_and(|l| at <= l) {
                continue;
            }
            newest = Some(newest.map_or(at, |n| n.max(at)));
            let message = clean(message);
            lines.push(LogLine {
                at: novacula_core::Timestamp(u64::try_from(at.as_millisecond()).unwrap_or(0)),
                level: level_of(&message, LogLevel::Info),
                text: message,
            });
        }
        let cursor = newest.unwrap_or_else(jiff::Timestamp::now).to_string();
        Ok((lines, cursor))
    }

    #[tracing::instrument(name = "observe", skip_all, fields(node = %d.spec.name, revision = %d.revision))]
    async fn observe(&self, d: &DesiredNode) -> Result<ObservedNodeState, BackendError> {
        let name = d.spec.name.clone();
        let cr = self.api.get_opt(&name).await.map_err(|e| BackendError::platform(kube_category(&e), e))?;
        let status = cr.as_ref().and_then(|c| c.status.clone()).unwrap_or_default();
        if d.deleted {
            let removed = cr.is_none();
            let revision = if removed { d.revision } else { Revision(status.observed_revision) };
            return Ok(ObservedNodeState { node: name, revision, processes: vec![], removed, disk: None });
        }
        let error = self.errors.locked().get(&name).cloned();
        let mut processes = status.processes;
        if processes.is_empty() {
            // Not reconciled yet by the controller: waiting, or failing to be applied.
            let waiting = if d.spec.desired_state == DesiredState::Running { ObservedNodeStatus::Starting } else { ObservedNodeStatus::Stopped };
            let status = if error.is_some() { ObservedNodeStatus::Error } else { waiting };
            processes = plan(&d.spec).into_iter().map(|u| ObservedProcess { name: u.unit, status, sync: None, message: error.clone() }).collect();
        } else if let Some(e) = error {
            for p in &mut processes {
                p.message.get_or_insert_with(|| e.clone());
            }
        }
        Ok(ObservedNodeState { node: name, revision: Revision(status.observed_revision), processes, removed: false, disk: None })
    }
}
