//! novacula-fuzz
