//! The fleet at a glance, for `/metrics`: executors by kind, state and
//! compatibility window, nodes by chain and derived phase, drift. One read
//! of every executor, node and report (a scrape every 15 s or so).

use super::nodes::phase_of;
use super::Result;
use crate::state::AppState;
use crate::store::model::{ExecutorRow, NodeRow, ObservedRow, Org, OutboxEntry};
use crate::store::{EXECUTORS, NODES, OBSERVED, OPEN_INCIDENTS, ORGS, OUTBOX};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExecutorClass {
    pub kind: &'static str,
    /// `online`, `offline` or `deactivated`.
    pub state: &'static str,
    /// `in-window`, `deprecated` or `out-of-support`.
    pub compat: &'static str,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FleetStats {
    pub organizations: u64,
    pub executors: BTreeMap<ExecutorClass, u64>,
    /// By (chain, phase).
    pub nodes: BTreeMap<(String, &'static str), u64>,
    pub revision_drift: u64,
    pub liveness_drift: u64,
    pub node_down_firing: u64,
    /// Open incidents by rule.
    pub incidents_open: BTreeMap<&'static str, u64>,
    /// Notifications waiting in the outbox.
    pub outbox: u64,
}

pub fn stats(s: &AppState) -> Result<FleetStats> {
    let now = s.now();
    let (orgs, execs, nodes, observed, open, outbox) = s.store.read(|r| {
        let orgs: Vec<(String, Org)> = r.scan(ORGS, "")?;
        let execs: Vec<(String, ExecutorRow)> = r.scan(EXECUTORS, "")?;
        let nodes: Vec<(String, NodeRow)> = r.scan(NODES, "")?;
        let observed: Vec<(String, ObservedRow)> = r.scan(OBSERVED, "")?;
        let open: Vec<(String, String)> = r.scan(OPEN_INCIDENTS, "")?;
        let outbox = r.scan::<OutboxEntry>(OUTBOX, "")?.len() as u64;
        Ok::<_, crate::store::StoreError>((orgs.len() as u64, execs, nodes, observed, open, outbox))
    })?;
    let mut out = FleetStats { organizations: orgs, outbox, ..Default::default() };
    for rule in novacula_core::alerts::Rule::ALL {
        // `org/rule/...`: every rule is a series, zero or not.
        let n = open.iter().filter(|(k, _)| k.split('/').nth(1) == Some(rule.as_str())).count();
        out.incidents_open.insert(rule.as_str(), n as u64);
    }
    let mut online: HashMap<String, bool> = HashMap::new();
    for (key, mut e) in execs {
        s.liveness.overlay(&mut e);
        let up = !e.deactivated && novacula_core::is_online(now, e.updated_at, s.config.heartbeat_timeout);
        let state = if e.deactivated {
            "deactivated"
        } else if up {
            "online"
        } else {
            "offline"
        };
        let compat = novacula_core::compat::compat_of_version(s.config.cp_version.major, &e.version).as_str();
        *out.executors.entry(ExecutorClass { kind: e.kind.as_str(), state, compat }).or_default() += 1;
        online.insert(key, up);
    }
    let observed: HashMap<String, ObservedRow> = observed.into_iter().collect();
    for (key, n) in nodes {
        if n.removed {
            continue;
        }
        let up = online.get(&crate::store::key(&[&n.org_id, &n.executor])).copied().unwrap_or(false);
        let obs = observed.get(&key).map(|o| &o.state);
        let phase = phase_of(&n, obs, up);
        *out.nodes.entry((n.record.spec.chain.clone(), phase.as_str())).or_default() += 1;
        if obs.is_none_or(|o| o.revision < n.record.revision) {
            out.revision_drift += 1;
        }
        if !up {
            out.liveness_drift += 1;
        }
        if n.alert_firing {
            out.node_down_firing += 1;
        }
    }
    Ok(out)
}
