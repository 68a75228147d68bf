//! Names the backends derive from a spec: systemd units on an agent host,
//! PersistentVolumeClaims on Kubernetes. They live in one place so that two
//! nodes of one executor can never be given the same object.

use crate::spec::NodeSpec;

/// The systemd unit of a node's process. Node and process names are DNS
/// labels, which never contain `.`, so the `.` between them makes the name
/// unambiguous (`-` would not: node `a` process `b-x` vs node `a-b` process `x`).
pub fn unit_name(node: &str, process: &str) -> String {
    format!("novacula-{node}.{process}.service")
}

/// The PersistentVolumeClaims Kubernetes creates for a node's StatefulSet
/// (`<claim template>-<statefulset>-<ordinal>`; one replica). Kubernetes picks
/// this shape, so collisions are refused at deploy instead.
pub fn claim_names(spec: &NodeSpec) -> Vec<String> {
    spec.storage.iter().map(|v| format!("{}-{}-0", v.name, spec.name)).collect()
}

/// The node's Kubernetes Services: the headless one named for the node and,
/// when it exposes P2P, `<node>-p2p`.
pub fn service_names(spec: &NodeSpec) -> Vec<String> {
    let p2p = (spec.p2p_exposure != crate::spec::P2pExposure::None).then(|| p2p_service_name(&spec.name));
    std::iter::once(spec.name.clone()).chain(p2p).collect()
}

pub fn p2p_service_name(node: &str) -> String {
    format!("{node}-p2p")
}

/// The first derived object `spec` would share with one of `others` (the
/// other live nodes of the same executor): `(object, other node)`.
pub fn shared_object_name<'a>(spec: &NodeSpec, others: impl IntoIterator<Item = &'a NodeSpec>) -> Option<(String, String)> {
    let objects = |s: &NodeSpec| -> Vec<String> {
        let claims = claim_names(s).into_iter().map(|c| format!("volume claim {c:?}"));
        claims.chain(service_names(s).into_iter().map(|n| format!("Service {n:?}"))).collect()
    };
    let mine = objects(spec);
    others.into_iter().filter(|o| o.name != spec.name).find_map(|o| {
        let theirs = objects(o);
        mine.iter().find(|m| theirs.contains(m)).map(|m| (m.clone(), o.name.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::eth_spec;

    #[test]
    fn unit_names_of_different_nodes_never_collide() {
        // node `a` with process `b-execution` vs node `a-b` with process `execution`
        assert_ne!(unit_name("a", "b-execution"), unit_name("a-b", "execution"));
        assert_eq!(unit_name("eth", "execution"), "novacula-eth.execution.service");
    }

    #[test]
    fn claim_name_collisions_are_found() {
        let mut a = eth_spec("a");
        a.storage[0].name = "data-b".into(); // claim data-b-a-0
        let mut b = eth_spec("b-a");
        b.storage[0].name = "data".into(); // claim data-b-a-0
        assert_eq!(shared_object_name(&a, [&b]), Some(("volume claim \"data-b-a-0\"".into(), "b-a".into())));
        let c = eth_spec("c");
        assert_eq!(shared_object_name(&a, [&c]), None);
        assert_eq!(shared_object_name(&a, [&a.clone()]), None, "a node does not collide with itself (an edit)");
    }

    #[test]
    fn a_p2p_service_may_not_be_another_nodes_service() {
        let mut a = eth_spec("eth");
        a.storage.clear();
        let mut b = eth_spec("eth-p2p");
        b.storage.clear();
        assert_eq!(shared_object_name(&a, [&b]), None, "no P2P Service, no clash");
        a.p2p_exposure = crate::spec::P2pExposure::LoadBalancer;
        assert_eq!(shared_object_name(&a, [&b]), Some(("Service \"eth-p2p\"".into(), "eth-p2p".into())));
        assert_eq!(shared_object_name(&b, [&a]), Some(("Service \"eth-p2p\"".into(), "eth".into())));
    }
}
