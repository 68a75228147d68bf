//! novacula-agent
