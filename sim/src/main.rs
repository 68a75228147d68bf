//! `novacula-sim`: sweep seeds through the bug hunter (`hunt`).
//!
//! `cargo run -p novacula-sim --release -- --seeds 1000 [--start 0]` runs seeds
//! `start..start+seeds` and prints each failure with its seed; replay one with
//! `--start <seed> --seeds 1 --verbose`.

use clap::Parser;
use novacula_sim::hunt::hunt;

#[derive(Parser)]
#[command(
    name = "novacula-sim",
    about = "Sweep seeds through Novacula's deterministic simulation: faults from the seed, invariants every simulated second, convergence once the faults stop."
)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Print each run's faults and event log.
    #[arg(long)]
    verbose: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut failed = Vec::new();
    for seed in args.start..args.start.saturating_add(args.seeds) {
        let started = std::time::Instant::now();
        let report = hunt(seed);
        let took = started.elapsed();
        match &report.result {
            Ok(()) => println!(
                "seed {seed}: ok ({} executors x {} nodes, {} faults, {} events, {took:.1?})",
                report.executors,
                report.nodes_per_executor,
                report.faults.len(),
                report.events.len()
            ),
            Err(e) => {
                println!("seed {seed}: FAILED: {e}");
                failed.push(seed);
            }
        }
        if args.verbose {
            report.faults.iter().for_each(|f| println!("  fault {f}"));
            report.events.iter().for_each(|e| println!("  event {e}"));
        }
    }
    if failed.is_empty() {
        println!("{} seeds, 0 failed", args.seeds);
        std::process::ExitCode::SUCCESS
    } else {
        println!("{} seeds, {} failed: {failed:?}", args.seeds, failed.len());
        std::process::ExitCode::FAILURE
    }
}
