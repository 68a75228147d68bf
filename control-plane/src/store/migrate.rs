//! Stored-record migrations, run once inside the open transaction.
//!
//! Records are postcard (positional), so a changed struct cannot read rows
//! written before the change: each schema version keeps the shapes it
//! replaced here, and `run` rewrites old rows into the current ones.

use crate::store::model::{ApiKey, Executor, ExecutorRow, KeyUsage, Member, NodeRow, ObservedRow, Org, Session, UpgradeRow, User};
use crate::store::{Result, Write, API_KEYS, CAPABILITIES, EXECUTORS, KEY_USAGE, NODES, OBSERVED, ORGS, SESSIONS, UPGRADES, USERS};
use novacula_core::{Channel, ExecutorCapabilities, ExecutorKind, Timestamp};
use serde::{Deserialize, Serialize};

const SCHEMA_VERSION: &str = "schema_version";
/// The counter holding the schema version of the records.
pub const SCHEMA_VERSION_KEY: &str = SCHEMA_VERSION;
/// 1: the first release. 2: key usage in its own table, keys bound to one
/// executor, program allowlists in capabilities, releases pinned by hash.
/// 3: client ports in specs, per-network client rules in capabilities, sync
/// metrics and disk usage in reports. 4: P2P exposure and sidecar volumes in
/// specs, client volumes, peer ports, storage classes and P2P exposures in
/// capabilities. 5: executors' capabilities in a table of their own.
/// 6: the roles of Novacula (owner, admin, operator, member). 7: users
/// belong to organizations through memberships; sessions name their
/// organization; users can be disabled. 8: API keys expire. 9: organizations
/// have a display name and can be deactivated. 10: sessions and audit
/// entries name the platform administrator impersonating a user;
/// organizations can be held deactivated by the platform and have a logo.
/// 11: clients in capabilities list the settings a spec may override, and
/// networks the disk of an archive node.
pub const CURRENT: u64 = 11;

pub fn run(w: &mut Write) -> Result<()> {
    let version = w.counter(SCHEMA_VERSION)?.max(1);
    if version > CURRENT {
        return Err(crate::store::StoreError::Outdated { found: version, known: CURRENT });
    }
    if version < 2 {
        v1_to_v2(w)?;
    }
    if version < 3 {
        v2_to_v3(w)?;
    }
    if version < 4 {
        v3_to_v4(w)?;
    }
    if version < 5 {
        v4_to_v5(w)?;
    }
    if version < 6 {
        v5_to_v6(w)?;
    }
    if version < 7 {
        v6_to_v7(w)?;
    }
    if version < 8 {
        v7_to_v8(w)?;
    }
    if version < 9 {
        v8_to_v9(w)?;
    }
    if version < 10 {
        v9_to_v10(w)?;
    }
    if version < 11 {
        v10_to_v11(w)?;
    }
    w.set_counter(SCHEMA_VERSION, CURRENT)
}

/// Shapes of schema version 1.
pub mod v1 {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ApiKey {
        pub id: String,
        pub org_id: String,
        pub label: String,
        pub executor: Option<String>,
        pub secret_hash: String,
        pub created_at: Timestamp,
        pub created_by: String,
        pub revoked_at: Option<Timestamp>,
        pub last_used_at: Option<Timestamp>,
        pub last_used_by: Option<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct UpgradeSpec {
        pub channel: Channel,
        pub version: String,
        pub artifact: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct UpgradeRow {
        pub kind: ExecutorKind,
        pub spec: UpgradeSpec,
        pub set_at: Timestamp,
        pub set_by: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Capabilities {
        pub chains: Vec<super::v2::ChainSupport>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Executor {
        pub id: String,
        pub org_id: String,
        pub name: String,
        pub kind: ExecutorKind,
        pub version: String,
        pub channel: Channel,
        pub capabilities: Capabilities,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub deactivated: bool,
        pub api_key_id: String,
    }
}

/// Shapes of schema version 2 (those of version 1 that it kept as they were, too).
pub mod v2 {
    use super::*;
    use novacula_core::spec::{DesiredState, NodeType, Resources};
    use novacula_core::{ObservedNodeStatus, Revision};

    /// Kept as it was through version 3.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct StorageVolume {
        pub name: String,
        pub size_gib: u32,
        pub mount_path: String,
        pub storage_class: Option<String>,
    }

    impl From<StorageVolume> for novacula_core::spec::StorageVolume {
        /// A volume of before version 4 held none of a client's data by name
        /// (it was mounted, unused): it stays so until a spec says otherwise.
        fn from(v: StorageVolume) -> Self {
            novacula_core::spec::StorageVolume { name: v.name, size_gib: v.size_gib, mount_path: v.mount_path, storage_class: v.storage_class, holds: None }
        }
    }

    /// Kept as it was through version 3.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Sidecar {
        pub name: String,
        pub image: String,
        pub command: Vec<String>,
        pub env: BTreeMap<String, String>,
    }

    impl From<Sidecar> for novacula_core::spec::Sidecar {
        fn from(s: Sidecar) -> Self {
            novacula_core::spec::Sidecar { name: s.name, image: s.image, command: s.command, env: s.env, volumes: vec![] }
        }
    }
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ClientSupport {
        pub role: String,
        pub client: String,
        pub versions: Vec<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ChainSupport {
        pub chain: String,
        pub networks: Vec<String>,
        pub node_types: Vec<NodeType>,
        pub clients: Vec<ClientSupport>,
    }

    impl From<ChainSupport> for super::v3::ChainSupport {
        fn from(c: ChainSupport) -> Self {
            let clients = c
                .clients
                .into_iter()
                .map(|s| super::v3::ClientSupport {
                    role: s.role,
                    client: s.client,
                    versions: s.versions,
                    networks: vec![],
                    min_versions: vec![],
                    ports: vec![],
                    managed_keys: vec![],
                })
                .collect();
            super::v3::ChainSupport { chain: c.chain, networks: c.networks, node_types: c.node_types, clients, network_defaults: vec![] }
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Capabilities {
        pub chains: Vec<ChainSupport>,
        pub programs: novacula_core::ProgramAllowlist,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Executor {
        pub id: String,
        pub org_id: String,
        pub name: String,
        pub kind: ExecutorKind,
        pub version: String,
        pub channel: Channel,
        pub capabilities: Capabilities,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub deactivated: bool,
        pub api_key_id: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ClientSpec {
        pub role: String,
        pub client: String,
        pub version: String,
        pub image: Option<String>,
        pub config_overrides: BTreeMap<String, String>,
        pub resources: Resources,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct NodeSpec {
        pub name: String,
        pub chain: String,
        pub network: String,
        pub node_type: NodeType,
        pub clients: Vec<ClientSpec>,
        pub storage: Vec<StorageVolume>,
        pub sidecars: Vec<Sidecar>,
        pub desired_state: DesiredState,
        pub restart_generation: u64,
    }

    /// Version 2 chose some ports through config overrides, which are the
    /// adapter's own flags now (a second one would be refused): they move to `ports`.
    const PORT_OVERRIDES: [(&str, &str, &str); 3] = [("geth", "http.port", "http"), ("geth", "authrpc.port", "engine"), ("lighthouse", "http-port", "http")];

    impl From<NodeSpec> for super::v3::NodeSpec {
        fn from(s: NodeSpec) -> Self {
            let clients = s
                .clients
                .into_iter()
                .map(|mut c| {
                    let mut ports = BTreeMap::new();
                    for (_, key, port) in PORT_OVERRIDES.iter().filter(|(client, ..)| *client == c.client) {
                        if let Some(value) = c.config_overrides.remove(*key) {
                            if let Ok(n) = value.parse::<u16>() {
                                ports.insert((*port).to_string(), n);
                            }
                        }
                    }
                    novacula_core::spec::ClientSpec {
                        role: c.role,
                        client: c.client,
                        version: c.version,
                        image: c.image,
                        config_overrides: c.config_overrides,
                        resources: c.resources,
                        ports,
                    }
                })
                .collect();
            super::v3::NodeSpec {
                name: s.name,
                chain: s.chain,
                network: s.network,
                node_type: s.node_type,
                clients,
                storage: s.storage,
                sidecars: s.sidecars,
                desired_state: s.desired_state,
                restart_generation: s.restart_generation,
            }
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Record {
        pub spec: NodeSpec,
        pub revision: Revision,
        pub deleted: bool,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct NodeRow {
        pub org_id: String,
        pub executor: String,
        pub record: Record,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub seq: u64,
        pub removed: bool,
        pub alert_firing: bool,
        pub last_phase: Option<novacula_core::NodePhase>,
    }

    impl From<NodeRow> for super::v3::NodeRow {
        fn from(r: NodeRow) -> Self {
            super::v3::NodeRow {
                org_id: r.org_id,
                executor: r.executor,
                record: super::v3::Record { spec: r.record.spec.into(), revision: r.record.revision, deleted: r.record.deleted },
                created_at: r.created_at,
                updated_at: r.updated_at,
                seq: r.seq,
                removed: r.removed,
                alert_firing: r.alert_firing,
                last_phase: r.last_phase,
            }
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct SyncMetrics {
        pub current_block: u64,
        pub highest_block: u64,
        pub peers: u32,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ObservedProcess {
        pub name: String,
        pub status: ObservedNodeStatus,
        pub sync: Option<SyncMetrics>,
        pub message: Option<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ObservedRow {
        pub node: String,
        pub revision: Revision,
        pub processes: Vec<ObservedProcess>,
        pub removed: bool,
        pub reported_at: Timestamp,
    }

    impl From<ObservedRow> for super::ObservedRow {
        fn from(o: ObservedRow) -> Self {
            let processes = o
                .processes
                .into_iter()
                .map(|p| novacula_core::ObservedProcess {
                    name: p.name,
                    status: p.status,
                    sync: p.sync.map(|m| novacula_core::SyncMetrics::new(m.current_block, m.highest_block, m.peers)),
                    message: p.message,
                })
                .collect();
            let state = novacula_core::ObservedNodeState { node: o.node, revision: o.revision, processes, removed: o.removed, disk: None };
            super::ObservedRow { state, reported_at: o.reported_at }
        }
    }
}

/// Shapes of schema version 3 (those it kept from version 2 are there).
pub mod v3 {
    use super::v10::NetworkDefaults;
    use super::v2::{Sidecar, StorageVolume};
    use super::*;
    use novacula_core::executor::MinVersion;
    use novacula_core::lifecycle::NodeRecord;
    use novacula_core::spec::{ClientSpec, DesiredState, NodeType, P2pExposure};
    use novacula_core::Revision;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct PortSupport {
        pub name: String,
        pub default: u16,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ClientSupport {
        pub role: String,
        pub client: String,
        pub versions: Vec<String>,
        pub networks: Vec<String>,
        pub min_versions: Vec<MinVersion>,
        pub ports: Vec<PortSupport>,
        pub managed_keys: Vec<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ChainSupport {
        pub chain: String,
        pub networks: Vec<String>,
        pub node_types: Vec<NodeType>,
        pub clients: Vec<ClientSupport>,
        pub network_defaults: Vec<NetworkDefaults>,
    }

    impl From<ChainSupport> for super::v10::ChainSupport {
        fn from(c: ChainSupport) -> Self {
            let clients = c
                .clients
                .into_iter()
                .map(|s| super::v10::ClientSupport {
                    role: s.role,
                    client: s.client,
                    versions: s.versions,
                    networks: s.networks,
                    min_versions: s.min_versions,
                    // Which ports are peers' is reported again at the next heartbeat.
                    ports: s.ports.into_iter().map(|p| novacula_core::executor::PortSupport { name: p.name, default: p.default, peer: false }).collect(),
                    managed_keys: s.managed_keys,
                    volumes: vec![],
                })
                .collect();
            super::v10::ChainSupport { chain: c.chain, networks: c.networks, node_types: c.node_types, clients, network_defaults: c.network_defaults }
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Capabilities {
        pub chains: Vec<ChainSupport>,
        pub programs: novacula_core::ProgramAllowlist,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Executor {
        pub id: String,
        pub org_id: String,
        pub name: String,
        pub kind: ExecutorKind,
        pub version: String,
        pub channel: Channel,
        pub capabilities: Capabilities,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub deactivated: bool,
        pub api_key_id: String,
    }

    impl From<Executor> for super::v10::Executor {
        fn from(e: Executor) -> Self {
            // Until its next heartbeat reports them: no volumes, storage classes
            // not known (not checked), no P2P exposure.
            let capabilities = super::v10::Capabilities {
                chains: e.capabilities.chains.into_iter().map(Into::into).collect(),
                programs: e.capabilities.programs,
                storage_classes: None,
                p2p_exposures: vec![],
            };
            super::v10::Executor {
                id: e.id,
                org_id: e.org_id,
                name: e.name,
                kind: e.kind,
                version: e.version,
                channel: e.channel,
                capabilities,
                created_at: e.created_at,
                updated_at: e.updated_at,
                deactivated: e.deactivated,
                api_key_id: e.api_key_id,
            }
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct NodeSpec {
        pub name: String,
        pub chain: String,
        pub network: String,
        pub node_type: NodeType,
        pub clients: Vec<ClientSpec>,
        pub storage: Vec<StorageVolume>,
        pub sidecars: Vec<Sidecar>,
        pub desired_state: DesiredState,
        pub restart_generation: u64,
    }

    impl From<NodeSpec> for novacula_core::NodeSpec {
        fn from(s: NodeSpec) -> Self {
            novacula_core::NodeSpec {
                name: s.name,
                chain: s.chain,
                network: s.network,
                node_type: s.node_type,
                clients: s.clients,
                storage: s.storage.into_iter().map(Into::into).collect(),
                sidecars: s.sidecars.into_iter().map(Into::into).collect(),
                desired_state: s.desired_state,
                restart_generation: s.restart_generation,
                p2p_exposure: P2pExposure::None,
            }
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Record {
        pub spec: NodeSpec,
        pub revision: Revision,
        pub deleted: bool,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct NodeRow {
        pub org_id: String,
        pub executor: String,
        pub record: Record,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub seq: u64,
        pub removed: bool,
        pub alert_firing: bool,
        pub last_phase: Option<novacula_core::NodePhase>,
    }

    impl From<NodeRow> for super::NodeRow {
        fn from(r: NodeRow) -> Self {
            super::NodeRow {
                org_id: r.org_id,
                executor: r.executor,
                record: NodeRecord { spec: r.record.spec.into(), revision: r.record.revision, deleted: r.record.deleted },
                created_at: r.created_at,
                updated_at: r.updated_at,
                seq: r.seq,
                removed: r.removed,
                alert_firing: r.alert_firing,
                last_phase: r.last_phase,
            }
        }
    }
}

/// Shapes of schema version 5.
pub mod v5 {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Role {
        Owner,
        Admin,
        /// Could operate nodes: an operator now.
        Member,
        /// Could only read: a member now.
        Viewer,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct User {
        pub username: String,
        pub org_id: String,
        pub role: Role,
        pub password_hash: String,
        pub created_at: Timestamp,
    }

    impl From<Role> for novacula_core::authz::Role {
        /// Each user keeps what they could do: `member` could run nodes
        /// (deploys included; an admin grants those again where wanted),
        /// `viewer` could only read.
        fn from(r: Role) -> Self {
            use novacula_core::authz::Role as New;
            match r {
                Role::Owner => New::Owner,
                Role::Admin => New::Admin,
                Role::Member => New::Operator,
                Role::Viewer => New::Member,
            }
        }
    }
}

/// Shapes of schema version 9 (sessions and audit entries since 7, organizations since 9).
pub mod v9 {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Session {
        pub username: String,
        pub org_id: String,
        pub epoch: u64,
        pub created_at: Timestamp,
        pub expires_at: Timestamp,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Org {
        pub id: String,
        pub created_at: Timestamp,
        pub name: String,
        pub deactivated: bool,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct AuditEntry {
        pub seq: u64,
        pub at: Timestamp,
        pub org_id: String,
        pub actor_kind: novacula_core::audit::ActorKind,
        pub actor_id: String,
        pub actor_name: String,
        pub action: novacula_core::audit::Action,
        pub target_kind: String,
        pub target_id: String,
        pub source: novacula_core::audit::Source,
        pub details: std::collections::BTreeMap<String, String>,
    }
}

/// Shapes of schema version 10 (capabilities since 4): clients did not list
/// the settings a spec may override.
pub mod v10 {
    use super::*;
    use novacula_core::executor::{MinVersion, PortSupport};
    use novacula_core::spec::{NodeType, P2pExposure};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct NetworkDefaults {
        pub network: String,
        pub resources: Vec<novacula_core::executor::RoleResources>,
        pub disk_gib: u32,
        pub checkpoint_sync_url: Option<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ClientSupport {
        pub role: String,
        pub client: String,
        pub versions: Vec<String>,
        pub networks: Vec<String>,
        pub min_versions: Vec<MinVersion>,
        pub ports: Vec<PortSupport>,
        pub managed_keys: Vec<String>,
        pub volumes: Vec<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ChainSupport {
        pub chain: String,
        pub networks: Vec<String>,
        pub node_types: Vec<NodeType>,
        pub clients: Vec<ClientSupport>,
        pub network_defaults: Vec<NetworkDefaults>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Capabilities {
        pub chains: Vec<ChainSupport>,
        pub programs: novacula_core::ProgramAllowlist,
        pub storage_classes: Option<Vec<String>>,
        pub p2p_exposures: Vec<P2pExposure>,
    }

    /// An executor with its capabilities, as schema 4 kept it (5 moved them apart).
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Executor {
        pub id: String,
        pub org_id: String,
        pub name: String,
        pub kind: ExecutorKind,
        pub version: String,
        pub channel: Channel,
        pub capabilities: Capabilities,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
        pub deactivated: bool,
        pub api_key_id: String,
    }

    impl From<Capabilities> for ExecutorCapabilities {
        fn from(c: Capabilities) -> Self {
            let chains = c
                .chains
                .into_iter()
                .map(|c| novacula_core::executor::ChainSupport {
                    chain: c.chain,
                    networks: c.networks,
                    node_types: c.node_types,
                    clients: c
                        .clients
                        .into_iter()
                        .map(|s| novacula_core::executor::ClientSupport {
                            role: s.role,
                            client: s.client,
                            versions: s.versions,
                            networks: s.networks,
                            min_versions: s.min_versions,
                            ports: s.ports,
                            managed_keys: s.managed_keys,
                            volumes: s.volumes,
                            // Until its next heartbeat lists them: any key but the managed ones.
                            overrides: vec![],
                        })
                        .collect(),
                    network_defaults: c
                        .network_defaults
                        .into_iter()
                        .map(|d| novacula_core::executor::NetworkDefaults {
                            network: d.network,
                            resources: d.resources,
                            disk_gib: d.disk_gib,
                            checkpoint_sync_url: d.checkpoint_sync_url,
                            archive_disk_gib: 0,
                        })
                        .collect(),
                })
                .collect();
            ExecutorCapabilities { chains, programs: c.programs, storage_classes: c.storage_classes, p2p_exposures: c.p2p_exposures }
        }
    }

    impl From<Executor> for super::Executor {
        fn from(e: Executor) -> Self {
            super::Executor {
                id: e.id,
                org_id: e.org_id,
                name: e.name,
                kind: e.kind,
                version: e.version,
                channel: e.channel,
                capabilities: e.capabilities.into(),
                created_at: e.created_at,
                updated_at: e.updated_at,
                deactivated: e.deactivated,
                api_key_id: e.api_key_id,
            }
        }
    }
}

/// Capabilities in the shape of schema 11, and the digests executors' rows
/// keep of them.
fn v10_to_v11(w: &mut Write) -> Result<()> {
    let caps: Vec<(String, v10::Capabilities)> = w.scan(CAPABILITIES, "")?;
    for (k, c) in &caps {
        let current = ExecutorCapabilities::from(c.clone());
        if let Some(mut row) = w.get::<ExecutorRow>(EXECUTORS, k)? {
            row.capabilities_digest = current.digest();
            w.put(EXECUTORS, k, &row)?;
        }
        w.put(CAPABILITIES, k, &current)?;
    }
    if !caps.is_empty() {
        tracing::info!(executors = caps.len(), "migrated the database to schema version 11 (override settings in capabilities)");
    }
    Ok(())
}

/// Sessions and audit entries say who impersonated (nobody, before);
/// organizations say whether the platform deactivated them and when their
/// logo was set (none, before).
fn v9_to_v10(w: &mut Write) -> Result<()> {
    let sessions: Vec<(String, v9::Session)> = w.scan(SESSIONS, "")?;
    for (k, o) in sessions {
        let session =
            Session { username: o.username, org_id: o.org_id, epoch: o.epoch, created_at: o.created_at, expires_at: o.expires_at, impersonator: None };
        w.put(SESSIONS, &k, &session)?;
    }
    let orgs: Vec<(String, v9::Org)> = w.scan(ORGS, "")?;
    for (k, o) in &orgs {
        let org = Org { platform_hold: false, logo_updated_at: None, deactivated: o.deactivated, name: o.name.clone(), ..Org::new(&o.id, o.created_at) };
        w.put(ORGS, k, &org)?;
        w.put(crate::store::SLUGS, &org.slug, &org.id)?;
    }
    let mut entries = 0;
    for (org, _) in &orgs {
        let log = crate::store::audit_log(org);
        let mut after = 0;
        loop {
            let batch: Vec<(u64, v9::AuditEntry)> = w.events_after(&log, after, 1000)?;
            let Some((last, _)) = batch.last() else { break };
            after = *last;
            for (seq, e) in batch {
                let entry = novacula_core::wire::AuditEntry {
                    seq: e.seq,
                    at: e.at,
                    org_id: e.org_id,
                    actor_kind: e.actor_kind,
                    actor_id: e.actor_id,
                    actor_name: e.actor_name,
                    action: e.action,
                    target_kind: e.target_kind,
                    target_id: e.target_id,
                    source: e.source,
                    details: e.details,
                    impersonator: None,
                };
                w.append_event(&log, seq, &entry)?;
                entries += 1;
            }
        }
    }
    if entries > 0 {
        tracing::info!(entries, "migrated the database to schema version 10 (impersonation in sessions and the audit log)");
    }
    Ok(())
}

/// Shapes of schema version 8 (and of every earlier one: organizations did not change).
pub mod v8 {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Org {
        pub id: String,
        pub created_at: Timestamp,
    }
}

/// Organizations get a display name (their id until renamed) and can be deactivated.
fn v8_to_v9(w: &mut Write) -> Result<()> {
    let orgs: Vec<(String, v8::Org)> = w.scan(ORGS, "")?;
    for (k, o) in &orgs {
        w.put(ORGS, k, &v9::Org { id: o.id.clone(), created_at: o.created_at, name: o.id.clone(), deactivated: false })?;
    }
    if !orgs.is_empty() {
        tracing::info!(orgs = orgs.len(), "migrated the database to schema version 9 (organization names, deactivation)");
    }
    Ok(())
}

/// Shapes of schema version 7 (and of 2 to 6: the key did not change).
pub mod v7 {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ApiKey {
        pub id: String,
        pub org_id: String,
        pub label: String,
        pub executor: Option<String>,
        pub secret_hash: String,
        pub created_at: Timestamp,
        pub created_by: String,
        pub revoked_at: Option<Timestamp>,
    }
}

/// Keys may expire. Those issued before did not say so: they never expire
/// (a fleet's heartbeats do not stop on upgrade); rotate them to set one.
fn v7_to_v8(w: &mut Write) -> Result<()> {
    let keys: Vec<(String, v7::ApiKey)> = w.scan(API_KEYS, "")?;
    for (id, k) in &keys {
        let key = ApiKey {
            id: k.id.clone(),
            org_id: k.org_id.clone(),
            label: k.label.clone(),
            executor: k.executor.clone(),
            secret_hash: k.secret_hash.clone(),
            created_at: k.created_at,
            created_by: k.created_by.clone(),
            revoked_at: k.revoked_at,
            expires_at: None,
        };
        w.put(API_KEYS, id, &key)?;
    }
    if !keys.is_empty() {
        tracing::info!(keys = keys.len(), "migrated the database to schema version 8 (API keys may expire; existing ones do not)");
    }
    Ok(())
}

/// Shapes of schema version 6.
pub mod v6 {
    use super::*;
    use novacula_core::authz::Role;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct User {
        pub username: String,
        pub org_id: String,
        pub role: Role,
        pub password_hash: String,
        pub created_at: Timestamp,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Session {
        pub username: String,
        pub expires_at: Timestamp,
    }
}

/// A user's organization and role become a membership; sessions keep
/// working, in that organization.
fn v6_to_v7(w: &mut Write) -> Result<()> {
    let users: Vec<(String, v6::User)> = w.scan(USERS, "")?;
    for (k, u) in &users {
        let user = User { username: u.username.clone(), password_hash: u.password_hash.clone(), created_at: u.created_at, disabled: false, session_epoch: 0 };
        w.put(USERS, k, &user)?;
        w.put_member(&u.org_id, &u.username, &Member { role: u.role, added_at: u.created_at, added_by: "migration".into() })?;
    }
    let orgs: std::collections::HashMap<&str, &str> = users.iter().map(|(_, u)| (u.username.as_str(), u.org_id.as_str())).collect();
    let sessions: Vec<(String, v6::Session)> = w.scan(SESSIONS, "")?;
    for (k, old) in sessions {
        match orgs.get(old.username.as_str()) {
            Some(org) => {
                // Not recorded before version 7 (nothing decides by it).
                let created_at = Timestamp(0);
                w.put(SESSIONS, &k, &v9::Session { username: old.username, org_id: org.to_string(), epoch: 0, created_at, expires_at: old.expires_at })?;
            }
            None => w.remove(SESSIONS, &k)?,
        }
    }
    if !users.is_empty() {
        tracing::info!(users = users.len(), "migrated the database to schema version 7 (memberships)");
    }
    Ok(())
}

/// Roles become Novacula's: `member` is read-only, `operator` runs lifecycle
/// actions. Today's members become operators, viewers members.
fn v5_to_v6(w: &mut Write) -> Result<()> {
    let users: Vec<(String, v5::User)> = w.scan(USERS, "")?;
    for (k, u) in &users {
        let user = v6::User {
            username: u.username.clone(),
            org_id: u.org_id.clone(),
            role: u.role.into(),
            password_hash: u.password_hash.clone(),
            created_at: u.created_at,
        };
        w.put(USERS, k, &user)?;
    }
    if !users.is_empty() {
        tracing::info!(users = users.len(), "migrated the database to schema version 6 (roles: members become operators, viewers members)");
    }
    Ok(())
}

/// Capabilities move out of executor rows: a heartbeat, a node view or the
/// sweeper reads an executor without decoding them.
fn v4_to_v5(w: &mut Write) -> Result<()> {
    let executors: Vec<(String, v10::Executor)> = w.scan(EXECUTORS, "")?;
    for (k, e) in &executors {
        // Capabilities in their schema-10 shape, for the migration to 11.
        w.put(CAPABILITIES, k, &e.capabilities)?;
        w.put(EXECUTORS, k, &ExecutorRow::of(&Executor::from(e.clone())))?;
    }
    if !executors.is_empty() {
        tracing::info!(executors = executors.len(), "migrated the database to schema version 5 (capabilities apart from executors)");
    }
    Ok(())
}

fn v3_to_v4(w: &mut Write) -> Result<()> {
    let executors: Vec<(String, v3::Executor)> = w.scan(EXECUTORS, "")?;
    for (k, e) in executors {
        w.put(EXECUTORS, &k, &v10::Executor::from(e))?;
    }
    let nodes: Vec<(String, v3::NodeRow)> = w.scan(NODES, "")?;
    let migrated = nodes.len();
    for (k, n) in nodes {
        w.put(NODES, &k, &NodeRow::from(n))?;
    }
    if migrated > 0 {
        tracing::info!(nodes = migrated, "migrated the database to schema version 4 (P2P exposure, client volumes, storage classes)");
    }
    Ok(())
}

fn v2_to_v3(w: &mut Write) -> Result<()> {
    let executors: Vec<(String, v2::Executor)> = w.scan(EXECUTORS, "")?;
    for (k, e) in executors {
        let capabilities = v3::Capabilities { chains: e.capabilities.chains.into_iter().map(Into::into).collect(), programs: e.capabilities.programs };
        let exec = v3::Executor {
            id: e.id,
            org_id: e.org_id,
            name: e.name,
            kind: e.kind,
            version: e.version,
            channel: e.channel,
            capabilities,
            created_at: e.created_at,
            updated_at: e.updated_at,
            deactivated: e.deactivated,
            api_key_id: e.api_key_id,
        };
        w.put(EXECUTORS, &k, &exec)?;
    }
    // Nodes written before keep no ports: the adapters' defaults, as before,
    // until the next edit allocates them.
    let nodes: Vec<(String, v2::NodeRow)> = w.scan(NODES, "")?;
    let migrated = nodes.len();
    for (k, n) in nodes {
        w.put(NODES, &k, &v3::NodeRow::from(n))?;
    }
    // ObservedRow was one struct with the state inline in version 2 too:
    // postcard lays a nested struct out flat, so the shapes line up.
    let observed: Vec<(String, v2::ObservedRow)> = w.scan(OBSERVED, "")?;
    for (k, o) in observed {
        w.put(OBSERVED, &k, &ObservedRow::from(o))?;
    }
    if migrated > 0 {
        tracing::info!(nodes = migrated, "migrated the database to schema version 3 (client ports, per-network client rules, sync metrics)");
    }
    Ok(())
}

fn v1_to_v2(w: &mut Write) -> Result<()> {
    let keys: Vec<(String, v1::ApiKey)> = w.scan(API_KEYS, "")?;
    for (id, k) in keys {
        // Version 1 let an unbound key sync as any executor: bind it to the
        // one that used it last, which is the one it was given to.
        let executor = k.executor.or_else(|| k.last_used_by.clone());
        if let (Some(at), Some(by)) = (k.last_used_at, k.last_used_by) {
            w.put(KEY_USAGE, &id, &KeyUsage { at, by })?;
        }
        let key = v7::ApiKey {
            id: k.id,
            org_id: k.org_id,
            label: k.label,
            executor,
            secret_hash: k.secret_hash,
            created_at: k.created_at,
            created_by: k.created_by,
            revoked_at: k.revoked_at,
        };
        w.put(API_KEYS, &id, &key)?;
    }
    let executors: Vec<(String, v1::Executor)> = w.scan(EXECUTORS, "")?;
    for (k, e) in executors {
        let exec = v2::Executor {
            id: e.id,
            org_id: e.org_id,
            name: e.name,
            kind: e.kind,
            version: e.version,
            channel: e.channel,
            // Reported again at the next heartbeat; until then, no sidecar or image is allowed.
            capabilities: v2::Capabilities { chains: e.capabilities.chains, programs: Default::default() },
            created_at: e.created_at,
            updated_at: e.updated_at,
            deactivated: e.deactivated,
            api_key_id: e.api_key_id,
        };
        w.put(EXECUTORS, &k, &exec)?;
    }
    let upgrades: Vec<(String, v1::UpgradeRow)> = w.scan(UPGRADES, "")?;
    for (k, u) in upgrades {
        // No hash was recorded: executors refuse the release until it is set again with one.
        let spec = novacula_core::wire::UpgradeSpec { channel: u.spec.channel, version: u.spec.version, artifact: u.spec.artifact, sha256: None };
        w.put(UPGRADES, &k, &UpgradeRow { kind: u.kind, spec, set_at: u.set_at, set_by: u.set_by })?;
    }
    if !w.scan::<v7::ApiKey>(API_KEYS, "")?.is_empty() {
        tracing::info!("migrated the database to schema version 2 (key usage, key binding, program allowlists)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreError};

    #[test]
    fn a_version_1_file_is_migrated_once_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        let t = Timestamp(1_700_000_000_000);
        {
            // A file as version 1 wrote it.
            let s = Store::open(&path).unwrap();
            s.write(|w| {
                w.set_counter(SCHEMA_VERSION, 1)?;
                let key = |id: &str, executor: Option<&str>, used_by: Option<&str>| v1::ApiKey {
                    id: id.into(),
                    org_id: "acme".into(),
                    label: "k".into(),
                    executor: executor.map(Into::into),
                    secret_hash: "h".into(),
                    created_at: t,
                    created_by: "alice".into(),
                    revoked_at: None,
                    last_used_at: used_by.map(|_| t),
                    last_used_by: used_by.map(Into::into),
                };
                w.put(API_KEYS, "k1", &key("k1", None, Some("edge-1")))?;
                w.put(API_KEYS, "k2", &key("k2", Some("edge-2"), None))?;
                w.put(API_KEYS, "k3", &key("k3", None, None))?;
                let caps = v1::Capabilities { chains: vec![] };
                let exec = v1::Executor {
                    id: "x".into(),
                    org_id: "acme".into(),
                    name: "edge-1".into(),
                    kind: ExecutorKind::Agent,
                    version: "1.0.0".into(),
                    channel: Channel::Stable,
                    capabilities: caps,
                    created_at: t,
                    updated_at: t,
                    deactivated: false,
                    api_key_id: "k1".into(),
                };
                w.put(EXECUTORS, "acme/edge-1", &exec)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let (k1, k2, k3, usage, exec, version) = s
            .read(|r| {
                Ok::<_, StoreError>((
                    r.get::<ApiKey>(API_KEYS, "k1")?.unwrap(),
                    r.get::<ApiKey>(API_KEYS, "k2")?.unwrap(),
                    r.get::<ApiKey>(API_KEYS, "k3")?.unwrap(),
                    r.get::<KeyUsage>(KEY_USAGE, "k1")?.unwrap(),
                    r.executor("acme/edge-1")?.unwrap(),
                    r.counter(SCHEMA_VERSION)?,
                ))
            })
            .unwrap();
        assert_eq!(k1.executor.as_deref(), Some("edge-1"), "bound to the executor that used it");
        assert_eq!(k2.executor.as_deref(), Some("edge-2"));
        assert_eq!(k3.executor, None, "an unused key binds at its first sync");
        assert_eq!((usage.at, usage.by.as_str()), (t, "edge-1"));
        assert_eq!((exec.name.as_str(), exec.capabilities.programs), ("edge-1", Default::default()));
        assert_eq!(version, CURRENT);
        // Opening again changes nothing (the migration ran once).
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.read(|r| r.get::<ApiKey>(API_KEYS, "k1")).unwrap().unwrap().executor.as_deref(), Some("edge-1"));
    }

    #[test]
    fn a_version_2_file_keeps_its_executors_nodes_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        let t = Timestamp(1_700_000_000_000);
        {
            let s = Store::open(&path).unwrap();
            s.write(|w| {
                w.set_counter(SCHEMA_VERSION, 2)?;
                let chains = vec![v2::ChainSupport {
                    chain: "ethereum".into(),
                    networks: vec!["mainnet".into()],
                    node_types: vec![novacula_core::spec::NodeType::Full],
                    clients: vec![v2::ClientSupport { role: "execution".into(), client: "geth".into(), versions: vec![] }],
                }];
                let programs = novacula_core::ProgramAllowlist { sidecar_programs: vec!["exporter".into()], image_prefixes: vec![] };
                let exec = v2::Executor {
                    id: "x".into(),
                    org_id: "acme".into(),
                    name: "edge-1".into(),
                    kind: ExecutorKind::Agent,
                    version: "1.0.0".into(),
                    channel: Channel::Stable,
                    capabilities: v2::Capabilities { chains, programs },
                    created_at: t,
                    updated_at: t,
                    deactivated: false,
                    api_key_id: "k1".into(),
                };
                w.put(EXECUTORS, "acme/edge-1", &exec)?;
                let spec = v2::NodeSpec {
                    name: "n1".into(),
                    chain: "ethereum".into(),
                    network: "mainnet".into(),
                    node_type: novacula_core::spec::NodeType::Full,
                    clients: vec![v2::ClientSpec {
                        role: "execution".into(),
                        client: "geth".into(),
                        version: "1.16.7".into(),
                        image: None,
                        config_overrides: [("cache".to_string(), "4096".to_string()), ("http.port".to_string(), "18545".to_string())].into(),
                        resources: Default::default(),
                    }],
                    storage: vec![],
                    sidecars: vec![],
                    desired_state: novacula_core::DesiredState::Running,
                    restart_generation: 2,
                };
                let row = v2::NodeRow {
                    org_id: "acme".into(),
                    executor: "edge-1".into(),
                    record: v2::Record { spec, revision: novacula_core::Revision(4), deleted: false },
                    created_at: t,
                    updated_at: t,
                    seq: 9,
                    removed: false,
                    alert_firing: true,
                    last_phase: Some(novacula_core::NodePhase::Syncing),
                };
                w.put(NODES, "acme/n1", &row)?;
                let process = v2::ObservedProcess {
                    name: "execution".into(),
                    status: novacula_core::ObservedNodeStatus::Syncing,
                    sync: Some(v2::SyncMetrics { current_block: 50, highest_block: 100, peers: 7 }),
                    message: None,
                };
                let obs = v2::ObservedRow { node: "n1".into(), revision: novacula_core::Revision(4), processes: vec![process], removed: false, reported_at: t };
                w.put(OBSERVED, "acme/n1", &obs)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let (exec, node, obs) = s
            .read(|r| {
                Ok::<_, StoreError>((
                    r.executor("acme/edge-1")?.unwrap(),
                    r.get::<NodeRow>(NODES, "acme/n1")?.unwrap(),
                    r.get::<ObservedRow>(OBSERVED, "acme/n1")?.unwrap(),
                ))
            })
            .unwrap();
        assert_eq!(exec.capabilities.chains[0].clients[0].client, "geth");
        assert!(exec.capabilities.chains[0].clients[0].ports.is_empty());
        assert_eq!(exec.capabilities.programs.sidecar_programs, ["exporter"]);
        let spec = &node.record.spec;
        assert_eq!((spec.restart_generation, spec.clients[0].config_overrides["cache"].as_str()), (2, "4096"));
        assert_eq!(spec.clients[0].ports, [("http".to_string(), 18545)].into(), "a port chosen by override moves to ports");
        assert!(!spec.clients[0].config_overrides.contains_key("http.port"), "and is no longer an override");
        assert_eq!((node.seq, node.alert_firing, node.record.revision), (9, true, novacula_core::Revision(4)));
        let m = obs.state.processes[0].sync.unwrap();
        assert_eq!((m.current_block, m.highest_block, m.peers, m.sync_distance, m.progress_percent), (50, 100, 7, 50, 50.0));
        assert_eq!(obs.reported_at, t);
    }

    #[test]
    fn a_version_9_file_keeps_its_audit_log_sessions_and_organizations() {
        use novacula_core::audit::{Action, ActorKind, Source};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        let t = Timestamp(1_700_000_000_000);
        {
            let s = Store::open(&path).unwrap();
            s.write(|w| {
                w.set_counter(SCHEMA_VERSION, 9)?;
                w.put(ORGS, "acme", &v9::Org { id: "acme".into(), created_at: t, name: "Acme".into(), deactivated: true })?;
                w.put(
                    SESSIONS,
                    "h",
                    &v9::Session {
                        username: "alice".into(),
                        org_id: "acme".into(),
                        epoch: 2,
                        created_at: t,
                        expires_at: t.plus(std::time::Duration::from_secs(60)),
                    },
                )?;
                for seq in 1..=3 {
                    let e = v9::AuditEntry {
                        seq,
                        at: t,
                        org_id: "acme".into(),
                        actor_kind: ActorKind::User,
                        actor_id: "alice".into(),
                        actor_name: "alice".into(),
                        action: Action::KeyCreated,
                        target_kind: "apiKey".into(),
                        target_id: format!("k{seq}"),
                        source: Source::Cli,
                        details: [("label".to_string(), "edge".to_string())].into(),
                    };
                    w.append_event(&crate::store::audit_log("acme"), seq, &e)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let org: Org = s.read(|r| r.get(ORGS, "acme")).unwrap().unwrap();
        assert_eq!((org.name.as_str(), org.deactivated, org.platform_hold), ("Acme", true, false), "an owner's deactivation stays the owner's");
        assert_eq!(org.slug, "acme", "its slug is its id");
        assert_eq!(s.read(|r| r.org_id_of("acme")).unwrap(), "acme");
        let session: Session = s.read(|r| r.get(SESSIONS, "h")).unwrap().unwrap();
        assert_eq!((session.username.as_str(), session.epoch, session.impersonator), ("alice", 2, None));
        let entries: Vec<novacula_core::wire::AuditEntry> = s.read(|r| r.events_before(&crate::store::audit_log("acme"), u64::MAX, 10)).unwrap();
        let ids: Vec<(u64, &str, Option<&str>)> = entries.iter().map(|e| (e.seq, e.target_id.as_str(), e.impersonator.as_deref())).collect();
        assert_eq!(ids, vec![(3, "k3", None), (2, "k2", None), (1, "k1", None)]);
        assert_eq!(entries[0].details["label"], "edge");
        assert_eq!(s.read(|r| r.counter(SCHEMA_VERSION)).unwrap(), CURRENT);
    }

    #[test]
    fn a_version_10_file_keeps_its_executors_capabilities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        let t = Timestamp(1_700_000_000_000);
        let old = v10::Capabilities {
            chains: vec![v10::ChainSupport {
                chain: "ethereum".into(),
                networks: vec!["hoodi".into()],
                node_types: vec![novacula_core::spec::NodeType::Full],
                clients: vec![v10::ClientSupport {
                    role: "execution".into(),
                    client: "geth".into(),
                    versions: vec![],
                    networks: vec!["hoodi".into()],
                    min_versions: vec![],
                    ports: vec![novacula_core::executor::PortSupport { name: "p2p".into(), default: 30303, peer: true }],
                    managed_keys: vec!["datadir".into()],
                    volumes: vec!["ancient".into()],
                }],
                network_defaults: vec![],
            }],
            programs: Default::default(),
            storage_classes: Some(vec!["fast".into()]),
            p2p_exposures: vec![],
        };
        {
            let s = Store::open(&path).unwrap();
            s.write(|w| {
                w.set_counter(SCHEMA_VERSION, 10)?;
                let e = v10::Executor {
                    id: "e1".into(),
                    org_id: "acme".into(),
                    name: "edge".into(),
                    kind: ExecutorKind::Agent,
                    version: "1.0.0".into(),
                    channel: Channel::Stable,
                    capabilities: old.clone(),
                    created_at: t,
                    updated_at: t,
                    deactivated: false,
                    api_key_id: "k".into(),
                };
                w.put(CAPABILITIES, "acme/edge", &old)?;
                w.put(EXECUTORS, "acme/edge", &ExecutorRow::of(&Executor::from(e)))?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let caps: ExecutorCapabilities = s.read(|r| r.get(CAPABILITIES, "acme/edge")).unwrap().unwrap();
        let geth = caps.chain("ethereum").unwrap().client("execution", "geth").unwrap();
        assert_eq!(
            (geth.volumes.as_slice(), geth.managed_keys.as_slice(), geth.overrides.len()),
            (&["ancient".to_string()][..], &["datadir".to_string()][..], 0)
        );
        assert_eq!(caps.storage_classes, Some(vec!["fast".to_string()]));
        let row: ExecutorRow = s.read(|r| r.get(EXECUTORS, "acme/edge")).unwrap().unwrap();
        assert_eq!(row.capabilities_digest, caps.digest(), "the row's digest is of the capabilities as now kept");
        assert_eq!(s.read(|r| r.counter(SCHEMA_VERSION)).unwrap(), CURRENT);
    }

    #[test]
    fn a_version_3_file_keeps_its_executors_and_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        let t = Timestamp(1_700_000_000_000);
        let mut spec = novacula_core::fixtures::eth_spec("n1");
        spec.clients[0].ports.insert("p2p".into(), 30304);
        {
            let s = Store::open(&path).unwrap();
            s.write(|w| {
                w.set_counter(SCHEMA_VERSION, 3)?;
                let client = v3::ClientSupport {
                    role: "execution".into(),
                    client: "geth".into(),
                    versions: vec![],
                    networks: vec!["sepolia".into()],
                    min_versions: vec![],
                    ports: vec![v3::PortSupport { name: "p2p".into(), default: 30303 }],
                    managed_keys: vec!["datadir".into()],
                };
                let chains = vec![v3::ChainSupport {
                    chain: "ethereum".into(),
                    networks: vec!["sepolia".into()],
                    node_types: vec![novacula_core::spec::NodeType::Full],
                    clients: vec![client],
                    network_defaults: vec![],
                }];
                let exec = v3::Executor {
                    id: "x".into(),
                    org_id: "acme".into(),
                    name: "k8s".into(),
                    kind: ExecutorKind::Operator,
                    version: "1.0.0".into(),
                    channel: Channel::Stable,
                    capabilities: v3::Capabilities { chains, programs: Default::default() },
                    created_at: t,
                    updated_at: t,
                    deactivated: false,
                    api_key_id: "k1".into(),
                };
                w.put(EXECUTORS, "acme/k8s", &exec)?;
                let old = v3::NodeSpec {
                    name: spec.name.clone(),
                    chain: spec.chain.clone(),
                    network: spec.network.clone(),
                    node_type: spec.node_type,
                    clients: spec.clients.clone(),
                    storage: spec
                        .storage
                        .iter()
                        .map(|v| v2::StorageVolume { name: v.name.clone(), size_gib: v.size_gib, mount_path: v.mount_path.clone(), storage_class: None })
                        .collect(),
                    sidecars: vec![v2::Sidecar { name: "exporter".into(), image: "exporter".into(), command: vec!["-v".into()], env: Default::default() }],
                    desired_state: novacula_core::DesiredState::Stopped,
                    restart_generation: 3,
                };
                let row = v3::NodeRow {
                    org_id: "acme".into(),
                    executor: "k8s".into(),
                    record: v3::Record { spec: old, revision: novacula_core::Revision(7), deleted: false },
                    created_at: t,
                    updated_at: t,
                    seq: 2,
                    removed: false,
                    alert_firing: false,
                    last_phase: None,
                };
                w.put(NODES, "acme/n1", &row)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let (exec, node, version) = s
            .read(|r| Ok::<_, StoreError>((r.executor("acme/k8s")?.unwrap(), r.get::<NodeRow>(NODES, "acme/n1")?.unwrap(), r.counter(SCHEMA_VERSION)?)))
            .unwrap();
        // Version 5: the executor's row holds a digest of its capabilities, kept apart.
        let row = s.read(|r| r.get::<ExecutorRow>(EXECUTORS, "acme/k8s")).unwrap().unwrap();
        assert_eq!(row.capabilities_digest, exec.capabilities.digest());
        assert_eq!((row.name.as_str(), row.kind, row.updated_at), ("k8s", ExecutorKind::Operator, t));
        let geth = &exec.capabilities.chains[0].clients[0];
        assert_eq!((geth.ports[0].default, geth.managed_keys.as_slice(), geth.volumes.is_empty()), (30303, &["datadir".to_string()][..], true));
        assert_eq!(exec.capabilities.storage_classes, None, "not known until the next heartbeat: not checked");
        let spec_now = &node.record.spec;
        assert_eq!(spec_now.p2p_exposure, novacula_core::spec::P2pExposure::None);
        assert_eq!((spec_now.clients[0].ports["p2p"], spec_now.restart_generation, node.record.revision), (30304, 3, novacula_core::Revision(7)));
        assert_eq!(spec_now.desired_state, novacula_core::DesiredState::Stopped);
        assert_eq!((spec_now.storage[0].name.as_str(), spec_now.storage[0].size_gib, spec_now.storage[0].holds.as_deref()), ("data", 100, None));
        assert_eq!((spec_now.sidecars[0].command.as_slice(), spec_now.sidecars[0].volumes.is_empty()), (&["-v".to_string()][..], true));
        assert_eq!(version, CURRENT);
    }

    /// `tests/data/schema5.redb` was written by the release of schema version
    /// 5 (`novacula serve`, then alice, owner, created ada admin, mem member,
    /// vic viewer and a key bound to edge-1 through the API). It goes through
    /// versions 6 (roles) and 7 (memberships).
    #[test]
    fn a_file_of_the_previous_release_gets_novaculas_roles() {
        use crate::store::model::ApiKey;
        use novacula_core::authz::Role;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.redb");
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema5.redb"), &path).unwrap();
        let roles = |s: &Store| {
            let users: Vec<(String, User)> = s.read(|r| r.scan(USERS, "")).unwrap();
            let members = |u: &str| s.read(|r| Ok::<_, StoreError>((r.orgs_of(u)?, r.member("acme", u)?))).unwrap();
            users
                .into_iter()
                .map(|(_, u)| {
                    let (orgs, m) = members(&u.username);
                    assert_eq!(orgs, ["acme"], "{} belongs to the organization it was in", u.username);
                    assert!(!u.disabled);
                    (u.username, m.unwrap().role)
                })
                .collect::<Vec<_>>()
        };
        let expected = vec![("ada".to_string(), Role::Admin), ("alice".into(), Role::Owner), ("mem".into(), Role::Operator), ("vic".into(), Role::Member)];
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(roles(&s), expected, "members could run nodes: operators now; viewers could only read: members now");
            assert_eq!(s.read(|r| r.counter(SCHEMA_VERSION)).unwrap(), CURRENT);
            let alice: User = s.read(|r| r.get(USERS, "alice")).unwrap().unwrap();
            use argon2::password_hash::{PasswordHash, PasswordVerifier};
            let hash = PasswordHash::new(&alice.password_hash).unwrap();
            assert!(argon2::Argon2::default().verify_password(b"correct-horse-battery", &hash).is_ok(), "passwords survive");
            let keys: Vec<(String, ApiKey)> = s.read(|r| r.scan(API_KEYS, "")).unwrap();
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].1.executor.as_deref(), Some("edge-1"));
            assert_eq!(keys[0].1.expires_at, None, "keys of before never expire");
            let org: Org = s.read(|r| r.get(ORGS, "acme")).unwrap().unwrap();
            assert_eq!((org.name.as_str(), org.deactivated), ("acme", false), "named after its id, active");
            let sessions: Vec<(String, Session)> = s.read(|r| r.scan(SESSIONS, "")).unwrap();
            assert_eq!(sessions.len(), 1, "alice's session of the API calls");
            assert_eq!((sessions[0].1.username.as_str(), sessions[0].1.org_id.as_str()), ("alice", "acme"));
        }
        // Once: opening again changes nothing (an operator stays an operator).
        let s = Store::open(&path).unwrap();
        assert_eq!(roles(&s), expected);
    }
}
