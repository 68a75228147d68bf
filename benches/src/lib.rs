//! novacula-benches
