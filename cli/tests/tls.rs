//! HTTPS end to end: `novacula serve --tls-cert/--tls-key` as a binary, the CLI
//! with `--ca-file`, and a real agent trusting a private CA.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

// The end-to-end harness (control plane, real agents) the control plane's tests use too.
#[path = "../../control-plane/tests/live/mod.rs"]
mod live;

use live::start_agent_with;
use novacula_client::{ClientError, HttpApi, Method};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

const PASSWORD: &str = "tls-test-password";

struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A private CA and a server certificate it signed for localhost and 127.0.0.1.
fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "novacula test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    let p = Pki { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") };
    std::fs::write(&p.ca, ca.pem()).unwrap();
    std::fs::write(&p.cert, server.pem()).unwrap();
    std::fs::write(&p.key, key.serialize_pem()).unwrap();
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn novacula() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_novacula"));
    c.env_remove("NOVACULA_TOKEN").env_remove("NOVACULA_PASSWORD").env_remove("NOVACULA_SERVER").env_remove("NOVACULA_CA_FILE");
    c.kill_on_drop(true);
    c
}

/// `novacula serve` over HTTPS with the PKI's certificate and key, on a redb file in `dir`.
fn serve_command(dir: &Path, pki: &Pki, port: u16) -> Command {
    let mut c = novacula();
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(dir.join("cp.redb"))
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .env("NOVACULA_BOOTSTRAP_PASSWORD", PASSWORD);
    c
}

fn serve(dir: &Path, pki: &Pki, port: u16) -> Child {
    serve_command(dir, pki, port).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

async fn wait_healthy(api: &HttpApi) {
    for _ in 0..100 {
        if api.raw(Method::GET, "/healthz", None, Duration::from_secs(2)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the HTTPS control plane did not come up");
}

/// Run the CLI with `args`; returns (success, stdout, stderr).
async fn cli(url: &str, session: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = novacula()
        .env("NOVACULA_SERVER", url)
        .env("NOVACULA_CONFIG", session)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn control_plane_serves_https_to_the_cli_and_an_agent_that_trust_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = free_port();
    let _server = serve(dir.path(), &pki, port);
    let url = format!("https://localhost:{port}");
    let anon = HttpApi::with_ca(&url, None, Some(&pki.ca)).unwrap();
    wait_healthy(&anon).await;

    // A client that does not trust the CA refuses the server, with a reason.
    // (On a machine without system roots, the client already refuses to start.)
    match HttpApi::new(&url, None) {
        Ok(untrusting) => match untrusting.get::<Value>("/api/v1/me").await {
            Err(ClientError::Transport(msg)) => assert!(msg.contains("UnknownIssuer") && msg.contains("ca_file"), "{msg}"),
            other => panic!("a server signed by an unknown CA was accepted: {other:?}"),
        },
        Err(e) => assert!(e.to_string().contains("no trusted root certificates"), "{e}"),
    }
    // Plain HTTP to the TLS port gets no answer, and the server carries on.
    let plain = HttpApi::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    assert!(plain.raw(Method::GET, "/healthz", None, Duration::from_secs(3)).await.is_err());
    // The certificate names 127.0.0.1 too.
    let by_ip = HttpApi::with_ca(&format!("https://127.0.0.1:{port}"), None, Some(&pki.ca)).unwrap();
    let (status, body) = by_ip.raw(Method::GET, "/healthz", None, Duration::from_secs(3)).await.unwrap();
    assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));

    // The CLI signs in over HTTPS with --ca-file; without it, a clear error and a non-zero exit.
    let session = dir.path().join("session.json");
    let ca = pki.ca.to_str().unwrap();
    let (ok, _, err) = cli(&url, &session, &["login", "--username", "admin"], &format!("{PASSWORD}\n")).await;
    assert!(!ok && err.contains("certificate"), "login without the CA: {err}");
    let (ok, _, err) = cli(&url, &session, &["--ca-file", ca, "login", "--username", "admin"], &format!("{PASSWORD}\n")).await;
    assert!(ok, "login with the CA: {err}");
    let (ok, key, err) = cli(&url, &session, &["--ca-file", ca, "keys", "create", "--executor", "edge-tls"], "").await;
    assert!(ok, "{err}");

    // A real agent connects over HTTPS and the CLI sees it online.
    let api = HttpApi::with_ca(&url, Some(key.trim().to_string()), Some(&pki.ca)).unwrap();
    let agent = start_agent_with(api, &dir.path().join("agent"), "edge-tls");
    let mut executors = Value::Null;
    for _ in 0..50 {
        let (ok, out, err) = cli(&url, &session, &["--ca-file", ca, "executors", "list", "-o", "json"], "").await;
        assert!(ok, "{err}");
        executors = serde_json::from_str(&out).unwrap();
        if executors[0]["online"] == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(executors[0]["name"], json!("edge-tls"), "{executors}");
    assert_eq!(executors[0]["online"], json!(true), "{executors}");
    agent.kill().await;
}

#[tokio::test]
async fn serve_refuses_a_key_that_does_not_match_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    std::fs::write(&pki.key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let out = serve_command(dir.path(), &pki, free_port()).output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("do not go together"), "{err}");
    // --tls-cert alone is a usage error
    let out = novacula().args(["serve", "--tls-cert"]).arg(&pki.cert).output().await.unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

#[tokio::test]
async fn a_missing_or_empty_ca_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let err = HttpApi::with_ca("https://localhost:1", None, Some(&missing)).err().unwrap();
    assert!(err.to_string().contains("nope.pem"), "{err}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let err = HttpApi::with_ca("https://localhost:1", None, Some(&empty)).err().unwrap();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}
