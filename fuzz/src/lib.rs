//! Entry points for coverage-guided fuzzing of the decoders that take bytes
//! from outside: the JSON an executor or a user sends, and the postcard
//! records the control plane reads back from disk. Each must answer an error,
//! never panic, and whatever decodes must survive a round trip unchanged and
//! be safe to validate and to plan from.
//!
//! `cargo-fuzz/` drives these with libFuzzer (`cargo +nightly fuzz run ...`);
//! `tests/decoders.rs` runs them under `cargo test` on garbage and on valid
//! encodings. The property tests of spec transitions are in `tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test harness: failing loudly is its job")]

use novacula_core::reconcile::{diff, LocalNode};
use novacula_core::validate::validate_structure;
use novacula_core::wire::{ReportRequest, SpecPollResponse, SyncExecutorRequest};
use novacula_core::{DesiredNode, NodeSpec, ObservedNodeState};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    let again: T = serde_json::from_slice(&serde_json::to_vec(&v).expect("a decoded value encodes")).expect("re-decodes");
    assert_eq!(again, v, "JSON round trip changed the value");
    Some(v)
}

fn postcard_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let v: T = postcard::from_bytes(data).ok()?;
    let again: T = postcard::from_bytes(&postcard::to_stdvec(&v).expect("a decoded value encodes")).expect("re-decodes");
    assert_eq!(again, v, "postcard round trip changed the value");
    Some(v)
}

/// What the control plane does with a spec it accepted: validate it, and
/// what an executor does: plan the node's units from empty.
fn use_spec(spec: &NodeSpec) {
    let _ = validate_structure(spec);
    let desired = DesiredNode::new(novacula_core::Revision(1), spec.clone(), false);
    let _ = diff(Some(&desired), &LocalNode::default());
}

/// JSON bodies of the HTTP API.
pub fn wire_json(data: &[u8]) {
    if let Some(spec) = json_round_trip::<NodeSpec>(data) {
        use_spec(&spec);
    }
    json_round_trip::<SyncExecutorRequest>(data);
    json_round_trip::<ReportRequest>(data);
    if let Some(poll) = json_round_trip::<SpecPollResponse>(data) {
        poll.nodes.iter().for_each(|d| use_spec(&d.spec));
    }
}

/// postcard records: desired nodes and observed states as stored.
pub fn postcard_records(data: &[u8]) {
    if let Some(d) = postcard_round_trip::<DesiredNode>(data) {
        use_spec(&d.spec);
    }
    postcard_round_trip::<ObservedNodeState>(data);
    postcard_round_trip::<NodeSpec>(data);
}
