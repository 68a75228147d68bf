//! The systemd driver against the real systemd, booted in namespaces of its
//! own (see `real_systemd`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_agent::backend::Processes;
use novacula_agent::driver::ProcessDriver;
use novacula_agent::driver::UnitDef;
use novacula_agent::systemd::Account;
use novacula_core::fingerprint::Fingerprint;
use novacula_core::logs::LogLevel;
use novacula_core::{DesiredNode, DesiredState, NodeSpec, ObservedNodeState, ObservedNodeStatus, Revision};
use novacula_executor::adapter::{Adapters, FileContents, RenderedFile, StandIn};
use novacula_executor::backend::Backend;
use std::time::Duration;

mod real_systemd;
use real_systemd::RealSystemd;

fn shell(script: &str) -> UnitDef {
    UnitDef {
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: Default::default(),
        secret_env: Default::default(),
        files: vec![],
        stop_grace_secs: 30,
    }
}

#[tokio::test]
async fn systemd_driver_drives_real_systemd() {
    let sd = RealSystemd::boot();
    let (_conn, d) = sd.driver().await;

    // write, start: systemd runs the unit with the markers the driver reads back
    let fp = Fingerprint(7);
    d.write_unit("eth", "execution", &shell("exec sleep 600"), fp).await.unwrap();
    assert!(sd.unit_dir().join("novacula-eth.execution.service").exists());
    d.start("eth", "execution", fp, 0).await.unwrap();
    assert_eq!(d.unit_state("eth", "execution").await.unwrap(), ("active".to_string(), "running".to_string()));
    let running = d.observe("eth").await.unwrap().processes[0].running.unwrap();
    assert_eq!((running.fingerprint, running.generation), (fp, 0));

    // restart under a new generation: the new process carries it (env is fixed at exec)
    d.restart("eth", "execution", fp, 1).await.unwrap();
    let restarted = d.observe("eth").await.unwrap().processes[0].running.unwrap();
    assert_eq!(restarted.generation, 1);

    // a new spec: rewrite the unit, restart, the new fingerprint runs
    let fp2 = Fingerprint(8);
    d.write_unit("eth", "execution", &shell("exec sleep 601"), fp2).await.unwrap();
    d.restart("eth", "execution", fp2, 1).await.unwrap();
    assert_eq!(d.observe("eth").await.unwrap().processes[0].running.unwrap().fingerprint, fp2);

    // stop, remove: nothing left, in systemd or on disk
    d.stop("eth", "execution").await.unwrap();
    assert!(d.observe("eth").await.unwrap().processes[0].running.is_none());
    assert_eq!(d.unit_state("eth", "execution").await.unwrap().0, "inactive");
    d.remove_unit("eth", "execution").await.unwrap();
    d.remove_data("eth").await.unwrap();
    assert!(!sd.unit_dir().join("novacula-eth.execution.service").exists());
    assert!(d.observe("eth").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crashing_unit_is_an_error_not_a_timeout() {
    let sd = RealSystemd::boot();
    let (_conn, d) = sd.driver().await;

    // A client that cannot even start never shows its markers: start fails, at once.
    let missing =
        UnitDef { command: vec!["/nonexistent/geth".into()], env: Default::default(), secret_env: Default::default(), files: vec![], stop_grace_secs: 30 };
    d.write_unit("gone", "main", &missing, Fingerprint(1)).await.unwrap();
    assert_eq!(d.failed("gone", "main").await, None, "not failed before it ran");
    let started = std::time::Instant::now();
    let err = d.start("gone", "main", Fingerprint(1), 0).await.unwrap_err();
    assert!(err.to_string().contains("novacula-gone.main.service"), "{err}");
    assert!(!err.to_string().contains("within 10 s"), "the driver waited out its timeout: {err}");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());

    // A client that starts and then crashes: start may catch it alive or not,
    // but either way systemd's state shows the failure within seconds.
    d.write_unit("bad", "main", &shell("exit 3"), Fingerprint(1)).await.unwrap();
    let started = std::time::Instant::now();
    if let Err(err) = d.start("bad", "main", Fingerprint(1), 0).await {
        assert!(err.to_string().contains("novacula-bad.main.service") && !err.to_string().contains("within 10 s"), "{err}");
    }
    while d.failed("bad", "main").await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(8), "no failure shown after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // stopping gives up the restarts
    d.stop("bad", "main").await.unwrap();
    assert_eq!(d.failed("bad", "main").await, None);
}

fn stand_in(desired_state: DesiredState, restart_generation: u64) -> NodeSpec {
    NodeSpec { desired_state, restart_generation, ..StandIn::spec("demo") }
}

/// Reconcile until nothing is left to do, then observe.
async fn converge<B: Backend>(b: &B, d: &DesiredNode) -> ObservedNodeState {
    for _ in 0..5 {
        if b.reconcile(d).await == 0 {
            return b.observe(d).await.unwrap();
        }
    }
    panic!("no convergence for revision {:?}: {:?}", d.revision, b.observe(d).await);
}

#[tokio::test]
async fn agent_backend_runs_a_node_lifecycle_on_real_systemd() {
    let sd = RealSystemd::boot();
    let (_conn, driver) = sd.driver().await;
    let backend = Processes::new(driver, Adapters::standard().with_demo_chain());
    let unit = sd.unit_dir().join("novacula-demo.main.service");
    let desired = |rev: u64, spec: NodeSpec, deleted: bool| DesiredNode::new(Revision(rev), spec, deleted);

    let seen = converge(&backend, &desired(1, stand_in(DesiredState::Running, 0), false)).await;
    assert_eq!((seen.revision, seen.processes[0].status), (Revision(1), ObservedNodeStatus::Running), "{seen:?}");
    assert!(unit.exists());
    let first = backend.driver().observe("demo").await.unwrap().processes[0].running.unwrap();

    let seen = converge(&backend, &desired(2, stand_in(DesiredState::Running, 1), false)).await;
    assert_eq!((seen.revision, seen.processes[0].status), (Revision(2), ObservedNodeStatus::Running));
    let restarted = backend.driver().observe("demo").await.unwrap().processes[0].running.unwrap();
    assert_eq!((restarted.fingerprint, restarted.generation), (first.fingerprint, 1), "restart applied once");

    let seen = converge(&backend, &desired(3, stand_in(DesiredState::Stopped, 1), false)).await;
    assert_eq!((seen.revision, seen.processes[0].status), (Revision(3), ObservedNodeStatus::Stopped));
    assert_eq!(backend.driver().unit_state("demo", "main").await.unwrap().0, "inactive");

    let seen = converge(&backend, &desired(4, stand_in(DesiredState::Stopped, 1), true)).await;
    assert!(seen.removed, "{seen:?}");
    assert!(!unit.exists(), "the unit file is gone");
    assert!(!sd.dir.path().join("data/nodes/demo").exists(), "the data dir is gone");
}

#[tokio::test]
async fn run_as_runs_clients_unprivileged_in_directories_they_own() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let sd = RealSystemd::boot();
    // the account must reach the node's directory: temp dirs are 0700
    std::fs::set_permissions(sd.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = Account::lookup("nobody").unwrap();
    let (_conn, d) = sd.driver().await;
    let d = d.run_as(nobody.clone());
    let mut def = shell("cat config/client.toml > data/main/config-seen && echo \"$L1\" > data/main/l1-seen && id -u > data/main/whoami && exec sleep 600");
    // A secret of the host (an L1 URL with its key) reaches the process, not the unit file.
    def.secret_env = [("L1".to_string(), "https://user:p\"w\\d@l1.example/key".to_string())].into();
    def.files = vec![
        RenderedFile::text("client.toml", "x = 1\n"),
        RenderedFile { name: "jwt.hex".into(), contents: FileContents::Secret(novacula_executor::adapter::Secret::hex(32)) },
    ];
    d.write_unit("svc", "main", &def, Fingerprint(3)).await.unwrap();
    d.start("svc", "main", Fingerprint(3), 0).await.unwrap();

    let node = sd.dir.path().join("data/nodes/svc");
    // start returns once the shell runs; it writes the file right after
    let mut whoami = String::new();
    for _ in 0..100 {
        whoami = std::fs::read_to_string(node.join("data/main/whoami")).unwrap_or_default();
        if whoami.ends_with('\n') {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(whoami.trim(), nobody.uid.to_string(), "the client runs as nobody and can write its data dir");
    assert_eq!(std::fs::read_to_string(node.join("data/main/config-seen")).unwrap(), "x = 1\n", "and read its config through the group");
    let meta = std::fs::metadata(node.join("data/main")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (nobody.uid, nobody.gid), "data is the client's");
    // Config and secrets stay root's, readable by the client's group, writable by nobody else.
    for (path, mode) in [("config", 0o750), ("config/client.toml", 0o640), ("config/jwt.hex", 0o640)] {
        let meta = std::fs::metadata(node.join(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.permissions().mode() & 0o777), (0, nobody.gid, mode), "{path}");
    }
    assert_eq!(std::fs::metadata(node.join("units")).unwrap().uid(), 0, "the agent's bookkeeping stays root's");
    let unit = std::fs::read_to_string(sd.unit_dir().join("novacula-svc.main.service")).unwrap();
    assert!(unit.contains("\nUser=nobody\n"), "{unit}");
    assert_eq!(std::fs::read_to_string(node.join("data/main/l1-seen")).unwrap(), "https://user:p\"w\\d@l1.example/key\n", "systemd read the secret file");
    assert!(!unit.contains("l1.example"), "{unit}");
    let env_file = std::fs::metadata(node.join("units/main.env")).unwrap();
    assert_eq!((env_file.uid(), env_file.permissions().mode() & 0o777), (0, 0o600), "the secrets file is root's alone");
    d.stop("svc", "main").await.unwrap();

    // A data dir already theirs is not walked again on each config write (it
    // may hold a whole chain); one that is not yet theirs is, in full.
    let marker = node.join("data/main/root-file");
    std::fs::write(&marker, "x").unwrap();
    d.write_unit("svc", "main", &def, Fingerprint(4)).await.unwrap();
    assert_eq!(std::fs::metadata(&marker).unwrap().uid(), 0, "not walked");
    std::os::unix::fs::chown(node.join("data/main"), Some(0), Some(0)).unwrap();
    d.write_unit("svc", "main", &def, Fingerprint(5)).await.unwrap();
    assert_eq!(std::fs::metadata(&marker).unwrap().uid(), nobody.uid, "walked once the dir was not theirs");
}

#[tokio::test]
async fn client_user_planting_symlinks_cannot_redirect_root_writes_or_chowns() {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    let sd = RealSystemd::boot();
    std::fs::set_permissions(sd.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = Account::lookup("nobody").unwrap();
    let (_conn, d) = sd.driver().await;
    let d = d.run_as(nobody.clone());
    let mut def = shell("exec sleep 600");
    def.files = vec![RenderedFile::text("client.toml", "x = 1\n")];
    d.write_unit("svc", "main", &def, Fingerprint(1)).await.unwrap();

    // Root's files outside the node, which the client must never get.
    let outside = sd.dir.path().join("outside");
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::write(outside.join("dir/inner"), "precious").unwrap();

    // The client owns data/main: it plants links there, to a file, to a
    // directory, and one level down.
    let data = sd.dir.path().join("data/nodes/svc/data/main");
    symlink(&victim, data.join("evil-file")).unwrap();
    symlink(outside.join("dir"), data.join("evil-dir")).unwrap();
    std::fs::create_dir(data.join("sub")).unwrap();
    symlink(&victim, data.join("sub/evil-deeper")).unwrap();
    // It cannot write in config/ (root's, 0750); a link left there (say by an
    // older agent that handed config over) must be replaced, not followed.
    let config = sd.dir.path().join("data/nodes/svc/config");
    assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o022, 0, "config is not writable by the client");
    std::fs::remove_file(config.join("client.toml")).unwrap();
    symlink(&victim, config.join("client.toml")).unwrap();
    // A link at the name an older agent used for its temporary file.
    symlink(&victim, config.join("client.tmp")).unwrap();

    // Make the agent walk data/main again (as after a run_as change) and rewrite config.
    std::os::unix::fs::chown(&data, Some(0), Some(0)).unwrap();
    def.files[0] = RenderedFile::text("client.toml", "x = 2\n");
    d.write_unit("svc", "main", &def, Fingerprint(2)).await.unwrap();

    for p in [victim.clone(), outside.join("dir"), outside.join("dir/inner")] {
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{} was given away through a link", p.display());
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "a root write went through a link");
    assert_eq!(std::fs::read_to_string(outside.join("dir/inner")).unwrap(), "precious");
    // The links themselves were handed over (lchown), and the config file is a real file again.
    assert_eq!(std::fs::symlink_metadata(data.join("sub/evil-deeper")).unwrap().uid(), nobody.uid);
    let client_toml = std::fs::symlink_metadata(config.join("client.toml")).unwrap();
    assert!(client_toml.file_type().is_file(), "the planted link was replaced");
    assert_eq!(std::fs::read_to_string(config.join("client.toml")).unwrap(), "x = 2\n");
}

#[path = "../../control-plane/tests/realclients/mod.rs"]
mod realclients;

/// The real Ethereum clients as real systemd units: a devnet node converges,
/// both heads advance, and deleting it removes units and data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_ethereum_devnet_runs_as_systemd_units() {
    if !realclients::installed() {
        return;
    }
    let sd = RealSystemd::boot();
    let (_conn, driver) = sd.driver().await;
    realclients::install(&sd.dir.path().join("data"));
    let backend = Processes::new(driver, Adapters::standard());
    let mut spec = realclients::devnet_spec("devnet");
    // Ports of its own, as the control plane would allocate them.
    let ports = |list: &[(&str, u16)]| list.iter().map(|(n, p)| (n.to_string(), *p)).collect();
    spec.clients[0].ports = ports(&[("p2p", 30420), ("http", 38545), ("engine", 38551)]);
    spec.clients[1].ports = ports(&[("p2p", 39010), ("http", 39596), ("metrics", 38008)]);
    let running = DesiredNode::new(Revision(1), spec.clone(), false);
    converge(&backend, &running).await;
    assert_eq!(backend.driver().unit_state("devnet", "execution").await.unwrap().0, "active");
    let unit_text = |u: &str| std::fs::read_to_string(sd.unit_dir().join(format!("novacula-devnet.{u}.service"))).unwrap();
    assert!(unit_text("execution").contains("\nTimeoutStopSec=300\n"), "an execution client gets minutes to flush");
    assert!(unit_text("consensus").contains("\nTimeoutStopSec=120\n"));
    let head = |s: &ObservedNodeState, p: &str| s.processes.iter().find(|x| x.name == p).and_then(|x| x.sync).map_or(0, |m| m.current_block);
    let mut first = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let seen = backend.observe(&running).await.unwrap();
        let all_running = seen.processes.iter().all(|p| p.status == ObservedNodeStatus::Running);
        match first {
            None if all_running && head(&seen, "execution") > 0 && head(&seen, "consensus") > 0 => first = Some(head(&seen, "execution")),
            Some(f) if all_running && head(&seen, "execution") > f => break,
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "the devnet under systemd did not advance: {seen:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(realclients::el_block(38545).await.is_some_and(|b| b > 1), "the execution client answers on its allocated port");
    let seen = converge(&backend, &DesiredNode::new(Revision(2), spec, true)).await;
    assert!(seen.removed, "{seen:?}");
    assert!(!sd.unit_dir().join("novacula-devnet.execution.service").exists());
    assert!(!sd.dir.path().join("data/nodes/devnet").exists(), "the chain data is gone");
}

#[tokio::test]
async fn a_units_log_is_read_from_the_journal_tail_then_follow() {
    let sd = RealSystemd::boot();
    let (_conn, d) = sd.driver().await;
    let d = d.journal_dir(sd.journal_dir());
    let fp = Fingerprint(9);
    let script = "echo 'INFO starting up'; echo 'WARN low peer count' >&2; echo 'ERROR [x] boom'; exec sleep 600";
    d.write_unit("logs", "execution", &shell(script), fp).await.unwrap();
    d.start("logs", "execution", fp, 0).await.unwrap();
    let mut got = (vec![], String::new());
    for _ in 0..100 {
        got = d.logs("logs", "execution", None, 2).await.unwrap();
        if got.0.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (lines, cursor) = got;
    let seen: Vec<(&str, LogLevel)> = lines.iter().map(|l| (l.text.as_str(), l.level)).collect();
    assert_eq!(seen, [("WARN low peer count", LogLevel::Warn), ("ERROR [x] boom", LogLevel::Error)], "the last 2, stderr included, levels read");
    assert!(cursor.starts_with("c:"), "{cursor}");
    let (none, same) = d.logs("logs", "execution", Some(&cursor), 2).await.unwrap();
    assert!(none.is_empty() && same == cursor, "nothing new");

    // a restart writes again: only the new lines come after the cursor
    d.restart("logs", "execution", fp, 1).await.unwrap();
    let mut next = vec![];
    for _ in 0..100 {
        next.extend(d.logs("logs", "execution", Some(&cursor), 2).await.unwrap().0);
        if next.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let texts: Vec<&str> =
        next.iter().map(|l| l.text.as_str()).filter(|t| !t.starts_with("Stopp") && !t.starts_with("Start") && !t.contains(".service")).collect();
    assert_eq!(texts, ["INFO starting up", "WARN low peer count", "ERROR [x] boom"], "{next:?}");
    let err = d.logs("logs", "nope", None, 5).await.map(|(l, _)| l.len());
    assert_eq!(err.ok(), Some(0), "a unit without entries has no lines");
    d.stop("logs", "execution").await.unwrap();
}
