//! Benchmarks live in `benches/`: `cargo bench -p novacula-benches`.
