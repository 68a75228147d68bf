//! A throwaway PostgreSQL server for tests and benchmarks: Debian's
//! `postgresql` package (`.ci/prerequisites` installs it), started once per
//! process in a temporary directory (`initdb` + `postgres`, as the
//! `postgres` account when run as root, which PostgreSQL refuses to run as),
//! stopped and removed when the process exits. Each caller gets a database of
//! its own.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Server {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Commits flushed to disk (benchmarks); tests run without (`fsync=off`).
    durable: bool,
    /// A certificate and key (PEM): then the server takes TLS connections only.
    tls: Option<(String, String)>,
}

/// Why there is no test server.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(String);

static SERVER: OnceLock<Result<Server, Unavailable>> = OnceLock::new();
static DURABLE_SERVER: OnceLock<Result<Server, Unavailable>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(1);

/// Where Debian installs the server (`NOVACULA_PG_BIN` overrides): the newest version.
fn bin_dir() -> Result<PathBuf, Unavailable> {
    if let Ok(dir) = std::env::var("NOVACULA_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| Unavailable(format!("PostgreSQL is not installed (/usr/lib/postgresql: {e}); run .ci/prerequisites")))?
        .filter_map(std::result::Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| Unavailable("no PostgreSQL server under /usr/lib/postgresql; run .ci/prerequisites".into()))
}

/// The durable server (benchmarks) is sized as a production one holding a
/// fleet's records is: PostgreSQL's defaults (128 MB of shared buffers, a
/// checkpoint every 1 GB of WAL) suit a small machine, and at 100,000 nodes
/// evicted dirty pages and back-to-back checkpoints held commits for half a
/// second (reports' p99 611 ms, 181 ms sized so).
const PRODUCTION_SIZING: &str = " -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=15min";

impl Server {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn start(durable: bool, tls: Option<(String, String)>) -> Result<Server, Unavailable> {
        let bin = bin_dir()?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("novacula-pg-{}-{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).map_err(|e| Unavailable(format!("{}: {e}", dir.display())))?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| Unavailable(e.to_string()))?.port();
        let server = Server { dir, bin, port, as_postgres, durable, tls };
        server.launch().inspect_err(|_| server.stop())?;
        Ok(server)
    }

    fn launch(&self) -> Result<(), Unavailable> {
        let (server, port) = (self, self.port);
        run(server.command("initdb").arg("-D").arg(server.data()).args(["-A", "trust", "-U", "novacula", "-E", "UTF8", "--locale=C", "--no-sync"]))?;
        let mut options =
            format!("-p {port} -h 127.0.0.1 -k {} -c fsync={} -c max_connections=200", server.dir.display(), if server.durable { "on" } else { "off" });
        if server.durable {
            options.push_str(PRODUCTION_SIZING);
        }
        // More server options, for measuring (e.g. `-c shared_preload_libraries=pg_stat_statements`).
        if let Ok(extra) = std::env::var("NOVACULA_PG_OPTIONS") {
            options.push(' ');
            options.push_str(&extra);
        }
        if let Some((cert, key)) = &server.tls {
            // TCP only with TLS (the socket, for this helper, stays open).
            let data = server.data();
            let write = |name: &str, text: &str| std::fs::write(data.join(name), text).map_err(|e| Unavailable(format!("{name}: {e}")));
            write("server.crt", cert)?;
            write("server.key", key)?;
            write("pg_hba.conf", "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n")?;
            run(Command::new("chmod").arg("600").arg(data.join("server.key")))?;
            if server.as_postgres {
                run(Command::new("chown").arg("postgres:").arg(data.join("server.crt")).arg(data.join("server.key")).arg(data.join("pg_hba.conf")))?;
            }
            options.push_str(" -c ssl=on");
        }
        let log = server.dir.join("server.log");
        server
            .command("pg_ctl")
            .arg("-D")
            .arg(server.data())
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(options)
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| Unavailable(format!("pg_ctl: {e}")))?;
        // Stopped at exit, whatever the tests did.
        // SAFETY: registers a plain function, run once by the C runtime at exit.
        unsafe { libc::atexit(stop_at_exit) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(&self.dir, port) {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(Unavailable(format!("PostgreSQL did not start on port {port}:\n{log}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stop the server, if it runs, and remove its directory.
    fn stop(&self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.data()).args(["stop", "-m", "immediate"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run(c: &mut Command) -> Result<(), Unavailable> {
    let out = c.output().map_err(|e| Unavailable(format!("{c:?}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Unavailable(format!("{c:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))))
    }
}

fn url(port: u16, db: &str) -> String {
    format!("postgres://novacula@127.0.0.1:{port}/{db}")
}

/// Runs on a thread of its own: the client may not block a thread that drives async tasks.
fn on_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(f).join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The server's administrator session, over its Unix socket in `dir` (a TLS-only server refuses plain TCP).
fn admin(dir: &std::path::Path, port: u16) -> Result<postgres::Client, postgres::Error> {
    postgres::Config::new().host_path(dir).port(port).user("novacula").dbname("postgres").connect(postgres::NoTls)
}

fn ready(dir: &std::path::Path, port: u16) -> bool {
    let dir = dir.to_path_buf();
    on_thread(move || admin(&dir, port).is_ok())
}

extern "C" fn stop_at_exit() {
    for server in [&SERVER, &DURABLE_SERVER] {
        if let Some(Ok(s)) = server.get() {
            s.stop();
        }
    }
}

/// Whether a server can be started here (its programs are installed), without starting one.
pub fn available() -> Result<(), Unavailable> {
    bin_dir().map(|_| ())
}

/// The URL of a new, empty database on this process's test server (started
/// at the first call, without flushing commits to disk), or why there is none.
pub fn fresh_database() -> Result<String, Unavailable> {
    database_on(SERVER.get_or_init(|| Server::start(false, None)))
}

/// The same on a server that flushes every commit to disk, as a production
/// one does (benchmarks: redb flushes every commit too).
pub fn fresh_durable_database() -> Result<String, Unavailable> {
    database_on(DURABLE_SERVER.get_or_init(|| Server::start(true, None)))
}

fn database_on(server: &Result<Server, Unavailable>) -> Result<String, Unavailable> {
    let server = server.as_ref().map_err(Clone::clone)?;
    let name = format!("t{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
    server.create_database(&name)?;
    Ok(url(server.port, &name))
}

impl Server {
    fn create_database(&self, name: &str) -> Result<(), Unavailable> {
        let (dir, port, create) = (self.dir.clone(), self.port, name.to_string());
        on_thread(move || -> Result<(), Unavailable> {
            let failed = |e: postgres::Error| Unavailable(e.to_string());
            admin(&dir, port).map_err(failed)?.batch_execute(&format!("CREATE DATABASE {create}")).map_err(failed)
        })
    }
}

/// A server of its own that takes TCP connections over TLS only, with
/// certificate `cert` and key `key` (PEM), stopped when dropped; and the URL
/// of an empty database on it (host `localhost`, no TLS words: the caller adds them).
pub struct TlsServer {
    server: Server,
    pub url: String,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.server.stop();
    }
}

pub fn start_tls_server(cert: &str, key: &str) -> Result<TlsServer, Unavailable> {
    let server = Server::start(false, Some((cert.to_string(), key.to_string())))?;
    let name = format!("t{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
    server.create_database(&name).inspect_err(|_| server.stop())?;
    let url = format!("postgres://novacula@localhost:{}/{name}", server.port);
    Ok(TlsServer { server, url })
}

/// The `application_name` of the session that holds the control planes'
/// lease on the database at `url` (replicas' tests name each replica's
/// sessions so), or `None` when no one holds it.
pub fn lease_holder(url: &str) -> Result<Option<String>, Unavailable> {
    let url = url.to_string();
    on_thread(move || {
        let failed = |e: postgres::Error| Unavailable(e.to_string());
        let mut c = postgres::Client::connect(&url, postgres::NoTls).map_err(failed)?;
        // A bigint advisory lock shows as its high half (classid) and low half
        // (objid); other tests' databases on the same server have their own.
        let sql = "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid::bigint = $1 AND l.objid::bigint = $2
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        let (high, low) = (super::postgres::LEASE_LOCK >> 32, super::postgres::LEASE_LOCK & 0xffff_ffff);
        Ok(c.query_opt(sql, &[&high, &low]).map_err(failed)?.map(|r| r.get(0)))
    })
}

/// The control planes' lease on the database at `url`, held by a session of
/// its own until the returned value is dropped (as a replica of another
/// release would hold it).
pub fn hold_lease(url: &str) -> Result<LeaseHeld, Unavailable> {
    let (url, (taken, took), (release, released)) = (url.to_string(), std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    std::thread::spawn(move || {
        let held = postgres::Client::connect(&url, postgres::NoTls)
            .and_then(|mut c| c.execute("SELECT pg_advisory_lock($1)", &[&super::postgres::LEASE_LOCK]).map(|_| c))
            .map_err(|e| Unavailable(e.to_string()));
        let ok = held.as_ref().map(|_| ()).map_err(Clone::clone);
        let _ = taken.send(ok);
        let _ = released.recv();
        drop(held);
    });
    took.recv().map_err(|_| Unavailable("the lease's thread ended".into()))??;
    Ok(LeaseHeld(Some(release)))
}

/// See [`hold_lease`].
pub struct LeaseHeld(Option<std::sync::mpsc::Sender<()>>);

impl Drop for LeaseHeld {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            let _ = release.send(());
        }
    }
}

/// Whether the tests must have PostgreSQL (CI) rather than skip without it.
pub fn required() -> bool {
    std::env::var_os("CI").is_some()
}

/// A fresh database for a test, or `None` (said on stderr) where PostgreSQL
/// is missing and not [`required`].
#[allow(clippy::panic, reason = "a test that must have PostgreSQL fails without it")]
pub fn database_for_test() -> Option<String> {
    match fresh_database() {
        Ok(url) => Some(url),
        Err(e) if required() => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    /// The benchmarks' durable server flushes every commit and is sized for a
    /// fleet's records (see [`super::PRODUCTION_SIZING`]).
    #[test]
    fn the_durable_server_flushes_and_is_sized_for_a_fleet() {
        let url = match super::fresh_durable_database() {
            Ok(url) => url,
            Err(e) if super::required() => panic!("{e}"),
            Err(e) => return eprintln!("skipped: {e}"),
        };
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut show = |what: &str| -> String { client.query_one(&format!("SHOW {what}"), &[]).unwrap().get(0) };
        assert_eq!(show("fsync"), "on");
        assert_eq!(show("shared_buffers"), "1GB");
        assert_eq!(show("max_wal_size"), "8GB");
    }
}
