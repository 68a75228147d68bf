//! The controller side: reconcile each `BlockchainNode` into its ConfigMap,
//! Secret, StatefulSet and Service, and write the CR status from the pod.

use crate::crd::{BlockchainNode, BlockchainNodeStatus, MANAGER};
use crate::render::{optional_objects, render_with, NodePods, Rendered};
use crate::status::status;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use novacula_core::entropy::OsEntropy;
use novacula_core::error::ErrorCategory;
use novacula_core::spec::StorageVolume;
use novacula_core::{ObservedNodeStatus, ObservedProcess};
use novacula_executor::adapter::Adapters;
use std::sync::Arc;
use std::time::Duration;

/// Status is re-read this often even without a watch event (pods are not owned directly).
pub const RESYNC: Duration = Duration::from_secs(10);
/// After deleting a StatefulSet to recreate it: soon, once the deletion is through.
pub const RECREATE_WAIT: Duration = Duration::from_secs(2);

pub struct Context {
    pub client: Client,
    pub adapters: Adapters,
    pub pods: NodePods,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object of the node's name exists but was not made for this node:
    /// never adopted (a forced apply would take it over, and garbage
    /// collection would later delete it with the node).
    #[error("{kind} {name:?} already exists and does not belong to this BlockchainNode (no owner reference to it); remove or rename it")]
    NotOurs { kind: &'static str, name: String },
}

impl Error {
    /// What the failure means for retrying: the API server refusing the
    /// objects, or someone else's object in the way, needs a person;
    /// anything else is a hiccup.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Kube(e) => kube_category(e),
            Error::NotOurs { .. } => ErrorCategory::Refused,
        }
    }
}

/// A refusal by the API server (bad input, forbidden) needs a person; anything else is a hiccup.
pub fn kube_category(e: &kube::Error) -> ErrorCategory {
    if is_refusal(e) {
        ErrorCategory::Refused
    } else {
        ErrorCategory::Transient
    }
}

/// Retry after a hiccup (API server busy or unreachable).
pub const RETRY_TRANSIENT: Duration = Duration::from_secs(5);
/// Retry after a refusal: nothing changes until someone acts, so slowly.
pub const RETRY_REFUSED: Duration = Duration::from_secs(60);

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The API server's answer to a change of a StatefulSet's fixed fields
/// (volumeClaimTemplates: a storage volume added, removed or resized).
fn is_fixed_field_change(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 422 && s.message.contains("Forbidden: updates to statefulset spec for fields other than"))
}

/// The API server refused the objects as rendered (bad input, not a hiccup):
/// retrying cannot help until the spec changes, so it goes into the status.
fn is_refusal(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if matches!(s.code, 400 | 403 | 422))
}

enum Applied {
    Done(Box<StatefulSet>),
    /// The StatefulSet was deleted (orphaning its pod and claims) to be created anew.
    Recreating,
}

pub async fn reconcile(cr: Arc<BlockchainNode>, ctx: Arc<Context>) -> Result<Action, Error> {
    if cr.metadata.deletion_timestamp.is_some() {
        // Owner references cascade to the objects; the StatefulSet's retention policy keeps the PVCs.
        return Ok(Action::await_change());
    }
    let name = cr.name_any();
    let ns = cr.namespace().unwrap_or_else(|| ctx.client.default_namespace().to_string());
    let nodes: Api<BlockchainNode> = Api::namespaced(ctx.client.clone(), &ns);
    let rendered = match render_with(&cr, &ctx.adapters, ctx.pods) {
        Ok(r) => r,
        Err(why) => {
            tracing::warn!(node = %name, error = %why, "cannot render node");
            write_error(&nodes, &cr, &why.to_string()).await?;
            return Ok(Action::requeue(match why.category() {
                ErrorCategory::Transient => RETRY_TRANSIENT,
                _ => RESYNC,
            }));
        }
    };
    let uid = cr.uid().unwrap_or_default();
    let extra = optional_objects(&rendered);
    let sts = match apply(&ctx.client, &ns, &name, &uid, rendered, &cr.spec.node.storage).await {
        Ok(Applied::Done(sts)) => *sts,
        Ok(Applied::Recreating) => return Ok(Action::requeue(RECREATE_WAIT)),
        Err(e @ Error::NotOurs { .. }) => {
            tracing::error!(node = %name, error = %e, "refusing to adopt an object");
            write_error(&nodes, &cr, &e.to_string()).await?;
            return Ok(Action::requeue(RESYNC));
        }
        Err(Error::Kube(e)) if is_refusal(&e) => {
            let why = match &e {
                kube::Error::Api(s) => s.message.clone(),
                other => other.to_string(),
            };
            tracing::warn!(node = %name, error = %why, "the API server refused the node's objects");
            write_error(&nodes, &cr, &why).await?;
            return Ok(Action::requeue(RESYNC));
        }
        Err(e) => return Err(e),
    };
    let pod = if sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0 || sts.status.as_ref().is_some_and(|s| s.replicas > 0) {
        Api::<Pod>::namespaced(ctx.client.clone(), &ns).get_opt(&format!("{name}-0")).await?
    } else {
        None
    };
    let previous = cr.status.as_ref().map(|s| s.extra_objects.clone()).unwrap_or_default();
    let mut extra = extra;
    for stale in previous.into_iter().filter(|o| !extra.contains(o)).collect::<Vec<_>>() {
        if !delete_extra(&ctx.client, &ns, &stale, &uid).await? {
            // Kept in the list, to be deleted once allowed.
            extra.push(stale);
        }
    }
    let mut status = status(&cr, &sts, pod.as_ref());
    status.extra_objects = extra;
    write_status(&nodes, &cr, status).await?;
    Ok(Action::requeue(RESYNC))
}

/// Delete one of [`optional_objects`] (`Kind/name`) if it is this node's:
/// `Ok(false)` when not allowed to yet (an older chart's Role), to try again
/// later; gone already, or someone else's (never touched), is done.
async fn delete_extra(client: &Client, ns: &str, object: &str, uid: &str) -> Result<bool, Error> {
    match object.split_once('/') {
        Some(("Service", name)) => delete_owned(&Api::<Service>::namespaced(client.clone(), ns), name, uid).await,
        Some(("PodDisruptionBudget", name)) => delete_owned(&Api::<PodDisruptionBudget>::namespaced(client.clone(), ns), name, uid).await,
        _ => Ok(true),
    }
}

async fn delete_owned<K>(api: &Api<K>, name: &str, uid: &str) -> Result<bool, Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let obj = match api.get_opt(name).await {
        Ok(Some(obj)) => obj,
        Ok(None) => return Ok(true),
        Err(e) if is_status(&e, 403) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if !controlled_by(&obj, uid) {
        tracing::warn!(object = %name, "not deleting an object this node no longer needs: it is not this node's");
        return Ok(true);
    }
    // Only that very object (its uid): never one created under the name since.
    let dp = DeleteParams { preconditions: obj.uid().map(|u| kube::api::Preconditions { uid: Some(u), resource_version: None }), ..Default::default() };
    match api.delete(name, &dp).await {
        Ok(_) => {
            tracing::info!(object = %name, "deleted an object the node no longer needs");
            Ok(true)
        }
        Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(true),
        Err(e) if is_status(&e, 403) => {
            tracing::warn!(object = %name, "not allowed to delete an object the node no longer needs (upgrade the chart's Role)");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `obj` is controlled by the BlockchainNode with `uid`.
fn controlled_by<K: ResourceExt>(obj: &K, uid: &str) -> bool {
    obj.owner_references().iter().any(|o| o.controller == Some(true) && o.kind == "BlockchainNode" && o.uid == uid)
}

/// `Ok(true)` when the object exists and is this node's, `Ok(false)` when it
/// does not exist; an object someone else made is an error.
async fn ours<K>(api: &Api<K>, name: &str, uid: &str, kind: &'static str) -> Result<bool, Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await? {
        None => Ok(false),
        Some(obj) if controlled_by(&obj, uid) => Ok(true),
        Some(_) => Err(Error::NotOurs { kind, name: name.to_string() }),
    }
}

/// Server-side apply every object; returns the StatefulSet as the API server has it.
/// Objects that exist but were not made for this node are refused before anything is written.
async fn apply(client: &Client, ns: &str, name: &str, uid: &str, r: Rendered, storage: &[StorageVolume]) -> Result<Applied, Error> {
    let pp = PatchParams::apply(MANAGER).force();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret_name = r.secret.name_any();
    let secret_exists = ours(&secrets, &secret_name, uid, "Secret").await?;
    ours(&Api::<ConfigMap>::namespaced(client.clone(), ns), &r.config_map.name_any(), uid, "ConfigMap").await?;
    ours(&Api::<StatefulSet>::namespaced(client.clone(), ns), name, uid, "StatefulSet").await?;
    ours(&Api::<Service>::namespaced(client.clone(), ns), name, uid, "Service").await?;
    // The NetworkPolicy is best effort: an operator upgraded by image alone
    // runs under the chart's old Role, which may not grant it yet; the node
    // must not fail for that.
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    let policy_allowed = match ours(&policies, name, uid, "NetworkPolicy").await {
        Err(Error::Kube(e)) if is_status(&e, 403) => {
            tracing::warn!(node = %name, "not allowed to manage NetworkPolicies (upgrade the chart's Role); the node runs without one");
            false
        }
        other => other.map(|_| true)?,
    };
    // Generated once: never overwrite a secret the pod may already be using.
    if !secret_exists {
        let mut secret = r.secret.clone();
        secret.string_data = Some(r.secret_files.iter().map(|(key, secret)| (key.clone(), secret.generate(&OsEntropy))).collect());
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Api::<ConfigMap>::namespaced(client.clone(), ns).patch(&r.config_map.name_any(), &pp, &Patch::Apply(&r.config_map)).await?;
    let sets = Api::<StatefulSet>::namespaced(client.clone(), ns);
    let sts = match sets.patch(name, &pp, &Patch::Apply(&r.stateful_set)).await {
        Ok(sts) => sts,
        Err(e) if is_fixed_field_change(&e) => {
            // Storage changed. Kubernetes cannot edit claim templates in place:
            // delete the StatefulSet but orphan its pod and volumes, grow the
            // existing claims, and let the next pass create it anew (it adopts
            // the pod and rolls it onto the new template).
            tracing::info!(node = %name, "storage changed: recreating the StatefulSet, keeping its pod and volumes");
            sets.delete(name, &DeleteParams::orphan()).await?;
            grow_claims(client, ns, name, storage).await?;
            return Ok(Applied::Recreating);
        }
        Err(e) => return Err(e.into()),
    };
    Api::<Service>::namespaced(client.clone(), ns).patch(name, &pp, &Patch::Apply(&r.service)).await?;
    if policy_allowed {
        policies.patch(name, &pp, &Patch::Apply(&r.network_policy)).await?;
    }
    if let Some(svc) = &r.p2p_service {
        let services = Api::<Service>::namespaced(client.clone(), ns);
        ours(&services, &svc.name_any(), uid, "Service").await?;
        services.patch(&svc.name_any(), &pp, &Patch::Apply(svc)).await?;
    }
    if let Some(pdb) = &r.disruption_budget {
        let budgets = Api::<PodDisruptionBudget>::namespaced(client.clone(), ns);
        ours(&budgets, name, uid, "PodDisruptionBudget").await?;
        budgets.patch(name, &pp, &Patch::Apply(pdb)).await?;
    }
    Ok(Applied::Done(Box::new(sts)))
}

/// Raise each existing claim of the pod to its volume's new size. Claims only
/// grow (Kubernetes cannot shrink them), and only where the storage class
/// allows expansion; the API server's refusal says so otherwise.
async fn grow_claims(client: &Client, ns: &str, name: &str, storage: &[StorageVolume]) -> Result<(), Error> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    for StorageVolume { name: volume, size_gib, .. } in storage {
        // claim name: <template>-<statefulset>-<ordinal>
        let Some(claim) = claims.get_opt(&format!("{volume}-{name}-0")).await? else { continue };
        let current = claim
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .and_then(|q| quantity_bytes(&q.0));
        let wanted = u128::from(*size_gib) << 30;
        match current {
            Some(now) if now >= wanted => {
                if now > wanted {
                    tracing::warn!(node = %name, volume, "volume claim is larger than the spec asks; claims cannot shrink");
                }
            }
            _ => {
                let patch = serde_json::json!({ "spec": { "resources": { "requests": { "storage": format!("{size_gib}Gi") } } } });
                claims.patch(&claim.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
                tracing::info!(node = %name, volume, size_gib, "volume claim grown");
            }
        }
    }
    Ok(())
}

/// Bytes of a Kubernetes quantity such as `500Gi`, `1Ti` or `2G`.
pub fn quantity_bytes(q: &str) -> Option<u128> {
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (digits, suffix) = q.split_at(split);
    let n: u128 = digits.parse().ok()?;
    let mult: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Every process in error with `why`; the revision last rolled out stays reported.
async fn write_error(nodes: &Api<BlockchainNode>, cr: &BlockchainNode, why: &str) -> Result<(), Error> {
    let processes = cr.spec.node.clients.iter().map(|c| ObservedProcess {
        name: c.role.clone(),
        status: ObservedNodeStatus::Error,
        sync: None,
        message: Some(why.to_string()),
    });
    let previous = cr.status.as_ref().map_or(0, |s| s.observed_revision);
    let extra_objects = cr.status.as_ref().map(|s| s.extra_objects.clone()).unwrap_or_default();
    let status = BlockchainNodeStatus {
        phase: novacula_core::NodePhase::Error.as_str().into(),
        observed_revision: previous,
        processes: processes.collect(),
        extra_objects,
    };
    write_status(nodes, cr, status).await
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
    let wait = retry_after(e.category());
    tracing::warn!(node = %cr.name_any(), error = %e, category = ?e.category(), retry_secs = wait.as_secs(), "reconcile failed; retrying");
    Action::requeue(wait)
}

/// How long to wait before retrying a failure of `category`.
pub fn retry_after(category: ErrorCategory) -> Duration {
    match category {
        ErrorCategory::Transient => RETRY_TRANSIENT,
        ErrorCategory::InvalidSpec | ErrorCategory::Refused => RETRY_REFUSED,
    }
}

/// Run the controller over the namespace's `BlockchainNode`s until the stream ends.
pub async fn run(client: Client, namespace: &str, adapters: Adapters, pods: NodePods) {
    let nodes: Api<BlockchainNode> = Api::namespaced(client.clone(), namespace);
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=novacula-operator");
    Controller::new(nodes, watcher::Config::default())
        .owns(Api::<StatefulSet>::namespaced(client.clone(), namespace), owned.clone())
        .owns(Api::<ConfigMap>::namespaced(client.clone(), namespace), owned.clone())
        .owns(Api::<Service>::namespaced(client.clone(), namespace), owned)
        .shutdown_on_signal()
        .run(reconcile, error_policy, Arc::new(Context { client, adapters, pods }))
        .for_each(|r| async move {
            match r {
                Ok((obj, _)) => tracing::debug!(node = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        })
        .await;
}
