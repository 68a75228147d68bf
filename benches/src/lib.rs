//! Benchmarks live in `benches/` (`cargo bench -p novacula-benches`); the
//! load generator is `cargo run --release -p novacula-benches --bin load`.

pub mod load;
