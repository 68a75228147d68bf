//! How an executor materializes nodes. The loops in [`crate::loops`] drive a
//! `Backend`: the agent's `Processes` (core's reconcile diff applied unit by
//! unit through a process driver) or the operator's `KubeNodes` (one custom
//! resource per node).

use novacula_core::{DesiredNode, ExecutorCapabilities, ObservedNodeState};
use std::future::Future;

pub trait Backend: Send + Sync + 'static {
    /// Chains and clients this executor can run, sent with every heartbeat.
    fn capabilities(&self) -> ExecutorCapabilities;
    /// Move the node one pass towards `d`; returns how many changes were made.
    /// Failures are kept and surface in the next `observe`, never lost.
    fn reconcile(&self, d: &DesiredNode) -> impl Future<Output = usize> + Send;
    /// The node as it is now, with the revision fully materialized.
    fn observe(&self, d: &DesiredNode) -> impl Future<Output = Result<ObservedNodeState, String>> + Send;
}
