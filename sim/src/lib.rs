//! novacula-sim
