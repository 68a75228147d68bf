//! novacula-operator
