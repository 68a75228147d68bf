//! The `novacula` client commands (login, executors, keys, nodes, events): the
//! HTTP API from a shell, with kubectl-like habits. Table output by default,
//! `-o json` for scripts; errors go to stderr with a non-zero exit.

use crate::Failure;
use clap::{Args, Subcommand, ValueEnum};
use novacula_client::{ClientError, HttpApi};
use novacula_core::authz::Role;
use novacula_core::lifecycle::LifecycleAction;
use novacula_core::spec::NodeType;
use novacula_core::wire::{ApiKeyView, AuditEntry, CreateKeyRequest, CreateUserRequest, EventView, ExecutorView, MeView, NodeView, UserView};
use novacula_core::{NodeSpec, Timestamp};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Clone)]
pub struct Global {
    /// Control-plane URL (default: the one saved by `novacula login`, else http://127.0.0.1:8080).
    #[arg(long, global = true, env = "NOVACULA_SERVER")]
    pub server: Option<String>,
    /// PEM certificates to trust for an https:// server, beside the system's roots.
    #[arg(long, global = true, env = "NOVACULA_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Session token (default: the one saved by `novacula login`).
    #[arg(long, global = true, env = "NOVACULA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Work in this organization (one of yours; default: the one of `novacula org use`, else the session's).
    #[arg(long, global = true, env = "NOVACULA_ORG")]
    pub org: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    pub output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Sign in and save the session (in $NOVACULA_CONFIG, default ~/.config/novacula/session.json).
    Login {
        #[arg(long, short, default_value = "admin")]
        username: String,
        /// The password; read from $NOVACULA_PASSWORD or the first line of stdin when absent.
        #[arg(long, env = "NOVACULA_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// End the session on the server and forget it here.
    Logout,
    /// Create an account with an organization of its own, when the server allows it (serve --allow-signup).
    Signup {
        #[arg(long, short)]
        username: String,
        /// The organization's id (default: the username).
        #[arg(long = "organization")]
        organization: Option<String>,
        /// The password; read from $NOVACULA_PASSWORD or the first line of stdin when absent.
        #[arg(long, env = "NOVACULA_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Your organizations: list them, choose the one commands work in, hand one over.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Who you are signed in as: organization, role, and what the role may do.
    Whoami,
    /// The organization's users and their roles.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Invite people by email (owners, admins), or accept an invitation.
    #[command(subcommand)]
    Invitations(InvitationsCmd),
    /// Executors: the agents and operators that run nodes.
    #[command(subcommand)]
    Executors(ExecutorsCmd),
    /// API keys, with which executors authenticate.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Nodes: deploy, inspect and drive their lifecycle.
    #[command(subcommand)]
    Nodes(NodesCmd),
    /// The audit log, newest first: who changed what, through what (owners and admins; --mine for your own).
    Audit {
        /// Only entries by this actor (a username or an API key id).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, e.g. user.role.changed, apikey.rotated, node.lifecycle.
        #[arg(long)]
        action: Option<String>,
        /// Only entries about this target (a username, key id, executor or node name).
        #[arg(long)]
        target: Option<String>,
        /// Only your own activity (any role).
        #[arg(long, conflicts_with_all = ["actor", "action", "target"])]
        mine: bool,
        /// Show at most this many entries.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: u64,
    },
    /// The platform's administration (platform administrators: `serve --platform-admin`).
    #[command(subcommand)]
    Platform(PlatformCmd),
    /// The organization's events feed, oldest first.
    Events {
        /// Only events of this node.
        #[arg(long)]
        node: Option<String>,
        /// Only events of this kind, e.g. node.lifecycle.requested.
        #[arg(long)]
        kind: Option<String>,
        /// Show at most this many of the latest events.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Keep printing new events as they happen (Ctrl-C to stop).
        #[arg(long, short)]
        follow: bool,
    },
}

#[derive(Subcommand)]
pub enum OrgCmd {
    /// Your organizations and your role in each (* marks the one in use).
    List,
    /// Work in this organization from now on (saved with the session).
    Use { org: String },
    /// Make another member the owner; you become admin (owner only).
    Transfer { username: String },
    /// Leave the organization you work in (the owner transfers first).
    Leave,
    /// The organization you work in: id, name, state.
    Show,
    /// Give it another name, and with --slug another slug (its id stays; owners, admins).
    Rename {
        name: String,
        /// Another name for it in --org and sign-in: a DNS label no other organization uses.
        #[arg(long)]
        slug: Option<String>,
    },
    /// Deactivate it: data kept, members and executors refused (owner).
    Deactivate {
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Reactivate it (owner).
    Reactivate,
    /// Set its logo from a PNG or JPEG file (at most 256 KiB), or --remove it (owners, admins).
    Logo {
        #[arg(required_unless_present = "remove")]
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum PlatformCmd {
    /// Every organization: owner, members, state.
    Orgs,
    /// Deactivate an organization; only a platform administrator reactivates it.
    Deactivate {
        org: String,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Reactivate an organization.
    Reactivate { org: String },
    /// The releases offered to executors of organizations that set none of their own.
    Releases,
    /// Publish the release executors of a channel and kind should run.
    Publish {
        #[arg(long, default_value = "stable")]
        channel: String,
        /// agent or operator.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        version: String,
        /// Agent: the binary's file name in each host's release directory. Operator: image@sha256:<digest>.
        #[arg(long)]
        artifact: String,
        /// Agent: the binary's SHA-256 (hex).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Act as USER for support: prints a session token (one hour) to use with
    /// --token; everything done with it is audited with both names. End it with `platform end`.
    Impersonate {
        username: String,
        /// One of the user's organizations (default: their first).
        #[arg(long = "in")]
        in_org: Option<String>,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// End an impersonation: its token stops working at once.
    End { token: String },
    /// What platform administrators did, newest first.
    Audit {
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: u64,
    },
}

#[derive(Subcommand)]
pub enum InvitationsCmd {
    /// Invitations of the organization, newest first.
    List,
    /// Invite EMAIL: prints the link's token once (mailed too when the server has SMTP).
    Create {
        email: String,
        /// admin, operator or member (admins invite members only).
        #[arg(long, default_value = "member")]
        role: Role,
    },
    /// A new token for an invitation (the old one stops working), 7 more days.
    Resend { id: String },
    /// Cancel an invitation.
    Cancel { id: String },
    /// Accept an invitation: signed in, you join; with --username, a new account is made (password on stdin).
    Accept {
        token: String,
        #[arg(long)]
        username: Option<String>,
        /// The new account's password; read from $NOVACULA_NEW_PASSWORD or the first line of stdin when absent.
        #[arg(long, env = "NOVACULA_NEW_PASSWORD", hide_env_values = true, requires = "username")]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum UsersCmd {
    /// List the organization's users with their roles.
    List,
    /// Add a user (owners and admins; only owners add owners).
    Create {
        username: String,
        /// owner, admin (change anything), operator (also start, stop and
        /// restart nodes) or member (read only).
        #[arg(long, default_value = "member")]
        role: Role,
        /// The new user's password; read from $NOVACULA_NEW_PASSWORD or the first line of stdin when absent.
        #[arg(long, env = "NOVACULA_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Change a member's role (owners: admin, operator, member; admins: not an owner's).
    SetRole {
        username: String,
        #[arg(long)]
        role: Role,
    },
    /// Take a member out of the organization; the account stays.
    Remove { username: String },
    /// Stop a member's account: no sign-in, and their sessions end at once.
    Disable { username: String },
    /// Let a disabled member sign in again.
    Enable { username: String },
}

#[derive(Subcommand)]
pub enum ExecutorsCmd {
    /// List executors with their status.
    List,
    /// Show one executor.
    Get { name: String },
    /// Stop managing an executor: its key no longer works for it.
    Deactivate { name: String },
    /// Delete an executor with no nodes left that is offline or deactivated;
    /// its bound keys are revoked and its name is free again.
    Delete {
        name: String,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// List API keys (never their secrets) with their last use.
    List,
    /// Create an API key; it is printed this once.
    Create {
        /// Bind the key to one executor name.
        #[arg(long)]
        executor: Option<String>,
        #[arg(long, default_value = "")]
        label: String,
        /// Days until the key stops working (default 365).
        #[arg(long, conflicts_with = "never_expires")]
        expires_in_days: Option<u32>,
        /// The key never expires.
        #[arg(long)]
        never_expires: bool,
    },
    /// Replace a key: prints the new key once (same executor and lifetime); the old one is revoked.
    Rotate { id: String },
    /// Revoke an API key at once.
    Revoke { id: String },
    /// Delete a revoked key's record.
    Delete { id: String },
}

#[derive(Subcommand)]
pub enum NodesCmd {
    /// List nodes with their derived phase.
    List {
        /// Only nodes of this executor.
        #[arg(long)]
        executor: Option<String>,
        /// Only nodes of this chain (ethereum, bitcoin, ...).
        #[arg(long)]
        chain: Option<String>,
        /// Only nodes in this phase now: provisioning, configuring, starting,
        /// running, syncing, stopping, stopped, error or deleting.
        #[arg(long)]
        phase: Option<String>,
    },
    /// Show one node: spec, revisions, drift, processes.
    Get { name: String },
    /// Deploy a node: from a spec file (TOML, or JSON when the name ends in
    /// .json), or built from --chain, --network and one --client per role
    /// with the executor's defaults for the rest (resources, disk).
    ///
    /// novacula nodes deploy --executor edge-1 --chain ethereum --network hoodi
    ///   --client execution=reth@2.0.0 --client consensus=lighthouse@8.0.0 --dry-run
    #[command(verbatim_doc_comment)]
    Deploy {
        #[arg(long, short = 'f', conflicts_with_all = ["chain", "network", "clients", "settings", "node_type", "disk_gib", "storage_class"])]
        file: Option<PathBuf>,
        /// The executor that runs it.
        #[arg(long, short)]
        executor: String,
        /// The node's name (default: CHAIN-NETWORK).
        #[arg(long)]
        name: Option<String>,
        /// The chain (the executor's capabilities say which it runs).
        #[arg(long, requires = "network", required_unless_present = "file")]
        chain: Option<String>,
        #[arg(long, requires = "chain")]
        network: Option<String>,
        /// full or archive.
        #[arg(long = "node-type", default_value = "full", value_parser = ["full", "archive"])]
        node_type: String,
        /// ROLE=CLIENT@VERSION, once per role (execution=reth@2.0.0).
        #[arg(long = "client", value_name = "ROLE=CLIENT@VERSION")]
        clients: Vec<String>,
        /// ROLE.KEY=VALUE: a setting of that role's client (node.dbcache=4096).
        #[arg(long = "set", value_name = "ROLE.KEY=VALUE")]
        settings: Vec<String>,
        /// Disk for the node's data (default: the network's, larger for archive).
        #[arg(long)]
        disk_gib: Option<u32>,
        /// Storage class of the data volume (operator).
        #[arg(long)]
        storage_class: Option<String>,
        /// Print the spec that would be deployed (checked against the
        /// executor's capabilities) and deploy nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replace a node's spec from a file (a new revision).
    Edit {
        name: String,
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// Start a stopped node.
    Start { name: String },
    /// Stop a node (its data is kept).
    Stop { name: String },
    /// Restart a node's processes.
    Restart { name: String },
    /// Delete a node, its processes and (agent) its data. Irreversible.
    Delete {
        name: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// A node's log, one process at a time: the last lines, and with -f the
    /// new ones as they come (streamed from its executor while you watch).
    Logs {
        name: String,
        /// The process: a client role (execution, consensus, ...) or a sidecar; default: the first client.
        #[arg(long)]
        process: Option<String>,
        /// Keep printing new lines (Ctrl-C ends).
        #[arg(long, short = 'f')]
        follow: bool,
        /// Lines replayed first (at most 1000).
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=1000))]
        tail: u32,
        /// Only lines at this level or above: debug, info, warn, error.
        #[arg(long)]
        level: Option<novacula_core::logs::LogLevel>,
    },
}

#[derive(Serialize, Deserialize, Default)]
struct Session {
    server: String,
    token: String,
    /// Set by `novacula org use`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<String>,
}

fn session_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NOVACULA_CONFIG") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("novacula").join("session.json")
}

fn load_session() -> Option<Session> {
    serde_json::from_slice(&std::fs::read(session_path()).ok()?).ok()
}

#[allow(clippy::expect_used, reason = "a session is plain data; serializing it cannot fail")]
fn save_session(s: &Session) -> Result<(), Failure> {
    let path = session_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // The token is a credential: the file is 0600 from its creation, and complete or absent.
    novacula_agent::files::write_atomic(&path, &serde_json::to_vec_pretty(s).expect("session serializes"), 0o600, None)
        .map_err(|e| format!("{}: {e}", path.display()).into())
}

fn client(g: &Global, need_token: bool) -> Result<HttpApi, Failure> {
    let saved = load_session();
    let server = g.server.clone().or_else(|| saved.as_ref().map(|s| s.server.clone())).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let saved = saved.filter(|s| s.server.trim_end_matches('/') == server.trim_end_matches('/'));
    let org = g.org.clone().or_else(|| saved.as_ref().and_then(|s| s.org.clone()));
    let token = g.token.clone().or_else(|| saved.map(|s| s.token));
    if need_token && token.is_none() {
        return Err(format!("not signed in to {server}; run `novacula login` (or set NOVACULA_TOKEN)").into());
    }
    Ok(HttpApi::with_ca(&server, token, g.ca_file.as_deref())?.with_org(org).with_client_name("cli"))
}

fn api_err(e: ClientError) -> String {
    match e.status() {
        Some(401) => format!("{e}; run `novacula login` again"),
        _ => e.to_string(),
    }
}

/// A failed call as the user should read it.
fn api_failed(e: ClientError) -> Failure {
    api_err(e).into()
}

/// Columns aligned to the widest cell, kubectl style.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        s.join("   ").trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(std::string::ToString::to_string).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// An optional cell: `-` when absent.
fn opt(v: Option<&str>) -> String {
    v.map_or_else(|| "-".into(), str::to_string)
}

fn ago(at: Option<Timestamp>) -> String {
    let Some(Timestamp(ms)) = at else { return "never".into() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let secs = now.saturating_sub(ms) / 1000;
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

fn executors_table(list: &[ExecutorView]) -> String {
    let rows = list.iter().map(|v| {
        let e = &v.executor;
        let status = if e.deactivated {
            "deactivated"
        } else if v.online {
            "online"
        } else {
            "offline"
        };
        vec![
            e.name.clone(),
            e.kind.to_string(),
            status.into(),
            e.version.clone(),
            v.compat.as_str().into(),
            e.channel.to_string(),
            v.node_count.to_string(),
            ago(Some(e.updated_at)),
        ]
    });
    table(&["NAME", "KIND", "STATUS", "VERSION", "COMPAT", "CHANNEL", "NODES", "LAST SYNC"], rows.collect())
}

fn nodes_table(list: &[NodeView]) -> String {
    let rows = list.iter().map(|n| {
        let behind = n.drift.revisions_behind;
        let revision = if behind > 0 { format!("{} (pending {behind})", n.revision) } else { n.revision.to_string() };
        let down = if n.node_down { " (down)" } else { "" };
        vec![
            n.name.clone(),
            n.executor.clone(),
            format!("{}/{}", n.spec.chain, n.spec.network),
            format!("{}{down}", n.phase.as_str()),
            n.spec.desired_state.as_str().into(),
            revision,
        ]
    });
    table(&["NAME", "EXECUTOR", "CHAIN", "PHASE", "DESIRED", "REVISION"], rows.collect())
}

fn node_detail(n: &NodeView) -> String {
    let observed = n.observed.as_ref().map(|o| o.revision.to_string());
    let mut out = table(
        &["NAME", "EXECUTOR", "PHASE", "DESIRED", "REVISION", "OBSERVED"],
        vec![vec![
            n.name.clone(),
            n.executor.clone(),
            n.phase.as_str().into(),
            n.spec.desired_state.as_str().into(),
            n.revision.to_string(),
            opt(observed.as_deref()),
        ]],
    );
    let procs: Vec<Vec<String>> = n
        .observed
        .iter()
        .flat_map(|o| &o.processes)
        .map(|p| {
            let ports = n.spec.client(&p.name).map(|c| c.ports.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
            let sync = |f: fn(&novacula_core::SyncMetrics) -> String| p.sync.as_ref().map_or_else(|| "-".to_string(), f);
            vec![
                p.name.clone(),
                p.status.as_str().into(),
                sync(|m| m.current_block.to_string()),
                sync(|m| m.sync_distance.to_string()),
                sync(|m| format!("{:.2}%", m.progress_percent)),
                sync(|m| m.peers.to_string()),
                sync(|m| m.execution_online.map_or("-", |up| if up { "up" } else { "down" }).to_string()),
                opt(ports.as_deref().filter(|p| !p.is_empty())),
                opt(p.message.as_deref()),
            ]
        })
        .collect();
    if !procs.is_empty() {
        out.push('\n');
        out.push_str(&table(&["PROCESS", "STATUS", "HEAD", "BEHIND", "SYNCED", "PEERS", "EL", "PORTS", "MESSAGE"], procs));
    }
    if let Some(d) = n.observed.as_ref().and_then(|o| o.disk) {
        out.push_str(&format!("\ndisk: {} used by the node, {} free of {}\n", bytes(d.used_bytes), bytes(d.free_bytes), bytes(d.total_bytes)));
    }
    out
}

/// Bytes in binary units, one decimal.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn events_table(events: &[EventView]) -> String {
    let rows = events.iter().map(|e| vec![e.seq.to_string(), e.level.as_str().to_uppercase(), e.kind.clone(), e.actor.clone(), e.message.clone()]);
    table(&["SEQ", "LEVEL", "KIND", "ACTOR", "MESSAGE"], rows.collect())
}

fn keys_table(list: &[ApiKeyView]) -> String {
    let rows = list.iter().map(|k| {
        let state = match () {
            _ if k.revoked_at.is_some() => "revoked",
            _ if k.expired => "expired",
            _ => "active",
        };
        let expires = k.expires_at.map_or_else(|| "never".to_string(), Timestamp::utc_date);
        vec![k.id.clone(), k.label.clone(), opt(k.executor.as_deref()), state.into(), expires, ago(k.last_used_at)]
    });
    table(&["ID", "LABEL", "EXECUTOR", "STATE", "EXPIRES", "LAST USED"], rows.collect())
}

fn org_line(o: &novacula_core::wire::OrgView) -> String {
    let logo = if o.logo_updated_at.is_some() { ", with a logo" } else { "" };
    let slug = if o.slug != o.id { format!(", slug {}", o.slug) } else { String::new() };
    format!("{} ({}){slug}{}{logo}\n", o.id, o.name, if o.deactivated { ", deactivated" } else { "" })
}

fn audit_table(entries: &[AuditEntry]) -> String {
    let rows = entries.iter().map(|e| {
        let details: Vec<String> = e.details.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let source = serde_json::to_value(e.source).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        vec![
            e.seq.to_string(),
            ago(Some(e.at)),
            match &e.impersonator {
                Some(admin) => format!("{} (by {admin})", e.actor_name),
                None => e.actor_name.clone(),
            },
            e.action.as_str().into(),
            format!("{}:{}", e.target_kind, e.target_id),
            source,
            details.join(" "),
        ]
    });
    table(&["SEQ", "WHEN", "ACTOR", "ACTION", "TARGET", "VIA", "DETAILS"], rows.collect())
}

fn users_table(list: &[UserView]) -> String {
    let rows =
        list.iter().map(|u| vec![u.username.clone(), u.role.as_str().into(), (if u.disabled { "disabled" } else { "active" }).into(), ago(Some(u.created_at))]);
    table(&["USERNAME", "ROLE", "STATE", "CREATED"], rows.collect())
}

fn whoami(m: &MeView) -> String {
    let may: Vec<&str> = m.permissions.iter().map(|p| p.as_str()).collect();
    let mut s = format!(
        "{} in organization {} as {}
may: {}
",
        m.user.username,
        m.user.org_id,
        m.user.role.as_str(),
        may.join(", ")
    );
    if m.platform_admin {
        s.push_str("platform administrator\n");
    }
    if let Some(admin) = &m.impersonated_by {
        s.push_str(&format!("impersonated by {admin}\n"));
    }
    s
}

/// A password given as a flag, else the first line of stdin.
fn password_or_stdin(given: Option<String>) -> Result<String, Failure> {
    if let Some(p) = given {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("reading the password from stdin: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `--client ROLE=CLIENT@VERSION` and `--set ROLE.KEY=VALUE` as a draft's clients.
fn client_choices(clients: &[String], settings: &[String]) -> Result<Vec<novacula_core::draft::ClientChoice>, Failure> {
    let mut out = vec![];
    for c in clients {
        let parsed = c.split_once('=').and_then(|(role, rest)| rest.split_once('@').map(|(client, version)| (role, client, version)));
        let Some((role, client, version)) = parsed.filter(|(r, c, v)| !r.is_empty() && !c.is_empty() && !v.is_empty()) else {
            return Err(format!("--client {c:?}: expected ROLE=CLIENT@VERSION (execution=reth@2.0.0)").into());
        };
        out.push(novacula_core::draft::ClientChoice {
            role: role.into(),
            client: client.into(),
            version: version.into(),
            overrides: Default::default(),
            resources: None,
        });
    }
    for s in settings {
        let parsed = s.split_once('=').and_then(|(path, value)| path.split_once('.').map(|(role, key)| (role, key, value)));
        let Some((role, key, value)) = parsed.filter(|(r, k, _)| !r.is_empty() && !k.is_empty()) else {
            return Err(format!("--set {s:?}: expected ROLE.KEY=VALUE (node.dbcache=4096)").into());
        };
        let Some(choice) = out.iter_mut().find(|c| c.role == role) else {
            return Err(format!("--set {s:?}: no --client for role {role:?}").into());
        };
        choice.overrides.insert(key.into(), value.into());
    }
    Ok(out)
}

fn read_spec(path: &Path) -> Result<NodeSpec, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()).into())
    } else {
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()).into())
    }
}

#[allow(clippy::expect_used, reason = "the API's views always serialize")]
fn print<T: Serialize>(g: &Global, v: &T, as_table: impl FnOnce(&T) -> String) {
    match g.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(v).expect("JSON")),
        Output::Table => print!("{}", as_table(v)),
    }
}

pub async fn run(g: Global, cmd: ClientCommand) -> Result<(), Failure> {
    match cmd {
        ClientCommand::Login { username, password } => {
            let password = password_or_stdin(password)?;
            let api = client(&g, false)?;
            let r = api.login_to(&username, &password, g.org.as_deref()).await.map_err(api_failed)?;
            save_session(&Session { server: api.base().to_string(), token: r.token, org: None })?;
            eprintln!("signed in to {} as {username}, {} of organization {}", api.base(), r.user.role.as_str(), r.user.org_id);
        }
        ClientCommand::Signup { username, organization, password } => {
            let password = password_or_stdin(password)?;
            let api = client(&g, false)?.with_token(None);
            let r = api.signup(&username, &password, organization.as_deref()).await.map_err(api_failed)?;
            save_session(&Session { server: api.base().to_string(), token: r.token, org: None })?;
            eprintln!("signed up at {} as {username}, owner of organization {}", api.base(), r.user.org_id);
        }
        ClientCommand::Logout => {
            // The server forgets the session first, so a copied token dies with it.
            if let Ok(api) = client(&g, true) {
                match api.logout().await {
                    Ok(()) | Err(ClientError::Status { status: 401, .. }) => {}
                    Err(e) => return Err(format!("{}; the session is kept here", api_err(e)).into()),
                }
            }
            match std::fs::remove_file(session_path()) {
                Ok(()) => eprintln!("signed out"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => eprintln!("not signed in"),
                Err(e) => return Err(format!("{}: {e}", session_path().display()).into()),
            }
        }
        ClientCommand::Org(c) => {
            let api = client(&g, true)?;
            match c {
                OrgCmd::List => {
                    let orgs = api.orgs().await.map_err(api_failed)?;
                    let current = api.me().await.map_err(api_failed)?.user.org_id;
                    print(&g, &orgs, |l| {
                        let rows =
                            l.iter().map(|o| vec![if o.org_id == current { "*".into() } else { String::new() }, o.org_id.clone(), o.role.as_str().into()]);
                        table(&["", "ORGANIZATION", "ROLE"], rows.collect())
                    });
                }
                OrgCmd::Use { org } => {
                    let mut saved = load_session().ok_or("not signed in; run `novacula login`")?;
                    let me = api.with_org(Some(org.clone())).me().await.map_err(api_failed)?;
                    saved.org = Some(org);
                    save_session(&saved)?;
                    eprintln!("working in organization {} as {}", me.user.org_id, me.user.role.as_str());
                }
                OrgCmd::Transfer { username } => {
                    print(&g, &api.transfer_ownership(&username).await.map_err(api_failed)?, |u| users_table(std::slice::from_ref(u)));
                }
                OrgCmd::Show => print(&g, &api.org().await.map_err(api_failed)?, org_line),
                OrgCmd::Rename { name, slug } => print(&g, &api.update_org(&name, slug.as_deref()).await.map_err(api_failed)?, org_line),
                OrgCmd::Deactivate { yes } => {
                    if !yes {
                        return Err("deactivating refuses its members and executors until it is reactivated; pass --yes to confirm".into());
                    }
                    print(&g, &api.set_org_active(false).await.map_err(api_failed)?, org_line);
                }
                OrgCmd::Reactivate => print(&g, &api.set_org_active(true).await.map_err(api_failed)?, org_line),
                OrgCmd::Logo { remove: true, .. } => print(&g, &api.remove_org_logo().await.map_err(api_failed)?, org_line),
                OrgCmd::Logo { file, .. } => {
                    let file = file.ok_or("name the image file, or pass --remove")?;
                    let image = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                    // Labelled by what its bytes are; the server checks them again.
                    let kind = novacula_core::logo::check(&image, None).map_err(|e| format!("{}: {e}", file.display()))?;
                    print(&g, &api.set_org_logo(image, kind.content_type()).await.map_err(api_failed)?, org_line);
                }
                OrgCmd::Leave => {
                    api.leave().await.map_err(api_failed)?;
                    eprintln!("left the organization");
                }
            }
        }
        ClientCommand::Whoami => {
            let api = client(&g, true)?;
            print(&g, &api.me().await.map_err(api_failed)?, whoami);
        }
        ClientCommand::Invitations(c) => {
            let created = |g: &Global, i: &novacula_core::wire::CreatedInvitation| {
                print(g, i, |i| format!("{}\n", i.token));
                if g.output == Output::Table {
                    let mailed = if i.emailed { format!(", mailed to {}", i.invitation.email) } else { String::new() };
                    eprintln!(
                        "invitation {} ({} as {}){mailed}; open <control plane>{} to accept. The token is shown this once.",
                        i.invitation.id,
                        i.invitation.email,
                        i.invitation.role.as_str(),
                        i.path
                    );
                }
            };
            match c {
                InvitationsCmd::List => {
                    let api = client(&g, true)?;
                    print(&g, &api.invitations().await.map_err(api_failed)?, |l| {
                        let rows = l.iter().map(|i| {
                            let state = serde_json::to_value(i.state).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                            vec![i.id.clone(), i.email.clone(), i.role.as_str().into(), state, i.invited_by.clone(), i.expires_at.utc_date()]
                        });
                        table(&["ID", "EMAIL", "ROLE", "STATE", "BY", "EXPIRES"], rows.collect())
                    });
                }
                InvitationsCmd::Create { email, role } => created(&g, &client(&g, true)?.invite(&email, role).await.map_err(api_failed)?),
                InvitationsCmd::Resend { id } => created(&g, &client(&g, true)?.resend_invitation(&id).await.map_err(api_failed)?),
                InvitationsCmd::Cancel { id } => {
                    client(&g, true)?.cancel_invitation(&id).await.map_err(api_failed)?;
                    eprintln!("invitation {id} cancelled");
                }
                InvitationsCmd::Accept { token, username, password } => {
                    let new_account = match username {
                        Some(u) => Some((u, password_or_stdin(password)?)),
                        None => None,
                    };
                    let api = client(&g, new_account.is_none())?;
                    let api = if new_account.is_some() { api.with_token(None) } else { api };
                    let r = api.accept_invitation(&token, new_account.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))).await.map_err(api_failed)?;
                    save_session(&Session { server: api.base().to_string(), token: r.token, org: None })?;
                    eprintln!("{} joined organization {} as {}; signed in there", r.user.username, r.user.org_id, r.user.role.as_str());
                }
            }
        }
        ClientCommand::Users(c) => {
            let api = client(&g, true)?;
            match c {
                UsersCmd::List => print(&g, &api.users().await.map_err(api_failed)?, |l| users_table(l)),
                UsersCmd::Create { username, role, password } => {
                    let req = CreateUserRequest { username, password: password_or_stdin(password)?, role };
                    print(&g, &api.create_user(&req).await.map_err(api_failed)?, |u| users_table(std::slice::from_ref(u)));
                }
                UsersCmd::SetRole { username, role } => {
                    print(&g, &api.set_role(&username, role).await.map_err(api_failed)?, |u| users_table(std::slice::from_ref(u)));
                }
                UsersCmd::Remove { username } => {
                    api.remove_user(&username).await.map_err(api_failed)?;
                    eprintln!("{username} is no longer a member");
                }
                UsersCmd::Disable { username } => {
                    print(&g, &api.set_user_disabled(&username, true).await.map_err(api_failed)?, |u| users_table(std::slice::from_ref(u)));
                }
                UsersCmd::Enable { username } => {
                    print(&g, &api.set_user_disabled(&username, false).await.map_err(api_failed)?, |u| users_table(std::slice::from_ref(u)));
                }
            }
        }
        ClientCommand::Executors(c) => {
            let api = client(&g, true)?;
            let one = match c {
                ExecutorsCmd::List => {
                    print(&g, &api.executors().await.map_err(api_failed)?, |l| executors_table(l));
                    return Ok(());
                }
                ExecutorsCmd::Delete { name, yes } => {
                    if !yes {
                        return Err("deleting an executor revokes its keys and frees its name; pass --yes to confirm".into());
                    }
                    api.delete_executor(&name).await.map_err(api_failed)?;
                    eprintln!("executor {name} deleted");
                    return Ok(());
                }
                ExecutorsCmd::Get { name } => api.executor(&name).await,
                ExecutorsCmd::Deactivate { name } => api.deactivate_executor(&name).await,
            };
            print(&g, &one.map_err(api_failed)?, |e| executors_table(std::slice::from_ref(e)));
        }
        ClientCommand::Keys(c) => {
            let api = client(&g, true)?;
            match c {
                KeysCmd::List => print(&g, &api.keys().await.map_err(api_failed)?, |l| keys_table(l)),
                KeysCmd::Create { executor, label, expires_in_days, never_expires } => {
                    let k = api.create_key(&CreateKeyRequest { label, executor, expires_in_days, never_expires }).await.map_err(api_failed)?;
                    print(&g, &k, |k| format!("{}\n", k.key));
                    if g.output == Output::Table {
                        eprintln!("API key {} created; it is shown this once.", k.record.id);
                    }
                }
                KeysCmd::Rotate { id } => {
                    let k = api.rotate_key(&id).await.map_err(api_failed)?;
                    print(&g, &k, |k| format!("{}\n", k.key));
                    if g.output == Output::Table {
                        eprintln!("API key {} replaces {id} (revoked); it is shown this once. Give it to the executor now.", k.record.id);
                    }
                }
                KeysCmd::Revoke { id } => print(&g, &api.revoke_key(&id).await.map_err(api_failed)?, |k| keys_table(std::slice::from_ref(k))),
                KeysCmd::Delete { id } => {
                    api.delete_key(&id).await.map_err(api_failed)?;
                    eprintln!("API key {id} deleted");
                }
            }
        }
        ClientCommand::Nodes(c) => {
            let api = client(&g, true)?;
            let node = match c {
                NodesCmd::List { executor, chain, phase } => {
                    let q = novacula_client::NodeQuery { executor, chain, phase };
                    print(&g, &api.nodes_matching(&q).await.map_err(api_failed)?, |l| nodes_table(l));
                    return Ok(());
                }
                NodesCmd::Get { name } => api.node(&name).await,
                NodesCmd::Deploy { file, executor, name, chain, network, node_type, clients, settings, disk_gib, storage_class, dry_run } => {
                    let spec = match file {
                        Some(file) => read_spec(&file)?,
                        None => {
                            let exec = api.executor(&executor).await.map_err(api_failed)?;
                            let (chain, network) = (chain.unwrap_or_default(), network.unwrap_or_default());
                            let draft = novacula_core::draft::Draft {
                                name: name.unwrap_or_else(|| format!("{chain}-{network}")),
                                node_type: if node_type == "archive" { NodeType::Archive } else { NodeType::Full },
                                clients: client_choices(&clients, &settings)?,
                                chain,
                                network,
                                disk_gib,
                                storage_class,
                            };
                            novacula_core::draft::build(&draft, &exec.executor.capabilities).map_err(|errs| {
                                let lines: Vec<String> = errs.iter().map(|e| format!("  {}: {e}", e.code())).collect();
                                format!("executor {executor:?} cannot run this node:\n{}", lines.join("\n"))
                            })?
                        }
                    };
                    if dry_run {
                        match g.output {
                            Output::Json => println!("{}", serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?),
                            Output::Table => print!("{}", toml::to_string(&spec).map_err(|e| e.to_string())?),
                        }
                        return Ok(());
                    }
                    api.deploy(&executor, spec).await
                }
                NodesCmd::Edit { name, file } => api.edit_spec(&name, read_spec(&file)?).await,
                NodesCmd::Start { name } => api.lifecycle(&name, LifecycleAction::Start).await,
                NodesCmd::Stop { name } => api.lifecycle(&name, LifecycleAction::Stop).await,
                NodesCmd::Restart { name } => api.lifecycle(&name, LifecycleAction::Restart).await,
                NodesCmd::Logs { name, process, follow, tail, level } => {
                    let mut path = format!("/api/v1/nodes/{name}/logs?tail={tail}&follow={follow}");
                    if let Some(p) = process {
                        path.push_str(&format!("&process={p}"));
                    }
                    if let Some(l) = level {
                        path.push_str(&format!("&level={}", l.as_str()));
                    }
                    let mut failure = None;
                    api.server_events(&path, |event, data| match event {
                        "line" => {
                            match serde_json::from_str::<novacula_core::logs::LogLine>(data) {
                                Ok(l) => println!("{}", l.text),
                                Err(_) => println!("{data}"),
                            }
                            true
                        }
                        "skipped" => {
                            eprintln!("[{data} lines skipped: this terminal fell behind]");
                            true
                        }
                        "error" => {
                            failure = Some(data.to_string());
                            follow
                        }
                        _ => true,
                    })
                    .await
                    .map_err(api_failed)?;
                    if let Some(e) = failure {
                        return Err(e.into());
                    }
                    return Ok(());
                }
                NodesCmd::Delete { name, yes } => {
                    if !yes {
                        return Err(format!("deleting {name} removes its processes and data and cannot be undone; pass --yes to confirm").into());
                    }
                    api.delete_node(&name).await
                }
            };
            print(&g, &node.map_err(api_failed)?, node_detail);
        }
        ClientCommand::Audit { actor, action, target, mine, limit } => {
            let api = client(&g, true)?;
            let limit = limit as usize;
            let page = if mine { api.my_activity(0, limit).await } else { api.audit(0, limit, &novacula_client::AuditFilter { actor, action, target }).await };
            print(&g, &page.map_err(api_failed)?.entries, |l| audit_table(l));
        }
        ClientCommand::Platform(c) => platform(&g, c).await?,
        ClientCommand::Events { node, kind, limit, follow } => {
            let api = client(&g, true)?;
            let (node, kind) = (node.as_deref(), kind.as_deref());
            // read to the end of the feed, keeping the latest `limit`
            let mut after = 0;
            let mut latest: Vec<EventView> = Vec::new();
            loop {
                let page = api.events(after, PAGE, node, kind).await.map_err(api_failed)?;
                after = page.next.max(after);
                let done = page.events.len() < PAGE;
                latest.extend(page.events);
                let excess = latest.len().saturating_sub(limit);
                latest.drain(..excess);
                if done {
                    break;
                }
            }
            emit_events(&g, &latest, true);
            if !follow {
                return Ok(());
            }
            // --follow: poll for new events until interrupted
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let page = api.events(after, PAGE, node, kind).await.map_err(api_failed)?;
                after = page.next.max(after);
                emit_events(&g, &page.events, false);
            }
        }
    }
    Ok(())
}

async fn platform(g: &Global, c: PlatformCmd) -> Result<(), Failure> {
    use novacula_client::Method;
    use novacula_core::wire::{AuditPage, LoginResponse, OrgView, PlatformOrgView, UpgradeRow};
    let api = client(g, true)?.with_org(None);
    let none = None::<&()>;
    match c {
        PlatformCmd::Orgs => {
            let orgs: Vec<PlatformOrgView> = api.get("/api/v1/platform/orgs").await.map_err(api_failed)?;
            print(g, &orgs, |l| {
                let rows = l.iter().map(|o| {
                    let state = if o.org.deactivated { "deactivated" } else { "active" };
                    vec![o.org.id.clone(), o.org.name.clone(), opt(o.owner.as_deref()), o.members.to_string(), state.into()]
                });
                table(&["ORGANIZATION", "NAME", "OWNER", "MEMBERS", "STATE"], rows.collect())
            });
        }
        PlatformCmd::Deactivate { org, yes } => {
            if !yes {
                return Err(
                    "deactivating refuses the organization's members and executors until a platform administrator reactivates it; pass --yes to confirm".into(),
                );
            }
            let o: OrgView = api.call(Method::POST, &format!("/api/v1/platform/orgs/{org}/deactivate"), none).await.map_err(api_failed)?;
            print(g, &o, org_line);
        }
        PlatformCmd::Reactivate { org } => {
            let o: OrgView = api.call(Method::POST, &format!("/api/v1/platform/orgs/{org}/reactivate"), none).await.map_err(api_failed)?;
            print(g, &o, org_line);
        }
        PlatformCmd::Releases => {
            let rows: Vec<UpgradeRow> = api.get("/api/v1/platform/releases").await.map_err(api_failed)?;
            print(g, &rows, |r| releases_table(r));
        }
        PlatformCmd::Publish { channel, kind, version, artifact, sha256 } => {
            let body = serde_json::json!({"channel": channel, "kind": kind, "version": version, "artifact": artifact, "sha256": sha256});
            let row: UpgradeRow = api.call(Method::PUT, "/api/v1/platform/releases", Some(&body)).await.map_err(api_failed)?;
            print(g, &vec![row], |r| releases_table(r));
        }
        PlatformCmd::Impersonate { username, in_org, reason } => {
            let body = serde_json::json!({"username": username, "org": in_org, "reason": reason});
            let r: LoginResponse = api.call(Method::POST, "/api/v1/platform/impersonate", Some(&body)).await.map_err(api_failed)?;
            print(g, &r, |r| format!("{}\n", r.token));
            if g.output == Output::Table {
                eprintln!(
                    "acting as {} in organization {} until {}: run commands with --token <that token>; end it with `novacula platform end <token>`",
                    r.user.username,
                    r.user.org_id,
                    r.expires_at.utc_date()
                );
            }
        }
        PlatformCmd::End { token } => {
            api.with_token(Some(token)).logout().await.map_err(api_failed)?;
            eprintln!("impersonation ended");
        }
        PlatformCmd::Audit { limit } => {
            let page: AuditPage = api.get(&format!("/api/v1/platform/audit?limit={limit}")).await.map_err(api_failed)?;
            print(g, &page.entries, |l| audit_table(l));
        }
    }
    Ok(())
}

fn releases_table(rows: &[novacula_core::wire::UpgradeRow]) -> String {
    let rows = rows.iter().map(|r| vec![r.spec.channel.to_string(), r.kind.to_string(), r.spec.version.clone(), r.spec.artifact.clone(), r.set_by.clone()]);
    table(&["CHANNEL", "KIND", "VERSION", "ARTIFACT", "BY"], rows.collect())
}

/// The events feed's largest page.
const PAGE: usize = 1000;

/// Events as a table (header only on the first batch) or one JSON object per line.
#[allow(clippy::expect_used, reason = "the API's views always serialize")]
fn emit_events(g: &Global, events: &[EventView], header: bool) {
    use std::io::Write;
    match g.output {
        Output::Json => {
            for e in events {
                println!("{}", serde_json::to_string(e).expect("JSON"));
            }
        }
        Output::Table => {
            let t = events_table(events);
            let body = if header { t.as_str() } else { t.split_once('\n').map_or("", |(_, rest)| rest) };
            print!("{body}");
        }
    }
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_detail_shows_metrics_ports_and_disk() {
        let mut spec = novacula_core::fixtures::eth_spec("eth-1");
        spec.clients[0].ports = [("http".to_string(), 8545), ("p2p".to_string(), 30303)].into();
        let view = serde_json::json!({
            "name": "eth-1", "executor": "edge-1", "revision": 3, "spec": spec, "phase": "syncing",
            "drift": {"revisionsBehind": 0, "liveness": false}, "nodeDown": false, "executorOnline": true,
            "deleted": false, "removed": false, "observedAt": 1, "createdAt": 1, "updatedAt": 1,
            "observed": {"node": "eth-1", "revision": 3, "removed": false,
                "disk": {"usedBytes": 1_610_612_736u64, "freeBytes": 1024, "totalBytes": 2_199_023_255_552u64},
                "processes": [
                    {"name": "execution", "status": "syncing", "sync": {"currentBlock": 50, "highestBlock": 200, "peers": 7, "syncDistance": 150, "progressPercent": 25.0}},
                    {"name": "consensus", "status": "error", "message": "its execution client is stopped",
                     "sync": {"currentBlock": 9, "highestBlock": 9, "peers": 0, "syncDistance": 0, "progressPercent": 100.0, "executionOnline": false}}
                ]}
        });
        let n: NodeView = serde_json::from_value(view).unwrap();
        let out = node_detail(&n);
        let row = |name: &str| out.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(row("execution")[..8], ["execution", "syncing", "50", "150", "25.00%", "7", "-", "http=8545"], "{out}");
        assert!(out.contains("consensus") && out.contains("down") && out.contains("its execution client is stopped"), "{out}");
        assert!(out.contains("disk: 1.5 GiB used by the node, 1.0 KiB free of 2.0 TiB"), "{out}");
    }
}
