//! The machine's real systemd for tests: `/usr/lib/systemd/systemd` booted as PID 1 of its own PID and mount
//! namespaces (`unshare`, as root), with no units but a D-Bus system bus
//! (`dbus-daemon`, socket-activated as on a real host) and the few targets a
//! service's default dependencies name. Its `/run` is a temporary directory,
//! so the driver writes units to `<tmp>/run/systemd/system` and reaches the
//! manager on the system bus at `<tmp>/run/dbus/system_bus_socket`, the way
//! `SystemdDriver::system` does on a host. Killing `unshare` takes the whole
//! namespace down.

use novacula_agent::systemd::SystemdDriver;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SYSTEMD: &str = "/usr/lib/systemd/systemd";

/// Run inside the namespaces: our `/run`, no host units or generators, then systemd.
const BOOT: &str = r#"set -e
mount --bind "$1/run" /run
# journald keeps this namespace's journal in its /run (volatile), never the host's /var/log/journal.
if [ -f /etc/systemd/journald.conf ]; then mount --bind "$1/journald.conf" /etc/systemd/journald.conf; fi
for d in /usr/lib/systemd/system /etc/systemd/system /usr/lib/systemd/system-generators /etc/systemd/system-generators /usr/lib/systemd/system-preset; do
  if [ -d "$d" ]; then mount --bind "$1/empty" "$d"; fi
done
exec env -i container=novacula-test "$2" --system --unit=novacula-test.target --log-target=null
"#;

pub struct RealSystemd {
    pub dir: tempfile::TempDir,
    unshare: Child,
}

impl RealSystemd {
    pub fn boot() -> RealSystemd {
        assert!(Path::new(SYSTEMD).exists(), "{SYSTEMD} is missing: install Debian's systemd package");
        let dir = tempfile::tempdir().unwrap();
        let units = dir.path().join("run/systemd/system");
        std::fs::create_dir_all(&units).unwrap();
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        let write = |name: &str, text: &str| std::fs::write(units.join(name), text).unwrap();
        write(
            "novacula-test.target",
            "[Unit]\nDescription=novacula test root\nWants=dbus.socket dbus.service systemd-journald.socket systemd-journald.service\n",
        );
        // The journal: units' output, as on a host (`journalctl --directory=<tmp>/run/log/journal`).
        std::fs::write(dir.path().join("journald.conf"), "[Journal]\nStorage=volatile\n").unwrap();
        write(
            "systemd-journald.socket",
            "[Unit]\nDescription=Journal socket (test)\nDefaultDependencies=no\n[Socket]\nListenDatagram=/run/systemd/journal/socket\nListenStream=/run/systemd/journal/stdout\nPassCredentials=yes\nPassSecurity=yes\nSocketMode=0666\nService=systemd-journald.service\n",
        );
        write(
            "systemd-journald.service",
            "[Unit]\nDescription=Journal (test)\nDefaultDependencies=no\nRequires=systemd-journald.socket\nAfter=systemd-journald.socket\n[Service]\nType=notify\nSockets=systemd-journald.socket\nExecStart=/usr/lib/systemd/systemd-journald\n",
        );
        // The system bus; systemd joins it once both of these run.
        write("dbus.socket", "[Unit]\nDescription=D-Bus socket (test)\nDefaultDependencies=no\n[Socket]\nListenStream=/run/dbus/system_bus_socket\n");
        write(
            "dbus.service",
            "[Unit]\nDescription=D-Bus system bus (test)\nDefaultDependencies=no\nRequires=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation\n",
        );
        // What DefaultDependencies=yes units require, order after, or conflict with.
        for t in ["sysinit", "basic", "sockets", "shutdown", "multi-user", "network-online"] {
            write(&format!("{t}.target"), &format!("[Unit]\nDescription={t} (test)\nDefaultDependencies=no\n"));
        }
        let unshare = Command::new("unshare")
            .args(["--pid", "--kill-child", "--mount", "--propagation", "private", "--mount-proc", "sh", "-c", BOOT, "boot"])
            .arg(dir.path())
            .arg(SYSTEMD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) runs");
        assert!(Path::new("/usr/bin/dbus-daemon").exists(), "/usr/bin/dbus-daemon is missing: install Debian's dbus package");
        let mut sd = RealSystemd { dir, unshare };
        let socket = sd.bus();
        for _ in 0..100 {
            if socket.exists() {
                return sd;
            }
            if let Some(status) = sd.unshare.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(sd.unshare.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("systemd did not boot in its namespace ({status}; this test needs root): {err}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("systemd did not open {} within 10 s", socket.display());
    }

    pub fn bus(&self) -> PathBuf {
        self.dir.path().join("run/dbus/system_bus_socket")
    }

    pub fn unit_dir(&self) -> PathBuf {
        self.dir.path().join("run/systemd/system")
    }

    /// Where the namespace's journald keeps the journal.
    pub fn journal_dir(&self) -> PathBuf {
        self.dir.path().join("run/log/journal")
    }

    /// A driver on the namespace's system bus, once systemd has joined it.
    pub async fn driver(&self) -> (zbus::Connection, SystemdDriver) {
        let address = format!("unix:path={}", self.bus().display());
        // The socket file can exist a moment before the bus accepts on it.
        let mut attempts = 0;
        let conn = loop {
            match zbus::connection::Builder::address(address.as_str()).build().await {
                Ok(c) => break c,
                Err(_) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot connect to the namespace's system bus: {e}"),
            }
        };
        let d = SystemdDriver::with_connection(&conn, self.dir.path().join("data"), self.unit_dir()).await.unwrap();
        for _ in 0..100 {
            if d.unit_state("none", "none").await.is_ok() {
                return (conn, d);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("systemd did not join the system bus within 10 s");
    }
}

impl Drop for RealSystemd {
    fn drop(&mut self) {
        // --kill-child: systemd, PID 1 of the namespace, dies with unshare, and every unit's process with it.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}
