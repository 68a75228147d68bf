//! What an error means for whoever retries: the category every executor
//! error maps to, so loops and controllers back off by kind, never by text.

/// How to treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// A hiccup (network, a busy server): retry soon, with backoff.
    Transient,
    /// The spec cannot work here as written: nothing changes until the spec does.
    InvalidSpec,
    /// The other side refused (authentication, permissions, out of support):
    /// retrying at once cannot help; retry slowly, an operator must act.
    Refused,
}

/// A word that names none of an enum's values (a role, a kind, a channel).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?}; expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    /// What was being parsed ("role", "release channel").
    pub what: &'static str,
    pub got: String,
    /// The accepted words.
    pub expected: &'static [&'static str],
}
