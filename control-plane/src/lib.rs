//! novacula-control-plane
