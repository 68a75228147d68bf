//! novacula-fakes
