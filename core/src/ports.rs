//! Per-executor port allocation. Nodes on one agent host share its network:
//! every port a client listens on is chosen by the control plane when the
//! node is written, kept in the spec (so it survives restarts and executor
//! crashes, and shows in the node's detail), and never given to two nodes of
//! one executor. A port the spec sets is pinned: taken already, it is refused.

use crate::executor::ChainSupport;
use crate::spec::{NodeSpec, P2pExposure};
use std::collections::{BTreeMap, BTreeSet};

/// Ports handed out when a client's default is taken come from here, below
/// Linux's ephemeral range (32768-60999), where outgoing connections would
/// take them at random.
pub const FIRST_DYNAMIC: u16 = 20000;
pub const LAST_DYNAMIC: u16 = 32767;

/// A Kubernetes cluster's default NodePort range. A node exposing P2P as
/// `nodePort` gets its peer ports from here, so the port its clients announce
/// to peers is the one the cluster opens on every host.
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;
/// The lower band of that range (Kubernetes 1.27+ keeps it for ports asked
/// for by number and hands out random ones from above it first): tried first,
/// to stay clear of the ports the cluster assigns itself.
pub const NODE_PORTS_STATIC: std::ops::RangeInclusive<u16> = 30000..=30085;

/// Who holds a port on an executor: `node/role.port`.
pub type Holders = BTreeMap<u16, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// A pinned port another node of the executor already holds (409).
    #[error("clients[{index}].ports[{name:?}]: port {port} is already used by {holder} on this executor")]
    Taken { index: usize, name: String, port: u16, holder: String },
    /// The spec is wrong whatever else runs on the executor (422).
    #[error("clients[{index}].ports[{name:?}]: {reason}")]
    Invalid { index: usize, name: String, reason: String },
    #[error("no free port is left on this executor for clients[{index}].ports[{name:?}]")]
    Exhausted { index: usize, name: String },
}

impl PortError {
    /// Whether the spec itself is at fault, rather than what else runs on the executor.
    pub fn is_invalid_spec(&self) -> bool {
        matches!(self, PortError::Invalid { .. })
    }
}

/// Every port the nodes of `specs` hold, by holder, for [`assign`]. A port
/// the executor declares that a spec leaves out (a node written before ports
/// were allocated) holds the client's default, which its process uses.
pub fn holders<'a>(specs: impl IntoIterator<Item = &'a NodeSpec>, chain: Option<&ChainSupport>) -> Holders {
    let mut taken = Holders::new();
    for spec in specs {
        for c in &spec.clients {
            let declared = chain.and_then(|ch| ch.client(&c.role, &c.client)).map(|s| s.ports.as_slice()).unwrap_or_default();
            let defaults = declared.iter().filter(|p| !c.ports.contains_key(&p.name)).map(|p| (&p.name, &p.default));
            for (name, port) in c.ports.iter().chain(defaults) {
                taken.entry(*port).or_insert_with(|| format!("node {:?} ({}.{name})", spec.name, c.role));
            }
        }
    }
    taken
}

/// Fill in every port the executor declares for the spec's clients: a port
/// the spec sets is kept (pinned), a missing one gets the client's default
/// when free, else the first free port from [`FIRST_DYNAMIC`] up. `taken`
/// holds the ports of the executor's other nodes. Clients whose executor
/// declares no ports (and ports it does not declare) are left alone only if
/// the spec sets none.
pub fn assign(spec: &mut NodeSpec, chain: &ChainSupport, taken: &Holders) -> Result<(), PortError> {
    let mut mine = BTreeSet::new();
    // Pinned first, so that a default handed out below never takes a port pinned further down.
    for (index, c) in spec.clients.iter().enumerate() {
        let declared = chain.client(&c.role, &c.client).map(|s| s.ports.as_slice()).unwrap_or_default();
        for (name, port) in &c.ports {
            let invalid = |reason: String| PortError::Invalid { index, name: name.clone(), reason };
            if !declared.iter().any(|p| &p.name == name) {
                let known: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                return Err(invalid(format!("{} {} has no port named so (its ports: {known})", c.role, c.client)));
            }
            if *port == 0 {
                return Err(invalid("port 0 is not a port".into()));
            }
            if !mine.insert(*port) {
                return Err(invalid(format!("port {port} is set twice in this node")));
            }
            if let Some(holder) = taken.get(port) {
                return Err(PortError::Taken { index, name: name.clone(), port: *port, holder: holder.clone() });
            }
            if node_port(spec.p2p_exposure, declared.iter().any(|p| &p.name == name && p.peer)) && !NODE_PORTS.contains(port) {
                return Err(invalid(format!(
                    "with p2pExposure nodePort a peer port must lie in {}-{} (the cluster's NodePort range)",
                    NODE_PORTS.start(),
                    NODE_PORTS.end()
                )));
            }
        }
    }
    let exposure = spec.p2p_exposure;
    for (index, c) in spec.clients.iter_mut().enumerate() {
        let declared = chain.client(&c.role, &c.client).map(|s| s.ports.clone()).unwrap_or_default();
        for p in declared {
            if c.ports.contains_key(&p.name) {
                continue;
            }
            let free = |port: &u16| !taken.contains_key(port) && !mine.contains(port);
            let mut candidates: Box<dyn Iterator<Item = u16>> = if node_port(exposure, p.peer) {
                Box::new(NODE_PORTS_STATIC.chain(*NODE_PORTS_STATIC.end() + 1..=*NODE_PORTS.end()))
            } else {
                Box::new(std::iter::once(p.default).filter(|d| *d != 0).chain(FIRST_DYNAMIC..=LAST_DYNAMIC))
            };
            let port = candidates.find(free).ok_or_else(|| PortError::Exhausted { index, name: p.name.clone() })?;
            mine.insert(port);
            c.ports.insert(p.name, port);
        }
    }
    Ok(())
}

fn node_port(exposure: P2pExposure, peer: bool) -> bool {
    peer && exposure == P2pExposure::NodePort
}

/// An edit keeps the ports a client had, unless the new spec sets them or
/// the client changed: what an operator opened in a firewall stays valid.
/// A peer port outside the NodePort range is not kept when the node is now
/// exposed as `nodePort`: it is allocated again inside it.
pub fn carry_over(new: &mut NodeSpec, old: &NodeSpec, chain: Option<&ChainSupport>) {
    let pinned: BTreeSet<u16> = new.clients.iter().flat_map(|c| c.ports.values().copied()).collect();
    let exposure = new.p2p_exposure;
    for c in &mut new.clients {
        let Some(before) = old.client(&c.role).filter(|o| o.client == c.client) else { continue };
        let declared = chain.and_then(|ch| ch.client(&c.role, &c.client)).map(|s| s.ports.as_slice()).unwrap_or_default();
        for (name, port) in &before.ports {
            let peer = declared.iter().any(|p| &p.name == name && p.peer);
            if node_port(exposure, peer) && !NODE_PORTS.contains(port) {
                continue;
            }
            // A port the edit pins under another name is that name's now.
            if !pinned.contains(port) {
                c.ports.entry(name.clone()).or_insert(*port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ClientSupport, PortSupport};
    use crate::fixtures::eth_spec;

    fn chain() -> ChainSupport {
        let port = |name: &str, default| PortSupport { name: name.into(), default, peer: name == "p2p" };
        ChainSupport {
            chain: "ethereum".into(),
            clients: vec![
                ClientSupport {
                    role: "execution".into(),
                    client: "geth".into(),
                    ports: vec![port("p2p", 30303), port("http", 8545), port("engine", 8551)],
                    ..Default::default()
                },
                ClientSupport {
                    role: "consensus".into(),
                    client: "lighthouse".into(),
                    ports: vec![port("p2p", 9000), port("http", 5052)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn all_ports(spec: &NodeSpec) -> Vec<u16> {
        spec.clients.iter().flat_map(|c| c.ports.values().copied()).collect()
    }

    #[test]
    fn first_node_gets_defaults_and_the_next_ones_share_nothing() {
        let mut placed: Vec<NodeSpec> = Vec::new();
        for i in 0..3 {
            let mut s = eth_spec(&format!("n{i}"));
            assign(&mut s, &chain(), &holders(&placed, None)).unwrap();
            placed.push(s);
        }
        assert_eq!(all_ports(&placed[0]), [8551, 8545, 30303, 5052, 9000], "defaults first");
        let every: Vec<u16> = placed.iter().flat_map(all_ports).collect();
        let distinct: BTreeSet<u16> = every.iter().copied().collect();
        assert_eq!(every.len(), distinct.len(), "no port twice on one executor: {every:?}");
        assert!(all_ports(&placed[1]).iter().all(|p| *p >= FIRST_DYNAMIC));
        // The same inputs give the same ports: allocation is a pure function.
        let mut again = eth_spec("n1");
        assign(&mut again, &chain(), &holders(&placed[..1], None)).unwrap();
        assert_eq!(again, placed[1]);
    }

    #[test]
    fn pinned_ports_are_kept_checked_and_never_handed_out() {
        let mut first = eth_spec("a");
        assign(&mut first, &chain(), &Holders::new()).unwrap();
        let taken = holders([&first], None);
        let mut clash = eth_spec("b");
        clash.clients[1].ports.insert("http".into(), 8545);
        let err = assign(&mut clash, &chain(), &taken).unwrap_err();
        assert!(matches!(&err, PortError::Taken { port: 8545, holder, .. } if holder.contains("\"a\"")), "{err}");
        assert!(!err.is_invalid_spec());
        // A port pinned on the second client is not handed to the first one.
        let mut b = eth_spec("b");
        b.clients[1].ports.insert("p2p".into(), FIRST_DYNAMIC);
        assign(&mut b, &chain(), &taken).unwrap();
        assert_eq!(b.clients[1].ports["p2p"], FIRST_DYNAMIC);
        assert!(!b.clients[0].ports.values().any(|p| *p == FIRST_DYNAMIC));
        let mut twice = eth_spec("c");
        twice.clients[0].ports.insert("http".into(), 7000);
        twice.clients[1].ports.insert("http".into(), 7000);
        assert!(assign(&mut twice, &chain(), &Holders::new()).unwrap_err().is_invalid_spec());
        let mut unknown = eth_spec("d");
        unknown.clients[0].ports.insert("grpc".into(), 7000);
        let err = assign(&mut unknown, &chain(), &Holders::new()).unwrap_err();
        assert!(err.to_string().contains("its ports: p2p, http, engine"), "{err}");
    }

    #[test]
    fn an_edit_keeps_ports_unless_the_client_changes() {
        let mut old = eth_spec("a");
        assign(&mut old, &chain(), &Holders::new()).unwrap();
        let mut edited = eth_spec("a");
        edited.clients[0].ports.insert("http".into(), 18545);
        carry_over(&mut edited, &old, Some(&chain()));
        assert_eq!(edited.clients[0].ports["http"], 18545, "what the edit sets wins");
        assert_eq!(edited.clients[0].ports["p2p"], 30303);
        assert_eq!(edited.clients[1].ports, old.clients[1].ports);
        let mut switched = eth_spec("a");
        switched.clients[1].client = "teku".into();
        carry_over(&mut switched, &old, Some(&chain()));
        assert!(switched.clients[1].ports.is_empty(), "another client has other ports");
        // Swapping two ports: the pinned numbers are not carried back under their old names.
        let mut swapped = eth_spec("a");
        swapped.clients[0].ports.insert("http".into(), old.clients[0].ports["engine"]);
        swapped.clients[0].ports.insert("engine".into(), old.clients[0].ports["http"]);
        carry_over(&mut swapped, &old, Some(&chain()));
        assign(&mut swapped, &chain(), &Holders::new()).unwrap();
        assert_eq!(swapped.clients[0].ports["http"], 8551);
    }

    #[test]
    fn a_node_without_ports_holds_its_clients_defaults() {
        let legacy = eth_spec("old");
        let taken = holders([&legacy], Some(&chain()));
        assert!(taken.contains_key(&8545) && taken.contains_key(&9000), "{taken:?}");
        let mut next = eth_spec("new");
        assign(&mut next, &chain(), &taken).unwrap();
        assert!(!next.clients[0].ports.values().any(|p| [30303, 8545, 8551].contains(p)), "{:?}", next.clients[0].ports);
        assert!(next.clients.iter().flat_map(|c| c.ports.values()).all(|p| *p < 32768), "below the ephemeral range");
    }

    #[test]
    fn a_node_exposed_as_node_port_gets_its_peer_ports_in_the_node_port_range() {
        let mut spec = eth_spec("a");
        spec.p2p_exposure = P2pExposure::NodePort;
        assign(&mut spec, &chain(), &Holders::new()).unwrap();
        assert_eq!(spec.clients[0].ports["p2p"], 30000, "the range's lower band, clear of the ports the cluster picks itself");
        assert_eq!(spec.clients[1].ports["p2p"], 30001);
        assert_eq!(spec.clients[1].ports["http"], 5052, "only peer ports move");
        // Pinned outside the range: refused with the rule.
        let mut pinned = eth_spec("b");
        pinned.p2p_exposure = P2pExposure::NodePort;
        pinned.clients[1].ports.insert("p2p".into(), 9000);
        let err = assign(&mut pinned, &chain(), &Holders::new()).unwrap_err();
        assert!(err.is_invalid_spec() && err.to_string().contains("30000-32767"), "{err}");
        // An edit that switches a node to nodePort moves its peer port into the range instead of keeping it.
        let mut old = eth_spec("c");
        assign(&mut old, &chain(), &Holders::new()).unwrap();
        let mut edited = eth_spec("c");
        edited.p2p_exposure = P2pExposure::NodePort;
        carry_over(&mut edited, &old, Some(&chain()));
        assign(&mut edited, &chain(), &Holders::new()).unwrap();
        assert_eq!((edited.clients[1].ports["p2p"], edited.clients[1].ports["http"]), (30000, 5052));
        assert_eq!(edited.clients[0].ports["p2p"], 30303, "a peer port already in the range is kept");
    }
}
