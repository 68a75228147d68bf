//! `novacula serve --database postgres://...` as a binary: the control plane
//! keeps its records in PostgreSQL (a server the test starts, see
//! `store::pg_server`), so a restart loses nothing, and a database it cannot
//! reach is a clear error at start.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

use novacula_client::{HttpApi, Method};
use novacula_control_plane::store::pg_server;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const PASSWORD: &str = "postgres-test-password";

fn serve(database: &str, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_novacula"));
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", database])
        .env("NOVACULA_BOOTSTRAP_PASSWORD", PASSWORD)
        .env_remove("NOVACULA_DB")
        .kill_on_drop(true);
    c
}

async fn up(database: &str, port: u16) -> (Child, HttpApi) {
    let child = serve(database, port).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let api = HttpApi::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    for _ in 0..100 {
        if api.raw(Method::GET, "/healthz", None, Duration::from_secs(2)).await.is_ok() {
            return (child, api);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the control plane on PostgreSQL did not come up");
}

async fn login(api: HttpApi) -> HttpApi {
    let out: Value = api.call(Method::POST, "/api/v1/login", Some(&json!({"username": "admin", "password": PASSWORD}))).await.unwrap();
    api.with_token(out["token"].as_str().map(String::from))
}

#[tokio::test]
async fn records_live_in_postgres_across_restarts() {
    let Some(database) = pg_server::database_for_test() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (child, api) = up(&database, port).await;
    let admin = login(api).await;
    let key: Value = admin.call(Method::POST, "/api/v1/keys", Some(&json!({"label": "edge", "executor": "edge-1"}))).await.unwrap();
    drop(child);

    // Another process on the same database: the organization, its owner and the key are there.
    let (_child, api) = up(&database, port).await;
    let admin = login(api).await;
    let keys: Value = admin.get("/api/v1/keys").await.unwrap();
    let id = key["id"].as_str().unwrap();
    assert!(keys.to_string().contains(&format!("\"{id}\"")), "{id} not in {keys}");
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error_at_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = serve(&format!("postgres://novacula:secret@127.0.0.1:{port}/novacula?application_name=x"), port).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("cannot open database postgres://127.0.0.1:{port}/novacula")), "{stderr}");
    assert!(!stderr.contains("secret"), "the password is never printed: {stderr}");
}
