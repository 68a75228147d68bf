//! The controller side: reconcile each `BlockchainNode` into its ConfigMap,
//! Secret, StatefulSet and Service, and write the CR status from the pod.

use crate::crd::{BlockchainNode, BlockchainNodeStatus, MANAGER};
use crate::render::{render, Rendered};
use crate::status::status;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use novacula_agent::adapter::Adapters;
use novacula_core::{ObservedNodeStatus, ObservedProcess};
use std::sync::Arc;
use std::time::Duration;

/// Status is re-read this often even without a watch event (pods are not owned directly).
pub const RESYNC: Duration = Duration::from_secs(10);

pub struct Context {
    pub client: Client,
    pub adapters: Adapters,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

pub async fn reconcile(cr: Arc<BlockchainNode>, ctx: Arc<Context>) -> Result<Action, Error> {
    if cr.metadata.deletion_timestamp.is_some() {
        // Owner references cascade to the objects; the StatefulSet's retention policy keeps the PVCs.
        return Ok(Action::await_change());
    }
    let name = cr.name_any();
    let ns = cr.namespace().unwrap_or_else(|| ctx.client.default_namespace().to_string());
    let nodes: Api<BlockchainNode> = Api::namespaced(ctx.client.clone(), &ns);
    let rendered = match render(&cr, &ctx.adapters) {
        Ok(r) => r,
        Err(why) => {
            tracing::warn!(node = %name, error = %why, "cannot render node");
            let processes = cr.spec.node.clients.iter().map(|c| ObservedProcess { name: c.role.clone(), status: ObservedNodeStatus::Error, sync: None, message: Some(why.clone()) });
            let previous = cr.status.as_ref().map_or(0, |s| s.observed_revision);
            write_status(&nodes, &cr, BlockchainNodeStatus { phase: "Error".into(), observed_revision: previous, processes: processes.collect() }).await?;
            return Ok(Action::requeue(RESYNC));
        }
    };
    let sts = apply(&ctx.client, &ns, &name, rendered).await?;
    let pod = if sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0 || sts.status.as_ref().is_some_and(|s| s.replicas > 0) {
        Api::<Pod>::namespaced(ctx.client.clone(), &ns).get_opt(&format!("{name}-0")).await?
    } else {
        None
    };
    write_status(&nodes, &cr, status(&cr, &sts, pod.as_ref())).await?;
    Ok(Action::requeue(RESYNC))
}

/// Server-side apply every object; returns the StatefulSet as the API server has it.
async fn apply(client: &Client, ns: &str, name: &str, r: Rendered) -> Result<StatefulSet, Error> {
    let pp = PatchParams::apply(MANAGER).force();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret_name = r.secret.name_any();
    // Generated once: never overwrite a secret the pod may already be using.
    if secrets.get_opt(&secret_name).await?.is_none() {
        match secrets.create(&PostParams::default(), &r.secret).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Api::<ConfigMap>::namespaced(client.clone(), ns).patch(&r.config_map.name_any(), &pp, &Patch::Apply(&r.config_map)).await?;
    let sts = Api::<StatefulSet>::namespaced(client.clone(), ns).patch(name, &pp, &Patch::Apply(&r.stateful_set)).await?;
    Api::<Service>::namespaced(client.clone(), ns).patch(name, &pp, &Patch::Apply(&r.service)).await?;
    Ok(sts)
}

async fn write_status(nodes: &Api<BlockchainNode>, cr: &BlockchainNode, status: BlockchainNodeStatus) -> Result<(), Error> {
    if cr.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let patch = serde_json::json!({ "status": status });
    nodes.patch_status(&cr.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

pub fn error_policy(cr: Arc<BlockchainNode>, e: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(node = %cr.name_any(), error = %e, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

/// Run the controller over the namespace's `BlockchainNode`s until the stream ends.
pub async fn run(client: Client, namespace: &str, adapters: Adapters) {
    let nodes: Api<BlockchainNode> = Api::namespaced(client.clone(), namespace);
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=novacula-operator");
    Controller::new(nodes, watcher::Config::default())
        .owns(Api::<StatefulSet>::namespaced(client.clone(), namespace), owned.clone())
        .owns(Api::<ConfigMap>::namespaced(client.clone(), namespace), owned.clone())
        .owns(Api::<Service>::namespaced(client.clone(), namespace), owned)
        .shutdown_on_signal()
        .run(reconcile, error_policy, Arc::new(Context { client, adapters }))
        .for_each(|r| async move {
            match r {
                Ok((obj, _)) => tracing::debug!(node = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        })
        .await;
}
