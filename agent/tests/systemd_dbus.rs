//! The systemd driver against a fake systemd manager on a private D-Bus
//! connection. The fake implements the Manager methods the driver uses, reads
//! the unit files and drop-ins the driver writes, and runs their `ExecStart`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_agent::driver::ProcessDriver;
use novacula_agent::driver::UnitDef;
use novacula_agent::systemd::SystemdDriver;
use novacula_core::fingerprint::Fingerprint;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zbus::OwnedObjectPath;

#[derive(Default)]
struct Unit {
    exec: Vec<String>,
    env: Vec<(String, String)>,
    workdir: String,
}

struct FakeSystemd {
    unit_dir: PathBuf,
    loaded: Mutex<HashMap<String, Unit>>,
    pids: Mutex<HashMap<String, i32>>,
    /// Exit codes of processes that ended, by unit.
    exits: Arc<Mutex<HashMap<String, i32>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

/// systemd's double-quoted words.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut w = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => w.push('\n'),
                    Some(x) => w.push(x),
                    None => {}
                },
                '"' => break,
                '%' | '$' if chars.peek() == Some(&c) => {
                    chars.next();
                    w.push(c);
                }
                _ => w.push(c),
            }
        }
        out.push(w);
    }
    out
}

fn parse_into(text: &str, u: &mut Unit) {
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("ExecStart=") {
            u.exec = words(v);
        } else if let Some(v) = line.strip_prefix("Environment=") {
            for kv in words(v) {
                let (k, v) = kv.split_once('=').unwrap();
                u.env.retain(|(x, _)| x != k);
                u.env.push((k.into(), v.into()));
            }
        } else if let Some(v) = line.strip_prefix("WorkingDirectory=") {
            // a path setting: unquoted, as real systemd wants it (tests/systemd_real.rs)
            assert!(v.starts_with('/'), "WorkingDirectory= must be an unquoted absolute path: {v}");
            u.workdir = v.replace("%%", "%");
        }
    }
}

impl FakeSystemd {
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.rsplit_once(") ").unwrap().1.starts_with('Z'))
    }

    fn spawn(&self, name: &str) -> zbus::fdo::Result<()> {
        let loaded = self.loaded.lock().unwrap();
        let u = loaded.get(name).ok_or_else(|| zbus::fdo::Error::FileNotFound(format!("Unit {name} not found.")))?;
        if self.pids.lock().unwrap().get(name).is_some_and(|p| Self::alive(*p)) {
            return Ok(()); // already active: StartUnit is a no-op
        }
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(&u.exec[0])
            .args(&u.exec[1..])
            .envs(u.env.iter().cloned())
            .current_dir(&u.workdir)
            .process_group(0)
            .spawn()
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        self.pids.lock().unwrap().insert(name.into(), child.id() as i32);
        self.exits.lock().unwrap().remove(name);
        let (exits, unit) = (self.exits.clone(), name.to_string());
        std::thread::spawn(move || {
            let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
            exits.lock().unwrap().insert(unit, code);
        });
        Ok(())
    }

    fn kill(&self, name: &str) {
        if let Some(pid) = self.pids.lock().unwrap().remove(name) {
            self.exits.lock().unwrap().insert(name.into(), 0); // stopped on request is not a failure
            unsafe { libc::kill(-pid, libc::SIGTERM) };
            for _ in 0..100 {
                if !Self::alive(pid) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn job(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/1").unwrap()
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl FakeSystemd {
    async fn reload(&self) -> zbus::fdo::Result<()> {
        self.calls.lock().unwrap().push("Reload".into());
        let mut loaded = HashMap::new();
        for e in std::fs::read_dir(&self.unit_dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.ends_with(".service") {
                continue;
            }
            let mut u = Unit::default();
            parse_into(&std::fs::read_to_string(e.path()).unwrap(), &mut u);
            if let Ok(d) = std::fs::read_dir(self.unit_dir.join(format!("{name}.d"))) {
                for f in d.flatten() {
                    parse_into(&std::fs::read_to_string(f.path()).unwrap(), &mut u);
                }
            }
            loaded.insert(name, u);
        }
        *self.loaded.lock().unwrap() = loaded;
        Ok(())
    }

    async fn start_unit(&self, name: String, mode: String) -> zbus::fdo::Result<OwnedObjectPath> {
        self.calls.lock().unwrap().push(format!("StartUnit {name} {mode}"));
        self.spawn(&name)?;
        Ok(self.job())
    }

    async fn stop_unit(&self, name: String, mode: String) -> zbus::fdo::Result<OwnedObjectPath> {
        self.calls.lock().unwrap().push(format!("StopUnit {name} {mode}"));
        self.kill(&name);
        Ok(self.job())
    }

    #[allow(clippy::type_complexity)]
    async fn list_units_by_names(
        &self,
        names: Vec<String>,
    ) -> Vec<(String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath)> {
        self.calls.lock().unwrap().push(format!("ListUnitsByNames {}", names.join(",")));
        names
            .into_iter()
            .filter(|n| self.loaded.lock().unwrap().contains_key(n))
            .map(|n| {
                let alive = self.pids.lock().unwrap().get(&n).is_some_and(|p| Self::alive(*p));
                let exit = self.exits.lock().unwrap().get(&n).copied();
                let (active, sub) = match (alive, exit) {
                    (true, _) => ("active", "running"),
                    (false, Some(c)) if c != 0 => ("failed", "failed"),
                    _ => ("inactive", "dead"),
                };
                let path = OwnedObjectPath::try_from("/org/freedesktop/systemd1/unit/x").unwrap();
                (n, String::new(), "loaded".into(), active.into(), sub.into(), String::new(), path.clone(), 0, String::new(), path)
            })
            .collect()
    }

    async fn restart_unit(&self, name: String, mode: String) -> zbus::fdo::Result<OwnedObjectPath> {
        self.calls.lock().unwrap().push(format!("RestartUnit {name} {mode}"));
        self.kill(&name);
        self.spawn(&name)?;
        Ok(self.job())
    }
}

async fn connect(unit_dir: PathBuf, calls: Arc<Mutex<Vec<String>>>) -> (zbus::Connection, zbus::Connection) {
    let (s0, s1) = std::os::unix::net::UnixStream::pair().unwrap();
    let fake = FakeSystemd { unit_dir, loaded: Mutex::default(), pids: Mutex::default(), exits: Arc::default(), calls };
    let server = zbus::connection::Builder::unix_stream(s0).server(zbus::Guid::generate()).p2p().serve_at("/org/freedesktop/systemd1", fake).build();
    let client = zbus::connection::Builder::unix_stream(s1).p2p().build();
    let (server, client) = tokio::join!(server, client);
    (server.unwrap(), client.unwrap())
}

#[tokio::test]
async fn systemd_driver_drives_units_over_dbus() {
    let dir = tempfile::tempdir().unwrap();
    let unit_dir = dir.path().join("units");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (_server, client) = connect(unit_dir.clone(), calls.clone()).await;
    let d = SystemdDriver::with_connection(&client, dir.path().join("data"), unit_dir.clone()).await.unwrap();
    let def = UnitDef {
        command: vec!["/bin/sh".into(), "-c".into(), "exec sleep 600".into()],
        env: Default::default(),
        secret_env: Default::default(),
        files: vec![],
        stop_grace_secs: 30,
    };
    let fp = Fingerprint(7);
    d.write_unit("eth", "execution", &def, fp).await.unwrap();
    assert!(unit_dir.join("novacula-eth.execution.service").exists());
    d.start("eth", "execution", fp, 0).await.unwrap();
    let local = d.observe("eth").await.unwrap();
    let running = local.processes[0].running.unwrap();
    assert_eq!((running.fingerprint, running.generation), (fp, 0));

    d.restart("eth", "execution", fp, 1).await.unwrap();
    assert_eq!(d.observe("eth").await.unwrap().processes[0].running.unwrap().generation, 1);
    d.stop("eth", "execution").await.unwrap();
    assert!(d.observe("eth").await.unwrap().processes[0].running.is_none());
    d.remove_unit("eth", "execution").await.unwrap();
    d.remove_data("eth").await.unwrap();
    assert!(!unit_dir.join("novacula-eth.execution.service").exists());
    assert!(d.observe("eth").await.unwrap().is_empty());

    let calls: Vec<String> = calls.lock().unwrap().iter().filter(|c| !c.starts_with("ListUnits")).cloned().collect();
    assert_eq!(
        calls,
        [
            "Reload",
            "Reload",
            "StartUnit novacula-eth.execution.service replace",
            "Reload",
            "RestartUnit novacula-eth.execution.service replace",
            "StopUnit novacula-eth.execution.service replace",
            "Reload",
        ]
    );
}

#[tokio::test]
async fn unknown_unit_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let unit_dir = dir.path().join("units");
    let (_server, client) = connect(unit_dir.clone(), Arc::default()).await;
    let d = SystemdDriver::with_connection(&client, dir.path().join("data"), unit_dir).await.unwrap();
    let err = d.start("ghost", "main", Fingerprint(1), 0).await.unwrap_err();
    assert!(err.to_string().contains("systemd D-Bus call failed"), "{err}");
}

#[tokio::test]
async fn crashing_unit_reports_systemd_failed_state() {
    let dir = tempfile::tempdir().unwrap();
    let unit_dir = dir.path().join("units");
    let (_server, client) = connect(unit_dir.clone(), Arc::default()).await;
    let d = SystemdDriver::with_connection(&client, dir.path().join("data"), unit_dir).await.unwrap();
    let def = UnitDef {
        command: vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
        env: Default::default(),
        secret_env: Default::default(),
        files: vec![],
        stop_grace_secs: 30,
    };
    d.write_unit("bad", "main", &def, Fingerprint(1)).await.unwrap();
    assert_eq!(d.failed("bad", "main").await, None, "not failed before it ran");
    // Under load, start may catch the shell alive before it exits; either way
    // the failure shows within moments, from systemd's state.
    if let Err(err) = d.start("bad", "main", Fingerprint(1), 0).await {
        assert!(err.to_string().contains("novacula-bad.main.service failed"), "{err}");
    }
    let started = std::time::Instant::now();
    while d.failed("bad", "main").await.is_none() {
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "no failure shown");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(d.failed("bad", "main").await.unwrap().contains("novacula-bad.main.service failed"));
    assert_eq!(d.unit_state("bad", "main").await.unwrap(), ("failed".to_string(), "failed".to_string()));
}
