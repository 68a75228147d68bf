//! The real Ethereum clients `.ci/prerequisites` installs (EthereumJS and
//! Lodestar from the npm registry), for the tests that run them: through the
//! control plane and the local driver (`control-plane/tests/real_ethereum.rs`)
//! and under the real systemd (`agent/tests/systemd_real.rs`).
#![allow(dead_code)]

use novacula_client::HttpApi;
use novacula_core::fixtures::{client, eth_spec};
use novacula_core::NodeSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const EL: (&str, &str) = ("ethereumjs", "0.10.5");
pub const CL: (&str, &str) = ("lodestar", "1.5.1");

/// Where `.ci/prerequisites` installs the clients.
pub fn clients_dir() -> PathBuf {
    std::env::var_os("NOVACULA_REALCLIENTS").map_or_else(|| PathBuf::from("/opt/novacula-clients"), PathBuf::from)
}

fn executable(client: (&str, &str)) -> PathBuf {
    clients_dir().join(format!("{}-{}/node_modules/.bin/{}", client.0, client.1, client.0))
}

/// Whether the clients are installed. Under CI they must be: a missing one fails the test.
pub fn installed() -> bool {
    let here = executable(EL).exists() && executable(CL).exists();
    if !here {
        assert!(std::env::var_os("CI").is_none(), "the real clients are missing under {}; run .ci/prerequisites", clients_dir().display());
        eprintln!("skipped: no real clients under {} (run .ci/prerequisites)", clients_dir().display());
    }
    here
}

/// Put the clients where an agent looks for them: `data_dir/bin/<client>/<version>/<client>`.
pub fn install(data: &Path) {
    for c in [EL, CL] {
        let dir = data.join("bin").join(c.0).join(c.1);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(executable(c), dir.join(c.0)).unwrap();
    }
}

/// A devnet node of both clients.
pub fn devnet_spec(name: &str) -> NodeSpec {
    let mut s = eth_spec(name);
    s.storage = vec![];
    s.network = "devnet".into();
    s.clients = vec![client("execution", EL.0, EL.1), client("consensus", CL.0, CL.1)];
    s
}

/// The execution client's block number, asked directly on its RPC port.
pub async fn el_block(port: u16) -> Option<u64> {
    let api = HttpApi::new(&format!("http://127.0.0.1:{port}"), None).ok()?;
    let body = br#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#.to_vec();
    let (_, bytes) = api.raw(novacula_client::Method::POST, "/", Some(body), Duration::from_secs(2)).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    u64::from_str_radix(v["result"].as_str()?.trim_start_matches("0x"), 16).ok()
}

/// Debian's `litecoind` (a Bitcoin Core fork with the same config and RPC),
/// run by the Bitcoin adapter as its `bitcoind`: what `.ci/prerequisites` installs.
pub const LITECOIND: &str = "/usr/bin/litecoind";
/// The adapter's client and the release the swapped binary stands for (Litecoin Core 0.21.2.1).
pub const BITCOIND: (&str, &str) = ("bitcoind", "0.21.2");

/// Whether litecoind is installed. Under CI it must be.
pub fn litecoind_installed() -> bool {
    let here = Path::new(LITECOIND).exists();
    if !here {
        assert!(std::env::var_os("CI").is_none(), "{LITECOIND} is missing; run .ci/prerequisites");
        eprintln!("skipped: no {LITECOIND} (run .ci/prerequisites)");
    }
    here
}

/// Put litecoind where an agent looks for the adapter's `bitcoind`.
pub fn install_litecoind(data: &Path) {
    let dir = data.join("bin").join(BITCOIND.0).join(BITCOIND.1);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(LITECOIND, dir.join(BITCOIND.0)).unwrap();
}

/// A regtest node of the Bitcoin adapter.
pub fn regtest_spec(name: &str) -> NodeSpec {
    let mut s = eth_spec(name);
    s.storage = vec![];
    s.chain = "bitcoin".into();
    s.network = "regtest".into();
    s.clients = vec![client("node", BITCOIND.0, BITCOIND.1)];
    s
}

/// A JSON-RPC call to a node's `bitcoind` on `port`, as the node's generated
/// credentials (`config/rpc.conf` of its directory) allow.
pub async fn btc_rpc(node_dir: &Path, port: u16, method: &str, params: serde_json::Value) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(node_dir.join("config/rpc.conf")).ok()?;
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_string));
    let api = HttpApi::new(&format!("http://127.0.0.1:{port}"), None).ok()?.with_basic_auth(&field("rpcuser")?, &field("rpcpassword")?);
    let body = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string().into_bytes();
    let (_, bytes) = api.raw(novacula_client::Method::POST, "/", Some(body), Duration::from_secs(5)).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("result").filter(|r| !r.is_null()).cloned()
}

/// Processes whose command line names `needle` (the unit's own data dir).
pub fn pids_with(needle: &str) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Kills the node processes started under `dir` when dropped: a failing
/// assertion must not leave clients holding ports for the next run.
pub struct Reaper(pub String);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in pids_with(&self.0) {
            rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::KILL).ok();
        }
    }
}

/// Poll node `node` every 250 ms until `ok` holds, for at most `secs`.
pub async fn until(user: &HttpApi, node: &str, secs: u64, what: &str, ok: impl Fn(&novacula_core::wire::NodeView) -> bool) -> novacula_core::wire::NodeView {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let n = user.node(node).await.unwrap();
        if ok(&n) {
            return n;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {secs} s; the node is {}", serde_json::to_string_pretty(&n).unwrap());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether a deleted node is gone from the control plane within 60 s (its executor confirmed the teardown).
pub async fn gone(user: &HttpApi, node: &str) -> bool {
    for _ in 0..240 {
        if user.node(node).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
