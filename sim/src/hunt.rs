//! A bug hunter in the style of TigerBeetle's VOPR: one seed decides the
//! fleet, the workload and the faults, and replays them exactly.
//!
//! A run has two phases. In the safety phase, an operator drives random
//! lifecycle actions while the network partitions executors, executor hosts
//! crash and restart, and processes die or fail to start; invariants are
//! checked every simulated second. In the liveness phase the faults stop and
//! every node must reach its desired state within a bound.

use crate::fleet::{admin, deploy_all, settled, Fleet};
use crate::CP_HOST;
use novacula_control_plane::store::model::{ExecutorRow, NodeRow, ObservedRow};
use novacula_control_plane::store::{StoreError, EXECUTORS, NODES, OBSERVED};
use novacula_control_plane::AppState;
use novacula_core::lifecycle::LifecycleAction;
use novacula_core::wire::{NodeView, UpgradeRequest};
use novacula_core::DesiredState;
use novacula_core::{is_online, Timestamp};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Simulated time the faults run for.
pub const SAFETY_PHASE: Duration = Duration::from_secs(90);
/// Simulated time the fleet has to converge once the faults stop.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(150);
/// An executor cut off this long must show offline (30 s timeout plus one sweep).
const OFFLINE_DEADLINE: Duration = Duration::from_secs(40);

/// splitmix64: the one source of the run's choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What one seed did.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub executors: usize,
    pub nodes_per_executor: usize,
    /// `Err` names the first invariant or bound that failed.
    pub result: Result<(), Failure>,
    /// The control plane's event feed at the end, one line per event.
    pub events: Vec<String>,
    pub faults: Vec<String>,
}

/// How a seed failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("simulation: {0}")]
    Simulation(String),
    #[error("safety at {at:?}: {violation}")]
    Safety { at: Duration, violation: Violation },
    #[error("liveness: no convergence within {LIVENESS_BOUND:?} of the faults stopping: {stuck:?}")]
    Liveness { stuck: Vec<String> },
    #[error("store: {0}")]
    Store(String),
}

/// An invariant broken at some moment of a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("{node}: observed revision {observed} ahead of desired {desired}")]
    RevisionAhead { node: String, observed: u64, desired: u64 },
    #[error("{executor} is cut off since {since:?} but shown online (last sync {last_sync:?})")]
    ShownOnline { executor: String, since: Duration, last_sync: Timestamp },
    #[error("{node}/{unit}: restart generation {generation} launched by {times} restarts")]
    RestartedTwice { node: String, unit: String, generation: u64, times: u32 },
    #[error("{node}: the API acknowledged revision {acked}, the store holds {stored}")]
    AckedWriteLost { node: String, acked: u64, stored: u64 },
}

/// Fault probabilities of a run, per simulated second, drawn from the seed.
#[derive(Debug, Clone, Copy)]
struct FaultRates {
    partition: u64,
    bounce: u64,
    control_plane_bounce: u64,
    lossy_link: u64,
    kill: u64,
    failing_starts: u64,
    slow_starts: u64,
    unhealthy: u64,
    failing_installs: u64,
    clock_step: u64,
    slow_disk: u64,
}

/// Run one seed to the end.
pub fn hunt(seed: u64) -> Report {
    let mut rng = Rng::new(seed);
    let executors = 2 + rng.below(3) as usize;
    let per = 1 + rng.below(2) as usize;
    let rates = FaultRates {
        partition: 10 + rng.below(40),
        bounce: 5 + rng.below(20),
        control_plane_bounce: rng.below(8),
        lossy_link: rng.below(20),
        kill: 20 + rng.below(60),
        failing_starts: 5 + rng.below(30),
        slow_starts: rng.below(20),
        unhealthy: rng.below(20),
        failing_installs: rng.below(20),
        clock_step: rng.below(10),
        slow_disk: rng.below(15),
    };
    let mut fleet = Fleet::new(executors, per, seed);
    fleet.tick = Duration::from_millis(50);
    let mut sim = fleet.build();
    let state = fleet.state.clone().expect("an in-memory fleet keeps its state");
    // The operator's stage: 0 deploying, 1 safety phase, 2 liveness phase, 3 done.
    let stage = Arc::new(AtomicU32::new(0));
    let faults_off = Arc::new(AtomicBool::new(false));
    let failure: Arc<Mutex<Option<Failure>>> = Arc::default();
    // node -> the newest revision the API acknowledged to the operator
    let acked: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    {
        let (stage, faults_off, failure, acked) = (stage.clone(), faults_off.clone(), failure.clone(), acked.clone());
        let drivers = fleet.drivers.clone();
        let mut workload = Rng::new(seed ^ 0x5eed);
        sim.client("operator", async move {
            let admin = admin().await;
            deploy_all(&admin, executors, per).await;
            stage.store(1, Ordering::SeqCst);
            let started = tokio::time::Instant::now();
            while started.elapsed() < SAFETY_PHASE {
                tokio::time::sleep(Duration::from_millis(500 + workload.below(5000))).await;
                let node = Fleet::node_name(workload.below(executors as u64) as usize, workload.below(per as u64) as usize);
                // refusals (restart of a stopped node) are part of the game
                let answer = match workload.below(4) {
                    3 => {
                        // a client upgrade: a new binary to install (which may fail), a new config, a restart
                        let version = format!("1.{}.0", workload.below(5));
                        admin.upgrade_client(&node, &UpgradeRequest { role: "main".into(), version }).await
                    }
                    k => admin.lifecycle(&node, [LifecycleAction::Start, LifecycleAction::Stop, LifecycleAction::Restart][k as usize]).await,
                };
                if let Ok(v) = answer {
                    let mut acked = acked.lock().expect("acked");
                    let rev = acked.entry(node).or_default();
                    *rev = (*rev).max(v.revision.0);
                }
            }
            faults_off.store(true, Ordering::SeqCst);
            stage.store(2, Ordering::SeqCst);
            let deadline = tokio::time::Instant::now() + LIVENESS_BOUND;
            loop {
                let nodes = match admin.nodes(None).await {
                    Ok(n) => n,
                    Err(_) => continue,
                };
                // a running node runs the restart generation its spec asks for
                let generation_ok = |n: &NodeView| {
                    n.spec.desired_state != DesiredState::Running
                        || drivers.iter().any(|d| {
                            d.node(&n.name).process("main").and_then(|p| p.running.as_ref()).is_some_and(|r| r.generation == n.spec.restart_generation)
                        })
                };
                let converged = nodes.len() == executors * per && nodes.iter().all(|n| settled(n) && !n.node_down && generation_ok(n));
                if converged {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    let stuck: Vec<String> = nodes
                        .iter()
                        .filter(|n| !settled(n) || !generation_ok(n))
                        .map(|n| {
                            format!(
                                "{} {} (wants {} generation {}, {} behind)",
                                n.name,
                                n.phase.as_str(),
                                n.spec.desired_state.as_str(),
                                n.spec.restart_generation,
                                n.drift.revisions_behind
                            )
                        })
                        .collect();
                    *failure.lock().expect("failure") = Some(Failure::Liveness { stuck });
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            stage.store(3, Ordering::SeqCst);
            Ok(())
        });
    }

    let mut faults = Vec::new();
    let mut partitioned: BTreeMap<usize, Duration> = BTreeMap::new();
    // Faults that end by themselves after a while: (until, what to undo).
    let mut lossy: BTreeMap<usize, Duration> = BTreeMap::new();
    let mut unhealthy: BTreeMap<(usize, String), Duration> = BTreeMap::new();
    let mut slow: BTreeMap<usize, Duration> = BTreeMap::new();
    let mut next_second = Duration::ZERO;
    let mut slow_disk: Option<Duration> = None;
    // How far the control plane's clock has been stepped back in all.
    let mut backward = Duration::ZERO;
    // `backward` when each executor was cut off: only later steps delay its detection.
    let mut backward_at_cut: BTreeMap<usize, Duration> = BTreeMap::new();
    let result = loop {
        match sim.step() {
            Ok(true) => break Ok(()),
            Ok(false) => {}
            Err(e) => break Err(Failure::Simulation(e.to_string())),
        }
        if let Some(f) = failure.lock().expect("failure").take() {
            break Err(f);
        }
        let now = sim.elapsed();
        if now < next_second {
            continue;
        }
        next_second = now + Duration::from_secs(1);
        let acked_now = acked.lock().expect("acked").clone();
        let tolerance: BTreeMap<usize, Duration> =
            partitioned.keys().map(|i| (*i, backward.saturating_sub(backward_at_cut.get(i).copied().unwrap_or_default()))).collect();
        match check_invariants(&state, &fleet, &acked_now, &partitioned, now, &tolerance) {
            Ok(None) => {}
            Ok(Some(violation)) => break Err(Failure::Safety { at: now, violation }),
            Err(e) => break Err(Failure::Store(e.to_string())),
        }
        if stage.load(Ordering::SeqCst) != 1 {
            continue;
        }
        let off = faults_off.load(Ordering::SeqCst);
        // End the faults whose time is up (all of them once the faults stop).
        for (i, _) in take_due(&mut lossy, now, off) {
            sim.set_link_fail_rate(Fleet::executor_name(i), CP_HOST, 0.0);
            faults.push(format!("{now:?} exec-{i} link lossless again"));
        }
        for ((i, node), _) in take_due(&mut unhealthy, now, off) {
            fleet.drivers[i].set_unhealthy(&node, "main", None);
            faults.push(format!("{now:?} {node}/main healthy again"));
        }
        for (i, _) in take_due(&mut slow, now, off) {
            fleet.drivers[i].slow_starts(Duration::ZERO);
            faults.push(format!("{now:?} exec-{i} starts at full speed again"));
        }
        if slow_disk.is_some_and(|until| off || until <= now) {
            fleet.write_delay.store(0, Ordering::SeqCst);
            slow_disk = None;
            faults.push(format!("{now:?} the control plane's disk is fast again"));
        }
        if off {
            for (i, _) in std::mem::take(&mut partitioned) {
                sim.repair(Fleet::executor_name(i), CP_HOST);
                faults.push(format!("{now:?} repair exec-{i}"));
            }
            continue;
        }
        // Faults for this second, each drawn from the seed.
        let i = rng.below(executors as u64) as usize;
        let host = Fleet::executor_name(i);
        if let Some(since) = partitioned.get(&i).copied() {
            if now.saturating_sub(since) > Duration::from_secs(5 + rng.below(60)) {
                sim.repair(host.as_str(), CP_HOST);
                partitioned.remove(&i);
                faults.push(format!("{now:?} repair {host}"));
            }
        } else if rng.chance(rates.partition) {
            sim.partition(host.as_str(), CP_HOST);
            partitioned.insert(i, now);
            backward_at_cut.insert(i, backward);
            faults.push(format!("{now:?} partition {host}"));
        }
        if rng.chance(rates.bounce) {
            sim.bounce(host.as_str());
            faults.push(format!("{now:?} bounce {host}"));
        }
        if rng.chance(rates.control_plane_bounce) {
            // the in-memory store survives: this is a restart, not a loss of the database
            sim.bounce(CP_HOST);
            faults.push(format!("{now:?} bounce the control plane"));
        }
        if !lossy.contains_key(&i) && rng.chance(rates.lossy_link) {
            let rate = (1 + rng.below(20)) as f64 / 100.0;
            sim.set_link_fail_rate(host.as_str(), CP_HOST, rate);
            lossy.insert(i, now + Duration::from_secs(2 + rng.below(20)));
            faults.push(format!("{now:?} {host} link drops {rate} of its messages"));
        }
        if !slow.contains_key(&i) && rng.chance(rates.slow_starts) {
            let delay = Duration::from_millis(500 + rng.below(8000));
            fleet.drivers[i].slow_starts(delay);
            slow.insert(i, now + Duration::from_secs(5 + rng.below(30)));
            faults.push(format!("{now:?} starts on {host} take {delay:?}"));
        }
        if rng.chance(rates.unhealthy) {
            let node = Fleet::node_name(i, rng.below(per as u64) as usize);
            if !unhealthy.contains_key(&(i, node.clone())) && fleet.drivers[i].node(&node).process("main").is_some() {
                fleet.drivers[i].set_unhealthy(&node, "main", Some("injected health check failure"));
                unhealthy.insert((i, node.clone()), now + Duration::from_secs(3 + rng.below(30)));
                faults.push(format!("{now:?} {node}/main unhealthy"));
            }
        }
        let driver = &fleet.drivers[i];
        if rng.chance(rates.kill) {
            let node = Fleet::node_name(i, rng.below(per as u64) as usize);
            if driver.node(&node).process("main").is_some_and(|p| p.running.is_some()) {
                driver.kill(&node, "main");
                faults.push(format!("{now:?} kill {node}/main"));
            }
        }
        if rng.chance(rates.failing_installs) {
            driver.fail_next_installs(1 + rng.below(2) as u32);
            faults.push(format!("{now:?} fail the next installs on {host}"));
        }
        if rng.chance(rates.clock_step) {
            // NTP-sized steps either way; a backward step delays offline detection by as much
            let ms = 1 + rng.below(5000) as i64;
            let ms = if rng.chance(500) { -ms } else { ms };
            fleet.clock.step(ms);
            if ms < 0 {
                backward += Duration::from_millis(ms.unsigned_abs());
            }
            faults.push(format!("{now:?} the control plane's clock steps {ms} ms"));
        }
        if slow_disk.is_none() && rng.chance(rates.slow_disk) {
            let ms = 50 + rng.below(2000);
            fleet.write_delay.store(ms, Ordering::SeqCst);
            slow_disk = Some(now + Duration::from_secs(2 + rng.below(20)));
            faults.push(format!("{now:?} the control plane's writes take {ms} ms more"));
        }
        if rng.chance(rates.failing_starts) {
            let n = 1 + rng.below(3) as u32;
            driver.fail_next_starts(n);
            faults.push(format!("{now:?} fail the next {n} starts on {host}"));
        }
    };
    let events = event_log(&state);
    Report { seed, executors, nodes_per_executor: per, result, events, faults }
}

/// Remove and return the entries whose deadline has passed (every entry when `all`).
fn take_due<K: Ord + Clone>(map: &mut BTreeMap<K, Duration>, now: Duration, all: bool) -> Vec<(K, Duration)> {
    let due: Vec<K> = map.iter().filter(|(_, until)| all || **until <= now).map(|(k, _)| k.clone()).collect();
    due.into_iter().filter_map(|k| map.remove(&k).map(|v| (k, v))).collect()
}

/// The invariants that hold at every moment, faults or not: the first one broken.
/// Liveness is judged by the control plane's clock, so its steps back since an
/// executor was cut off (`stepped_back`) show it online that much longer.
fn check_invariants(
    state: &AppState,
    fleet: &Fleet,
    acked: &BTreeMap<String, u64>,
    partitioned: &BTreeMap<usize, Duration>,
    now: Duration,
    stepped_back: &BTreeMap<usize, Duration>,
) -> Result<Option<Violation>, StoreError> {
    for d in &fleet.drivers {
        if let Some(((node, unit, generation), times)) = d.restarts().into_iter().find(|(_, n)| *n > 1) {
            return Ok(Some(Violation::RestartedTwice { node, unit, generation, times }));
        }
    }
    // the control plane's clock, read from outside the simulation
    let cp_now = Timestamp(crate::EPOCH.plus(now).0.saturating_add_signed(fleet.clock.skew_ms()));
    let silent_for = |i: usize, since: Duration| now.saturating_sub(since).saturating_sub(stepped_back.get(&i).copied().unwrap_or_default());
    state.store.read(|r| {
        for (node, acked) in acked {
            let stored = r.get::<NodeRow>(NODES, &novacula_control_plane::store::key(&["sim", node]))?.map_or(0, |row| row.record.revision.0);
            if stored < *acked {
                return Ok(Some(Violation::AckedWriteLost { node: node.clone(), acked: *acked, stored }));
            }
        }
        let nodes: Vec<(String, NodeRow)> = r.scan(NODES, "")?;
        for (k, row) in &nodes {
            if let Some(obs) = r.get::<ObservedRow>(OBSERVED, k)? {
                if obs.state.revision > row.record.revision {
                    return Ok(Some(Violation::RevisionAhead { node: k.clone(), observed: obs.state.revision.0, desired: row.record.revision.0 }));
                }
            }
        }
        let execs: Vec<(String, ExecutorRow)> = r.scan(EXECUTORS, "")?;
        for (i, since) in partitioned {
            let name = Fleet::executor_name(*i);
            let Some((_, e)) = execs.iter().find(|(_, e)| e.name == name) else { continue };
            // As the API shows it: the last heartbeat held in memory, if newer than the store's.
            let mut e = e.clone();
            state.liveness.overlay(&mut e);
            if silent_for(*i, *since) > OFFLINE_DEADLINE && is_online(cp_now, e.updated_at, state.config.heartbeat_timeout) {
                return Ok(Some(Violation::ShownOnline { executor: name, since: *since, last_sync: e.updated_at }));
            }
        }
        Ok(None)
    })
}

/// The event feed, one line per event, in order.
fn event_log(state: &AppState) -> Vec<String> {
    let events: Vec<novacula_control_plane::store::model::Event> = state.store.read(|r| r.events("sim", 0, usize::MAX)).unwrap_or_default();
    events
        .iter()
        .map(|e| {
            let data: Vec<String> = e.data.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} {} {} {} {} {} {}",
                e.seq,
                e.at.0,
                e.kind,
                e.node.as_deref().unwrap_or("-"),
                e.executor.as_deref().unwrap_or("-"),
                e.actor,
                data.join(",")
            )
        })
        .collect()
}
