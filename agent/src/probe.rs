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
            let Some(syncing) = rpc(&api, "eth_syncing").await else { return (ObservedNodeStatus::Starting, None) };
            let head = rpc(&api, "eth_blockNumber").await.map(|v| hex_u64(&v));
            let peers = rpc(&api, "net_peerCount").await.map(|v| u32::try_from(hex_u64(&v)).unwrap_or(u32::MAX));
            execution_status(&syncing, head, peers.unwrap_or(0))
        }
        Probe::BeaconApi { url } => {
            let Ok(api) = HttpApi::new(url, None) else { return (ObservedNodeStatus::Error, None) };
            let Some(syncing) = get(&api, "/eth/v1/node/syncing").await else { return (ObservedNodeStatus::Starting, None) };
            let peers = get(&api, "/eth/v1/node/peer_count").await.and_then(|v| v["data"]["connected"].as_str()?.parse().ok());
            beacon_status(&syncing, peers.unwrap_or(0))
        }
        Probe::BitcoinRpc { url, credentials } => {
            // Generated with the node's files: not there yet means not started yet.
            let Some((user, password)) = std::fs::read_to_string(credentials).ok().as_deref().and_then(rpc_credentials) else {
                return (ObservedNodeStatus::Starting, None);
            };
            let Ok(api) = HttpApi::new(url, None).map(|a| a.with_basic_auth(&user, &password)) else { return (ObservedNodeStatus::Error, None) };
            // Answers with an error while it loads its block index: still starting.
            let Some(chain) = rpc(&api, "getblockchaininfo").await else { return (ObservedNodeStatus::Starting, None) };
            let peers = rpc(&api, "getnetworkinfo").await.and_then(|v| v["connections"].as_u64()).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
            bitcoin_status(&chain, peers)
        }
        Probe::TronHttp { url } => {
            let Ok(api) = HttpApi::new(url, None) else { return (ObservedNodeStatus::Error, None) };
            let Some(block) = get(&api, "/wallet/getnowblock").await else { return (ObservedNodeStatus::Starting, None) };
            let peers = get(&api, "/wallet/getnodeinfo").await.and_then(|v| v["currentConnectCount"].as_u64().or_else(|| v["activeConnectCount"].as_u64()));
            tron_status(&block, u32::try_from(peers.unwrap_or(0)).unwrap_or(u32::MAX), crate::logfile::now().0)
        }
        Probe::OpNode { url } => {
            let Ok(api) = HttpApi::new(url, None) else { return (ObservedNodeStatus::Error, None) };
            let Some(status) = rpc(&api, "optimism_syncStatus").await else { return (ObservedNodeStatus::Starting, None) };
            let peers = rpc(&api, "opp2p_peerStats").await.and_then(|v| v["connected"].as_u64());
            op_node_status(&status, u32::try_from(peers.unwrap_or(0)).unwrap_or(u32::MAX))
        }
        Probe::SuiMetrics { url } => {
            let Ok(api) = HttpApi::new(url, None) else { return (ObservedNodeStatus::Error, None) };
            let Ok((status, bytes)) = api.raw(Method::GET, "/metrics", None, PROBE_TIMEOUT).await else { return (ObservedNodeStatus::Starting, None) };
            if !status.is_success() {
                return (ObservedNodeStatus::Starting, None);
            }
            sui_status(&String::from_utf8_lossy(&bytes), crate::logfile::now().0)
        }
    }
}

/// L1 blocks (12 s each) op-node may trail the L1 head and still run: two epochs.
const OP_NODE_L1_SLACK: u64 = 64;

/// An op-node from `optimism_syncStatus`: it derives the L2 from L1, so its
/// progress is its L1 cursor against the L1 head (numbers are decimal).
pub fn op_node_status(v: &Value, peers: u32) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    let (Some(current), Some(head), Some(l2)) = (v["current_l1"]["number"].as_u64(), v["head_l1"]["number"].as_u64(), v["unsafe_l2"]["number"].as_u64()) else {
        return (ObservedNodeStatus::Error, None);
    };
    if head == 0 {
        return (ObservedNodeStatus::Starting, None); // no L1 head known yet
    }
    // The head shown is the L2's; how far is left is the L1 it has still to derive from.
    let left = head.saturating_sub(current);
    let mut metrics = SyncMetrics::new(l2, l2, peers);
    if left > OP_NODE_L1_SLACK {
        metrics.sync_distance = left;
        metrics.progress_percent = (current as f64 * 10_000.0 / head as f64).floor() / 100.0;
        return (ObservedNodeStatus::Syncing, Some(metrics));
    }
    (ObservedNodeStatus::Running, Some(metrics))
}

/// Mysten's readiness rule: the last executed checkpoint is under 5 minutes old.
const SUI_FRESH_MS: u64 = 300_000;

/// A sample of an unlabelled Prometheus metric in exposition text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// A sui-node from its metrics at `now_ms`: checkpoints executed against the
/// highest known to it, running while the last one is fresh.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "checkpoint numbers and peer counts are small non-negative integers in a float")]
pub fn sui_status(text: &str, now_ms: u64) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    let Some(executed) = metric(text, "last_executed_checkpoint") else { return (ObservedNodeStatus::Starting, None) };
    let executed = executed as u64;
    let known = metric(text, "highest_known_checkpoint").map_or(executed, |k| (k as u64).max(executed));
    let peers = metric(text, "sui_quinn_network_peers").map_or(0, |p| p as u32);
    let at = metric(text, "last_executed_checkpoint_timestamp_ms").map_or(0, |t| t as u64);
    let fresh = now_ms.saturating_sub(at) < SUI_FRESH_MS;
    (if fresh { ObservedNodeStatus::Running } else { ObservedNodeStatus::Syncing }, Some(SyncMetrics::new(executed, known, peers)))
}

/// Tron produces a block every 3 s.
const TRON_BLOCK_MS: u64 = 3000;

/// A java-tron node from its head block (`/wallet/getnowblock`) at `now_ms`:
/// java-tron knows no network head, so the blocks its head's age stands for
/// are what it has left; within a minute of now it runs.
pub fn tron_status(block: &Value, peers: u32, now_ms: u64) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    let raw = &block["block_header"]["raw_data"];
    let (Some(number), Some(time)) = (raw["number"].as_u64(), raw["timestamp"].as_u64()) else {
        // `{}` before its first block is stored: starting.
        return (if block.as_object().is_some_and(serde_json::Map::is_empty) { ObservedNodeStatus::Starting } else { ObservedNodeStatus::Error }, None);
    };
    let behind = now_ms.saturating_sub(time) / TRON_BLOCK_MS;
    let status = if behind * TRON_BLOCK_MS > 60_000 { ObservedNodeStatus::Syncing } else { ObservedNodeStatus::Running };
    (status, Some(SyncMetrics::new(number, number + if status == ObservedNodeStatus::Syncing { behind } else { 0 }, peers)))
}

/// `rpcuser=` and `rpcpassword=` of a generated credentials file.
pub fn rpc_credentials(text: &str) -> Option<(String, String)> {
    let value = |key: &str| text.lines().find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('=').map(str::to_string));
    Some((value("rpcuser")?, value("rpcpassword")?))
}

/// A Bitcoin Core node from `getblockchaininfo`: its blocks against the
/// headers it knows, syncing while in initial block download.
pub fn bitcoin_status(v: &Value, peers: u32) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    let (Some(blocks), Some(ibd)) = (v["blocks"].as_u64(), v["initialblockdownload"].as_bool()) else { return (ObservedNodeStatus::Error, None) };
    let headers = v["headers"].as_u64().unwrap_or(blocks);
    let mut metrics = SyncMetrics::new(blocks, headers, peers);
    if let Some(p) = v["verificationprogress"].as_f64().filter(|p| (0.0..=1.0).contains(p)) {
        // Blocks are not equal work: Bitcoin Core's estimate of the transactions verified says more.
        metrics.progress_percent = (p * 10_000.0).floor() / 100.0;
    }
    (if ibd { ObservedNodeStatus::Syncing } else { ObservedNodeStatus::Running }, Some(metrics))
}

/// The `result` of a JSON-RPC call without parameters, if it answered one.
async fn rpc(api: &HttpApi, method: &str) -> Option<Value> {
    let body = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": [], "id": 1});
    let (status, bytes) = api.raw(Method::POST, "/", Some(body.to_string().into_bytes()), PROBE_TIMEOUT).await.ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok().filter(|_| status.is_success())?;
    v.get("result").cloned()
}

async fn get(api: &HttpApi, path: &str) -> Option<Value> {
    let (status, bytes) = api.raw(Method::GET, path, None, PROBE_TIMEOUT).await.ok()?;
    serde_json::from_slice(&bytes).ok().filter(|_| status.is_success())
}

/// An execution client from `eth_syncing` (false, or how far it is), its
/// block number and its peers.
pub fn execution_status(syncing: &Value, head: Option<u64>, peers: u32) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    match syncing {
        Value::Bool(false) => {
            let head = head.unwrap_or(0);
            (ObservedNodeStatus::Running, Some(SyncMetrics::new(head, head, peers)))
        }
        r @ Value::Object(_) => {
            let current = hex_u64(&r["currentBlock"]).max(head.unwrap_or(0));
            (ObservedNodeStatus::Syncing, Some(SyncMetrics::new(current, hex_u64(&r["highestBlock"]), peers)))
        }
        _ => (ObservedNodeStatus::Error, None),
    }
}

/// A consensus client from `/eth/v1/node/syncing` (head slot, distance,
/// whether it syncs, and `el_offline` where the client reports it) and its peers.
pub fn beacon_status(v: &Value, peers: u32) -> (ObservedNodeStatus, Option<SyncMetrics>) {
    let d = &v["data"];
    let num = |k: &str| d[k].as_str().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let head = num("head_slot");
    let metrics =
        SyncMetrics { execution_online: d["el_offline"].as_bool().map(|offline| !offline), ..SyncMetrics::new(head, head + num("sync_distance"), peers) };
    match d["is_syncing"].as_bool() {
        Some(false) => (ObservedNodeStatus::Running, Some(metrics)),
        Some(true) => (ObservedNodeStatus::Syncing, Some(metrics)),
        None => (ObservedNodeStatus::Error, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn execution_client_answers() {
        let (s, m) = execution_status(&json!(false), Some(0x2a), 3);
        assert_eq!(s, ObservedNodeStatus::Running);
        assert_eq!(m.map(|m| (m.current_block, m.sync_distance, m.peers)), Some((42, 0, 3)));
        let (s, m) = execution_status(&json!({"currentBlock":"0x10","highestBlock":"0x20"}), Some(0x10), 5);
        assert_eq!(s, ObservedNodeStatus::Syncing);
        let m = m.unwrap();
        assert_eq!((m.highest_block, m.sync_distance, m.progress_percent, m.peers), (32, 16, 50.0, 5));
        assert_eq!(execution_status(&json!("garbage"), None, 0).0, ObservedNodeStatus::Error);
    }

    #[test]
    fn consensus_client_answers() {
        let (s, m) = beacon_status(&json!({"data":{"is_syncing":true,"head_slot":"100","sync_distance":"50","el_offline":false}}), 12);
        assert_eq!(s, ObservedNodeStatus::Syncing);
        let m = m.unwrap();
        assert_eq!((m.highest_block, m.sync_distance, m.peers, m.execution_online), (150, 50, 12, Some(true)));
        // Lodestar 1.5.1 has no el_offline: unknown, not "online".
        let (s, m) = beacon_status(&json!({"data":{"is_syncing":false,"head_slot":"1","sync_distance":"0","is_optimistic":false}}), 0);
        assert_eq!((s, m.unwrap().execution_online), (ObservedNodeStatus::Running, None));
        let (_, m) = beacon_status(&json!({"data":{"is_syncing":false,"head_slot":"1","sync_distance":"0","el_offline":true}}), 0);
        assert_eq!(m.unwrap().execution_online, Some(false));
    }

    #[test]
    fn bitcoin_node_answers() {
        let (s, m) = bitcoin_status(&json!({"chain":"main","blocks":800_000,"headers":870_000,"verificationprogress":0.5123,"initialblockdownload":true}), 8);
        assert_eq!(s, ObservedNodeStatus::Syncing);
        let m = m.unwrap();
        assert_eq!((m.current_block, m.highest_block, m.sync_distance, m.progress_percent, m.peers), (800_000, 870_000, 70_000, 51.23, 8));
        let (s, m) = bitcoin_status(&json!({"chain":"regtest","blocks":3,"headers":3,"verificationprogress":1,"initialblockdownload":false}), 0);
        assert_eq!((s, m.unwrap().progress_percent), (ObservedNodeStatus::Running, 100.0));
        assert_eq!(bitcoin_status(&json!({"blocks":"x"}), 0).0, ObservedNodeStatus::Error);
        assert_eq!(rpc_credentials("rpcuser=novacula\nrpcpassword=ab12\n"), Some(("novacula".into(), "ab12".into())));
        assert_eq!(rpc_credentials("rpcuser=novacula\n"), None);
    }

    #[test]
    fn tron_node_answers() {
        let block = |n: u64, t: u64| json!({"blockID": "00", "block_header": {"raw_data": {"number": n, "timestamp": t}}});
        let now = 1_780_000_000_000;
        let (s, m) = tron_status(&block(1000, now - 3_000_000), 7, now);
        let m = m.unwrap();
        assert_eq!((s, m.current_block, m.highest_block, m.sync_distance, m.peers), (ObservedNodeStatus::Syncing, 1000, 2000, 1000, 7));
        let (s, m) = tron_status(&block(5000, now - 6_000), 30, now);
        assert_eq!((s, m.unwrap().sync_distance), (ObservedNodeStatus::Running, 0));
        assert_eq!(tron_status(&json!({}), 0, now).0, ObservedNodeStatus::Starting);
        assert_eq!(tron_status(&json!({"block_header": 1}), 0, now).0, ObservedNodeStatus::Error);
    }

    #[test]
    fn op_node_answers() {
        let status = |current: u64, head: u64| json!({"current_l1": {"number": current}, "head_l1": {"number": head}, "unsafe_l2": {"number": 5_000}});
        let (s, m) = op_node_status(&status(21_000_000, 24_000_000), 9);
        let m = m.unwrap();
        assert_eq!((s, m.current_block, m.sync_distance, m.progress_percent, m.peers), (ObservedNodeStatus::Syncing, 5_000, 3_000_000, 87.5, 9));
        let (s, m) = op_node_status(&status(23_999_990, 24_000_000), 9);
        assert_eq!((s, m.unwrap().sync_distance), (ObservedNodeStatus::Running, 0));
        assert_eq!(op_node_status(&status(0, 0), 0).0, ObservedNodeStatus::Starting, "no L1 head yet");
        assert_eq!(op_node_status(&json!({"current_l1": {"number": "0x1"}}), 0).0, ObservedNodeStatus::Error);
    }

    #[test]
    fn sui_node_answers() {
        let now = 1_780_000_000_000;
        let text = |at: u64| {
            format!(
                "# HELP last_executed_checkpoint x\n# TYPE last_executed_checkpoint gauge\nlast_executed_checkpoint 900\nlast_executed_checkpoint_timestamp_ms {at}\n\
                 highest_known_checkpoint 1000\nlast_executed_checkpoint_age_bucket{{le=\"1\"}} 3\nsui_quinn_network_peers 4\n"
            )
        };
        let (s, m) = sui_status(&text(now - 3_600_000), now);
        let m = m.unwrap();
        assert_eq!((s, m.current_block, m.highest_block, m.sync_distance, m.peers), (ObservedNodeStatus::Syncing, 900, 1000, 100, 4));
        assert_eq!(sui_status(&text(now - 2_000), now).0, ObservedNodeStatus::Running);
        assert_eq!(sui_status("uptime 3\n", now).0, ObservedNodeStatus::Starting, "no checkpoint executed yet");
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_starting() {
        let p = Probe::EthJsonRpc { url: "http://127.0.0.1:1".into() };
        assert_eq!(probe(&p).await.0, ObservedNodeStatus::Starting);
    }
}
