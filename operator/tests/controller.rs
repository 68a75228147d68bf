//! The controller's reconcile, request by request, against a scripted API server.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_core::spec::P2pExposure;
use novacula_core::DesiredState;
use novacula_executor::adapter::Adapters;
use novacula_operator::controller::{reconcile, Context, RECREATE_WAIT, RESYNC};
use novacula_operator::crd::BlockchainNode;
use novacula_operator::render::{CONFIG_ANNOTATION, RESTART_ANNOTATION};
use serde_json::{json, Value};
use std::sync::Arc;

const SECRET: &str = "/api/v1/namespaces/default/secrets/n1-secrets";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const CONFIG_MAP: &str = "/api/v1/namespaces/default/configmaps/n1-config";
const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets/n1";
const SERVICE: &str = "/api/v1/namespaces/default/services/n1";
const NETWORK_POLICY: &str = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/n1";
const POD: &str = "/api/v1/namespaces/default/pods/n1-0";
const STATUS: &str = "/apis/validatoros.com/v1alpha1/namespaces/default/blockchainnodes/n1/status";

struct World {
    secret_exists: bool,
    /// The StatefulSet status the API server reports after the apply.
    sts_status: Value,
    pod: Option<Value>,
}

#[derive(Debug)]
struct Seen {
    secret: Option<Value>,
    config_map: Value,
    sts: Value,
    sts_query: String,
    service: Value,
    network_policy: Value,
    status: Value,
}

fn sts_status(replicas: i32, ready: i32, generation: i64) -> Value {
    json!({"replicas": replicas, "readyReplicas": ready, "updatedReplicas": ready, "observedGeneration": generation, "currentRevision": "r1", "updateRevision": "r1"})
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "n1-0", "namespace": "default"}, "status": {"containerStatuses": containers}})
}

fn container(name: &str, ready: bool, state: Value) -> Value {
    json!({"name": name, "ready": ready, "restartCount": 0, "image": "x", "imageID": "", "state": state})
}

/// Answer the status patch with the CR carrying it; returns the status written.
async fn status_patch(server: &mut ApiServer, cr_json: &Value) -> Value {
    let seen = server
        .answer("PATCH", STATUS, 200, |b| {
            let mut out = cr_json.clone();
            out["status"] = b["status"].clone();
            out
        })
        .await;
    seen.body["status"].clone()
}

/// An object as this node's controller made it (owner reference to CR uid-1).
fn owned(kind: &str, api_version: &str, name: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "default",
        "ownerReferences": [{"apiVersion": "validatoros.com/v1alpha1", "kind": "BlockchainNode", "name": "n1", "uid": "uid-1", "controller": true}]}})
}

/// The reads that come before any write: each object either does not exist yet or is this node's.
async fn ownership_reads(server: &mut ApiServer, exist: bool) {
    for (path, kind, version, name) in [
        (SECRET, "Secret", "v1", "n1-secrets"),
        (CONFIG_MAP, "ConfigMap", "v1", "n1-config"),
        (STS, "StatefulSet", "apps/v1", "n1"),
        (SERVICE, "Service", "v1", "n1"),
        (NETWORK_POLICY, "NetworkPolicy", "networking.k8s.io/v1", "n1"),
    ] {
        if exist {
            server.answer("GET", path, 200, |_| owned(kind, version, name)).await;
        } else {
            server.not_found("GET", path).await;
        }
    }
}

/// Run one reconcile of `cr`, answering the requests it must make, in order.
async fn reconcile_in(cr: BlockchainNode, world: World) -> Seen {
    let (client, mut server) = mock_client();
    let cr_json = serde_json::to_value(&cr).unwrap();
    let task = tokio::spawn(reconcile(Arc::new(cr), Arc::new(Context { client, adapters: Adapters::standard().with_demo_chain(), pods: Default::default() })));
    ownership_reads(&mut server, world.secret_exists).await;
    let secret = if world.secret_exists { None } else { Some(server.answer("POST", SECRETS, 201, std::clone::Clone::clone).await.body) };
    let config_map = server.echo("PATCH", CONFIG_MAP).await.body;
    let status = world.sts_status.clone();
    let sts = server
        .answer("PATCH", STS, 200, |b| {
            let mut out = b.clone();
            out["metadata"]["generation"] = json!(status["observedGeneration"]);
            out["status"] = status;
            out
        })
        .await;
    let service = server.echo("PATCH", SERVICE).await.body;
    let network_policy = server.echo("PATCH", NETWORK_POLICY).await.body;
    if sts.body["spec"]["replicas"] != 0 {
        match world.pod {
            Some(p) => server.answer("GET", POD, 200, |_| p).await,
            None => server.not_found("GET", POD).await,
        };
    }
    let status = status_patch(&mut server, &cr_json).await;
    let action =
        tokio::time::timeout(std::time::Duration::from_secs(5), task).await.expect("reconcile made no further request").unwrap().expect("reconcile succeeds");
    assert_eq!(action, kube::runtime::controller::Action::requeue(RESYNC));
    server.done().await;
    Seen { secret, config_map, sts: sts.body, sts_query: sts.query, service, network_policy, status }
}

fn pod_annotations(sts: &Value) -> &Value {
    &sts["spec"]["template"]["metadata"]["annotations"]
}

#[tokio::test]
async fn create_applies_config_secret_statefulset_and_service() {
    let seen = reconcile_in(cr(eth_spec("n1"), 1), World { secret_exists: false, sts_status: sts_status(0, 0, 1), pod: None }).await;

    // server-side apply as the operator's field manager
    assert!(seen.sts_query.contains("fieldManager=novacula-operator") && seen.sts_query.contains("force=true"), "{}", seen.sts_query);
    // the engine JWT is generated once, into a Secret; client config goes to the ConfigMap
    let secret = seen.secret.expect("secret created");
    assert_eq!(secret["stringData"]["jwt.hex"].as_str().map(str::len), Some(64));
    assert_eq!(seen.config_map["metadata"]["ownerReferences"][0]["uid"], "uid-1");

    let sts = &seen.sts;
    assert_eq!(sts["metadata"]["ownerReferences"][0]["kind"], "BlockchainNode");
    assert_eq!(sts["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["persistentVolumeClaimRetentionPolicy"], json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
    let claims = sts["spec"]["volumeClaimTemplates"].as_array().unwrap();
    assert_eq!(claims.len(), 2, "one claim per storage volume");
    assert_eq!(claims[0]["metadata"]["name"], "chain");
    assert_eq!(claims[0]["spec"]["resources"]["requests"]["storage"], "500Gi");
    assert_eq!(claims[0]["spec"]["storageClassName"], "fast-ssd");
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["command"], json!(["mkdir", "-p", "/novacula/data/execution", "/novacula/data/consensus"]));
    let geth = &pod["containers"][0];
    assert_eq!((geth["name"].as_str(), geth["image"].as_str()), (Some("execution"), Some("ethereum/client-go:v1.14.11")));
    assert_eq!(geth["command"], Value::Null, "the image's own entrypoint (geth), not the agent's host path");
    assert_eq!(geth["args"][0], "--sepolia");
    assert_eq!(geth["resources"], json!({"requests": {"cpu": "2000m", "memory": "8192Mi"}, "limits": {"memory": "10240Mi"}}), "memory headroom, no CPU limit");
    assert_eq!(pod["containers"][1]["image"], "sigp/lighthouse:v5.3.0");
    assert_eq!(pod["containers"][1]["command"], json!(["lighthouse"]), "the lighthouse image has no entrypoint");
    assert_eq!(pod["containers"][1]["args"][0], "bn");
    assert_eq!(pod_annotations(sts)[RESTART_ANNOTATION], "0");

    assert_eq!(seen.service["spec"]["clusterIP"], "None");
    let published: Vec<&str> = seen.service["spec"]["ports"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(["el-http", "el-p2p", "el-p2p-u", "cl-http", "cl-p2p", "cl-quic-u"].iter().all(|n| published.contains(n)), "{published:?}");
    assert!(!published.iter().any(|n| n.contains("engine")), "the engine API stays inside the pod: {published:?}");
    // Peers reach P2P; only pods of the namespace reach RPC, REST and metrics; nobody the engine API.
    let np = &seen.network_policy["spec"];
    assert_eq!(np["podSelector"]["matchLabels"]["app.kubernetes.io/instance"], "n1");
    assert_eq!(np["policyTypes"], json!(["Ingress"]));
    let rules = np["ingress"].as_array().unwrap();
    let ports_of = |r: &Value| {
        r["ports"].as_array().unwrap().iter().map(|p| (p["port"].as_i64().unwrap(), p["protocol"].as_str().unwrap().to_string())).collect::<Vec<_>>()
    };
    let open = rules.iter().find(|r| r.get("from").is_none()).expect("a rule for peers");
    assert!(ports_of(open).contains(&(30303, "UDP".into())) && ports_of(open).contains(&(9000, "TCP".into())), "{open}");
    assert!(!ports_of(open).iter().any(|(p, _)| [8545, 5052].contains(p)), "RPC is not open to the world: {open}");
    let inside = rules.iter().find(|r| r.get("from").is_some()).expect("a rule for the namespace");
    assert_eq!(inside["from"], json!([{"podSelector": {}}]));
    assert!(ports_of(inside).contains(&(8545, "TCP".into())) && ports_of(inside).contains(&(5052, "TCP".into())));
    assert!(!rules.iter().flat_map(ports_of).any(|(p, _)| p == 8551), "the engine API is reachable from nowhere");

    // The restricted Pod Security Standard, and no API token in a pod that never calls the API.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!((pod["securityContext"]["runAsUser"].as_i64(), pod["securityContext"]["fsGroup"].as_i64()), (Some(10001), Some(10001)));
    assert_eq!(pod["securityContext"]["fsGroupChangePolicy"], "OnRootMismatch");
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["terminationGracePeriodSeconds"], 300, "an execution client gets minutes to flush");
    let every: Vec<&Value> = pod["initContainers"].as_array().unwrap().iter().chain(pod["containers"].as_array().unwrap()).collect();
    for c in &every {
        let sc = &c["securityContext"];
        assert_eq!((sc["allowPrivilegeEscalation"].as_bool(), sc["readOnlyRootFilesystem"].as_bool()), (Some(false), Some(true)), "{c}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{c}");
        assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string(), "resources on every container: {c}");
        let tmp = c["volumeMounts"].as_array().unwrap().iter().any(|m| m["mountPath"] == "/tmp");
        assert!(tmp || c["name"] == "prepare", "a writable /tmp beside the read-only root: {c}");
    }
    // Clients listen on the pod's address (the Service reaches them); the engine API on localhost only.
    let args: Vec<&str> = geth["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.contains(&"--http.addr=0.0.0.0") && args.contains(&"--authrpc.addr=127.0.0.1") && args.contains(&"--http.vhosts=*"), "{args:?}");
    let ports: Vec<(&str, i64, &str)> = geth["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["containerPort"].as_i64().unwrap(), p["protocol"].as_str().unwrap()))
        .collect();
    assert!(
        ports.contains(&("el-p2p", 30303, "TCP")) && ports.contains(&("el-p2p-u", 30303, "UDP")) && ports.contains(&("el-engine", 8551, "TCP")),
        "{ports:?}"
    );
    // Probes from the adapter: a lenient liveness, readiness from the client's own health.
    assert_eq!(geth["readinessProbe"]["tcpSocket"]["port"], 8545);
    assert_eq!(geth["livenessProbe"]["failureThreshold"], 10);
    assert_eq!(geth["startupProbe"]["failureThreshold"], 60);
    let lighthouse = &pod["containers"][1];
    assert_eq!(lighthouse["readinessProbe"]["httpGet"]["path"], "/eth/v1/node/health");
    assert_eq!(lighthouse["readinessProbe"]["httpGet"]["port"], 5052);
    // not rolled out yet: nothing observed, processes starting
    assert_eq!(seen.status["phase"], "configuring", "the control plane's words: still applying revision 1");
    assert_eq!(seen.status["observedRevision"], 0);
    assert_eq!(seen.status["processes"][0], json!({"name": "execution", "status": "starting", "sync": null, "message": null}));
}

#[tokio::test]
async fn ready_pod_reports_running_at_the_applied_revision() {
    let ready = pod(json!([container("execution", true, json!({"running": {}})), container("consensus", true, json!({"running": {}})),]));
    let seen = reconcile_in(cr(eth_spec("n1"), 4), World { secret_exists: true, sts_status: sts_status(1, 1, 3), pod: Some(ready) }).await;
    assert!(seen.secret.is_none(), "an existing secret is never rewritten");
    assert_eq!(seen.status["phase"], "running");
    assert_eq!(seen.status["observedRevision"], 4);
    assert!(seen.status["processes"].as_array().unwrap().iter().all(|p| p["status"] == "running"));
}

#[tokio::test]
async fn crash_looping_container_is_an_error_with_its_reason() {
    let crashing = pod(json!([
        container("execution", false, json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}})),
        container("consensus", true, json!({"running": {}})),
    ]));
    let seen = reconcile_in(cr(eth_spec("n1"), 2), World { secret_exists: true, sts_status: sts_status(1, 0, 2), pod: Some(crashing) }).await;
    assert_eq!(seen.status["phase"], "error");
    assert_eq!(seen.status["observedRevision"], 0);
    assert_eq!(seen.status["processes"][0]["status"], "error");
    assert!(seen.status["processes"][0]["message"].as_str().unwrap().starts_with("CrashLoopBackOff"));
}

#[tokio::test]
async fn stop_scales_to_zero_and_reports_stopped_without_reading_pods() {
    let mut spec = eth_spec("n1");
    spec.desired_state = DesiredState::Stopped;
    let seen = reconcile_in(cr(spec, 5), World { secret_exists: true, sts_status: sts_status(0, 0, 6), pod: None }).await;
    assert_eq!(seen.sts["spec"]["replicas"], 0);
    assert_eq!(seen.status["phase"], "stopped");
    assert_eq!(seen.status["observedRevision"], 5);
    assert!(seen.status["processes"].as_array().unwrap().iter().all(|p| p["status"] == "stopped"));
}

#[tokio::test]
async fn restart_bumps_the_pod_template_annotation_only() {
    let world = || World { secret_exists: true, sts_status: sts_status(1, 0, 1), pod: None };
    let before = reconcile_in(cr(eth_spec("n1"), 1), world()).await;
    let mut spec = eth_spec("n1");
    spec.restart_generation = 1;
    let after = reconcile_in(cr(spec, 2), world()).await;
    assert_eq!(pod_annotations(&after.sts)[RESTART_ANNOTATION], "1");
    assert_eq!(pod_annotations(&after.sts)[CONFIG_ANNOTATION], pod_annotations(&before.sts)[CONFIG_ANNOTATION]);
    let strip = |v: &Value| {
        let mut v = v.clone();
        v["spec"]["template"]["metadata"]["annotations"] = Value::Null;
        v
    };
    assert_eq!(strip(&before.sts), strip(&after.sts), "a restart changes nothing else in the StatefulSet");
}

#[tokio::test]
async fn config_change_rewrites_the_config_map_and_rolls_the_pod() {
    let world = || World { secret_exists: true, sts_status: sts_status(1, 0, 1), pod: None };
    let demo = |level: &str| {
        let mut s = eth_spec("n1");
        s.chain = "demo".into();
        s.network = "local".into();
        s.clients = vec![client("main", "standin", "1.0.0")];
        s.clients[0].config_overrides.insert("log-level".into(), level.into());
        s.storage.clear();
        s
    };
    let before = reconcile_in(cr(demo("info"), 1), world()).await;
    let after = reconcile_in(cr(demo("debug"), 2), world()).await;
    assert!(before.config_map["data"]["standin.conf"].as_str().unwrap().contains("info"));
    assert!(after.config_map["data"]["standin.conf"].as_str().unwrap().contains("debug"));
    assert_ne!(pod_annotations(&after.sts)[CONFIG_ANNOTATION], pod_annotations(&before.sts)[CONFIG_ANNOTATION]);
    // no storage volumes: the data dir is an emptyDir, and no claims are made
    assert!(after.sts["spec"]["volumeClaimTemplates"].is_null());
    assert_eq!(after.sts["spec"]["template"]["spec"]["volumes"][1], json!({"name": "data", "emptyDir": {}}));
}

#[tokio::test]
async fn a_cr_being_deleted_is_left_to_garbage_collection() {
    let mut node = cr(eth_spec("n1"), 3);
    node.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()));
    let (client, server) = mock_client();
    let action =
        reconcile(Arc::new(node), Arc::new(Context { client, adapters: Adapters::standard().with_demo_chain(), pods: Default::default() })).await.unwrap();
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    server.done().await;
}

#[tokio::test]
async fn unrenderable_spec_reports_error_status_and_applies_nothing() {
    let mut spec = eth_spec("n1");
    spec.clients[0].client = "besu-classic".into();
    let (client, mut server) = mock_client();
    let node = cr(spec, 2);
    let cr_json = serde_json::to_value(&node).unwrap();
    let task =
        tokio::spawn(reconcile(Arc::new(node), Arc::new(Context { client, adapters: Adapters::standard().with_demo_chain(), pods: Default::default() })));
    let status = status_patch(&mut server, &cr_json).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), task).await.expect("no further request").unwrap().unwrap();
    server.done().await;
    assert_eq!(status["phase"], "error");
    assert!(status["processes"][0]["message"].as_str().unwrap().contains("besu-classic"));
}

fn pvc(name: &str, size: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "default"}, "spec": {"resources": {"requests": {"storage": size}}}})
}

fn invalid(message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": "Invalid", "code": 422})
}

const FIXED_FIELDS: &str = "StatefulSet.apps \"n1\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

#[tokio::test]
async fn storage_growth_recreates_the_statefulset_keeping_pod_and_claims() {
    let mut spec = eth_spec("n1");
    spec.storage[0].size_gib = 600; // chain: 500 -> 600 GiB; ancient unchanged
    let (client, mut server) = mock_client();
    let task = tokio::spawn(reconcile(
        Arc::new(cr(spec, 2)),
        Arc::new(Context { client, adapters: Adapters::standard().with_demo_chain(), pods: Default::default() }),
    ));
    ownership_reads(&mut server, true).await;
    server.echo("PATCH", CONFIG_MAP).await;
    // the API server refuses new claim templates on an existing StatefulSet
    server.answer("PATCH", STS, 422, |_| invalid(FIXED_FIELDS)).await;
    // so it goes, orphaning its pod and claims...
    let deleted = server
        .answer("DELETE", STS, 200, |_| json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "n1", "namespace": "default", "deletionTimestamp": "2026-11-25T00:00:00Z"}}))
        .await;
    assert_eq!(deleted.body["propagationPolicy"], "Orphan", "the pod and its volumes stay: {deleted:?}");
    // ...the grown volume's claim is raised, the other left alone...
    server.answer("GET", "/api/v1/namespaces/default/persistentvolumeclaims/chain-n1-0", 200, |_| pvc("chain-n1-0", "500Gi")).await;
    let grown = server.answer("PATCH", "/api/v1/namespaces/default/persistentvolumeclaims/chain-n1-0", 200, |_| pvc("chain-n1-0", "600Gi")).await;
    assert_eq!(grown.body, json!({"spec": {"resources": {"requests": {"storage": "600Gi"}}}}));
    server.answer("GET", "/api/v1/namespaces/default/persistentvolumeclaims/ancient-n1-0", 200, |_| pvc("ancient-n1-0", "1Ti")).await;
    // ...and the next pass, shortly, creates the StatefulSet anew
    let action = tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap().expect("reconcile succeeds");
    assert_eq!(action, kube::runtime::controller::Action::requeue(RECREATE_WAIT));
    server.done().await;
}

#[tokio::test]
async fn objects_the_api_server_refuses_put_the_reason_in_the_status() {
    let (client, mut server) = mock_client();
    let mut node = cr(eth_spec("n1"), 3);
    node.status =
        Some(novacula_operator::crd::BlockchainNodeStatus { phase: "running".into(), observed_revision: 2, processes: vec![], extra_objects: vec![] });
    let node_json = serde_json::to_value(&node).unwrap();
    let task =
        tokio::spawn(reconcile(Arc::new(node), Arc::new(Context { client, adapters: Adapters::standard().with_demo_chain(), pods: Default::default() })));
    ownership_reads(&mut server, true).await;
    server.echo("PATCH", CONFIG_MAP).await;
    server.answer("PATCH", STS, 422, |_| invalid("StatefulSet.apps \"n1\" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: \"9\": must be less than or equal to memory limit")).await;
    let status = status_patch(&mut server, &node_json).await;
    assert_eq!(status["phase"], "error");
    assert_eq!(status["observedRevision"], 2, "the revision that did apply stays reported");
    assert!(status["processes"][0]["message"].as_str().unwrap().contains("must be less than or equal to memory limit"), "{status}");
    let action = tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap().expect("handled, not retried as a failure");
    assert_eq!(action, kube::runtime::controller::Action::requeue(RESYNC));
    server.done().await;
}

#[test]
fn quantities_parse_to_bytes() {
    use novacula_operator::controller::quantity_bytes;
    assert_eq!(quantity_bytes("500Gi"), Some(500 << 30));
    assert_eq!(quantity_bytes("1Ti"), Some(1 << 40));
    assert_eq!(quantity_bytes("2G"), Some(2_000_000_000));
    assert_eq!(quantity_bytes("1024"), Some(1024));
    assert_eq!(quantity_bytes("1.5Gi"), None, "fractions are not what the operator writes");
    assert_eq!(quantity_bytes("Gi"), None);
}

#[tokio::test]
async fn sidecar_runs_its_own_image_with_the_spec_arguments() {
    // The bare-metal rendering put the image name in command[0], which would crash-loop.
    let mut spec = eth_spec("n1");
    spec.sidecars.push(novacula_core::spec::Sidecar {
        name: "exporter".into(),
        image: "ghcr.io/ethpandaops/ethereum-metrics-exporter:0.24.0".into(),
        command: vec!["--metrics-port=9090".into()],
        env: [("LOG_LEVEL".to_string(), "info".to_string()), ("LD_PRELOAD".to_string(), "/x.so".to_string())].into(),
        volumes: vec![],
    });
    let mut backup = spec.sidecars[0].clone();
    backup.name = "backup".into();
    backup.volumes = vec![
        novacula_core::spec::SidecarVolume { name: "chain".into(), writable: false },
        novacula_core::spec::SidecarVolume { name: "ancient".into(), writable: true },
    ];
    spec.sidecars.push(backup);
    let seen = reconcile_in(cr(spec, 1), World { secret_exists: false, sts_status: sts_status(0, 0, 1), pod: None }).await;
    let exporter = &seen.sts["spec"]["template"]["spec"]["containers"][2];
    assert_eq!(exporter["name"], "exporter");
    assert_eq!(exporter["image"], "ghcr.io/ethpandaops/ethereum-metrics-exporter:0.24.0");
    assert_eq!(exporter["command"], Value::Null, "the image's entrypoint is the program");
    assert_eq!(exporter["args"], json!(["--metrics-port=9090"]));
    assert_eq!(exporter["env"], json!([{"name": "LOG_LEVEL", "value": "info"}]));
    // No chain volume, no config (the engine JWT): only its own /tmp; the restricted profile, resources.
    let mounts: Vec<&str> = exporter["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
    assert_eq!(mounts, ["/tmp"]);
    assert_eq!(exporter["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(exporter["resources"]["limits"]["memory"].is_string());
    // A sidecar that declares volumes sees those, read-only unless declared writable, and still no config.
    let backup = &seen.sts["spec"]["template"]["spec"]["containers"][3];
    let mounts: Vec<(&str, &str, bool)> = backup["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["mountPath"].as_str().unwrap(), m["readOnly"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(mounts, [("chain", "/novacula/data", true), ("ancient", "/ancient", false), ("tmp", "/tmp", false)]);
}

/// An operator upgraded by image alone runs under the chart's older Role,
/// which may not grant NetworkPolicies: its nodes go on without one.
#[tokio::test]
async fn without_permission_for_network_policies_the_node_still_runs() {
    let (client, mut server) = mock_client();
    let node = cr(eth_spec("n1"), 1);
    let cr_json = serde_json::to_value(&node).unwrap();
    let task = tokio::spawn(reconcile(Arc::new(node), Arc::new(Context { client, adapters: Adapters::standard(), pods: Default::default() })));
    for path in [SECRET, CONFIG_MAP, STS, SERVICE] {
        server.not_found("GET", path).await;
    }
    let forbidden =
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "forbidden", "reason": "Forbidden", "code": 403});
    server.answer("GET", NETWORK_POLICY, 403, |_| forbidden).await;
    server.answer("POST", SECRETS, 201, std::clone::Clone::clone).await;
    server.echo("PATCH", CONFIG_MAP).await;
    server
        .answer("PATCH", STS, 200, |b| {
            let mut out = b.clone();
            out["metadata"]["generation"] = json!(1);
            out["status"] = sts_status(0, 0, 1);
            out
        })
        .await;
    server.echo("PATCH", SERVICE).await;
    // no NetworkPolicy is applied; the node's pod is read as usual
    server.not_found("GET", POD).await;
    let status = status_patch(&mut server, &cr_json).await;
    assert_ne!(status["phase"], "error", "{status}");
    tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap().expect("reconciled");
    server.done().await;
}

#[tokio::test]
async fn objects_someone_else_made_are_never_adopted() {
    // A ConfigMap of the node's name exists, made by hand: no owner reference.
    let (client, mut server) = mock_client();
    let node = cr(eth_spec("n1"), 1);
    let node_json = serde_json::to_value(&node).unwrap();
    let task = tokio::spawn(reconcile(Arc::new(node), Arc::new(Context { client, adapters: Adapters::standard(), pods: Default::default() })));
    server.not_found("GET", SECRET).await;
    server
        .answer(
            "GET",
            CONFIG_MAP,
            200,
            |_| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n1-config", "namespace": "default"}, "data": {"theirs": "1"}}),
        )
        .await;
    // nothing is written: only the error status
    let status = status_patch(&mut server, &node_json).await;
    assert_eq!(status["phase"], "error");
    let message = status["processes"][0]["message"].as_str().unwrap();
    assert!(message.contains("ConfigMap \"n1-config\" already exists and does not belong"), "{message}");
    let action = tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap().expect("handled");
    assert_eq!(action, kube::runtime::controller::Action::requeue(RESYNC));
    server.done().await;
}

/// A node exposing P2P gets a LoadBalancer Service of its peer ports, listed
/// in its status; once the spec says `none` again, that Service is deleted,
/// only if it is this node's, and the list is emptied.
#[tokio::test]
async fn a_p2p_service_follows_the_spec_and_is_deleted_when_no_longer_wanted() {
    const P2P: &str = "/api/v1/namespaces/default/services/n1-p2p";
    // (exposure, listed before, who owns the Service now) -> (applied Service, DELETE body, status)
    let run = |exposure: P2pExposure, before: Vec<String>, owner_uid: &'static str| async move {
        let (client, mut server) = mock_client();
        let mut spec = eth_spec("n1");
        spec.p2p_exposure = exposure;
        let mut node = cr(spec, 2);
        node.status =
            Some(novacula_operator::crd::BlockchainNodeStatus { phase: "running".into(), observed_revision: 2, processes: vec![], extra_objects: before });
        let node_json = serde_json::to_value(&node).unwrap();
        let task = tokio::spawn(reconcile(Arc::new(node), Arc::new(Context { client, adapters: Adapters::standard(), pods: Default::default() })));
        ownership_reads(&mut server, true).await;
        server.echo("PATCH", CONFIG_MAP).await;
        server
            .answer("PATCH", STS, 200, |b| {
                let mut out = b.clone();
                out["status"] = sts_status(1, 1, 0);
                out
            })
            .await;
        server.echo("PATCH", SERVICE).await;
        server.echo("PATCH", NETWORK_POLICY).await;
        let mut p2p = None;
        if exposure != P2pExposure::None {
            server.not_found("GET", P2P).await;
            p2p = Some(server.echo("PATCH", P2P).await.body);
        }
        server.not_found("GET", POD).await;
        let mut deleted = None;
        if exposure == P2pExposure::None {
            let mut existing = owned("Service", "v1", "n1-p2p");
            existing["metadata"]["uid"] = json!("svc-uid");
            existing["metadata"]["ownerReferences"][0]["uid"] = json!(owner_uid);
            server.answer("GET", P2P, 200, |_| existing).await;
            if owner_uid == "uid-1" {
                deleted = Some(server.answer("DELETE", P2P, 200, |_| json!({"kind": "Status", "status": "Success"})).await.body);
            }
        }
        let status = status_patch(&mut server, &node_json).await;
        task.await.unwrap().unwrap();
        server.done().await;
        (p2p, deleted, status)
    };

    let (svc, deleted, status) = run(P2pExposure::LoadBalancer, vec![], "uid-1").await;
    let svc = svc.expect("P2P Service applied");
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Local");
    assert_eq!(svc["spec"]["allocateLoadBalancerNodePorts"], false);
    let ports: Vec<(i64, String)> =
        svc["spec"]["ports"].as_array().unwrap().iter().map(|p| (p["port"].as_i64().unwrap(), p["protocol"].as_str().unwrap().to_string())).collect();
    // geth's P2P and lighthouse's, TCP and UDP; never RPC, REST, metrics or the engine API.
    assert!(ports.contains(&(30303, "TCP".into())) && ports.contains(&(30303, "UDP".into())) && ports.contains(&(9000, "UDP".into())), "{ports:?}");
    assert!(!ports.iter().any(|(p, _)| [8545, 8551, 5052, 6060].contains(p)), "{ports:?}");
    assert!(deleted.is_none());
    assert_eq!(status["extraObjects"], json!(["Service/n1-p2p"]));

    let (svc, deleted, status) = run(P2pExposure::None, vec!["Service/n1-p2p".into()], "uid-1").await;
    assert!(svc.is_none());
    assert_eq!(deleted.expect("deleted")["preconditions"]["uid"], "svc-uid", "only that very object");
    assert_eq!(status["extraObjects"], json!([]), "written empty, so the merge patch clears the list");

    // A Service of that name that is not this node's is never deleted.
    let (_, deleted, status) = run(P2pExposure::None, vec!["Service/n1-p2p".into()], "someone-else").await;
    assert!(deleted.is_none());
    assert_eq!(status["extraObjects"], json!([]));
}

#[test]
fn node_ports_keep_their_number_when_the_cluster_range_allows() {
    let mut spec = eth_spec("n1");
    spec.p2p_exposure = P2pExposure::NodePort;
    let r = novacula_operator::render::render(&cr(spec, 1), &Adapters::standard()).unwrap();
    let svc = serde_json::to_value(r.p2p_service.unwrap()).unwrap();
    assert_eq!(svc["spec"]["type"], "NodePort");
    let node_port = |port: i64| svc["spec"]["ports"].as_array().unwrap().iter().find(|p| p["port"] == port).unwrap()["nodePort"].clone();
    assert_eq!(node_port(30303), json!(30303), "geth announces 30303: the node port is that number");
    assert_eq!(node_port(9000), Value::Null, "outside 30000-32767 (a spec without allocated ports) Kubernetes picks one");
}

#[test]
fn pods_get_a_disruption_budget_and_spread_when_asked() {
    use novacula_operator::render::{render_with, AntiAffinity, NodePods};
    let node = cr(eth_spec("n1"), 1);
    let plain = render_with(&node, &Adapters::standard(), NodePods::default()).unwrap();
    assert!(plain.disruption_budget.is_none());
    assert!(serde_json::to_value(&plain.stateful_set).unwrap()["spec"]["template"]["spec"].get("affinity").is_none());

    let r = render_with(&node, &Adapters::standard(), NodePods { disruption_budget: true, anti_affinity: AntiAffinity::Required }).unwrap();
    let pdb = serde_json::to_value(r.disruption_budget.unwrap()).unwrap();
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"], "n1");
    let sts = serde_json::to_value(&r.stateful_set).unwrap();
    let term = &sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(term["labelSelector"]["matchLabels"], json!({"validatoros.com/chain": "ethereum", "validatoros.com/network": "sepolia"}));
    let labels = &sts["spec"]["template"]["metadata"]["labels"];
    assert_eq!((labels["validatoros.com/chain"].as_str(), labels["validatoros.com/network"].as_str()), (Some("ethereum"), Some("sepolia")));
}

#[test]
fn each_client_mounts_only_the_volumes_it_uses() {
    let r = novacula_operator::render::render(&cr(eth_spec("n1"), 1), &Adapters::standard()).unwrap();
    let sts = serde_json::to_value(&r.stateful_set).unwrap();
    let mounts = |i: usize| -> Vec<String> {
        sts["spec"]["template"]["spec"]["containers"][i]["volumeMounts"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
    };
    assert!(mounts(0).contains(&"ancient".to_string()), "geth keeps its ancient store there: {:?}", mounts(0));
    assert!(!mounts(1).contains(&"ancient".to_string()), "lighthouse has no use for it: {:?}", mounts(1));
    let args = sts["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap();
    assert!(args.contains(&json!("--datadir.ancient=/ancient")), "{args:?}");
}
