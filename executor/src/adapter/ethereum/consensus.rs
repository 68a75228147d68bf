//! Consensus (beacon node) clients. Sources per client:
//! docs/clients/eth-consensus-clients.md. Every client: its network, data
//! dir, the execution client's engine API with the node's JWT, checkpoint
//! sync on public networks, P2P, the beacon REST API on localhost (off by
//! default in most clients; the probes need it) and metrics on localhost.

use super::devnet::{FEE_RECIPIENT, PARAMS_FILE, VALIDATORS};
use super::{Checkpoint, ClientDef, Ctx, CONSENSUS, DEVNET_GENESIS_HASH, LOCALHOST};
use crate::adapter::flags::Flags;

pub const CLIENTS: [ClientDef; 5] = [LIGHTHOUSE, PRYSM, LODESTAR, TEKU, NIMBUS];

const LIGHTHOUSE: ClientDef = ClientDef {
    name: "lighthouse",
    role: CONSENSUS,
    // QUIC takes its own UDP port (by default the P2P port + 1).
    ports: &[("p2p", 9000), ("quic", 9001), ("http", 5052), ("metrics", 5054)],
    devnet: false,
    min_versions: &[],
    managed: &[
        "network",
        "testnet-dir",
        "datadir",
        "execution-endpoint",
        "execution-endpoints",
        "execution-jwt",
        "execution-jwt-secret-key",
        "port",
        "discovery-port",
        "quic-port",
        "http-port",
        "metrics-port",
    ],
    // Lighthouse refuses to sync from genesis on these networks unless told to.
    checkpoint: Some(Checkpoint { flag: "checkpoint-sync-url", opt_out: Some("allow-insecure-genesis-sync") }),
    image: "sigp/lighthouse",
    tag_prefix: "v",
    // The image has no entrypoint.
    image_command: &["lighthouse"],
    writable_root: false,
    internal: &[],
    stop_grace_secs: 120,
    volumes: &[("freezer", "freezer-dir"), ("blobs", "blobs-dir")],
    render: lighthouse,
};

fn with_checkpoint(f: Flags, x: &Ctx, flag: &str) -> Flags {
    match &x.checkpoint {
        Some(url) => f.set(flag, url),
        None => f,
    }
}

fn lighthouse(x: &Ctx) -> Flags {
    let f = Flags::new().word("bn").set("network", x.network).set("datadir", &x.data).set("execution-endpoint", &x.engine).set("execution-jwt", &x.jwt);
    let f = with_checkpoint(f, x, "checkpoint-sync-url")
        .set("port", x.port("p2p"))
        .set("discovery-port", x.port("p2p"))
        .set("quic-port", x.port("quic"))
        .on("http")
        .set("http-address", x.listen)
        .set("http-port", x.port("http"))
        .on("metrics")
        .set("metrics-address", x.listen)
        .set("metrics-port", x.port("metrics"));
    f.when(x.archive(), |f| f.on("reconstruct-historic-states"))
}

const PRYSM: ClientDef = ClientDef {
    name: "prysm",
    role: CONSENSUS,
    // Discovery is UDP 12000; QUIC is UDP on the TCP P2P port's number; gRPC 4000.
    ports: &[("p2p", 13000), ("discovery", 12000), ("http", 3500), ("grpc", 4000), ("metrics", 8080)],
    devnet: false,
    min_versions: &[("hoodi", "7.1.0")],
    managed: &[
        "mainnet",
        "sepolia",
        "hoodi",
        "holesky",
        "datadir",
        "execution-endpoint",
        "jwt-secret",
        "p2p-tcp-port",
        "p2p-udp-port",
        "p2p-quic-port",
        "http-port",
        "grpc-gateway-port",
        "rpc-host",
        "rpc-port",
        "monitoring-port",
        "genesis-state",
        "chain-config-file",
    ],
    // Prysm has mainnet's genesis built in; on the test networks the same URL is its genesis source.
    checkpoint: Some(Checkpoint { flag: "checkpoint-sync-url", opt_out: None }),
    image: "gcr.io/offchainlabs/prysm/beacon-chain",
    tag_prefix: "v",
    image_command: &[],
    writable_root: false,
    internal: &["grpc"],
    stop_grace_secs: 120,
    volumes: &[("blobs", "blob-path")],
    render: prysm,
};

fn prysm(x: &Ctx) -> Flags {
    let f = Flags::new().on(x.network).on("accept-terms-of-use").set("datadir", &x.data).set("execution-endpoint", &x.engine).set("jwt-secret", &x.jwt);
    let f = match &x.checkpoint {
        Some(url) => f.set("checkpoint-sync-url", url).set("genesis-beacon-api-url", url),
        None => f,
    };
    let f = f
        .set("p2p-tcp-port", x.port("p2p"))
        .set("p2p-udp-port", x.port("discovery"))
        .set("p2p-quic-port", x.port("p2p"))
        .set("http-host", x.listen)
        .set("http-port", x.port("http"))
        .set("rpc-host", LOCALHOST)
        .set("rpc-port", x.port("grpc"))
        .set("monitoring-host", x.listen)
        .set("monitoring-port", x.port("metrics"));
    // By default Prysm keeps a state every 2048 slots; an archive keeps one per epoch.
    f.when(x.archive(), |f| f.set("slots-per-archive-point", 32))
}

const LODESTAR: ClientDef = ClientDef {
    name: "lodestar",
    role: CONSENSUS,
    ports: &[("p2p", 9000), ("http", 9596), ("metrics", 8008)],
    devnet: true,
    min_versions: &[],
    managed: &[
        "network",
        "paramsFile",
        "params-file",
        "dataDir",
        "data-dir",
        "execution.urls",
        "execution.engineMock",
        "jwt-secret",
        "jwtSecret",
        "port",
        "discoveryPort",
        "discovery-port",
        "rest.port",
        "metrics.port",
        "genesisEth1Hash",
        "genesis-eth1-hash",
        "genesisStateFile",
        "genesis-state-file",
        "server",
    ],
    checkpoint: Some(Checkpoint { flag: "checkpointSyncUrl", opt_out: None }),
    image: "chainsafe/lodestar",
    tag_prefix: "v",
    image_command: &[],
    writable_root: false,
    internal: &[],
    stop_grace_secs: 120,
    volumes: &[],
    render: lodestar,
};

fn lodestar(x: &Ctx) -> Flags {
    if x.devnet() {
        return lodestar_dev(x);
    }
    let f = Flags::new().word("beacon").set("network", x.network).set("dataDir", &x.data).set("execution.urls", &x.engine).set("jwt-secret", &x.jwt);
    with_checkpoint(f, x, "checkpointSyncUrl")
        .set("port", x.port("p2p"))
        .set("discoveryPort", x.port("p2p"))
        .set("rest", "true")
        .set("rest.address", x.listen)
        .set("rest.port", x.port("http"))
        .on("metrics")
        .set("metrics.address", x.listen)
        .set("metrics.port", x.port("metrics"))
}

/// Lodestar's `dev` mode: a beacon node and its interop validators in one
/// process, on the devnet's execution genesis. No metrics: the beacon node
/// and the built-in validator would both bind the metrics port.
fn lodestar_dev(x: &Ctx) -> Flags {
    Flags::new()
        .word("dev")
        .set("paramsFile", format!("{}/{PARAMS_FILE}", x.config))
        .set("genesisValidators", VALIDATORS)
        .set("startValidators", format!("0..{}", VALIDATORS - 1))
        .set("genesisEth1Hash", DEVNET_GENESIS_HASH)
        .set("dataDir", &x.data)
        .set("execution.urls", &x.engine)
        .set("jwt-secret", &x.jwt)
        .set("port", x.port("p2p"))
        .set("discv5", "false")
        .set("rest.address", x.listen)
        .set("rest.port", x.port("http"))
        // The built-in validator looks for the beacon node on the default port otherwise.
        .set("server", format!("http://{LOCALHOST}:{}", x.port("http")))
        // Alone on its chain: synced without peers.
        .on("sync.isSingleNode")
        .set("suggestedFeeRecipient", FEE_RECIPIENT)
}

const TEKU: ClientDef = ClientDef {
    name: "teku",
    role: CONSENSUS,
    ports: &[("p2p", 9000), ("quic", 9001), ("http", 5051), ("metrics", 8008)],
    devnet: false,
    min_versions: &[],
    managed: &[
        "network",
        "data-base-path",
        "data-path",
        "data-beacon-path",
        "initial-state",
        "genesis-state",
        "ee-endpoint",
        "ee-jwt-secret-file",
        "p2p-port",
        "p2p-udp-port",
        "p2p-quic-port",
        "rest-api-port",
        "metrics-port",
    ],
    // Teku refuses an anchor outside the weak-subjectivity period unless told to.
    checkpoint: Some(Checkpoint { flag: "checkpoint-sync-url", opt_out: Some("ignore-weak-subjectivity-period-enabled") }),
    image: "consensys/teku",
    tag_prefix: "",
    image_command: &[],
    writable_root: false,
    internal: &[],
    stop_grace_secs: 120,
    volumes: &[],
    render: teku,
};

fn teku(x: &Ctx) -> Flags {
    let f = Flags::new().set("network", x.network).set("data-base-path", &x.data).set("ee-endpoint", &x.engine).set("ee-jwt-secret-file", &x.jwt);
    let f = with_checkpoint(f, x, "checkpoint-sync-url")
        .set("p2p-port", x.port("p2p"))
        .set("p2p-udp-port", x.port("p2p"))
        .set("p2p-quic-port", x.port("quic"))
        .set("rest-api-enabled", "true")
        .set("rest-api-interface", x.listen)
        .set("rest-api-port", x.port("http"))
        .set("metrics-enabled", "true")
        .set("metrics-interface", x.listen)
        .set("metrics-port", x.port("metrics"));
    // Teku answers only Host headers it lists (localhost by default).
    let f = f.when(x.public(), |f| f.set("rest-api-host-allowlist", "*").set("metrics-host-allowlist", "*"));
    f.when(x.archive(), |f| f.set("data-storage-mode", "ARCHIVE"))
}

const NIMBUS: ClientDef = ClientDef {
    name: "nimbus",
    role: CONSENSUS,
    ports: &[("p2p", 9000), ("http", 5052), ("metrics", 8008)],
    devnet: false,
    min_versions: &[],
    managed: &["network", "data-dir", "el", "web3-url", "jwt-secret", "tcp-port", "udp-port", "rest-port", "metrics-port"],
    // Nimbus syncs from genesis by default. It starts from the checkpoint
    // URL only beside a trusted block or state root, which the operator
    // vouches for: `trusted-block-root` in the spec's overrides.
    checkpoint: Some(Checkpoint { flag: "external-beacon-api-url", opt_out: None }),
    image: "statusim/nimbus-eth2",
    tag_prefix: "amd64-v",
    image_command: &[],
    writable_root: false,
    internal: &[],
    stop_grace_secs: 120,
    volumes: &[],
    render: nimbus,
};

fn nimbus(x: &Ctx) -> Flags {
    let f = Flags::new().set("network", x.network).set("data-dir", &x.data).on("non-interactive").set("el", &x.engine).set("jwt-secret", &x.jwt);
    let f = with_checkpoint(f, x, "external-beacon-api-url")
        .set("tcp-port", x.port("p2p"))
        .set("udp-port", x.port("p2p"))
        .on("rest")
        .set("rest-address", x.listen)
        .set("rest-port", x.port("http"))
        .on("metrics")
        .set("metrics-address", x.listen)
        .set("metrics-port", x.port("metrics"));
    f.when(x.archive(), |f| f.set("history", "archive"))
}
