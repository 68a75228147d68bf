//! Execution clients. Sources per client: docs/clients/eth-execution-clients.md.
//! Every client: its network, data dir, P2P (TCP and UDP on one number),
//! JSON-RPC on localhost with eth/net/web3, the engine API on localhost with
//! the node's JWT, and metrics on localhost.

use super::devnet::GENESIS_FILE;
use super::{ClientDef, Ctx, EXECUTION, LOCALHOST};
use crate::adapter::flags::Flags;

pub const CLIENTS: [ClientDef; 6] = [GETH, RETH, NETHERMIND, ERIGON, BESU, ETHEREUMJS];

const GETH: ClientDef = ClientDef {
    name: "geth",
    role: EXECUTION,
    ports: &[("p2p", 30303), ("http", 8545), ("engine", 8551), ("metrics", 6060)],
    devnet: false,
    // `--hoodi` first shipped in 1.15.6 (the Novacula docs say 1.15.0); the
    // other floors are the Novacula docs' (see docs/clients/ for what each
    // client's changelog confirms).
    min_versions: &[("hoodi", "1.15.6")],
    managed: &[
        "mainnet",
        "sepolia",
        "hoodi",
        "holesky",
        "dev",
        "networkid",
        "datadir",
        "datadir.ancient",
        "datadir.era",
        "port",
        "discovery.port",
        "http.port",
        "authrpc.addr",
        "authrpc.port",
        "authrpc.jwtsecret",
        "authrpc.vhosts",
        "metrics.port",
    ],
    checkpoint: None,
    image: "ethereum/client-go",
    tag_prefix: "v",
    image_command: &[],
    writable_root: false,
    internal: &[],
    stop_grace_secs: 300,
    volumes: &[("ancient", "datadir.ancient")],
    render: geth,
};

fn geth(x: &Ctx) -> Flags {
    let f = Flags::new()
        .on(x.network)
        .set("datadir", &x.data)
        .set("port", x.port("p2p"))
        .set("discovery.port", x.port("p2p"))
        .on("http")
        .set("http.addr", x.listen)
        .set("http.port", x.port("http"))
        .set("http.api", "eth,net,web3")
        .set("authrpc.addr", LOCALHOST)
        .set("authrpc.port", x.port("engine"))
        .set("authrpc.jwtsecret", &x.jwt)
        .on("metrics")
        .set("metrics.addr", x.listen)
        .set("metrics.port", x.port("metrics"));
    // geth answers 403 to a Host header it does not list (a pod's address).
    let f = f.when(x.public(), |f| f.set("http.vhosts", "*"));
    if x.archive() {
        f.set("syncmode", "full").set("gcmode", "archive")
    } else {
        f.set("syncmode", "snap")
    }
}

const RETH: ClientDef = ClientDef {
    name: "reth",
    role: EXECUTION,
    // discv5 listens on its own UDP port (9200), which would collide too.
    ports: &[("p2p", 30303), ("discv5", 9200), ("http", 8545), ("engine", 8551), ("metrics", 9001)],
    devnet: false,
    min_versions: &[("hoodi", "2.0.0")],
    managed: &[
        "chain",
        "dev",
        "instance",
        "datadir",
        "port",
        "discovery.port",
        "discovery.v5.port",
        "http.port",
        "authrpc.addr",
        "authrpc.port",
        "authrpc.jwtsecret",
        "metrics",
        "ipcpath",
        "ipcdisable",
    ],
    checkpoint: None,
    image: "ghcr.io/paradigmxyz/reth",
    tag_prefix: "v",
    image_command: &[],
    writable_root: false,
    internal: &[],
    stop_grace_secs: 300,
    volumes: &[("static-files", "datadir.static-files")],
    render: reth,
};

fn reth(x: &Ctx) -> Flags {
    let f = Flags::new()
        .word("node")
        .set("chain", x.network)
        .set("datadir", &x.data)
        .set("port", x.port("p2p"))
        .set("discovery.port", x.port("p2p"))
        .set("discovery.v5.port", x.port("discv5"))
        .on("http")
        .set("http.addr", x.listen)
        .set("http.port", x.port("http"))
        .set("http.api", "eth,net,web3")
        .set("authrpc.addr", LOCALHOST)
        .set("authrpc.port", x.port("engine"))
        .set("authrpc.jwtsecret", &x.jwt)
        .set("metrics", format!("{}:{}", x.listen, x.port("metrics")))
        // The IPC socket defaults to /tmp/reth.ipc, shared by every instance on a host.
        .on("ipcdisable");
    // reth keeps everything (archive) unless told to prune.
    f.when(!x.archive(), |f| f.on("full"))
}

const NETHERMIND: ClientDef = ClientDef {
    name: "nethermind",
    role: EXECUTION,
    ports: &[("p2p", 30303), ("http", 8545), ("engine", 8551), ("metrics", 6060)],
    devnet: false,
    min_versions: &[("hoodi", "1.31.9")],
    // Each option has a PascalCase and a kebab-case spelling; both are managed.
    managed: &[
        "config",
        "data-dir",
        "datadir",
        "db-dir",
        "Init.BaseDbPath",
        "Init.ChainSpecPath",
        "JsonRpc.Port",
        "JsonRpc.WebSocketsPort",
        "JsonRpc.EngineHost",
        "JsonRpc.EnginePort",
        "JsonRpc.JwtSecretFile",
        "JsonRpc.AdditionalRpcUrls",
        "JsonRpc.UnsecureDevNoRpcAuthentication",
        "Network.P2PPort",
        "Network.DiscoveryPort",
        "Metrics.ExposePort",
        "init-basedbpath",
        "init-chainspecpath",
        "jsonrpc-port",
        "jsonrpc-websocketsport",
        "jsonrpc-enginehost",
        "jsonrpc-engineport",
        "jsonrpc-jwtsecretfile",
        "jsonrpc-additionalrpcurls",
        "jsonrpc-unsecuredevnorpcauthentication",
        "network-p2pport",
        "network-discoveryport",
        "metrics-exposeport",
    ],
    checkpoint: None,
    image: "nethermind/nethermind",
    tag_prefix: "",
    image_command: &[],
    writable_root: false,
    internal: &[],
    stop_grace_secs: 300,
    volumes: &[],
    render: nethermind,
};

fn nethermind(x: &Ctx) -> Flags {
    let config = if x.archive() { format!("{}_archive", x.network) } else { x.network.to_string() };
    Flags::new()
        .set("config", config)
        .set("data-dir", &x.data)
        .set("JsonRpc.Enabled", "true")
        .set("JsonRpc.Host", x.listen)
        .set("JsonRpc.Port", x.port("http"))
        // The WebSocket listener defaults to 8545 whatever JsonRpc.Port says.
        .set("JsonRpc.WebSocketsPort", x.port("http"))
        .set("JsonRpc.EngineHost", LOCALHOST)
        .set("JsonRpc.EnginePort", x.port("engine"))
        .set("JsonRpc.JwtSecretFile", &x.jwt)
        .set("Network.P2PPort", x.port("p2p"))
        .set("Network.DiscoveryPort", x.port("p2p"))
        .set("Metrics.Enabled", "true")
        .set("Metrics.ExposeHost", x.listen)
        .set("Metrics.ExposePort", x.port("metrics"))
        .set("HealthChecks.Enabled", "true")
}

const ERIGON: ClientDef = ClientDef {
    name: "erigon",
    role: EXECUTION,
    // Erigon takes a second P2P port for its other eth protocol version, and
    // listens for torrents and on a private gRPC API too.
    ports: &[("p2p", 30303), ("p2p-alt", 30304), ("http", 8545), ("engine", 8551), ("metrics", 6061), ("torrent", 42069), ("grpc", 9090)],
    devnet: false,
    min_versions: &[("hoodi", "3.0.2")],
    managed: &[
        "chain",
        "networkid",
        "datadir",
        "port",
        "p2p.allowed-ports",
        "http.port",
        "http.api",
        "authrpc.addr",
        "authrpc.port",
        "authrpc.jwtsecret",
        "authrpc.vhosts",
        "metrics.port",
        "torrent.port",
        "private.api.addr",
        "externalcl",
    ],
    checkpoint: None,
    image: "erigontech/erigon",
    tag_prefix: "v",
    image_command: &[],
    writable_root: false,
    internal: &["grpc"],
    stop_grace_secs: 300,
    volumes: &[],
    render: erigon,
};

fn erigon(x: &Ctx) -> Flags {
    let f = Flags::new()
        .set("chain", x.network)
        .set("datadir", &x.data)
        .set("prune.mode", if x.archive() { "archive" } else { "full" })
        // Without it Erigon runs its own consensus layer (Caplin) beside ours.
        .on("externalcl")
        .set("port", x.port("p2p"))
        .set("p2p.allowed-ports", format!("{},{}", x.port("p2p"), x.port("p2p-alt")))
        .on("http")
        .set("http.addr", x.listen)
        .set("http.port", x.port("http"))
        // Erigon's default API set has no `net` (the peer probe needs it) and
        // has `engine`, which stays on the authenticated port only.
        .set("http.api", "eth,erigon,net,web3")
        .set("authrpc.addr", LOCALHOST)
        .set("authrpc.port", x.port("engine"))
        .set("authrpc.jwtsecret", &x.jwt)
        .set("torrent.port", x.port("torrent"))
        .set("private.api.addr", format!("{LOCALHOST}:{}", x.port("grpc")))
        .on("metrics")
        .set("metrics.addr", x.listen)
        .set("metrics.port", x.port("metrics"));
    // Erigon, like geth, filters requests by Host header.
    f.when(x.public(), |f| f.set("http.vhosts", "*"))
}

const BESU: ClientDef = ClientDef {
    name: "besu",
    role: EXECUTION,
    ports: &[("p2p", 30303), ("http", 8545), ("engine", 8551), ("metrics", 9545)],
    devnet: false,
    min_versions: &[("hoodi", "25.3.0")],
    // Besu's engine API listens on the JSON-RPC host: that host is the adapter's too.
    managed: &[
        "network",
        "network-id",
        "genesis-file",
        "data-path",
        "p2p-port",
        "rpc-http-host",
        "rpc-http-port",
        "engine-rpc-port",
        "engine-rpc-http-port",
        "engine-jwt-secret",
        "engine-jwt-disabled",
        "engine-host-allowlist",
        "metrics-port",
    ],
    checkpoint: None,
    image: "hyperledger/besu",
    tag_prefix: "",
    image_command: &[],
    writable_root: false,
    // The RPC listens where the engine API does (127.0.0.1), so not on the pod's address.
    internal: &["http"],
    stop_grace_secs: 300,
    volumes: &[],
    render: besu,
};

fn besu(x: &Ctx) -> Flags {
    let f = Flags::new()
        .set("network", x.network)
        .set("data-path", &x.data)
        .set("p2p-port", x.port("p2p"))
        .set("rpc-http-enabled", "true")
        // Besu's engine API listens on the JSON-RPC host, which therefore
        // stays 127.0.0.1 in a pod too: besu's RPC is reached inside the pod only.
        .set("rpc-http-host", LOCALHOST)
        .set("rpc-http-port", x.port("http"))
        .set("rpc-http-api", "ETH,NET,WEB3")
        .set("engine-rpc-port", x.port("engine"))
        .set("engine-jwt-secret", &x.jwt)
        .set("engine-host-allowlist", "localhost,127.0.0.1")
        .set("metrics-enabled", "true")
        .set("metrics-host", x.listen)
        .set("metrics-port", x.port("metrics"));
    let f = f.when(x.public(), |f| f.set("host-allowlist", "*"));
    if x.archive() {
        f.set("sync-mode", "FULL").set("data-storage-format", "FOREST")
    } else {
        f.set("sync-mode", "SNAP").set("data-storage-format", "BONSAI")
    }
}

const ETHEREUMJS: ClientDef = ClientDef {
    name: "ethereumjs",
    role: EXECUTION,
    // No metrics: its Prometheus endpoint binds every interface and serves only process metrics.
    ports: &[("p2p", 30303), ("http", 8545), ("engine", 8551)],
    devnet: true,
    min_versions: &[("hoodi", "0.10.4")],
    // yargs accepts camelCase and kebab-case spellings; both are managed.
    managed: &[
        "network",
        "chainId",
        "customChain",
        "customGenesisState",
        "gethGenesis",
        "dev",
        "dataDir",
        "port",
        "rpcPort",
        "rpcEngine",
        "rpcEngineAddr",
        "rpcEnginePort",
        "rpcEngineAuth",
        "jwtSecret",
        "ws",
        "wsEngineAddr",
        "wsEnginePort",
        "prometheus",
        "prometheusPort",
        "chain-id",
        "custom-chain",
        "custom-genesis-state",
        "geth-genesis",
        "data-dir",
        "rpc-port",
        "rpc-engine",
        "rpc-engine-addr",
        "rpc-engine-port",
        "rpc-engine-auth",
        "jwt-secret",
        "ws-engine-addr",
        "ws-engine-port",
        "prometheus-port",
    ],
    checkpoint: None,
    image: "ethpandaops/ethereumjs",
    tag_prefix: "",
    image_command: &[],
    writable_root: false,
    internal: &[],
    stop_grace_secs: 300,
    volumes: &[],
    render: ethereumjs,
};

fn ethereumjs(x: &Ctx) -> Flags {
    let f = if x.devnet() {
        // A chain of its own: the generated genesis, no peers to look for.
        Flags::new().set("gethGenesis", format!("{}/{GENESIS_FILE}", x.config)).on("isSingleNode").set("discV4", "false").set("discDns", "false")
    } else {
        Flags::new().set("network", x.network)
    };
    f.set("dataDir", &x.data)
        .set("port", x.port("p2p"))
        .on("rpc")
        .set("rpcAddr", x.listen)
        .set("rpcPort", x.port("http"))
        .on("rpcEngine")
        .set("rpcEngineAddr", LOCALHOST)
        .set("rpcEnginePort", x.port("engine"))
        .set("jwtSecret", &x.jwt)
}
