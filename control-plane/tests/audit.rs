//! The audit log: every mutation by a user, an API key or the system leaves
//! one entry (actor, typed action, target, source, details, never a secret)
//! in its own transaction; events of the same action link to it; owners and
//! admins read it with filters, everyone their own activity; retention.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::{AuditFilter, HttpApi};
use novacula_control_plane::services::audit;
use novacula_control_plane::Config;
use novacula_core::audit::{Action, ActorKind, Source};
use novacula_core::authz::Role;
use novacula_core::lifecycle::LifecycleAction;
use novacula_core::wire::{AuditEntry, CreateUserRequest};
use novacula_core::ExecutorKind;
use serde_json::Value;
use std::time::Duration;

async fn log(api: &HttpApi, filter: AuditFilter) -> Vec<AuditEntry> {
    api.audit(0, 500, &filter).await.unwrap().entries
}

fn one(entries: &[AuditEntry], action: Action) -> AuditEntry {
    let found: Vec<&AuditEntry> = entries.iter().filter(|e| e.action == action).collect();
    assert_eq!(found.len(), 1, "{action:?} in {entries:#?}");
    found[0].clone()
}

#[tokio::test]
async fn mutations_leave_one_entry_each_linked_from_their_events() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let cli = alice.clone().with_client_name("cli");

    // a user's changes, through the CLI
    cli.create_user(&CreateUserRequest { username: "mia".into(), password: PASSWORD.into(), role: Role::Member }).await.unwrap();
    cli.set_role("mia", Role::Operator).await.unwrap();
    let dup = cli.create_user(&CreateUserRequest { username: "mia".into(), password: PASSWORD.into(), role: Role::Member }).await;
    assert_eq!(dup.unwrap_err().status(), Some(409));
    let entries = log(&alice, AuditFilter::default()).await;
    let created = one(&entries, Action::UserCreated);
    assert_eq!((created.actor_kind, created.actor_id.as_str(), created.source), (ActorKind::User, "alice", Source::Cli));
    assert_eq!((created.target_kind.as_str(), created.target_id.as_str(), created.details["role"].as_str()), ("user", "mia", "member"));
    let changed = one(&entries, Action::RoleChanged);
    assert_eq!((changed.details["from"].as_str(), changed.details["to"].as_str()), ("member", "operator"));
    assert_eq!(entries.iter().filter(|e| e.action == Action::UserCreated).count(), 1, "the refused duplicate left no entry");

    // an executor's key: created, bound and registered by the executor, then rotated
    let (exec, created_key) = cp.executor_client(&alice, Some("edge-1")).await;
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let key_id = created_key["id"].as_str().unwrap().to_string();
    let rotated = alice.rotate_key(&key_id).await.unwrap();
    let entries = log(&alice, AuditFilter::default()).await;
    let registered = one(&entries, Action::ExecutorRegistered);
    assert_eq!((registered.actor_kind, registered.actor_id.as_str(), registered.actor_name.as_str()), (ActorKind::ApiKey, key_id.as_str(), "edge-1"));
    assert_eq!(registered.source, Source::Api);
    let rot = one(&entries, Action::KeyRotated);
    assert_eq!((rot.target_id.as_str(), rot.details["replaces"].as_str()), (rotated.record.id.as_str(), key_id.as_str()));
    assert_eq!(one(&entries, Action::KeyRevoked).target_id, key_id, "the rotation's revocation is an entry too");
    // the feed's event of that action names its entry
    let feed = events(&alice, 0).await;
    let rotated_event = feed.iter().find(|e| e["kind"] == "apikey.rotated").unwrap();
    assert_eq!(rotated_event["data"]["audit"], rot.seq.to_string());

    // nodes: deploy and a lifecycle action
    let fresh = HttpApi::new(&cp.url, Some(rotated.key.clone())).unwrap();
    fresh.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&alice, "edge-1", "n").await.unwrap();
    alice.lifecycle("n", LifecycleAction::Stop).await.unwrap();
    let about_n = log(&alice, AuditFilter { target: Some("n".into()), ..Default::default() }).await;
    assert_eq!(about_n.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::NodeLifecycle, Action::NodeDeployed], "newest first");
    assert_eq!((about_n[0].details["action"].as_str(), about_n[1].details["executor"].as_str()), ("stop", "edge-1"));
    let requested = events(&alice, 0).await.into_iter().find(|e| e["kind"] == "node.lifecycle.requested").unwrap();
    assert_eq!(requested["data"]["audit"], about_n[0].seq.to_string());

    // filters, pages, and nonsense refused
    let by_action = log(&alice, AuditFilter { action: Some("user.role.changed".into()), ..Default::default() }).await;
    assert_eq!(by_action.len(), 1);
    let first = alice.audit(0, 2, &AuditFilter::default()).await.unwrap();
    let second = alice.audit(first.next, 2, &AuditFilter::default()).await.unwrap();
    assert!(first.entries.len() == 2 && second.entries[0].seq < first.entries[1].seq, "the next page is older");
    let bad = alice.audit(0, 10, &AuditFilter { action: Some("node.exploded".into()), ..Default::default() }).await.unwrap_err();
    assert_eq!(bad.status(), Some(400));

    // never a secret
    let text = serde_json::to_string(&log(&alice, AuditFilter::default()).await).unwrap();
    for secret in [PASSWORD, rotated.key.as_str(), created_key["key"].as_str().unwrap()] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
    cp.stop().await;
}

#[tokio::test]
async fn owners_and_admins_read_the_log_everyone_their_own_activity() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    alice.create_user(&CreateUserRequest { username: "mia".into(), password: PASSWORD.into(), role: Role::Member }).await.unwrap();
    let mia = cp.login("mia").await;
    let e = mia.audit(0, 10, &AuditFilter::default()).await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("needs readAudit"), "{e}");
    let mine = mia.my_activity(0, 10).await.unwrap().entries;
    assert_eq!(mine.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::SessionStarted]);
    assert!(mine.iter().all(|e| e.actor_id == "mia"));
    mia.logout().await.unwrap();
    let ended = one(&log(&alice, AuditFilter { actor: Some("mia".into()), ..Default::default() }).await, Action::SessionEnded);
    assert_eq!(ended.org_id, "acme");
    // organizations see their own log only
    let bob = cp.login("bob").await;
    let theirs = log(&bob, AuditFilter::default()).await;
    assert!(!theirs.is_empty() && theirs.iter().all(|e| e.org_id == "globex" && e.actor_id == "bob"), "{theirs:#?}");
    cp.stop().await;
}

#[tokio::test]
async fn entries_past_the_retention_go_and_the_pruning_is_an_entry() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let before = log(&alice, AuditFilter::default()).await;
    assert_eq!(before.len(), 1, "alice's sign-in");
    cp.advance(Duration::from_secs(366 * 24 * 3600));
    let alice = cp.login("alice").await;
    let removed = audit::prune(&cp.state, cp.state.now()).unwrap();
    assert_eq!(removed, 1, "alice's year-old sign-in; the new one stays");
    let after = log(&alice, AuditFilter::default()).await;
    assert!(after.iter().all(|e| e.seq != before[0].seq), "the year-old entry is gone");
    let pruned = one(&after, Action::AuditPruned);
    assert_eq!((pruned.actor_kind, pruned.source, pruned.details["removed"].as_str()), (ActorKind::System, Source::System, "1"));
    let _: Value = alice.get("/api/v1/me").await.unwrap();
    cp.stop().await;
}

#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}
