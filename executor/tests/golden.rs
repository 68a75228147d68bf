//! One rendered command line per (client, network, node type), pinned in
//! `tests/golden/<client>.txt` so that a change to a flag shows as a diff to
//! review against the client's documentation (docs/clients/).
//! Regenerate with `NOVACULA_BLESS=1 cargo test -p novacula-executor --test golden`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_core::fixtures::{client, eth_spec};
use novacula_core::spec::NodeType;
use novacula_executor::adapter::{ethereum, Adapters, NodePaths};
use std::fmt::Write;
use std::path::PathBuf;

/// A release of each client that runs every public network (above each hoodi floor).
fn version(name: &str) -> &'static str {
    match name {
        "geth" => "1.16.7",
        "reth" => "2.5.1",
        "nethermind" => "1.35.3",
        "erigon" => "3.3.0",
        "besu" => "26.8.0",
        "ethereumjs" => "0.10.5",
        "lighthouse" => "8.0.0",
        "prysm" => "7.1.6",
        "lodestar" => "1.36.0",
        "teku" => "26.8.0",
        "nimbus" => "25.11.0",
        other => panic!("no version for {other}"),
    }
}

fn golden(name: &str) -> String {
    let adapters = Adapters::standard();
    let def = ethereum::client(name).unwrap();
    let mut out = format!("# {name} {} ({}): one rendered command per network and node type.\n", version(name), def.role);
    let image = adapters.image("ethereum", "mainnet", name, version(name)).unwrap();
    writeln!(out, "# operator image: {}{}", image.reference, if image.command.is_empty() { String::new() } else { format!(" (command {:?})", image.command) })
        .unwrap();
    let support = adapters.capabilities();
    let support = support.chain("ethereum").unwrap();
    let cs = support.client(def.role, name).unwrap();
    for network in &cs.networks {
        // Every network and node type on a host; mainnet in a pod too (what the operator runs).
        let mut cases = vec![(NodeType::Full, "host"), (NodeType::Archive, "host")];
        if network == "mainnet" {
            cases.push((NodeType::Full, "pod"));
        }
        for (node_type, place) in cases {
            let mut spec = eth_spec("eth-1");
            spec.network = network.clone();
            spec.node_type = node_type;
            let (el, cl) = match def.role {
                "execution" => (name, if network == "devnet" { "lodestar" } else { "lighthouse" }),
                _ => (if network == "devnet" { "ethereumjs" } else { "geth" }, name),
            };
            spec.clients = vec![client("execution", el, version(el)), client("consensus", cl, version(cl))];
            let (paths, heading) = match place {
                "pod" => (NodePaths::pod("/novacula"), format!("{network} {} in a pod (operator)", node_type.as_str())),
                _ => (NodePaths::host("/var/lib/novacula/nodes/eth-1"), format!("{network} {}", node_type.as_str())),
            };
            let unit = adapters.render(&spec, def.role, &paths).unwrap();
            writeln!(out, "\n## {heading}").unwrap();
            for arg in &unit.args {
                writeln!(out, "{arg}").unwrap();
            }
            for f in &unit.files {
                writeln!(out, "file: {}", f.name).unwrap();
            }
        }
    }
    out
}

/// A chain's clients (Bitcoin Core, BSC, Ink's two...): each one's command
/// line, environment and whole config files per network and node type
/// (where their settings are), with `settings` (role, key, value) set.
fn golden_chain(chain: &str, clients: &[(&str, &str, &str)], settings: &[(&str, &str, &str)]) -> String {
    use novacula_executor::adapter::FileContents;
    let adapters = Adapters::standard();
    let mut out = String::new();
    for (role, name, version) in clients {
        let image = adapters.image(chain, "mainnet", name, version).unwrap();
        writeln!(out, "# {name} {version} ({role}): one rendered command and config per network and node type.").unwrap();
        writeln!(out, "# operator image: {} (command {:?})", image.reference, image.command).unwrap();
    }
    let caps = adapters.capabilities();
    let support = caps.chain(chain).unwrap();
    for network in &support.networks {
        let mut cases: Vec<(NodeType, &str)> = support.node_types.iter().map(|t| (*t, "host")).collect();
        if network == &support.networks[0] {
            cases.push((NodeType::Full, "pod"));
        }
        for (node_type, place) in cases {
            let mut spec = eth_spec("n-1");
            spec.chain = chain.into();
            spec.network = network.clone();
            spec.node_type = node_type;
            spec.clients = clients.iter().map(|(role, name, version)| client(role, name, version)).collect();
            for (role, key, value) in settings {
                spec.clients.iter_mut().find(|c| c.role == *role).unwrap().config_overrides.insert((*key).into(), (*value).into());
            }
            let (paths, heading) = match place {
                "pod" => (NodePaths::pod("/novacula"), format!("{network} {} in a pod (operator)", node_type.as_str())),
                _ => (NodePaths::host("/var/lib/novacula/nodes/n-1"), format!("{network} {}", node_type.as_str())),
            };
            for (role, _, _) in clients {
                let unit = adapters.render(&spec, role, &paths).unwrap();
                writeln!(out, "\n## {heading}{}", if clients.len() > 1 { format!(": {role}") } else { String::new() }).unwrap();
                for arg in &unit.args {
                    writeln!(out, "{arg}").unwrap();
                }
                for (k, v) in &unit.env {
                    writeln!(out, "env: {k}={v}").unwrap();
                }
                for (k, secret) in &unit.secret_env {
                    writeln!(out, "env: {k}=<the executor's secret {secret:?}>").unwrap();
                }
                for f in &unit.files {
                    match &f.contents {
                        // A network's upstream file, kept verbatim: its source line and size.
                        FileContents::Text(text) if text.starts_with("# Source: ") => {
                            writeln!(out, "file: {} ({} lines) {}", f.name, text.lines().count(), text.lines().next().unwrap_or_default()).unwrap();
                        }
                        FileContents::Text(text) => {
                            writeln!(out, "file: {}\n{}", f.name, text.trim_end().lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")).unwrap();
                        }
                        FileContents::Secret(secret) => writeln!(out, "file: {} (generated once: {:?})", f.name, secret.text("<random>")).unwrap(),
                        FileContents::Fetched(fetched) => {
                            writeln!(out, "file: {} in {} (fetched once from {}, sha256 {})", f.name, paths.fetched().display(), fetched.url, fetched.sha256)
                                .unwrap();
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_client_renders_as_pinned() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("NOVACULA_BLESS").is_some();
    let mut stale = vec![];
    let pinned_clients = ethereum::clients().map(|d| (d.name, golden(d.name))).chain([
        ("bitcoind", golden_chain("bitcoin", &[("node", "bitcoind", "28.1.0")], &[])),
        ("bsc", golden_chain("bsc", &[("node", "bsc", "1.7.8")], &[])),
        ("java-tron", golden_chain("tron", &[("node", "java-tron", "4.8.2")], &[])),
        ("sui-node", golden_chain("sui", &[("node", "sui-node", "1.78.0")], &[])),
        (
            "ink",
            golden_chain(
                "ink",
                &[("execution", "op-reth", "2.8.2"), ("rollup", "op-node", "1.20.1")],
                &[("rollup", "l1", "eth-l1"), ("rollup", "l1.beacon", "eth-beacon")],
            ),
        ),
    ]);
    for (name, now) in pinned_clients {
        let path = dir.join(format!("{name}.txt"));
        if bless {
            std::fs::write(&path, &now).unwrap();
            continue;
        }
        let pinned = std::fs::read_to_string(&path).unwrap_or_default();
        if pinned != now {
            stale.push(format!("{}:\n{}", path.display(), diff(&pinned, &now)));
        }
    }
    assert!(stale.is_empty(), "rendered commands changed (review against the clients' docs, then NOVACULA_BLESS=1):\n{}", stale.join("\n"));
}

/// The lines only one side has, enough to see what changed.
fn diff(old: &str, new: &str) -> String {
    let gone = old.lines().filter(|l| !new.lines().any(|n| n == *l)).map(|l| format!("- {l}"));
    let added = new.lines().filter(|l| !old.lines().any(|o| o == *l)).map(|l| format!("+ {l}"));
    gone.chain(added).collect::<Vec<_>>().join("\n")
}

#[test]
fn consensus_clients_always_get_a_checkpoint_url_on_public_networks_unless_opted_out() {
    let adapters = Adapters::standard();
    let paths = NodePaths::host("/n");
    for def in ethereum::clients().filter(|d| d.role == "consensus") {
        let cp = def.checkpoint.as_ref().unwrap();
        for (network, url) in ethereum::CHECKPOINT_URLS {
            let mut spec = eth_spec("n");
            spec.network = network.into();
            spec.clients[1] = client("consensus", def.name, version(def.name));
            let args = adapters.render(&spec, "consensus", &paths).unwrap().args;
            assert!(args.contains(&format!("--{}={url}", cp.flag)), "{} on {network}: {args:?}", def.name);
            // The spec's own URL replaces the default, never beside it.
            spec.clients[1].config_overrides.insert(cp.flag.into(), "https://mine.example".into());
            let args = adapters.render(&spec, "consensus", &paths).unwrap().args;
            assert_eq!(args.iter().filter(|a| a.starts_with(&format!("--{}=", cp.flag))).count(), 1);
            assert!(args.contains(&format!("--{}=https://mine.example", cp.flag)));
            if let Some(opt_out) = cp.opt_out {
                spec.clients[1].config_overrides.clear();
                spec.clients[1].config_overrides.insert(opt_out.into(), String::new());
                let args = adapters.render(&spec, "consensus", &paths).unwrap().args;
                assert!(!args.iter().any(|a| a.starts_with(&format!("--{}=", cp.flag))), "{}: opted out", def.name);
                assert!(args.contains(&format!("--{opt_out}")));
            }
        }
    }
    // The executor's configuration can point a network elsewhere.
    let own = Adapters::standard().with_ethereum(ethereum::Ethereum::default().with_checkpoint_url("mainnet", "https://cp.internal"));
    let mut spec = eth_spec("n");
    spec.network = "mainnet".into();
    assert!(own.render(&spec, "consensus", &paths).unwrap().args.contains(&"--checkpoint-sync-url=https://cp.internal".to_string()));
    let caps = own.capabilities();
    let d = caps.chain("ethereum").unwrap().defaults("mainnet").unwrap();
    assert_eq!(d.checkpoint_sync_url.as_deref(), Some("https://cp.internal"), "capabilities say what the executor will use");
}

/// The README's mainnet spec is valid, and the agent renders it to exactly
/// the command lines the README shows.
#[test]
fn the_readme_mainnet_example_renders_as_shown() {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let section = readme.split("A mainnet node that starts as it is").nth(1).expect("the README's mainnet example");
    // Between the fences: [1] the spec (```toml), [3] the command lines.
    let fenced: Vec<&str> = section.split("```").collect();
    let spec: novacula_core::NodeSpec = toml::from_str(fenced[1].trim_start_matches("toml")).unwrap();
    let shown: Vec<Vec<String>> =
        fenced[3].replace("\n     ", " ").lines().map(|l| l.split_whitespace().map(String::from).collect()).filter(|l: &Vec<String>| !l.is_empty()).collect();
    let adapters = Adapters::standard();
    let caps = adapters.capabilities();
    novacula_core::validate::validate_spec(&spec, &caps, None).unwrap();
    let paths = NodePaths::host(format!("/var/lib/novacula/nodes/{}", spec.name));
    for (line, role) in shown.iter().zip(["execution", "consensus"]) {
        let unit = adapters.render(&spec, role, &paths).unwrap();
        assert_eq!(line[0], spec.client(role).unwrap().client, "the README names the program first");
        assert_eq!(line[1..], unit.args[..], "{role}: the README's command line is what the agent renders");
    }
}

/// Every flag the adapter renders that carries the network, a path of the
/// node, the JWT, the engine API or one of the client's ports is one a spec
/// may not override: derived from the rendered commands, so a new flag of
/// that kind cannot be left out of a client's managed list.
#[test]
fn every_flag_that_carries_what_the_adapter_owns_is_managed() {
    let adapters = Adapters::standard();
    let paths = NodePaths::host("/var/lib/novacula/nodes/eth-1");
    for def in ethereum::clients() {
        let support = adapters.capabilities();
        let cs = support.chain("ethereum").unwrap().client(def.role, def.name).unwrap().clone();
        for network in &cs.networks {
            let mut spec = eth_spec("eth-1");
            spec.network = network.clone();
            let (el, cl) = match def.role {
                "execution" => (def.name, if network == "devnet" { "lodestar" } else { "lighthouse" }),
                _ => (if network == "devnet" { "ethereumjs" } else { "geth" }, def.name),
            };
            spec.clients = vec![client("execution", el, version(el)), client("consensus", cl, version(cl))];
            let unit = adapters.render(&spec, def.role, &paths).unwrap();
            let ports: Vec<String> = cs.ports.iter().map(|p| p.default.to_string()).chain(["8551".to_string()]).collect();
            for arg in unit.args.iter().filter_map(|a| a.strip_prefix("--")) {
                let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
                let owned = key == network.as_str()
                    || value == network.as_str()
                    || value.contains("/var/lib/novacula")
                    || value.contains("127.0.0.1:8551")
                    || value.split([',', ':']).any(|v| ports.iter().any(|p| p == v));
                let managed = cs.managed_keys.iter().any(|m| m.eq_ignore_ascii_case(key));
                assert!(!owned || managed, "{} on {network}: --{arg} carries what the adapter owns but {key:?} is not managed", def.name);
            }
        }
    }
}
