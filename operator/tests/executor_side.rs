//! The executor side (CRs from the control plane's specs) and self-upgrade,
//! request by request against a scripted API server.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use kube::Api;
use novacula_core::logs::LogLevel;
use novacula_core::{DesiredNode, ObservedNodeStatus, Revision};
use novacula_executor::adapter::Adapters;
use novacula_executor::backend::Backend;
use novacula_operator::crd::BlockchainNode;
use novacula_operator::nodes::KubeNodes;
use novacula_operator::upgrade::{Outcome, SelfDeployment};
use serde_json::{json, Value};
use std::time::Duration;

const CR: &str = "/apis/validatoros.com/v1alpha1/namespaces/default/blockchainnodes/n1";

fn desired(revision: u64, deleted: bool) -> DesiredNode {
    DesiredNode::new(Revision(revision), eth_spec("n1"), deleted)
}

fn nodes(client: kube::Client) -> KubeNodes {
    KubeNodes::new(Api::<BlockchainNode>::namespaced(client, "default"), Adapters::standard())
}

#[tokio::test]
async fn new_spec_is_server_side_applied_once() {
    let (client, mut server) = mock_client();
    let backend = nodes(client);
    let applied = tokio::spawn(async move { (backend.reconcile(&desired(3, false)).await, backend) });
    server.not_found("GET", CR).await;
    let patch = server.echo("PATCH", CR).await;
    let (n, backend) = applied.await.unwrap();
    assert_eq!(n, 1);
    assert!(patch.query.contains("fieldManager=novacula-operator") && patch.query.contains("force=true"), "{}", patch.query);
    assert_eq!((patch.body["apiVersion"].as_str(), patch.body["kind"].as_str()), (Some("validatoros.com/v1alpha1"), Some("BlockchainNode")));
    assert_eq!(patch.body["spec"]["revision"], 3);
    assert_eq!(patch.body["spec"]["node"]["clients"][0]["client"], "geth");

    // the same revision again: read, nothing written
    let cr = patch.body.clone();
    let again = tokio::spawn(async move { backend.reconcile(&desired(3, false)).await });
    server.answer("GET", CR, 200, |_| cr).await;
    assert_eq!(again.await.unwrap(), 0);
    server.done().await;
}

#[tokio::test]
async fn delete_removes_only_the_cr_and_reports_removal() {
    let (client, mut server) = mock_client();
    let backend = nodes(client);
    let cr = serde_json::to_value(cr(eth_spec("n1"), 4)).unwrap();
    let task = tokio::spawn(async move {
        let n = backend.reconcile(&desired(5, true)).await;
        (n, backend.observe(&desired(5, true)).await)
    });
    let delete = server.answer("DELETE", CR, 200, |_| cr).await;
    assert_eq!(delete.body["propagationPolicy"], "Background", "owned objects go with the CR; PVCs are not owned");
    server.not_found("GET", CR).await;
    let (n, observed) = task.await.unwrap();
    assert_eq!(n, 1);
    let observed = observed.unwrap();
    assert!(observed.removed);
    assert_eq!(observed.revision, Revision(5));
    // no request touched a PersistentVolumeClaim
    server.done().await;
}

#[tokio::test]
async fn observe_reports_the_controller_status() {
    let (client, mut server) = mock_client();
    let backend = nodes(client);
    let mut cr = serde_json::to_value(cr(eth_spec("n1"), 7)).unwrap();
    cr["status"] = json!({"phase": "running", "observedRevision": 6, "processes": [
        {"name": "execution", "status": "running"},
        {"name": "consensus", "status": "error", "message": "CrashLoopBackOff"}
    ]});
    let task = tokio::spawn(async move { backend.observe(&desired(7, false)).await });
    server.answer("GET", CR, 200, |_| cr).await;
    let observed = task.await.unwrap().unwrap();
    assert_eq!(observed.revision, Revision(6));
    assert_eq!(observed.processes[1].status, ObservedNodeStatus::Error);
    assert!(!observed.removed);
}

#[tokio::test]
async fn a_rejected_apply_surfaces_as_a_process_error() {
    let (client, mut server) = mock_client();
    let backend = nodes(client);
    let task = tokio::spawn(async move {
        let n = backend.reconcile(&desired(2, false)).await;
        (n, backend.observe(&desired(2, false)).await)
    });
    server.not_found("GET", CR).await;
    server
        .answer("PATCH", CR, 403, |_| {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "blockchainnodes is forbidden", "reason": "Forbidden", "code": 403})
        })
        .await;
    server.not_found("GET", CR).await;
    let (n, observed) = task.await.unwrap();
    assert_eq!(n, 0);
    let observed = observed.unwrap();
    assert_eq!(observed.revision, Revision(0));
    assert!(observed.processes.iter().all(|p| p.status == ObservedNodeStatus::Error && p.message.as_deref().unwrap().contains("forbidden")));
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/default/deployments/novacula-operator";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn deployment(image: &str, generation: i64, status: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "novacula-operator", "namespace": "default", "generation": generation},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "novacula-operator"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "novacula-operator"}}, "spec": {"containers": [{"name": "operator", "image": image}]}}
        },
        "status": status
    })
}

fn pods(image: &str, waiting: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
        "metadata": {"name": "novacula-operator-new"},
        "spec": {"containers": [{"name": "operator", "image": image}]},
        "status": {"containerStatuses": [{"name": "operator", "ready": false, "restartCount": 3, "image": image, "imageID": "", "state": {"waiting": {"reason": waiting}}}]}
    }]})
}

fn own(client: kube::Client) -> SelfDeployment {
    SelfDeployment {
        deployments: Api::namespaced(client.clone(), "default"),
        pods: Api::namespaced(client, "default"),
        name: "novacula-operator".into(),
        container: "operator".into(),
    }
}

const OLD: &str = "novacula/operator:1.0.0";
const NEW: &str = "novacula/operator@sha256:1111111111111111111111111111111111111111111111111111111111111111";

#[tokio::test]
async fn upgrade_rolls_back_when_the_new_image_cannot_be_pulled() {
    let (client, mut server) = mock_client();
    let task = tokio::spawn(async move { own(client).upgrade(NEW, Duration::from_millis(1), Duration::from_secs(60)).await });
    server.answer("GET", DEPLOYMENT, 200, |_| deployment(OLD, 1, json!({"replicas": 1, "availableReplicas": 1}))).await;
    let patch = server.answer("PATCH", DEPLOYMENT, 200, |_| deployment(NEW, 2, json!({}))).await;
    assert_eq!(patch.body["spec"]["template"]["spec"]["containers"], json!([{"name": "operator", "image": NEW}]));
    server
        .answer("GET", DEPLOYMENT, 200, |_| deployment(NEW, 2, json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1})))
        .await;
    // first look: still creating; second: the pull fails
    let list = server.answer("GET", PODS, 200, |_| pods(NEW, "ContainerCreating")).await;
    assert!(list.query.contains("labelSelector=app.kubernetes.io%2Fname%3Dnovacula-operator"), "{}", list.query);
    server
        .answer("GET", DEPLOYMENT, 200, |_| deployment(NEW, 2, json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1})))
        .await;
    server.answer("GET", PODS, 200, |_| pods(NEW, "ImagePullBackOff")).await;
    let back = server.answer("PATCH", DEPLOYMENT, 200, |_| deployment(OLD, 3, json!({}))).await;
    assert_eq!(back.body["spec"]["template"]["spec"]["containers"][0]["image"], OLD);
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::RolledBack { reason: "ImagePullBackOff".into() });
    server.done().await;
}

#[tokio::test]
async fn upgrade_rolls_back_on_crash_loop_and_succeeds_on_a_clean_rollout() {
    let (client, mut server) = mock_client();
    let task = tokio::spawn(async move { own(client).upgrade(NEW, Duration::from_millis(1), Duration::from_secs(60)).await });
    server.answer("GET", DEPLOYMENT, 200, |_| deployment(OLD, 1, json!({}))).await;
    server.answer("PATCH", DEPLOYMENT, 200, |_| deployment(NEW, 2, json!({}))).await;
    server.answer("GET", DEPLOYMENT, 200, |_| deployment(NEW, 2, json!({"observedGeneration": 2}))).await;
    server.answer("GET", PODS, 200, |_| pods(NEW, "CrashLoopBackOff")).await;
    server.answer("PATCH", DEPLOYMENT, 200, |_| deployment(OLD, 3, json!({}))).await;
    assert!(matches!(task.await.unwrap().unwrap(), Outcome::RolledBack { reason } if reason == "CrashLoopBackOff"));

    let (client, mut server) = mock_client();
    let task = tokio::spawn(async move { own(client).upgrade(NEW, Duration::from_millis(1), Duration::from_secs(60)).await });
    server.answer("GET", DEPLOYMENT, 200, |_| deployment(OLD, 1, json!({}))).await;
    server.answer("PATCH", DEPLOYMENT, 200, |_| deployment(NEW, 2, json!({}))).await;
    let done = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
    server.answer("GET", DEPLOYMENT, 200, |_| deployment(NEW, 2, done)).await;
    assert_eq!(task.await.unwrap().unwrap(), Outcome::RolledOut);
    server.done().await;
}

/// The chart's rollout: the new pod becomes ready, and crashes 5 s later,
/// inside the chart's `minReadySeconds`. It was never available, so the old
/// pod still runs, still watches, and puts the old image back.
#[tokio::test]
async fn a_new_image_that_crashes_after_becoming_ready_is_rolled_back() {
    let (client, mut server) = mock_client();
    let task = tokio::spawn(async move { own(client).upgrade(NEW, Duration::from_millis(1), Duration::from_secs(60)).await });
    server.answer("GET", DEPLOYMENT, 200, |_| deployment(OLD, 1, json!({"replicas": 1, "availableReplicas": 1}))).await;
    server.answer("PATCH", DEPLOYMENT, 200, |_| deployment(NEW, 2, json!({}))).await;
    // Ready but not yet available (minReadySeconds): two pods, the old one the only available one.
    let surging = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 1});
    let ready = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
        "metadata": {"name": "novacula-operator-new"},
        "spec": {"containers": [{"name": "operator", "image": NEW}]},
        "status": {"containerStatuses": [{"name": "operator", "ready": true, "restartCount": 0, "image": NEW, "imageID": "", "state": {"running": {}}}]}
    }]});
    for _ in 0..3 {
        server.answer("GET", DEPLOYMENT, 200, |_| deployment(NEW, 2, surging.clone())).await;
        server.answer("GET", PODS, 200, |_| ready.clone()).await;
    }
    // 5 s later it has crashed and restarts in a loop.
    server.answer("GET", DEPLOYMENT, 200, |_| deployment(NEW, 2, surging.clone())).await;
    server.answer("GET", PODS, 200, |_| pods(NEW, "CrashLoopBackOff")).await;
    let back = server.answer("PATCH", DEPLOYMENT, 200, |_| deployment(OLD, 3, json!({}))).await;
    assert_eq!(back.body["spec"]["template"]["spec"]["containers"][0]["image"], OLD, "the old image is back");
    assert!(matches!(task.await.unwrap().unwrap(), Outcome::RolledBack { reason } if reason == "CrashLoopBackOff"));
    server.done().await;
}

#[tokio::test]
async fn upgrade_to_the_running_image_changes_nothing() {
    let (client, mut server) = mock_client();
    let task = tokio::spawn(async move { own(client).upgrade(OLD, Duration::from_millis(1), Duration::from_secs(60)).await });
    server.answer("GET", DEPLOYMENT, 200, |_| deployment(OLD, 1, json!({}))).await;
    assert_eq!(task.await.unwrap().unwrap(), Outcome::Current);
    server.done().await;
}

#[tokio::test]
async fn capabilities_offer_only_the_charts_allowed_images() {
    let (client, _server) = mock_client();
    let none = KubeNodes::new(Api::<BlockchainNode>::namespaced(client.clone(), "default"), Adapters::standard());
    assert!(none.capabilities().programs.image_prefixes.is_empty(), "no images unless the chart allows them");
    let nodes =
        KubeNodes::new(Api::<BlockchainNode>::namespaced(client, "default"), Adapters::standard()).with_allowed_images(vec!["ghcr.io/ethpandaops/".into()]);
    let caps = nodes.capabilities();
    assert!(caps.programs.allows_sidecar("ghcr.io/ethpandaops/ethereum-metrics-exporter:0.24.0"));
    assert!(!caps.programs.allows_sidecar("/bin/sh"));
    assert!(caps.programs.sidecar_programs.is_empty());
}

const CRD: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/blockchainnodes.validatoros.com";

#[tokio::test]
async fn the_operator_applies_its_crd_when_it_may() {
    let (client, mut server) = mock_client();
    let task = tokio::spawn(novacula_operator::crd::install(client));
    let applied = server.answer("PATCH", CRD, 200, std::clone::Clone::clone).await;
    assert!(applied.query.contains("fieldManager=novacula-operator"), "{}", applied.query);
    assert_eq!(applied.body["spec"]["names"]["shortNames"], json!(["bn", "bcn"]));
    assert!(task.await.unwrap().unwrap(), "applied");
    server.done().await;

    // Without the permission (the chart's default), the installed CRD stays.
    let (client, mut server) = mock_client();
    let task = tokio::spawn(novacula_operator::crd::install(client));
    server
        .answer(
            "PATCH",
            CRD,
            403,
            |_| json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "forbidden", "reason": "Forbidden", "code": 403}),
        )
        .await;
    assert!(!task.await.unwrap().unwrap(), "not allowed: left as installed");
    server.done().await;
}

/// A CRD older than the operator makes the API server drop the fields it does
/// not know (here `p2pExposure`): the node reports that, instead of running
/// silently without them.
#[tokio::test]
async fn fields_an_outdated_crd_drops_are_reported_not_ignored() {
    let (client, mut server) = mock_client();
    let backend = nodes(client);
    let mut d = desired(3, false);
    d.spec.p2p_exposure = novacula_core::spec::P2pExposure::NodePort;
    let d2 = d.clone();
    let task = tokio::spawn(async move {
        let n = backend.reconcile(&d2).await;
        (n, backend.observe(&d2).await)
    });
    server.not_found("GET", CR).await;
    server
        .answer("PATCH", CR, 200, |b| {
            let mut pruned = b.clone();
            pruned["spec"]["node"].as_object_mut().unwrap().remove("p2pExposure");
            pruned
        })
        .await;
    server.not_found("GET", CR).await;
    let (n, observed) = task.await.unwrap();
    assert_eq!(n, 0, "not counted as applied");
    let observed = observed.unwrap();
    let message = observed.processes[0].message.clone().unwrap_or_default();
    assert_eq!(observed.processes[0].status, ObservedNodeStatus::Error, "{observed:?}");
    assert!(message.contains("CRD is older than this operator"), "{message}");
    server.done().await;
}

#[tokio::test]
async fn node_logs_come_from_the_pods_container_tail_then_since_the_last_line() {
    use k8s_openapi::api::core::v1::Pod;
    let (client, mut server) = mock_client();
    let backend = nodes(client.clone()).with_pod_logs(Api::<Pod>::namespaced(client, "default"));
    const LOG: &str = "/api/v1/namespaces/default/pods/n1-0/log";

    let read = tokio::spawn(async move { (backend.logs("n1", "execution", None, 2).await, backend) });
    let first = server
        .answer_text("GET", LOG, 200, "2026-12-02T10:00:00.100000000Z INFO [12-02|10:00:00.100] Imported new chain segment\n2026-12-02T10:00:01.500000000Z \u{1b}[33mWARN\u{1b}[0m Low peer count\n")
        .await;
    for part in ["container=execution", "tailLines=2", "timestamps=true", "limitBytes=1048576"] {
        assert!(first.query.contains(part), "{part} in {}", first.query);
    }
    let (got, backend) = read.await.unwrap();
    let (lines, cursor) = got.unwrap();
    let seen: Vec<(&str, LogLevel)> = lines.iter().map(|l| (l.text.as_str(), l.level)).collect();
    assert_eq!(seen, [("INFO [12-02|10:00:00.100] Imported new chain segment", LogLevel::Info), ("WARN Low peer count", LogLevel::Warn)]);
    assert_eq!(lines[0].at, novacula_core::Timestamp(1_796_205_600_100));
    assert_eq!(cursor, "2026-12-02T10:00:01.5Z");

    // next: since that second; the line already seen is dropped
    let read = tokio::spawn(async move { (backend.logs("n1", "execution", Some(&cursor), 2).await, backend) });
    let next = server.answer_text("GET", LOG, 200, "2026-12-02T10:00:01.500000000Z WARN Low peer count\n2026-12-02T10:00:02.000000000Z ERROR boom\n").await;
    assert!(next.query.contains("sinceTime=2026-12-02T10%3A00%3A01") && !next.query.contains("tailLines"), "{}", next.query);
    let (got, backend) = read.await.unwrap();
    let (lines, _) = got.unwrap();
    assert_eq!(lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["ERROR boom"]);

    // a pod not there (stopped, or not scheduled yet): no lines, not an error
    let read = tokio::spawn(async move { backend.logs("n1", "execution", None, 2).await });
    server.answer("GET", LOG, 404, |_| not_found()).await;
    assert!(read.await.unwrap().unwrap().0.is_empty());
    assert!(nodes(mock_client().0).logs("n1", "execution", None, 2).await.is_err(), "without pod access it says so");
}
