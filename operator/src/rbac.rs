//! The Kubernetes permissions the operator uses, in one place: the Helm
//! chart's Role must grant exactly these (checked by `tests/chart.rs`).

/// (API group, resource, verbs). The Deployment rule is limited to the
/// operator's own Deployment by name in the chart.
pub const RULES: &[(&str, &str, &[&str])] = &[
    // executor side: apply and delete CRs; controller: watch them
    ("validatoros.com", "blockchainnodes", &["get", "list", "watch", "patch", "delete"]),
    ("validatoros.com", "blockchainnodes/status", &["patch"]),
    // controller: server-side apply of each node's objects, watched as owned
    ("apps", "statefulsets", &["get", "list", "watch", "create", "patch", "delete"]),
    ("", "configmaps", &["get", "list", "watch", "create", "patch"]),
    // (a P2P Service is deleted when its node stops exposing P2P)
    ("", "services", &["get", "list", "watch", "create", "patch", "delete"]),
    ("networking.k8s.io", "networkpolicies", &["get", "create", "patch"]),
    ("policy", "poddisruptionbudgets", &["get", "create", "patch", "delete"]),
    // controller: generated-once secrets, read and created, never updated
    ("", "secrets", &["get", "create"]),
    // controller: grow a node's volume claims when its storage grows
    ("", "persistentvolumeclaims", &["get", "patch"]),
    // controller: node pod readiness; self-upgrade: its own new pods
    ("", "pods", &["get", "list"]),
    // executor side: node logs someone watches, from the pods' containers
    ("", "pods/log", &["get"]),
    // self-upgrade
    ("apps", "deployments", &["get", "patch"]),
];
