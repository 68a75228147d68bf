//! The alert rules that need time to pass rather than a report to arrive:
//! `node_stalled` (a running node's head stands still), `sync_distance`
//! (too far behind, for a while) and `executor_unsupported` (out of the
//! compatibility window, for a while). Run by the sweeper on the control
//! plane holding the lease, every [`EVERY`] of the clock: it reads the fleet
//! once, keeps since-when each condition holds in memory (a control plane
//! taking over starts its clocks afresh: an alert may come one "for" late,
//! never early), and writes only incidents that open or resolve.

use crate::services::alerts::apply;
use crate::services::nodes::{executor_online, phase_of};
use crate::state::AppState;
use crate::store::model::{ExecutorRow, NodeRow, ObservedRow};
use crate::store::{key, StoreError, ALERT_OVERRIDES, ALERT_SETTINGS, EXECUTORS, NODES, OBSERVED, OPEN_INCIDENTS};
use novacula_core::alerts::{self as rules, AlertSettings, Firing, NodeAlertOverride, Rule, Subject};
use novacula_core::{CompatStatus, DesiredState, NodePhase, Timestamp};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// How often the fleet is read for these rules (their "for"s are minutes).
pub const EVERY: Duration = Duration::from_secs(30);
/// Incidents written per transaction.
const BATCH: usize = 500;

#[derive(Default)]
pub struct Watch {
    /// `org/node` -> (highest head reported, since when).
    heads: HashMap<String, (u64, Timestamp)>,
    /// `org/node` -> since when it is beyond its sync-distance threshold.
    behind: HashMap<String, Timestamp>,
    /// `org/executor` -> since when it is out of the compatibility window.
    unsupported: HashMap<String, Timestamp>,
    next_at: Option<Timestamp>,
}

const WATCHED: [Rule; 3] = [Rule::NodeStalled, Rule::SyncDistance, Rule::ExecutorUnsupported];

impl Watch {
    /// Forget everything (the lease was lost: another process may have changed anything).
    pub fn reset(&mut self) {
        *self = Watch::default();
    }

    /// One pass if one is due; returns how many incidents opened or resolved.
    pub fn pass(&mut self, s: &AppState) -> Result<usize, StoreError> {
        let now = s.now();
        if self.next_at.is_some_and(|at| now < at) {
            return Ok(0);
        }
        self.next_at = Some(now.plus(EVERY));
        let (settings, overrides, execs, nodes, observed, open) = s.store.read(|r| {
            let settings: HashMap<String, AlertSettings> = r.scan(ALERT_SETTINGS, "")?.into_iter().collect();
            let overrides: HashMap<String, NodeAlertOverride> = r.scan(ALERT_OVERRIDES, "")?.into_iter().collect();
            let execs: Vec<(String, ExecutorRow)> = r.scan(EXECUTORS, "")?;
            let nodes: Vec<(String, NodeRow)> = r.scan(NODES, "")?;
            let observed: HashMap<String, ObservedRow> = r.scan(OBSERVED, "")?.into_iter().collect();
            let open: Vec<(String, String)> = r.scan(OPEN_INCIDENTS, "")?;
            Ok::<_, StoreError>((settings, overrides, execs, nodes, observed, open))
        })?;
        // (rule, org/subject) of every open incident of these rules.
        let open: BTreeSet<(String, String)> = open
            .into_iter()
            .filter_map(|(k, _)| {
                let mut p = k.splitn(4, '/');
                let (org, rule, _kind, subject) = (p.next()?, p.next()?, p.next()?, p.next()?);
                WATCHED.iter().any(|r| r.as_str() == rule).then(|| (rule.to_string(), key(&[org, subject])))
            })
            .collect();
        let defaults = AlertSettings::default();
        let settings_of = |org: &str| settings.get(org).unwrap_or(&defaults);
        let mut changes: Vec<(String, Rule, Subject, Firing)> = Vec::new();
        let mut decide = |org: &str, rule: Rule, subject: Subject, firing: Firing| {
            let is_open = open.contains(&(rule.as_str().to_string(), key(&[org, &subject.key])));
            if firing.is_some() != is_open {
                changes.push((org.to_string(), rule, subject, firing));
            }
        };

        let mut online = HashMap::with_capacity(execs.len());
        let mut unsupported = HashMap::new();
        for (k, mut e) in execs {
            s.liveness.overlay(&mut e);
            online.insert(k.clone(), executor_online(Some(&e), now, s.config.heartbeat_timeout));
            let out = !e.deactivated && novacula_core::compat::compat_of_version(s.config.cp_version.major, &e.version) == CompatStatus::OutOfSupport;
            let since = rules::held(self.unsupported.get(&k).copied(), out, now);
            if let Some(since) = since {
                unsupported.insert(k.clone(), since);
            }
            decide(
                &e.org_id,
                Rule::ExecutorUnsupported,
                Subject::executor(&e.name),
                rules::executor_unsupported(settings_of(&e.org_id), &e.version, since, now),
            );
        }
        self.unsupported = unsupported;

        let (mut heads, mut behind) = (HashMap::new(), HashMap::new());
        for (k, row) in nodes {
            if row.removed {
                continue;
            }
            let settings = settings_of(&row.org_id);
            let policy = rules::effective(settings, overrides.get(&k));
            let up = online.get(&key(&[&row.org_id, &row.executor])).copied().unwrap_or(false);
            let obs = observed.get(&k).map(|o| &o.state);
            let phase = phase_of(&row, obs, up);
            // Only a node meant to run, and running or syncing, is judged by its head.
            let judged =
                !row.record.deleted && row.record.spec.desired_state == DesiredState::Running && matches!(phase, NodePhase::Running | NodePhase::Syncing);
            let syncs: Vec<_> = obs.into_iter().flat_map(|o| o.processes.iter()).filter_map(|p| p.sync).collect();
            let head = syncs.iter().map(|m| m.current_block).max().filter(|_| judged);
            let distance = if judged { syncs.iter().map(|m| m.sync_distance).max().unwrap_or(0) } else { 0 };
            let head_since = match (head, self.heads.get(&k)) {
                (Some(h), Some(&(before, since))) if before == h => since,
                _ => now,
            };
            if let Some(h) = head {
                heads.insert(k.clone(), (h, head_since));
            }
            let since = rules::held(self.behind.get(&k).copied(), judged && distance > policy.sync_distance_threshold, now);
            if let Some(since) = since {
                behind.insert(k.clone(), since);
            }
            let subject = Subject::node(&row.record.spec.name);
            decide(&row.org_id, Rule::NodeStalled, subject.clone(), rules::node_stalled(&policy, settings, head, head_since, now));
            decide(&row.org_id, Rule::SyncDistance, subject, rules::sync_distance(&policy, settings, distance, since, now));
        }
        self.heads = heads;
        self.behind = behind;

        let n = changes.len();
        for batch in changes.chunks(BATCH) {
            s.store.write(|w| {
                for (org, rule, subject, firing) in batch {
                    apply(w, org, *rule, subject, firing.clone(), now)?;
                }
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(n)
    }
}
