//! The `novacula` CLI, run as a binary against a control plane and a real agent:
//! sign in, create a key, connect the agent, deploy, stop and follow events.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

// The end-to-end harness (control plane, real agents) the control plane's tests use too.
#[path = "../../control-plane/tests/live/mod.rs"]
mod live;

use live::{add_user, control_plane, phase_is, start_agent, wait_for_node, OWNER, PASSWORD};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn cli(url: &str, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_novacula"));
    c.env("NOVACULA_SERVER", url).env("NOVACULA_CONFIG", config).env_remove("NOVACULA_TOKEN").env_remove("NOVACULA_PASSWORD");
    c
}

async fn run(url: &str, config: &Path, args: &[&str]) -> Out {
    let out = cli(url, config).args(args).output().await.unwrap();
    Out { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
}

async fn ok(url: &str, config: &Path, args: &[&str]) -> String {
    let o = run(url, config, args).await;
    assert!(o.ok, "novacula {args:?} failed: {}", o.stderr);
    o.stdout
}

async fn json(url: &str, config: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(url, config, &all).await).unwrap()
}

#[tokio::test]
async fn cli_connects_an_agent_deploys_and_stops_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let (url, owner) = control_plane().await;
    let cfg = dir.path().join("session.json");

    // not signed in: a clear error and a non-zero exit
    let o = run(&url, &cfg, &["nodes", "list"]).await;
    assert!(!o.ok && o.stderr.contains("novacula login"), "{}", o.stderr);

    // sign in with the password on stdin; the session is saved, private
    let mut login = cli(&url, &cfg).args(["login", "--username", OWNER]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    use tokio::io::AsyncWriteExt;
    login.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).await.unwrap();
    let out = login.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600);

    // a key for the agent, printed once
    let key = ok(&url, &cfg, &["keys", "create", "--executor", "edge-1", "--label", "edge"]).await.trim().to_string();
    assert!(key.starts_with("nvk_"), "{key}");
    let agent = start_agent(&url, &key, &dir.path().join("agent"), "edge-1");
    let mut listed = String::new();
    for _ in 0..50 {
        listed = ok(&url, &cfg, &["executors", "list"]).await;
        if listed.contains("online") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("STATUS"), "{listed}");
    assert!(lines[1].starts_with("edge-1") && lines[1].contains("agent") && lines[1].contains("online"), "{listed}");
    let keys = json(&url, &cfg, &["keys", "list"]).await;
    assert!(keys[0]["lastUsedAt"].is_u64(), "the agent's key shows its last use: {keys}");

    // deploy from a TOML spec file
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "name = \"cli-node\"\nchain = \"demo\"\nnetwork = \"local\"\n\n[[clients]]\nrole = \"main\"\nclient = \"standin\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    let deployed = json(&url, &cfg, &["nodes", "deploy", "-f", spec.to_str().unwrap(), "--executor", "edge-1"]).await;
    assert_eq!(deployed["revision"], 1);
    wait_for_node(&owner, "cli-node", phase_is("running")).await;
    let table = ok(&url, &cfg, &["nodes", "list"]).await;
    assert!(table.lines().nth(1).unwrap().split_whitespace().collect::<Vec<_>>()[..4] == ["cli-node", "edge-1", "demo/local", "running"], "{table}");
    // the detail shows each process's sync metrics and ports, and the disk under the node
    let mut detail = String::new();
    for _ in 0..50 {
        detail = ok(&url, &cfg, &["nodes", "get", "cli-node"]).await;
        if detail.contains("disk: ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(detail.contains("PROCESS") && detail.contains("HEAD") && detail.contains("PEERS") && detail.contains("PORTS"), "{detail}");
    assert!(detail.contains("disk: ") && detail.contains(" used by the node, "), "{detail}");

    // a spec built from flags on the executor's defaults; --dry-run prints it and deploys nothing
    let guided = [
        "nodes",
        "deploy",
        "--executor",
        "edge-1",
        "--chain",
        "bitcoin",
        "--network",
        "mainnet",
        "--node-type",
        "archive",
        "--client",
        "node=bitcoind@28.1.0",
        "--set",
        "node.dbcache=4096",
        "--dry-run",
    ];
    let drafted = json(&url, &cfg, &guided).await;
    assert_eq!(drafted["name"], "bitcoin-mainnet");
    assert_eq!(
        (drafted["clients"][0]["configOverrides"]["dbcache"].as_str(), drafted["clients"][0]["resources"]["cpuMillis"].as_u64()),
        (Some("4096"), Some(2000))
    );
    assert_eq!(drafted["storage"][0]["sizeGib"], 990, "an archive node gets the network's archive disk: {drafted}");
    assert!(ok(&url, &cfg, &guided).await.contains("chain = \"bitcoin\""), "as a spec file by default");
    assert!(!run(&url, &cfg, &["nodes", "get", "bitcoin-mainnet"]).await.ok, "a dry run deploys nothing");
    let too_old = [
        "nodes",
        "deploy",
        "-e",
        "edge-1",
        "--chain",
        "ethereum",
        "--network",
        "hoodi",
        "--client",
        "execution=reth@1.9.0",
        "--client",
        "consensus=lighthouse@8.0.0",
    ];
    let o = run(&url, &cfg, &too_old).await;
    assert!(!o.ok && o.stderr.contains("version_below_network_minimum: clients[0].version: hoodi needs reth >= 2.0.0"), "{}", o.stderr);
    let mut not_allowed = guided.to_vec();
    not_allowed[13] = "node.blocknotify=sh";
    let o = run(&url, &cfg, &not_allowed).await;
    assert!(!o.ok && o.stderr.contains("override_not_allowed"), "{}", o.stderr);
    let o = run(&url, &cfg, &["nodes", "deploy", "-e", "edge-1", "--chain", "bitcoin", "--network", "mainnet", "--client", "bitcoind"]).await;
    assert!(!o.ok && o.stderr.contains("expected ROLE=CLIENT@VERSION"), "{}", o.stderr);

    // stop: revision 2, then observed stopped
    let stopped = json(&url, &cfg, &["nodes", "stop", "cli-node"]).await;
    assert_eq!((stopped["revision"].as_u64(), stopped["spec"]["desiredState"].as_str()), (Some(2), Some("stopped")));
    wait_for_node(&owner, "cli-node", phase_is("stopped")).await;
    assert!(ok(&url, &cfg, &["nodes", "get", "cli-node"]).await.contains("stopped"));

    // events, as JSON lines
    let events = ok(&url, &cfg, &["events", "--node", "cli-node", "-o", "json"]).await;
    let kinds: Vec<String> = events.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].as_str().unwrap().to_string()).collect();
    assert!(kinds.contains(&"node.lifecycle.requested".to_string()) && kinds.contains(&"node.lifecycle.transition".to_string()), "{kinds:?}");

    // errors: unknown node, bad spec file, delete without --yes
    let o = run(&url, &cfg, &["nodes", "stop", "nope"]).await;
    assert!(!o.ok && o.stderr.starts_with("error: control plane answered 404"), "{}", o.stderr);
    std::fs::write(&spec, "name = \"x\"\nchain = \"demo\"\nbogus = 1\n").unwrap();
    let o = run(&url, &cfg, &["nodes", "deploy", "-f", spec.to_str().unwrap(), "--executor", "edge-1"]).await;
    assert!(!o.ok && o.stderr.contains("bogus"), "{}", o.stderr);
    let o = run(&url, &cfg, &["nodes", "delete", "cli-node"]).await;
    assert!(!o.ok && o.stderr.contains("--yes"), "{}", o.stderr);
    assert_eq!(json(&url, &cfg, &["nodes", "get", "cli-node"]).await["deleted"], false);

    // keys: a lifetime, rotation (the new key printed once, the old revoked), deletion once revoked
    let spare = ok(&url, &cfg, &["keys", "create", "--executor", "spare", "--expires-in-days", "30"]).await.trim().to_string();
    let spare_id = spare.split('_').nth(1).unwrap().to_string();
    let rotated = ok(&url, &cfg, &["keys", "rotate", &spare_id]).await.trim().to_string();
    assert!(rotated.starts_with("nvk_") && rotated != spare, "{rotated}");
    let keys = ok(&url, &cfg, &["keys", "list"]).await;
    let row = |id: &str| keys.lines().find(|l| l.starts_with(id)).unwrap_or_default().to_string();
    assert!(keys.lines().next().unwrap().contains("EXPIRES"), "{keys}");
    assert!(row(&spare_id).contains("revoked"), "{keys}");
    let o = run(&url, &cfg, &["keys", "delete", rotated.split('_').nth(1).unwrap()]).await;
    assert!(!o.ok && o.stderr.contains("revoke it first"), "{}", o.stderr);
    ok(&url, &cfg, &["keys", "delete", &spare_id]).await;
    assert!(!ok(&url, &cfg, &["keys", "list"]).await.contains(&spare_id));

    // roles from the one table: an operator may start but not deploy, a member only read
    let o = cli(&url, &cfg).args(["users", "create", "olga", "--role", "operator", "--password", PASSWORD]).output().await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&url, &cfg, &["users", "create", "x", "--role", "viewer", "--password", PASSWORD]).await;
    assert!(!o.ok && o.stderr.contains("operator"), "an unknown role names the known ones: {}", o.stderr);
    add_user(&owner, "vera", "member").await;
    let audit = ok(&url, &cfg, &["audit", "--action", "user.created"]).await;
    let row = audit.lines().find(|l| l.contains("user:olga")).unwrap_or_else(|| panic!("{audit}"));
    assert!(row.contains("user.created") && row.contains(" cli ") && row.contains("role=operator"), "{audit}");
    let users = ok(&url, &cfg, &["users", "list"]).await;
    assert!(users.lines().any(|l| l.split_whitespace().take(2).eq(["olga", "operator"])), "{users}");
    // an invitation: the token printed once; accepted from another shell with a new account
    let token = ok(&url, &cfg, &["invitations", "create", "ivy@example.com", "--role", "member"]).await.trim().to_string();
    assert!(token.starts_with("nvi_"), "{token}");
    assert!(ok(&url, &cfg, &["invitations", "list"]).await.lines().any(|l| l.contains("ivy@example.com") && l.contains("pending")));
    let icfg = dir.path().join("ivy.json");
    let o = run(&url, &icfg, &["invitations", "accept", &token, "--username", "ivy", "--password", PASSWORD]).await;
    assert!(o.ok && o.stderr.contains("ivy joined organization acme as member"), "{}", o.stderr);
    assert!(ok(&url, &icfg, &["whoami"]).await.starts_with("ivy in organization acme as member"));
    let ocfg = dir.path().join("operator.json");
    let o = cli(&url, &ocfg).args(["login", "-u", "olga", "--password", PASSWORD]).output().await.unwrap();
    assert!(o.status.success());
    let me = ok(&url, &ocfg, &["whoami"]).await;
    assert!(me.contains("olga in organization") && me.contains("may: read, operateNodes\n"), "{me}");
    ok(&url, &ocfg, &["nodes", "start", "cli-node"]).await;
    let o = run(&url, &ocfg, &["nodes", "delete", "cli-node", "--yes"]).await;
    assert!(!o.ok && o.stderr.contains("403") && o.stderr.contains("needs manageNodes"), "{}", o.stderr);
    let vcfg = dir.path().join("member.json");
    let o = cli(&url, &vcfg).args(["login", "-u", "vera", "--password", PASSWORD]).output().await.unwrap();
    assert!(o.status.success());
    assert!(ok(&url, &vcfg, &["nodes", "list"]).await.contains("cli-node"));
    let o = run(&url, &vcfg, &["nodes", "start", "cli-node"]).await;
    assert!(!o.ok && o.stderr.contains("403"), "{}", o.stderr);
    agent.kill().await;
}

#[tokio::test]
async fn events_follow_prints_new_events_as_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let (url, owner) = control_plane().await;
    let token = owner.token().unwrap().to_string();
    let mut follow = cli(&url, &dir.path().join("none.json"))
        .args(["events", "--follow", "-o", "json"])
        .env("NOVACULA_TOKEN", &token)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // nothing has happened yet; then a key is created
    let _ = live::key_for(&owner, "edge-9").await;
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.expect("an event within 10 s").unwrap().unwrap();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!((event["kind"].as_str(), event["executor"].as_str(), event["seq"].as_u64()), (Some("apikey.created"), Some("edge-9"), Some(1)));
    follow.kill().await.unwrap();
}

#[tokio::test]
async fn a_platform_administrator_sees_every_organization_and_impersonates_for_support() {
    let dir = tempfile::tempdir().unwrap();
    let config = novacula_control_plane::Config { platform_admins: [OWNER.to_string()].into(), ..Default::default() };
    let seed = |store: &novacula_control_plane::Store| {
        let now = novacula_control_plane::clock::Clock::now(&novacula_control_plane::clock::SystemClock);
        novacula_control_plane::services::orgs::create_org_with_owner(store, &novacula_core::entropy::OsEntropy, now, "globex", "bob", PASSWORD).unwrap();
    };
    let (url, _) = live::control_plane_with(config, seed).await;
    let cfg = dir.path().join("session.json");
    ok(&url, &cfg, &["login", "--username", OWNER, "--password", PASSWORD]).await;
    assert!(ok(&url, &cfg, &["whoami"]).await.contains("platform administrator"));
    let orgs = ok(&url, &cfg, &["platform", "orgs"]).await;
    assert!(orgs.lines().any(|l| l.starts_with("globex") && l.contains("bob")), "{orgs}");

    let token = ok(&url, &cfg, &["platform", "impersonate", "bob", "--reason", "ticket 7"]).await.trim().to_string();
    assert!(token.starts_with("nvs_"), "{token}");
    let as_bob = ok(&url, &cfg, &["whoami", "--token", &token]).await;
    assert!(as_bob.starts_with("bob in organization globex") && as_bob.contains("impersonated by"), "{as_bob}");
    ok(&url, &cfg, &["platform", "end", &token]).await;
    assert!(!run(&url, &cfg, &["whoami", "--token", &token]).await.ok);
    // The administrator's own session is untouched; the platform's log has it.
    let audit = ok(&url, &cfg, &["platform", "audit"]).await;
    assert!(audit.lines().any(|l| l.contains("impersonation.started") && l.contains("user:bob")), "{audit}");
    // The organization's logo from a file: a PNG is taken, an SVG refused before it is sent.
    let png = dir.path().join("logo.png");
    std::fs::write(&png, include_bytes!("../../control-plane/tests/data/logo.png")).unwrap();
    assert!(ok(&url, &cfg, &["org", "logo", png.to_str().unwrap()]).await.contains("with a logo"));
    let svg = dir.path().join("logo.svg");
    std::fs::write(&svg, "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
    let o = run(&url, &cfg, &["org", "logo", svg.to_str().unwrap()]).await;
    assert!(!o.ok && o.stderr.contains("PNG or a JPEG"), "{}", o.stderr);
    assert!(!ok(&url, &cfg, &["org", "logo", "--remove"]).await.contains("with a logo"));
    // A slug beside the id: commands name the organization by either.
    assert!(ok(&url, &cfg, &["org", "rename", "Acme", "--slug", "acme-x"]).await.contains("slug acme-x"));
    assert!(ok(&url, &cfg, &["--org", "acme-x", "org", "show"]).await.starts_with("acme (Acme), slug acme-x"));
    let o = run(&url, &cfg, &["platform", "deactivate", "globex"]).await;
    assert!(!o.ok && o.stderr.contains("--yes"), "{}", o.stderr);
    assert!(ok(&url, &cfg, &["platform", "deactivate", "globex", "--yes"]).await.contains("deactivated"));
}

#[tokio::test]
async fn serve_refuses_a_platform_administrator_without_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.redb");
    let out = Command::new(env!("CARGO_BIN_EXE_novacula"))
        .args(["serve", "--db", db.to_str().unwrap(), "--listen", "127.0.0.1:0", "--platform-admin", "ghost"])
        .env("NOVACULA_BOOTSTRAP_PASSWORD", PASSWORD)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("\"ghost\" has no account"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_logs_replays_filters_and_follows_a_process_log_from_its_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (url, owner) = control_plane().await;
    let token = owner.token().unwrap().to_string();
    let agent = live::agent_with_demo_node(&url, &owner, &dir.path().join("agent"), "edge-l", "logged").await;
    let cfg = dir.path().join("none.json");
    let logs = |args: &[&str]| {
        let mut c = cli(&url, &cfg);
        c.args(["nodes", "logs"]).args(args).env("NOVACULA_TOKEN", &token);
        c
    };
    let started = "stand-in node logged client standin 1.0.0 started";

    // the last lines, from the agent's log file of that process
    let out = logs(&["logged", "--tail", "5"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(), [started]);
    // a level filter (the stand-in's line is info), and the process named
    let out = logs(&["logged", "--level", "warn", "--process", "main"]).output().await.unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    // what does not exist is said so
    let out = logs(&["logged", "--process", "nope"]).output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("has no process \"nope\"; it has main"), "{err}");
    let out = logs(&["nope"]).output().await.unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("404"));
    let out = logs(&["logged", "--tail", "5000"]).output().await.unwrap();
    assert!(!out.status.success(), "at most 1000 lines are replayed");

    // -f: the replay, then the line of the restarted process as it is written
    let mut follow = logs(&["logged", "-f", "--tail", "1"]).stdout(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await.expect("the replay within 15 s").unwrap().unwrap();
    assert_eq!(first, started);
    let _: Value = owner.call(novacula_client::Method::POST, "/api/v1/nodes/logged/lifecycle", Some(&serde_json::json!({"action": "restart"}))).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await.expect("the new line within 15 s").unwrap().unwrap();
    assert_eq!(next, started, "the restarted client's line, streamed");
    follow.kill().await.unwrap();
    agent.kill().await;
}
