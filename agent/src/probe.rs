//! Health and sync probes of running clients.

use novacula_client::{HttpApi, Method};
use novacula_core::{ObservedNodeStatus, SyncMetrics};
use novacula_executor::adapter::Probe;
use serde_json::Value;
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

fn hex_u64(v: &Value) -> u64 {
    v.as_str().and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()).unwrap_or(0)
}

/// Status of a live process; an endpoint that does not answer yet means it is still starting.
pub async fn probe(p: &Probe) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    match p {
        Probe::Alive => (ObservedNodeStatus::Running, None),
        Probe::EthJsonRpc { url } => {
            let Ok(api) = HttpApi::new(url, None) else { return (ObservedNodeStatus::Error, None) };
            let body = br#"{"jsonrpc":"2.0","method":"eth_syncing","params":[],"id":1}"#.to_vec();
            match api.raw(Method::POST, "/", Some(body), PROBE_TIMEOUT).await {
                Ok((s, bytes)) if s.is_success() => parse_eth_syncing(&bytes),
                _ => (ObservedNodeStatus::Starting, None),
            }
        }
        Probe::BeaconApi { url } => {
            let Ok(api) = HttpApi::new(url, None) else { return (ObservedNodeStatus::Error, None) };
            match api.raw(Method::GET, "/eth/v1/node/syncing", None, PROBE_TIMEOUT).await {
                Ok((s, bytes)) if s.is_success() => parse_beacon_syncing(&bytes),
                _ => (ObservedNodeStatus::Starting, None),
            }
        }
    }
}

pub fn parse_eth_syncing(bytes: &[u8]) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else { return (ObservedNodeStatus::Error, None) };
    match &v["result"] {
        Value::Bool(false) => (ObservedNodeStatus::Running, None),
        r @ Value::Object(_) => (
            ObservedNodeStatus::Syncing,
            Some(SyncMetrics { current_block: hex_u64(&r["currentBlock"]), highest_block: hex_u64(&r["highestBlock"]), peers: 0 }),
        ),
        _ => (ObservedNodeStatus::Error, None),
    }
}

pub fn parse_beacon_syncing(bytes: &[u8]) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else { return (ObservedNodeStatus::Error, None) };
    let d = &v["data"];
    let num = |k: &str| d[k].as_str().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let head = num("head_slot");
    let metrics = SyncMetrics { current_block: head, highest_block: head + num("sync_distance"), peers: 0 };
    match d["is_syncing"].as_bool() {
        Some(false) => (ObservedNodeStatus::Running, Some(metrics)),
        Some(true) => (ObservedNodeStatus::Syncing, Some(metrics)),
        None => (ObservedNodeStatus::Error, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eth_syncing_shapes() {
        assert_eq!(parse_eth_syncing(br#"{"result":false}"#).0, ObservedNodeStatus::Running);
        let (s, m) = parse_eth_syncing(br#"{"result":{"currentBlock":"0x10","highestBlock":"0x20"}}"#);
        assert_eq!(s, ObservedNodeStatus::Syncing);
        assert_eq!(m.unwrap().highest_block, 32);
        assert_eq!(parse_eth_syncing(b"garbage").0, ObservedNodeStatus::Error);
    }

    #[test]
    fn beacon_syncing_shapes() {
        let (s, m) = parse_beacon_syncing(br#"{"data":{"is_syncing":true,"head_slot":"100","sync_distance":"50"}}"#);
        assert_eq!(s, ObservedNodeStatus::Syncing);
        assert_eq!(m.unwrap().highest_block, 150);
        assert_eq!(parse_beacon_syncing(br#"{"data":{"is_syncing":false,"head_slot":"1","sync_distance":"0"}}"#).0, ObservedNodeStatus::Running);
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_starting() {
        let p = Probe::EthJsonRpc { url: "http://127.0.0.1:1".into() };
        assert_eq!(probe(&p).await.0, ObservedNodeStatus::Starting);
    }
}
