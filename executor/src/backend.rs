//! How an executor materializes nodes. The loops in [`crate::loops`] drive a
//! `Backend`: the agent's `Processes` (core's reconcile diff applied unit by
//! unit through a process driver) or the operator's `KubeNodes` (one custom
//! resource per node).

use crate::adapter::RenderError;
use novacula_core::error::ErrorCategory;
use novacula_core::logs::LogLine;
use novacula_core::{DesiredNode, ExecutorCapabilities, ObservedNodeState};
use std::future::Future;

/// Why a backend could not read or change a node, and what that means for retrying.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The spec cannot be rendered for this executor.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The platform underneath (process driver, systemd, the Kubernetes API) failed or refused.
    #[error("{source}")]
    Platform { category: ErrorCategory, source: Box<dyn std::error::Error + Send + Sync> },
}

impl BackendError {
    pub fn platform(category: ErrorCategory, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BackendError {
        BackendError::Platform { category, source: source.into() }
    }

    pub fn category(&self) -> ErrorCategory {
        match self {
            BackendError::Render(e) => e.category(),
            BackendError::Platform { category, .. } => *category,
        }
    }
}

pub trait Backend: Send + Sync + 'static {
    /// Chains and clients this executor can run, sent with every heartbeat.
    fn capabilities(&self) -> ExecutorCapabilities;
    /// Move the node one pass towards `d`; returns how many changes were made.
    /// Failures are kept and surface in the next `observe`, never lost.
    fn reconcile(&self, d: &DesiredNode) -> impl Future<Output = usize> + Send;
    /// The node as it is now, with the revision fully materialized.
    fn observe(&self, d: &DesiredNode) -> impl Future<Output = Result<ObservedNodeState, BackendError>> + Send;
    /// Lines of `process`'s log: the last `tail` when `after` is `None`, else
    /// those after that cursor; with the cursor to go on from. Each backend
    /// reads its own platform's logs (files, the journal, the pod's).
    fn logs(&self, _node: &str, _process: &str, _after: Option<&str>, _tail: u32) -> impl Future<Output = Result<(Vec<LogLine>, String), BackendError>> + Send {
        async { Err(BackendError::platform(ErrorCategory::Refused, "this executor cannot read logs")) }
    }
}
