//! The bug hunter under `cargo test`: the same seed replays the same run, and
//! a sweep of seeds (faults on, then a convergence bound) finds no failure.
//! A failure prints its seed; `cargo run -p novacula-sim --release -- --start
//! <seed> --seeds 1 --verbose` replays it with its faults and event log.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use novacula_sim::hunt::hunt;

#[test]
fn the_same_seed_gives_the_identical_event_log() {
    let (a, b) = (hunt(7), hunt(7));
    assert!(a.result.is_ok(), "seed 7: {:?}", a.result);
    assert!(!a.events.is_empty() && !a.faults.is_empty(), "the run did something: {} events, {} faults", a.events.len(), a.faults.len());
    assert_eq!(a.faults, b.faults, "the same faults at the same moments");
    assert_eq!(a.events, b.events, "the same event log, event for event");
    let c = hunt(8);
    assert_ne!(a.events, c.events, "another seed is another run");
}

#[test]
fn a_sweep_of_seeds_finds_no_failure() {
    // 200 seeds in CI; NOVACULA_HUNT_SEEDS/NOVACULA_HUNT_START sweep others.
    let seeds: u64 = std::env::var("NOVACULA_HUNT_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let start: u64 = std::env::var("NOVACULA_HUNT_START").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let failed: Vec<String> = (start..start + seeds).map(hunt).filter_map(|r| r.result.err().map(|e| format!("seed {}: {e}", r.seed))).collect();
    assert!(
        failed.is_empty(),
        "{} of {seeds} seeds failed (replay: cargo run -p novacula-sim --release -- --start <seed> --seeds 1 --verbose):\n{}",
        failed.len(),
        failed.join("\n")
    );
}
