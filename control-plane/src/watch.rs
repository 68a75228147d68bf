//! The alert rules that need time to pass rather than a report to arrive:
//! `node_stalled` (a running node's head stands still), `sync_distance`
//! (too far behind, for a while) and `executor_unsupported` (out of the
//! compatibility window, for a while). Run by the sweeper on the control
//! plane holding the lease.
//!
//! Each node and executor is judged at its own deadline, kept in an index
//! ordered by time: at most [`EVERY`] after the last time (what a report
//! says is read, not pushed, so a condition that starts shows within that),
//! or when a "for" runs out, whichever is sooner; a node whose executor or
//! commands moved it is judged at the next pass. The fleet's deadlines are
//! spread over [`EVERY`], so a pass reads what is due, never the whole fleet
//! (the first pass after a start or a takeover reads it once). Since-when
//! each condition holds is kept in memory (a control plane taking over starts
//! its clocks afresh: an alert may come one "for" late, never early); only
//! incidents that open or resolve are written.

use crate::services::alerts::{apply, open_key};
use crate::services::nodes::{executor_online, phase_of};
use crate::state::AppState;
use crate::store::model::{ExecutorRow, NodeRow, ObservedRow};
use crate::store::{key, StoreError, ALERT_OVERRIDES, ALERT_SETTINGS, EXECUTORS, NODES, OBSERVED, OPEN_INCIDENTS};
use novacula_core::alerts::{self as rules, AlertSettings, Firing, NodeAlertOverride, Rule, Subject};
use novacula_core::deadline::Deadlines;
use novacula_core::{CompatStatus, DesiredState, NodePhase, Timestamp};
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// The longest a node or executor goes unjudged (the rules' "for"s are minutes).
pub const EVERY: Duration = Duration::from_secs(30);
/// Records read, and incidents written, per transaction.
const BATCH: usize = 500;

/// What is judged: a node or an executor (`org/name` each).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Judged {
    Node(String),
    Executor(String),
}

#[derive(Default)]
pub struct Watch {
    /// `org/node` -> (highest head reported, since when).
    heads: HashMap<String, (u64, Timestamp)>,
    /// `org/node` -> since when it is beyond its sync-distance threshold.
    behind: HashMap<String, Timestamp>,
    /// `org/executor` -> since when it is out of the compatibility window.
    unsupported: HashMap<String, Timestamp>,
    /// When each is judged next; `None` before the first pass.
    due: Option<Deadlines<Judged>>,
    /// How many were judged in the last pass.
    judged: usize,
}

/// Where in [`EVERY`] `j`'s first deadline falls: the fleet's spread evenly
/// (and the same on every run: the simulator replays).
fn spread(j: &Judged, now: Timestamp) -> Timestamp {
    let mut h = std::hash::DefaultHasher::new();
    j.hash(&mut h);
    now.plus(Duration::from_millis(h.finish() % EVERY.as_millis() as u64))
}

impl Watch {
    /// Forget everything (the lease was lost: another process may have changed anything).
    pub fn reset(&mut self) {
        *self = Watch::default();
    }

    /// How many nodes and executors the last pass judged.
    pub fn judged(&self) -> usize {
        self.judged
    }

    /// Judge what is due, and `now_too` (nodes and executors that just moved);
    /// returns how many incidents opened or resolved.
    pub fn pass(&mut self, s: &AppState, now_too: impl IntoIterator<Item = Judged>) -> Result<usize, StoreError> {
        let now = s.now();
        let first = self.due.is_none();
        let due = match self.due.as_mut() {
            Some(due) => {
                for j in now_too {
                    due.set_earlier(j, now);
                }
                due.take_due(now)
            }
            None => {
                // The first pass: everything, once; later ones what is due.
                let (nodes, execs) = s.store.read(|r| {
                    let nodes: Vec<(String, NodeRow)> = r.scan(NODES, "")?;
                    let execs: Vec<(String, ExecutorRow)> = r.scan(EXECUTORS, "")?;
                    Ok::<_, StoreError>((nodes, execs))
                })?;
                self.due = Some(Deadlines::default());
                let nodes = nodes.into_iter().filter(|(_, row)| !row.removed).map(|(k, _)| Judged::Node(k));
                nodes.chain(execs.into_iter().map(|(k, _)| Judged::Executor(k))).collect()
            }
        };
        self.judged = due.len();
        let mut changed = 0;
        for chunk in due.chunks(BATCH) {
            changed += self.judge(s, chunk, now, first)?;
        }
        Ok(changed)
    }

    /// Judge `these`, write what opens or resolves, and set when each is judged next.
    /// (`first`: the first pass, whose deadlines are spread over [`EVERY`].)
    fn judge(&mut self, s: &AppState, these: &[Judged], now: Timestamp, first: bool) -> Result<usize, StoreError> {
        let node_keys: Vec<String> = these.iter().filter_map(|j| if let Judged::Node(k) = j { Some(k.clone()) } else { None }).collect();
        let exec_keys: Vec<String> = these.iter().filter_map(|j| if let Judged::Executor(k) = j { Some(k.clone()) } else { None }).collect();
        let read = s.store.read(|r| {
            let nodes: Vec<Option<NodeRow>> = r.get_many(NODES, &node_keys)?;
            let observed: Vec<Option<ObservedRow>> = r.get_many(OBSERVED, &node_keys)?;
            let overrides: Vec<Option<NodeAlertOverride>> = r.get_many(ALERT_OVERRIDES, &node_keys)?;
            // The executors judged, and those of the nodes judged (for their online state).
            let mut all_execs: BTreeSet<String> = exec_keys.iter().cloned().collect();
            all_execs.extend(nodes.iter().flatten().map(|row| key(&[&row.org_id, &row.executor])));
            let all_execs: Vec<String> = all_execs.into_iter().collect();
            let execs: HashMap<String, ExecutorRow> =
                all_execs.iter().cloned().zip(r.get_many::<ExecutorRow>(EXECUTORS, &all_execs)?).filter_map(|(k, e)| Some((k, e?))).collect();
            let mut orgs: BTreeSet<String> = execs.values().map(|e| e.org_id.clone()).collect();
            orgs.extend(nodes.iter().flatten().map(|row| row.org_id.clone()));
            let mut settings = HashMap::new();
            for org in orgs {
                let found: Option<AlertSettings> = r.get(ALERT_SETTINGS, &org)?;
                settings.insert(org, found.unwrap_or_default());
            }
            // The open incidents of these rules for these subjects.
            let mut incident_keys = Vec::new();
            for row in nodes.iter().flatten() {
                let subject = Subject::node(&row.record.spec.name);
                incident_keys.push(open_key(&row.org_id, Rule::NodeStalled, &subject));
                incident_keys.push(open_key(&row.org_id, Rule::SyncDistance, &subject));
            }
            for k in &exec_keys {
                if let Some(e) = execs.get(k) {
                    incident_keys.push(open_key(&e.org_id, Rule::ExecutorUnsupported, &Subject::executor(&e.name)));
                }
            }
            let open: Vec<Option<String>> = r.get_many(OPEN_INCIDENTS, &incident_keys)?;
            let open: BTreeSet<String> = incident_keys.into_iter().zip(open).filter(|(_, id)| id.is_some()).map(|(k, _)| k).collect();
            Ok::<_, StoreError>((nodes, observed, overrides, execs, settings, open))
        })?;
        let (nodes, observed, overrides, mut execs, settings, open) = read;
        for e in execs.values_mut() {
            s.liveness.overlay(e);
        }
        let mut changes: Vec<(String, Rule, Subject, Firing)> = Vec::new();
        let mut decide = |org: &str, rule: Rule, subject: Subject, firing: Firing| {
            if firing.is_some() != open.contains(&open_key(org, rule, &subject)) {
                changes.push((org.to_string(), rule, subject, firing));
            }
        };
        let mut next: Vec<(Judged, Timestamp)> = Vec::new();
        // When to judge `j` next: within EVERY, or when a "for" runs out.
        let schedule = |j: Judged, fires_at: Option<Timestamp>| {
            let regular = if first { spread(&j, now) } else { now.plus(EVERY) };
            let at = fires_at.filter(|&at| at > now).map_or(regular, |at| at.min(regular));
            (j, at)
        };

        for k in exec_keys {
            let Some(e) = execs.get(&k) else {
                self.unsupported.remove(&k); // deleted: its incidents went with it
                continue;
            };
            let settings = &settings[&e.org_id];
            let out = !e.deactivated && novacula_core::compat::compat_of_version(s.config.cp_version.major, &e.version) == CompatStatus::OutOfSupport;
            let since = rules::held(self.unsupported.get(&k).copied(), out, now);
            match since {
                Some(since) => self.unsupported.insert(k.clone(), since),
                None => self.unsupported.remove(&k),
            };
            decide(&e.org_id, Rule::ExecutorUnsupported, Subject::executor(&e.name), rules::executor_unsupported(settings, &e.version, since, now));
            let fires_at = since.map(|t| t.plus(Duration::from_secs(settings.executor_unsupported_for_secs)));
            next.push(schedule(Judged::Executor(k), fires_at));
        }

        for (((k, row), obs), over) in node_keys.into_iter().zip(nodes).zip(observed).zip(overrides) {
            let Some(row) = row.filter(|row| !row.removed) else {
                self.heads.remove(&k);
                self.behind.remove(&k);
                continue;
            };
            let settings = &settings[&row.org_id];
            let policy = rules::effective(settings, over.as_ref());
            let up = executor_online(execs.get(&key(&[&row.org_id, &row.executor])), now, s.config.heartbeat_timeout);
            let obs = obs.as_ref().map(|o| &o.state);
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
            match head {
                Some(h) => self.heads.insert(k.clone(), (h, head_since)),
                None => self.heads.remove(&k),
            };
            let since = rules::held(self.behind.get(&k).copied(), judged && distance > policy.sync_distance_threshold, now);
            match since {
                Some(since) => self.behind.insert(k.clone(), since),
                None => self.behind.remove(&k),
            };
            let subject = Subject::node(&row.record.spec.name);
            decide(&row.org_id, Rule::NodeStalled, subject.clone(), rules::node_stalled(&policy, settings, head, head_since, now));
            decide(&row.org_id, Rule::SyncDistance, subject, rules::sync_distance(&policy, settings, distance, since, now));
            let stalls_at = head.map(|_| head_since.plus(Duration::from_secs(settings.node_stalled_for_secs)));
            let behind_at = since.map(|t| t.plus(Duration::from_secs(settings.sync_distance_for_secs)));
            next.push(schedule(Judged::Node(k), stalls_at.into_iter().chain(behind_at).min()));
        }

        if let Some(due) = self.due.as_mut() {
            for (j, at) in next {
                due.set(j, at);
            }
        }
        if !changes.is_empty() {
            s.store.write(|w| {
                for (org, rule, subject, firing) in &changes {
                    apply(w, org, *rule, subject, firing.clone(), now)?;
                }
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(changes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_deadlines_are_spread_over_the_interval() {
        let now = Timestamp(1_000_000);
        let at: Vec<u64> = (0..1000).map(|i| spread(&Judged::Node(format!("acme/n-{i}")), now).0 - now.0).collect();
        assert!(at.iter().all(|&d| d < EVERY.as_millis() as u64));
        // Each sixth of the interval (a sweeper pass of 5 s) gets about a sixth of them.
        for sixth in 0..6 {
            let width = EVERY.as_millis() as u64 / 6;
            let n = at.iter().filter(|&&d| d / width == sixth).count();
            assert!((100..240).contains(&n), "sixth {sixth}: {n} of 1000");
        }
        assert_eq!(spread(&Judged::Node("acme/n-1".into()), now), spread(&Judged::Node("acme/n-1".into()), now), "the same on every run");
    }
}
