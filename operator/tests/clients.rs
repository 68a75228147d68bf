//! Every Ethereum client renders into a pod container with its official
//! image and exactly the flags the adapter pins for the agent (the goldens
//! in executor/tests/golden/), under the pod's paths. Nothing runs here: no
//! Kubernetes API server or registry is reachable from these machines.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::cr;
use novacula_core::fixtures::{client, eth_spec};
use novacula_executor::adapter::{ethereum, Adapters, NodePaths};
use novacula_operator::render::{render, ROOT};

#[test]
fn each_client_runs_its_official_image_with_the_adapters_flags() {
    let adapters = Adapters::standard();
    let images = [
        ("geth", "ethereum/client-go:v1.16.7"),
        ("reth", "ghcr.io/paradigmxyz/reth:v1.16.7"),
        ("nethermind", "nethermind/nethermind:1.16.7"),
        ("erigon", "erigontech/erigon:v1.16.7"),
        ("besu", "hyperledger/besu:1.16.7"),
        ("ethereumjs", "ethpandaops/ethereumjs:1.16.7"),
        ("lighthouse", "sigp/lighthouse:v1.16.7"),
        ("prysm", "gcr.io/offchainlabs/prysm/beacon-chain:v1.16.7"),
        ("lodestar", "chainsafe/lodestar:v1.16.7"),
        ("teku", "consensys/teku:1.16.7"),
        ("nimbus", "statusim/nimbus-eth2:amd64-v1.16.7"),
    ];
    for def in ethereum::clients() {
        let mut spec = eth_spec("eth-1");
        spec.network = "mainnet".into();
        let (el, cl) = if def.role == "execution" { (def.name, "lighthouse") } else { ("geth", def.name) };
        // One version for all: the image tag shows how each project spells it.
        spec.clients = vec![client("execution", el, "v1.16.7"), client("consensus", cl, "v1.16.7")];
        let pod = render(&cr(spec.clone(), 1), &adapters).unwrap().stateful_set.spec.unwrap().template.spec.unwrap();
        let container = pod.containers.iter().find(|c| c.name == def.role).unwrap();
        let want = images.iter().find(|(n, _)| *n == def.name).unwrap().1;
        assert_eq!(container.image.as_deref(), Some(want), "{}", def.name);
        let unit = adapters.render(&spec, def.role, &NodePaths::pod(ROOT)).unwrap();
        assert_eq!(container.args.as_ref(), Some(&unit.args), "{}: the same flags as on an agent host", def.name);
        let command: Vec<String> = def.image_command.iter().map(ToString::to_string).collect();
        assert_eq!(container.command.clone().unwrap_or_default(), command, "{}: the image's entrypoint unless it has none", def.name);
        assert!(unit.args.iter().any(|a| a.contains("/novacula/config/jwt.hex")), "{}: the JWT from the node's secret", def.name);
    }
}
