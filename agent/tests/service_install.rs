//! `novacula-agent install` on the real systemd (booted in namespaces of its
//! own, see `real_systemd`): the service comes online in a real control plane,
//! runs a node through its hardened unit, is restarted by systemd after a
//! `kill -9`, is rolled back by its rollback unit after a broken upgrade, and
//! `uninstall --purge` leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_client::{HttpApi, Method};
use novacula_control_plane::clock::SystemClock;
use novacula_control_plane::{AppState, Config, Store};
use novacula_core::entropy::OsEntropy;
use novacula_executor::adapter::StandIn;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod real_systemd;
use real_systemd::RealSystemd;

const AGENT: &str = env!("CARGO_BIN_EXE_novacula-agent");
const SERVICE: &str = "novacula-agent.service";

#[zbus::proxy(interface = "org.freedesktop.systemd1.Manager", default_service = "org.freedesktop.systemd1", default_path = "/org/freedesktop/systemd1")]
trait Manager {
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;
    fn reload(&self) -> zbus::Result<()>;
}

/// `novacula-agent ARGS` from outside the namespace, on its system bus.
fn agent(sd: &RealSystemd, args: &[&str]) -> Output {
    Command::new(AGENT).args(args).env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={}", sd.bus().display())).env("RUST_LOG", "warn").output().unwrap()
}

fn ok(out: Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    text
}

/// The `status` fields as a map (`main PID`, `restarts`, ...).
fn status(sd: &RealSystemd) -> (Option<i32>, std::collections::BTreeMap<String, String>) {
    let out = agent(sd, &["status", "--unit-dir", sd.unit_dir().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut fields: std::collections::BTreeMap<String, String> =
        text.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Some(state) = fields.remove(SERVICE) {
        fields.insert("state".into(), state);
    }
    (out.status.code(), fields)
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 60 s");
}

async fn control_plane() -> (String, HttpApi) {
    let store = Store::in_memory().unwrap();
    let now = novacula_control_plane::clock::Clock::now(&SystemClock);
    novacula_control_plane::services::orgs::create_org_with_owner(&store, &OsEntropy, now, "acme", "alice", "correct-horse-battery").unwrap();
    let state = AppState::new(store, SystemClock, Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(novacula_control_plane::serve(listener, state, std::future::pending()));
    let anon = HttpApi::new(&url, None).unwrap();
    let login: Value = anon.call(Method::POST, "/api/v1/login", Some(&json!({"username": "alice", "password": "correct-horse-battery"}))).await.unwrap();
    (url, anon.with_token(login["token"].as_str().map(String::from)))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_installs_as_a_hardened_service_and_uninstalls_without_a_trace() {
    let sd = RealSystemd::boot();
    let (conn, _driver) = sd.driver().await; // waits until systemd is on its bus
    let manager = ManagerProxy::new(&conn).await.unwrap();
    let (url, alice) = control_plane().await;
    let created: Value = alice.call(Method::POST, "/api/v1/keys", Some(&json!({"executor": "edge-1"}))).await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();

    let root = sd.dir.path();
    let (binary, config, data) = (root.join("bin/novacula-agent"), root.join("etc/novacula/agent.toml"), root.join("data"));
    let unit_dir = sd.unit_dir();
    let key_file = root.join("key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let install_args: Vec<String> = [
        "install",
        "--control-plane",
        &url,
        "--api-key-file",
        key_file.to_str().unwrap(),
        "--name",
        "edge-1",
        "--binary",
        binary.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--unit-dir",
        unit_dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let install = || agent(&sd, &install_args.iter().map(String::as_str).collect::<Vec<_>>());

    // install: binary, 0600 config with the key, the units, enabled and started
    let out = ok(install());
    assert!(out.contains("installed novacula-agent.service"), "{out}");
    assert_eq!(std::fs::read(&binary).unwrap(), std::fs::read(AGENT).unwrap(), "the running binary is copied");
    assert_eq!(mode(&config), 0o600, "agent.toml holds the key");
    assert!(std::fs::read_to_string(&config).unwrap().contains(&key));
    let unit = std::fs::read_to_string(unit_dir.join(SERVICE)).unwrap();
    assert!(!unit.contains(&key), "the key is never in the unit: {unit}");
    assert!(unit.contains("ProtectSystem=strict") && unit.contains("OnFailure=novacula-agent-rollback.service"), "{unit}");
    assert!(unit_dir.join("novacula-agent-rollback.service").exists());
    assert_eq!(std::fs::read_link(unit_dir.join("multi-user.target.wants").join(SERVICE)).unwrap(), unit_dir.join(SERVICE), "enabled");

    // the executor comes online in the control plane
    until("the installed agent heartbeats", async || {
        let ex: Value = alice.get("/api/v1/executors/edge-1").await.ok()?;
        (ex["online"] == true).then_some(())
    })
    .await;
    let (code, s) = status(&sd);
    assert_eq!((code, s["state"].as_str(), s["restarts"].as_str()), (Some(0), "active (running)", "0"), "{s:?}");
    // `journalctl -u novacula-agent` shows its logs (the namespace's journal)
    let (logged, _) = novacula_agent::journal::read("novacula-agent", Some(&sd.journal_dir()), None, 100).await.unwrap();
    assert!(logged.iter().any(|l| l.text.contains("agent starting") && l.text.contains("edge-1")), "{logged:?}");
    let first_pid = s["main PID"].clone();

    // install again with the user's own setting added: kept, and the service restarts on it
    std::fs::write(&config, format!("{}enable_demo_chain = true\n", std::fs::read_to_string(&config).unwrap())).unwrap();
    ok(install());
    assert!(std::fs::read_to_string(&config).unwrap().contains("enable_demo_chain = true"), "a second install keeps the user's settings");
    let (_, s) = status(&sd);
    assert_ne!(s["main PID"], first_pid, "restarted into the new config");

    // the hardened service still manages node units and its data dir
    let _: Value = alice.call(Method::POST, "/api/v1/nodes", Some(&json!({"executor": "edge-1", "spec": StandIn::spec("demo-node")}))).await.unwrap();
    until("the node runs under the installed agent", async || {
        let n: Value = alice.get("/api/v1/nodes/demo-node").await.ok()?;
        (n["phase"] == "running").then_some(())
    })
    .await;
    let node_unit = unit_dir.join("novacula-demo-node.main.service");
    assert!(node_unit.exists() && data.join("nodes/demo-node").is_dir(), "units and data where the config says");

    // the node's log, from its unit's journal, through the installed agent and the control plane
    let mut lines = Vec::new();
    alice
        .server_events("/api/v1/nodes/demo-node/logs?tail=5", |event, data| {
            if event == "line" {
                lines.push(serde_json::from_str::<Value>(data).unwrap()["text"].as_str().unwrap().to_string());
            }
            true
        })
        .await
        .unwrap();
    assert!(lines.iter().any(|l| l == "stand-in node demo-node client standin 1.0.0 started"), "{lines:?}");

    // kill -9: systemd restarts the agent, which heartbeats again
    let (_, before) = status(&sd);
    manager.kill_unit(SERVICE, "main", 9).await.unwrap();
    let after = until("systemd restarts the killed agent", async || {
        let (_, s) = status(&sd);
        (s["state"] == "active (running)" && s["main PID"] != before["main PID"] && s["restarts"] == "1").then_some(s)
    })
    .await;
    assert_eq!(after["last exit"], "killed by SIGKILL", "{after:?}");
    let seen: Value = alice.get("/api/v1/executors/edge-1").await.unwrap();
    until("the restarted agent heartbeats", async || {
        let ex: Value = alice.get("/api/v1/executors/edge-1").await.ok()?;
        (ex["updatedAt"].as_u64() > seen["updatedAt"].as_u64() && ex["online"] == true).then_some(())
    })
    .await;

    // stop, start, restart: systemd's state follows
    let unit_arg = ["--unit-dir", unit_dir.to_str().unwrap()];
    assert!(ok(agent(&sd, &["stop"])).contains("inactive"));
    let (code, s) = status(&sd);
    assert_eq!((code, s["state"].as_str()), (Some(3), "inactive (dead)"), "{s:?}");
    assert!(ok(agent(&sd, &["start"])).contains("active (running)"));
    let (_, before) = status(&sd);
    ok(agent(&sd, &["restart"]));
    let (code, s) = status(&sd);
    assert!(code == Some(0) && s["main PID"] != before["main PID"], "{s:?}");

    // a manual upgrade: a file that is no agent is refused and changes nothing
    let installed = std::fs::read(&binary).unwrap();
    let impostor = root.join("impostor");
    std::fs::write(&impostor, "#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(&impostor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = agent(&sd, &["upgrade", impostor.to_str().unwrap(), unit_arg[0], unit_arg[1]]);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && text.contains("novacula-agent <version>"), "{text}");
    assert_eq!(std::fs::read(&binary).unwrap(), installed, "the installed binary stays");
    // an agent (here the same release behind a wrapper): swapped in, restarted,
    // confirmed by its heartbeat, which removes the kept binary
    let real = root.join("real-agent");
    std::fs::copy(AGENT, &real).unwrap();
    let wrapper = root.join("next-agent");
    std::fs::write(&wrapper, format!("#!/bin/sh\nexec {} \"$@\"\n", real.display())).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = ok(agent(&sd, &["upgrade", wrapper.to_str().unwrap(), unit_arg[0], unit_arg[1]]));
    assert!(out.contains(&format!("upgraded to {}", env!("CARGO_PKG_VERSION"))), "{out}");
    assert_eq!(std::fs::read(&binary).unwrap(), std::fs::read(&wrapper).unwrap());
    until("the upgraded agent confirms itself with a heartbeat", async || (!binary.with_extension("prev").exists()).then_some(())).await;
    assert_eq!(status(&sd).1["state"], "active (running)");

    // a self-upgrade that keeps crashing: the unit fails and its rollback unit puts the old binary back
    let good = std::fs::read(&binary).unwrap();
    std::fs::hard_link(&binary, binary.with_extension("prev")).unwrap();
    let broken = binary.with_extension("broken");
    std::fs::write(&broken, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&broken, &binary).unwrap();
    let fast = unit_dir.join(format!("{SERVICE}.d"));
    std::fs::create_dir_all(&fast).unwrap();
    std::fs::write(fast.join("fast.conf"), "[Service]\nRestartSec=100ms\n").unwrap(); // five failed starts in a second, not in 25 s
    manager.reload().await.unwrap();
    manager.kill_unit(SERVICE, "main", 9).await.unwrap();
    until("the rollback unit restores the binary and the agent runs again", async || {
        let (_, s) = status(&sd);
        (s["state"] == "active (running)" && std::fs::read(&binary).ok()? == good).then_some(())
    })
    .await;
    assert!(!binary.with_extension("prev").exists(), "the kept binary went back in place");

    // uninstall --purge: the agent, its node, units, binary, config and data are gone
    let out = ok(agent(&sd, &["uninstall", "--purge", "--unit-dir", unit_dir.to_str().unwrap()]));
    assert!(out.contains("removed node unit novacula-demo-node.main.service"), "{out}");
    let left: Vec<PathBuf> = std::fs::read_dir(&unit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("novacula-a") || p.file_name().unwrap().to_string_lossy().starts_with("novacula-demo"))
        .collect();
    assert!(left.is_empty(), "units left behind: {left:?}");
    assert!(!unit_dir.join("multi-user.target.wants").join(SERVICE).exists());
    for gone in [&binary, &config, &data, &node_unit] {
        assert!(!gone.exists(), "{} is left behind", gone.display());
    }
    let (code, s) = status(&sd);
    assert_eq!((code, s.get("state").map(String::as_str)), (Some(4), Some("not installed (novacula-agent install --help)")), "{s:?}");
    let processes =
        std::fs::read_dir("/proc").unwrap().filter_map(|e| std::fs::read_link(e.unwrap().path().join("exe")).ok()).filter(|exe| exe.starts_with(root)).count();
    assert_eq!(processes, 0, "no process runs from the test's tree any more");
    let again = ok(agent(&sd, &["uninstall", "--unit-dir", unit_dir.to_str().unwrap()]));
    assert!(again.contains("uninstalled"), "a second uninstall is harmless: {again}");
}
