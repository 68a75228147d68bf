//! The fuzz entry points under `cargo test`: garbage, valid encodings of
//! random specs, and those encodings with bytes changed (what a fuzzer starts
//! from). A panic in a decoder, a failed round trip or a panic while
//! validating or planning a decoded spec fails these.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_core::spec::{ClientSpec, NodeType, P2pExposure, Resources, Sidecar, StorageVolume};
use novacula_core::{DesiredNode, DesiredState, NodeSpec, Revision};
use novacula_fuzz::{postcard_records, wire_json};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z0-9-]{0,12}", ".{0,8}"]
}

fn client() -> impl Strategy<Value = ClientSpec> {
    let ports = prop::collection::btree_map(text(), any::<u16>(), 0..3);
    (text(), text(), text(), proptest::option::of(text()), prop::collection::btree_map(text(), text(), 0..3), any::<(u32, u32)>(), ports).prop_map(
        |(role, client, version, image, config_overrides, (cpu_millis, memory_mib), ports)| ClientSpec {
            role,
            client,
            version,
            image,
            config_overrides,
            resources: Resources { cpu_millis, memory_mib },
            ports,
        },
    )
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    let storage = (text(), any::<u32>(), text(), proptest::option::of(text()), proptest::option::of(text()))
        .prop_map(|(name, size_gib, mount_path, storage_class, holds)| StorageVolume { name, size_gib, mount_path, storage_class, holds });
    let sidecar = (text(), text(), prop::collection::vec(text(), 0..3), prop::collection::btree_map(text(), text(), 0..2))
        .prop_map(|(name, image, command, env)| Sidecar { name, image, command, env, volumes: vec![] });
    (
        (text(), text(), text()),
        prop_oneof![Just(NodeType::Full), Just(NodeType::Archive), Just(NodeType::Validator), Just(NodeType::Light)],
        prop::collection::vec(client(), 0..4),
        prop::collection::vec(storage, 0..3),
        prop::collection::vec(sidecar, 0..2),
        any::<bool>(),
        // wire integers are at most 2^63-1 (larger ones are refused when decoded)
        0..=i64::MAX as u64,
        prop_oneof![Just(P2pExposure::None), Just(P2pExposure::NodePort), Just(P2pExposure::LoadBalancer)],
    )
        .prop_map(|((name, chain, network), node_type, clients, storage, sidecars, stopped, restart_generation, p2p_exposure)| NodeSpec {
            name,
            chain,
            network,
            node_type,
            clients,
            storage,
            sidecars,
            desired_state: if stopped { DesiredState::Stopped } else { DesiredState::Running },
            restart_generation,
            p2p_exposure,
        })
}

/// `bytes` with the bytes at `edits` (index, value) replaced.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    for &(i, v) in edits {
        if !bytes.is_empty() {
            let n = bytes.len();
            bytes[i % n] = v;
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        wire_json(&bytes);
        postcard_records(&bytes);
    }

    #[test]
    fn valid_and_mutated_encodings_decode_or_fail_cleanly(
        spec in node_spec(),
        revision in any::<u64>(),
        deleted in any::<bool>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let json = serde_json::to_vec(&spec).unwrap();
        let desired = DesiredNode::new(Revision(revision), spec, deleted);
        let record = postcard::to_stdvec(&desired).unwrap();
        wire_json(&json);
        postcard_records(&record);
        // A valid encoding decodes back to its value (the entry points
        // assert the round trip; here: that they got that far).
        prop_assert_eq!(postcard::from_bytes::<DesiredNode>(&record).unwrap(), desired.clone());
        prop_assert_eq!(serde_json::from_slice::<NodeSpec>(&json).unwrap(), desired.spec.clone());
        wire_json(&mutate(json, &edits));
        postcard_records(&mutate(record, &edits));
    }
}
