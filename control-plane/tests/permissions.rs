//! Every user route of the API against the one permission table of core:
//! each route is in the table, and every role is let through or refused as
//! the table says.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::{Cp, PASSWORD};
use novacula_client::Method;
use novacula_control_plane::api::openapi;
use novacula_control_plane::Config;
use novacula_core::authz::{self, Access, Role};
use serde_json::{json, Value};
use std::time::Duration;

/// The API's operations as (method, path, security schemes); an operation
/// that may also be called with none (`{}` among its requirements) is public.
fn operations() -> Vec<(String, String, Vec<String>)> {
    let doc = serde_json::to_value(openapi()).unwrap();
    let mut ops = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let requirements: Vec<&serde_json::Map<String, Value>> = op["security"].as_array().into_iter().flatten().map(|s| s.as_object().unwrap()).collect();
            let public = requirements.iter().any(|r| r.is_empty());
            let schemes = if public { vec![] } else { requirements.iter().flat_map(|r| r.keys().cloned()).collect() };
            ops.push((method.to_uppercase(), path.clone(), schemes));
        }
    }
    ops
}

#[test]
fn the_table_lists_exactly_the_routes_users_call() {
    let ops = operations();
    for (method, path, schemes) in &ops {
        let listed = authz::route_needs(method, path).is_some();
        match schemes.as_slice() {
            [s] if s == "session" => assert!(listed, "{method} {path} takes a session but is not in core's permission table"),
            _ => assert!(!listed, "{method} {path} does not take a session ({schemes:?}) but is in the permission table"),
        }
    }
    for r in authz::ROUTES {
        assert!(ops.iter().any(|(m, p, _)| (m.as_str(), p.as_str()) == (r.method, r.path)), "{r:?} is not a route of the API");
    }
}

#[tokio::test]
async fn every_role_gets_what_the_table_gives_it() {
    // Alice, the owner, is also the platform's administrator.
    let cp = Cp::with_orgs(Config { platform_admins: ["alice".to_string()].into(), ..Config::default() }).await;
    let alice = cp.login("alice").await;
    let sessions = cp.sessions_of_every_role(&alice).await;
    let anon = cp.anon();
    let mut checked = 0;
    // Leaving the organization and signing out end what the other calls use: last.
    let mut ops = operations();
    ops.sort_by_key(|(_, path, _)| ["/api/v1/me/membership", "/api/v1/logout"].iter().position(|p| p == path));
    for (method, path, _) in ops {
        let Some(needs) = authz::route_needs(&method, &path) else { continue };
        // Names that exist nowhere: a call the role may make is answered
        // (404, 400 for the empty body, 200 for a list) and changes nothing.
        let url = path.replace("{name}", "no-such-thing").replace("{id}", "no-such-key");
        let body = (method != "GET" && method != "DELETE").then(|| b"{}".to_vec());
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, _) = anon.raw(m.clone(), &url, body.clone(), Duration::from_secs(10)).await.unwrap();
        assert_eq!(status.as_u16(), 401, "{method} {path} without a session");
        for (role, session) in &sessions {
            let (status, answer) = session.raw(m.clone(), &url, body.clone(), Duration::from_secs(10)).await.unwrap();
            let answer = String::from_utf8_lossy(&answer);
            if path == "/api/v1/org/deactivate" && status.is_success() {
                // The owner's deactivation would refuse every later call: undone at once.
                session.set_org_active(true).await.unwrap();
            }
            if needs.allows(Some(*role), *role == Role::Owner) {
                assert!(![401, 403].contains(&status.as_u16()), "{method} {path} refused to {role:?}, whom the table lets ({needs:?}): {status} {answer}");
                assert!(status.as_u16() < 500, "{method} {path} as {role:?}: {status} {answer}");
            } else {
                assert_eq!(status.as_u16(), 403, "{method} {path} let {role:?} through, whom the table refuses ({needs:?}): {answer}");
                let needed = match needs {
                    Access::Org(p) => p.as_str(),
                    Access::Platform => "platform administrator",
                    Access::Account => unreachable!("account routes allow every signed-in user"),
                };
                assert!(answer.contains(&format!("needs {needed}")), "{answer}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, authz::ROUTES.len());
    // HEAD is a GET without its body, as the table says of the GET (new
    // sessions: the loop signed the others out).
    let alice = cp.login("alice").await;
    let (status, body) = alice.raw(Method::HEAD, "/api/v1/nodes", None, Duration::from_secs(10)).await.unwrap();
    assert_eq!((status.as_u16(), body.len()), (200, 0));
    let _: Value = alice.call(Method::POST, "/api/v1/users", Some(&json!({"username": "late-member", "password": PASSWORD, "role": "member"}))).await.unwrap();
    let member = cp.login("late-member").await;
    assert_eq!(member.raw(Method::HEAD, "/api/v1/audit", None, Duration::from_secs(10)).await.unwrap().0.as_u16(), 403);
    cp.stop().await;
}
