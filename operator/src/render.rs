//! Pure rendering of a `BlockchainNode` into the objects that run it: a
//! ConfigMap (client config from the chain adapter), a Secret (generated once,
//! e.g. the engine JWT), a StatefulSet and a headless Service.

use crate::crd::BlockchainNode;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapProjection, Container, EnvVar, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, ProjectedVolumeSource,
    ResourceRequirements, Secret, SecretProjection, Service, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeProjection, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use novacula_core::fingerprint::fingerprint;
use novacula_core::reconcile::plan;
use novacula_core::spec::{NodeSpec, Resources};
use novacula_core::DesiredState;
use novacula_executor::adapter::{Adapters, NodePaths, Probe, Program, RenderedUnit};
use std::collections::BTreeMap;

/// Inside the pod, the node's files live where the agent puts them on a host.
pub const ROOT: &str = "/novacula";
pub const DATA_DIR: &str = "/novacula/data";
pub const CONFIG_DIR: &str = "/novacula/config";
/// Pod-template annotation bumped by a restart: a rollout restart.
pub const RESTART_ANNOTATION: &str = "validatoros.com/restart-generation";
/// Pod-template annotation carrying the config fingerprint: a config change rolls the pod.
pub const CONFIG_ANNOTATION: &str = "validatoros.com/config-fingerprint";
/// Image of the init container that prepares the data directories.
pub const INIT_IMAGE: &str = "busybox:1.36";

#[derive(Debug, Clone)]
pub struct Rendered {
    pub config_map: ConfigMap,
    /// Files generated once; created when absent and never overwritten.
    pub secret: Secret,
    pub stateful_set: StatefulSet,
    pub service: Service,
}

pub fn config_map_name(node: &str) -> String {
    format!("{node}-config")
}

pub fn secret_name(node: &str) -> String {
    format!("{node}-secrets")
}

/// The container image of a client when the spec names none.
pub fn default_image(client: &str, version: &str) -> String {
    match client {
        "geth" => format!("ethereum/client-go:v{}", version.trim_start_matches('v')),
        "lighthouse" => format!("sigp/lighthouse:v{}", version.trim_start_matches('v')),
        "standin" => INIT_IMAGE.to_string(),
        other => format!("{other}:{version}"),
    }
}

pub fn labels(node: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "blockchain-node".to_string()),
        ("app.kubernetes.io/instance".to_string(), node.to_string()),
        ("app.kubernetes.io/managed-by".to_string(), crate::crd::MANAGER.to_string()),
    ])
}

fn paths() -> NodePaths {
    NodePaths { root: ROOT.into() }
}

fn meta(cr: &BlockchainNode, name: String, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: cr.namespace(),
        labels: Some(labels(&cr.name_any())),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

fn resources(r: &Resources) -> Option<ResourceRequirements> {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if r.cpu_millis > 0 {
        requests.insert("cpu".to_string(), Quantity(format!("{}m", r.cpu_millis)));
    }
    if r.memory_mib > 0 {
        // Memory is not compressible: the limit equals the request so the node is never overcommitted.
        requests.insert("memory".to_string(), Quantity(format!("{}Mi", r.memory_mib)));
        limits.insert("memory".to_string(), Quantity(format!("{}Mi", r.memory_mib)));
    }
    (!requests.is_empty()).then(|| ResourceRequirements { requests: Some(requests), limits: (!limits.is_empty()).then_some(limits), ..Default::default() })
}

fn probe_port(p: &Probe) -> Option<i32> {
    match p {
        Probe::Alive => None,
        Probe::EthJsonRpc { url } | Probe::BeaconApi { url } => url.rsplit(':').next()?.trim_end_matches('/').parse().ok(),
    }
}

fn mounts(spec: &NodeSpec) -> Vec<VolumeMount> {
    let mut m = vec![
        VolumeMount { name: "data".into(), mount_path: DATA_DIR.into(), ..Default::default() },
        VolumeMount { name: "config".into(), mount_path: CONFIG_DIR.into(), read_only: Some(true), ..Default::default() },
    ];
    // Every storage volume at its own path too; the first one also holds the clients' data dirs.
    for v in &spec.storage {
        if v.mount_path != DATA_DIR {
            m.push(VolumeMount { name: v.name.clone(), mount_path: v.mount_path.clone(), ..Default::default() });
        }
    }
    if let Some(first) = spec.storage.first() {
        m[0].name = first.name.clone();
    }
    m
}

/// The container command of a logical program: a client's image carries the
/// client on its PATH under its own name.
fn program_command(program: &Program) -> Result<String, String> {
    match program {
        Program::Client { client, .. } => Ok(client.clone()),
        Program::Shell => Ok("/bin/sh".into()),
        // sidecars are containers of their own image (`sidecar_container`)
        Program::Sidecar { name } => Err(format!("sidecar program {name:?} cannot run inside a client's container")),
    }
}

fn container(name: &str, image: String, unit: &RenderedUnit, spec: &NodeSpec, res: Option<ResourceRequirements>) -> Result<Container, String> {
    let mut command = vec![program_command(&unit.program)?];
    command.extend(unit.args.iter().cloned());
    let env: Vec<EnvVar> = unit.env.iter().map(|(k, v)| EnvVar { name: k.clone(), value: Some(v.clone()), ..Default::default() }).collect();
    Ok(Container {
        name: name.to_string(),
        image: Some(image),
        command: Some(command),
        env: (!env.is_empty()).then_some(env),
        resources: res,
        volume_mounts: Some(mounts(spec)),
        ..Default::default()
    })
}

/// A sidecar is its image's own program (the allowlisted image is the
/// program), given the spec's arguments; never a command line of the spec's.
fn sidecar_container(s: &novacula_core::spec::Sidecar, spec: &NodeSpec) -> Container {
    let env: Vec<EnvVar> = s
        .env
        .iter()
        .filter(|(k, _)| !novacula_core::validate::env_key_forbidden(k))
        .map(|(k, v)| EnvVar { name: k.clone(), value: Some(v.clone()), ..Default::default() })
        .collect();
    Container {
        name: s.name.clone(),
        image: Some(s.image.clone()),
        args: (!s.command.is_empty()).then(|| s.command.clone()),
        env: (!env.is_empty()).then_some(env),
        volume_mounts: Some(mounts(spec)),
        ..Default::default()
    }
}

/// Render every object for `cr`. Fails only when the adapter cannot render the spec.
pub fn render(cr: &BlockchainNode, adapters: &Adapters) -> Result<Rendered, String> {
    let name = cr.name_any();
    let spec = &cr.spec.node;
    let owner = cr.controller_owner_ref(&()).ok_or("BlockchainNode has no uid yet")?;
    let mut config = BTreeMap::new();
    let mut once = BTreeMap::new();
    let mut containers = Vec::new();
    let mut ports = Vec::new();
    for u in plan(spec) {
        if let Some(s) = spec.sidecars.iter().find(|s| s.name == u.unit) {
            containers.push(sidecar_container(s, spec));
            continue;
        }
        let unit = adapters.render(spec, &u.unit, &paths())?;
        for f in &unit.files {
            let target = if f.overwrite { &mut config } else { &mut once };
            target.insert(f.name.clone(), f.contents.clone());
        }
        if let Some(port) = probe_port(&unit.probe) {
            ports.push(ServicePort { name: Some(format!("{}-http", u.unit)), port, ..Default::default() });
        }
        let c = spec.client(&u.unit).ok_or_else(|| format!("spec has no unit {:?}", u.unit))?;
        let image = c.image.clone().unwrap_or_else(|| default_image(&c.client, &c.version));
        containers.push(container(&u.unit, image, &unit, spec, resources(&c.resources))?);
    }
    let roles: Vec<String> = spec.clients.iter().map(|c| format!("{DATA_DIR}/{}", c.role)).collect();
    let init = Container {
        name: "prepare".into(),
        image: Some(INIT_IMAGE.into()),
        command: Some(["mkdir", "-p"].into_iter().map(String::from).chain(roles).collect()),
        volume_mounts: Some(mounts(spec)[..1].to_vec()),
        ..Default::default()
    };
    let mut volumes = vec![Volume {
        name: "config".into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![
                VolumeProjection { config_map: Some(ConfigMapProjection { name: config_map_name(&name), ..Default::default() }), ..Default::default() },
                VolumeProjection { secret: Some(SecretProjection { name: secret_name(&name), ..Default::default() }), ..Default::default() },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if spec.storage.is_empty() {
        volumes.push(Volume { name: "data".into(), empty_dir: Some(Default::default()), ..Default::default() });
    }
    let claims: Vec<PersistentVolumeClaim> = spec
        .storage
        .iter()
        .map(|v| PersistentVolumeClaim {
            metadata: ObjectMeta { name: Some(v.name.clone()), ..Default::default() },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: v.storage_class.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_string(), Quantity(format!("{}Gi", v.size_gib)))])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let annotations = BTreeMap::from([
        (RESTART_ANNOTATION.to_string(), spec.restart_generation.to_string()),
        (CONFIG_ANNOTATION.to_string(), fingerprint(&config).to_string()),
    ]);
    let stateful_set = StatefulSet {
        metadata: meta(cr, name.clone(), &owner),
        spec: Some(StatefulSetSpec {
            replicas: Some(if spec.desired_state == DesiredState::Running { 1 } else { 0 }),
            service_name: Some(name.clone()),
            selector: LabelSelector { match_labels: Some(labels(&name)), ..Default::default() },
            // Chain data outlives the node's objects: PVCs are kept on delete and scale-down.
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Retain".into()),
                when_scaled: Some("Retain".into()),
            }),
            volume_claim_templates: (!claims.is_empty()).then_some(claims),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(&name)), annotations: Some(annotations), ..Default::default() }),
                spec: Some(PodSpec { init_containers: Some(vec![init]), containers, volumes: Some(volumes), ..Default::default() }),
            },
            ..Default::default()
        }),
        status: None,
    };
    let service = Service {
        metadata: meta(cr, name.clone(), &owner),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(labels(&name)),
            ports: (!ports.is_empty()).then_some(ports),
            ..Default::default()
        }),
        status: None,
    };
    Ok(Rendered {
        config_map: ConfigMap { metadata: meta(cr, config_map_name(&name), &owner), data: Some(config), ..Default::default() },
        secret: Secret { metadata: meta(cr, secret_name(&name), &owner), string_data: Some(once), ..Default::default() },
        stateful_set,
        service,
    })
}
