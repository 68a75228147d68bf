//! The platform's administrators (named by the server's configuration):
//! every organization, deactivation that only they lift, releases offered
//! where an organization set none, and impersonation audited with both
//! identities.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::{AuditFilter, HttpApi, Method};
use novacula_control_plane::Config;
use novacula_core::audit::Action;
use novacula_core::wire::{AuditEntry, AuditPage, LoginResponse, MeView};
use novacula_core::ExecutorKind;
use serde_json::{json, Value};

/// Acme (owner alice) and globex (owner bob); carol runs the platform and is in no organization's staff but acme's.
async fn platform() -> (Cp, HttpApi, HttpApi, HttpApi) {
    let cp = Cp::with_orgs(Config { platform_admins: ["carol".to_string()].into(), ..Config::default() }).await;
    let alice = cp.login("alice").await;
    let _: Value = alice.call(Method::POST, "/api/v1/users", Some(&json!({"username": "carol", "password": PASSWORD, "role": "member"}))).await.unwrap();
    let (carol, bob) = (cp.login("carol").await, cp.login("bob").await);
    (cp, alice, bob, carol)
}

fn release(version: &str) -> Value {
    json!({"channel": "stable", "kind": "agent", "version": version, "artifact": format!("agent-{version}"), "sha256": "ab".repeat(32)})
}

async fn platform_log(carol: &HttpApi) -> Vec<AuditEntry> {
    let page: AuditPage = carol.get("/api/v1/platform/audit?limit=500").await.unwrap();
    page.entries
}

#[tokio::test]
async fn only_platform_administrators_see_every_organization() {
    let (cp, alice, _bob, carol) = platform().await;
    assert!(carol.me().await.unwrap().platform_admin);
    assert!(!alice.me().await.unwrap().platform_admin);
    let e = alice.get::<Value>("/api/v1/platform/orgs").await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    let orgs: Vec<Value> = carol.get("/api/v1/platform/orgs").await.unwrap();
    let seen: Vec<(&str, &str, u64)> = orgs.iter().map(|o| (o["id"].as_str().unwrap(), o["owner"].as_str().unwrap(), o["members"].as_u64().unwrap())).collect();
    assert_eq!(seen, vec![("acme", "alice", 2), ("globex", "bob", 1)]);
    cp.stop().await;
}

#[tokio::test]
async fn a_platform_deactivation_is_lifted_only_by_the_platform() {
    let (cp, _alice, bob, carol) = platform().await;
    let (exec, _) = cp.executor_client(&bob, None).await;
    exec.sync_executor(&sync_req("edge-g", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let off: Value = carol.call(Method::POST, "/api/v1/platform/orgs/globex/deactivate", None::<&()>).await.unwrap();
    assert_eq!(off["deactivated"], true);
    // Its members and executors are refused (the status cache lives 5 s).
    cp.advance(std::time::Duration::from_secs(6));
    assert_eq!(bob.get::<Value>("/api/v1/nodes").await.unwrap_err().status(), Some(403));
    assert_eq!(exec.sync_executor(&sync_req("edge-g", ExecutorKind::Agent, "1.0.0")).await.unwrap_err().status(), Some(403));
    // Its owner cannot lift it.
    let e = bob.call::<_, Value>(Method::POST, "/api/v1/org/reactivate", None::<&()>).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert!(e.to_string().contains("platform"), "{e}");
    let on: Value = carol.call(Method::POST, "/api/v1/platform/orgs/globex/reactivate", None::<&()>).await.unwrap();
    assert_eq!(on["deactivated"], false);
    cp.advance(std::time::Duration::from_secs(6));
    bob.get::<Value>("/api/v1/nodes").await.unwrap();
    exec.sync_executor(&sync_req("edge-g", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    // Both logs say so: the organization's (its owner sees who) and the platform's.
    let theirs = bob.audit(0, 500, &AuditFilter { action: Some(Action::OrganizationDeactivated.as_str().into()), ..Default::default() }).await.unwrap().entries;
    assert_eq!((theirs.len(), theirs[0].actor_id.as_str(), theirs[0].details["by"].as_str()), (1, "carol", "platform"));
    let ours = platform_log(&carol).await;
    let actions: Vec<(Action, &str)> = ours.iter().map(|e| (e.action, e.org_id.as_str())).collect();
    assert_eq!(actions, vec![(Action::OrganizationReactivated, "globex"), (Action::OrganizationDeactivated, "globex")]);
    assert_eq!(carol.call::<_, Value>(Method::POST, "/api/v1/platform/orgs/nowhere/deactivate", None::<&()>).await.unwrap_err().status(), Some(404));
    // Two switches: the platform's hold on an organization its owner deactivated,
    // then lifted, leaves the owner's own deactivation in place.
    bob.set_org_active(false).await.unwrap();
    let held: Value = carol.call(Method::POST, "/api/v1/platform/orgs/globex/deactivate", None::<&()>).await.unwrap();
    assert_eq!((held["deactivated"].clone(), held["platformHold"].clone()), (json!(true), json!(true)));
    assert_eq!(bob.set_org_active(true).await.unwrap_err().status(), Some(403), "held: the owner cannot lift it");
    let lifted: Value = carol.call(Method::POST, "/api/v1/platform/orgs/globex/reactivate", None::<&()>).await.unwrap();
    assert_eq!((lifted["deactivated"].clone(), lifted["platformHold"].clone()), (json!(true), json!(false)), "still the owner's choice");
    assert!(!bob.set_org_active(true).await.unwrap().deactivated);
    cp.stop().await;
}

#[tokio::test]
async fn a_platform_release_is_offered_where_an_organization_set_none() {
    let (cp, alice, bob, carol) = platform().await;
    // Only the platform publishes releases; an organization's owner sets its own upgrades.
    assert_eq!(alice.call::<_, Value>(Method::PUT, "/api/v1/platform/releases", Some(&release("1.2.0"))).await.unwrap_err().status(), Some(403));
    let bad = carol
        .call::<_, Value>(Method::PUT, "/api/v1/platform/releases", Some(&json!({"channel": "stable", "kind": "agent", "version": "1.2.0", "artifact": "a"})))
        .await;
    assert_eq!(bad.unwrap_err().status(), Some(400), "an agent release without its sha256");
    let _: Value = carol.call(Method::PUT, "/api/v1/platform/releases", Some(&release("1.2.0"))).await.unwrap();
    let _: Value = alice.call(Method::PUT, "/api/v1/upgrades", Some(&release("1.3.0"))).await.unwrap();
    let (acme, _) = cp.executor_client(&alice, None).await;
    let (globex, _) = cp.executor_client(&bob, None).await;
    let offered = |r: novacula_core::wire::SyncExecutorResponse| r.upgrade.map(|u| u.version);
    assert_eq!(offered(acme.sync_executor(&sync_req("a1", ExecutorKind::Agent, "1.0.0")).await.unwrap()).as_deref(), Some("1.3.0"));
    assert_eq!(offered(globex.sync_executor(&sync_req("g1", ExecutorKind::Agent, "1.0.0")).await.unwrap()).as_deref(), Some("1.2.0"));
    // Not for another kind.
    let (globex_op, _) = cp.executor_client(&bob, None).await;
    assert_eq!(offered(globex_op.sync_executor(&sync_req("g2", ExecutorKind::Operator, "1.0.0")).await.unwrap()), None);
    let listed: Vec<Value> = carol.get("/api/v1/platform/releases").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(platform_log(&carol).await[0].action, Action::ReleasePublished);
    cp.stop().await;
}

#[tokio::test]
async fn an_impersonated_session_is_audited_with_both_identities_and_can_be_ended() {
    let (cp, alice, bob, carol) = platform().await;
    // Nobody but a platform administrator impersonates; never one of them, nor oneself.
    let imp = |who: &str| json!({"username": who, "reason": "ticket 42"});
    assert_eq!(alice.call::<_, Value>(Method::POST, "/api/v1/platform/impersonate", Some(&imp("bob"))).await.unwrap_err().status(), Some(403));
    assert_eq!(carol.call::<_, Value>(Method::POST, "/api/v1/platform/impersonate", Some(&imp("carol"))).await.unwrap_err().status(), Some(409));
    assert_eq!(carol.call::<_, Value>(Method::POST, "/api/v1/platform/impersonate", Some(&imp("nobody"))).await.unwrap_err().status(), Some(404));
    let wrong_org = json!({"username": "bob", "org": "acme"});
    assert_eq!(carol.call::<_, Value>(Method::POST, "/api/v1/platform/impersonate", Some(&wrong_org)).await.unwrap_err().status(), Some(404));

    let started: LoginResponse = carol.call(Method::POST, "/api/v1/platform/impersonate", Some(&imp("bob"))).await.unwrap();
    assert_eq!((started.user.username.as_str(), started.user.org_id.as_str()), ("bob", "globex"));
    let as_bob = HttpApi::new(&cp.url, Some(started.token.clone())).unwrap();
    let me: MeView = as_bob.me().await.unwrap();
    assert_eq!((me.user.username.as_str(), me.impersonated_by.as_deref(), me.platform_admin), ("bob", Some("carol"), false));
    // What it does is bob's, done by carol.
    as_bob.rename_org("Globex (support)").await.unwrap();
    let entries = bob.audit(0, 500, &AuditFilter::default()).await.unwrap().entries;
    let renamed = entries.iter().find(|e| e.action == Action::OrganizationRenamed).unwrap();
    assert_eq!((renamed.actor_id.as_str(), renamed.impersonator.as_deref(), renamed.target_id.as_str()), ("bob", Some("carol"), "globex"));
    // Nothing that would outlive the impersonation: keys, accounts, invitations, ownership.
    for (m, path, body) in [
        (Method::POST, "/api/v1/keys", json!({"label": "support"})),
        (Method::POST, "/api/v1/users", json!({"username": "mallory", "password": PASSWORD, "role": "admin"})),
        (Method::POST, "/api/v1/invitations", json!({"email": "m@example.com", "role": "member"})),
        (Method::POST, "/api/v1/ownership", json!({"username": "carol"})),
    ] {
        let e = as_bob.call::<_, Value>(m, path, Some(&body)).await.unwrap_err();
        assert!(e.status() == Some(403) && e.to_string().contains("impersonating"), "{path}: {e}");
    }
    // Nor another of bob's organizations than the one it was opened for.
    let joined: Value = alice.call(Method::POST, "/api/v1/invitations", Some(&json!({"email": "bob@example.com", "role": "member"}))).await.unwrap();
    bob.accept_invitation(joined["token"].as_str().unwrap(), None).await.unwrap();
    bob.clone().with_org(Some("acme".into())).me().await.unwrap();
    assert_eq!(as_bob.clone().with_org(Some("acme".into())).me().await.unwrap_err().status(), Some(403));
    // Nor accept an invitation for bob.
    let inv: Value = alice.call(Method::POST, "/api/v1/invitations", Some(&json!({"email": "bob@example.com", "role": "member"}))).await.unwrap();
    let e = as_bob.call::<_, Value>(Method::POST, "/api/v1/invitations/accept", Some(&json!({"token": inv["token"]}))).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    let start = entries.iter().find(|e| e.action == Action::ImpersonationStarted).unwrap();
    assert_eq!((start.actor_id.as_str(), start.target_id.as_str(), start.details["reason"].as_str()), ("carol", "bob", "ticket 42"));
    // Nor the password, nor the platform's routes, in such a session.
    let pw = json!({"currentPassword": PASSWORD, "newPassword": "another-password"});
    assert_eq!(as_bob.call::<_, Value>(Method::PUT, "/api/v1/me/password", Some(&pw)).await.unwrap_err().status(), Some(403));
    assert_eq!(as_bob.get::<Value>("/api/v1/platform/orgs").await.unwrap_err().status(), Some(403));
    // Ending it: signing out; the token is dead at once.
    as_bob.logout().await.unwrap();
    assert_eq!(as_bob.me().await.unwrap_err().status(), Some(401));
    let entries = bob.audit(0, 500, &AuditFilter { action: Some(Action::SessionEnded.as_str().into()), ..Default::default() }).await.unwrap().entries;
    assert_eq!(entries[0].impersonator.as_deref(), Some("carol"));
    let ours = platform_log(&carol).await;
    assert!(ours.iter().any(|e| e.action == Action::ImpersonationStarted && e.target_id == "bob" && e.org_id == "globex"), "{ours:#?}");
    // Carol's own session is untouched.
    assert!(carol.me().await.unwrap().platform_admin);
    // An impersonation ends with its administrator's account.
    let again: LoginResponse = carol.call(Method::POST, "/api/v1/platform/impersonate", Some(&imp("bob"))).await.unwrap();
    let as_bob = HttpApi::new(&cp.url, Some(again.token)).unwrap();
    as_bob.me().await.unwrap();
    let _: Value = alice.call(Method::POST, "/api/v1/users/carol/disable", None::<&()>).await.unwrap();
    assert_eq!(as_bob.me().await.unwrap_err().status(), Some(401));
    cp.stop().await;
}

#[tokio::test]
async fn an_impersonated_session_cannot_reach_the_platform() {
    let cp = Cp::with_orgs(Config { platform_admins: ["alice".to_string()].into(), ..Config::default() }).await;
    let alice = cp.login("alice").await;
    // The organization named by its slug, as everywhere.
    cp.login("bob").await.update_org("Globex", Some("gx")).await.unwrap();
    let started: LoginResponse = alice.call(Method::POST, "/api/v1/platform/impersonate", Some(&json!({"username": "bob", "org": "gx"}))).await.unwrap();
    assert_eq!(started.user.org_id, "globex");
    let as_bob = HttpApi::new(&cp.url, Some(started.token)).unwrap();
    let e = as_bob.get::<Value>("/api/v1/platform/orgs").await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    cp.stop().await;
}

#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}
