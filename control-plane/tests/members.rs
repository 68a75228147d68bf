//! Members of an organization: role changes, removal, leaving, ownership
//! transfer, several organizations per user, sessions that end (sign-out,
//! password change and reset, disabled users), expired sessions pruned, and
//! the organization's logo.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::{HttpApi, Method};
use novacula_control_plane::services::users;
use novacula_control_plane::store::model::Member;
use novacula_control_plane::Config;
use novacula_core::authz::Role;
use novacula_core::ExecutorKind;
use serde_json::{json, Value};
use std::time::Duration;

async fn add(owner: &HttpApi, name: &str, role: &str) {
    let _: Value = owner.call(Method::POST, "/api/v1/users", Some(&json!({"username": name, "password": PASSWORD, "role": role}))).await.unwrap();
}

fn status<T: std::fmt::Debug>(r: Result<T, novacula_client::ClientError>) -> u16 {
    r.unwrap_err().status().unwrap()
}

async fn role_of(api: &HttpApi, name: &str) -> Value {
    let list: Vec<Value> = api.get("/api/v1/users").await.unwrap();
    list.into_iter().find(|u| u["username"] == name).map(|u| u["role"].clone()).unwrap_or(Value::Null)
}

#[tokio::test]
async fn roles_change_by_the_rules_and_take_effect_on_the_next_request() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    drop(exec);
    add(&alice, "ada", "admin").await;
    add(&alice, "mia", "member").await;
    deploy(&alice, "edge-1", "n").await.unwrap();
    let (ada, mia) = (cp.login("ada").await, cp.login("mia").await);

    // mia reads only; made operator, her very next request may stop the node
    assert_eq!(status(lifecycle(&mia, "n", "stop").await), 403);
    let changed = ada.set_role("mia", Role::Operator).await.unwrap();
    assert_eq!((changed.role, changed.username.as_str()), (Role::Operator, "mia"));
    lifecycle(&mia, "n", "stop").await.unwrap();
    ada.set_role("mia", Role::Member).await.unwrap();
    assert_eq!(status(lifecycle(&mia, "n", "start").await), 403);

    // the rules: nobody changes their own role, admins never an owner's, nobody makes an owner
    let own = ada.set_role("ada", Role::Member).await.unwrap_err();
    assert!(own.status() == Some(403) && own.to_string().contains("yourself"), "{own}");
    let over = ada.set_role("alice", Role::Member).await.unwrap_err();
    assert!(over.status() == Some(403) && over.to_string().contains("owner"), "{over}");
    let second = alice.set_role("ada", Role::Owner).await.unwrap_err();
    assert!(second.status() == Some(403) && second.to_string().contains("transfer"), "{second}");
    assert_eq!(status(mia.set_role("ada", Role::Member).await), 403, "members manage nobody");
    assert_eq!(status(ada.set_role("nobody", Role::Member).await), 404);
    // bob, owner of globex, cannot see or change acme's members
    let bob = cp.login("bob").await;
    assert_eq!(status(bob.set_role("mia", Role::Admin).await), 404);
    assert!(bob.users().await.unwrap().iter().all(|u| u.org_id == "globex"));
    assert_eq!(role_of(&alice, "mia").await, "member");
    cp.stop().await;
}

/// A 1x1 PNG.
const PNG: &[u8] = include_bytes!("data/logo.png");

#[tokio::test]
async fn the_logo_is_a_checked_png_or_jpeg_that_owners_and_admins_set() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    add(&alice, "olga", "operator").await;
    let olga = cp.login("olga").await;
    assert_eq!(status(alice.org_logo().await), 404);
    assert_eq!(alice.org().await.unwrap().logo_updated_at, None);

    let png = PNG.to_vec();
    let set = alice.set_org_logo(png.clone(), "image/png").await.unwrap();
    assert!(set.logo_updated_at.is_some());
    // Everyone in the organization reads it, as the bytes uploaded, labelled by what they are.
    assert_eq!(olga.org_logo().await.unwrap().as_ref(), png.as_slice());
    let (code, _) = olga.raw(Method::GET, "/api/v1/org/logo", None, Duration::from_secs(5)).await.unwrap();
    assert_eq!(code.as_u16(), 200);
    // Only owners and admins change it.
    assert_eq!(status(olga.set_org_logo(png.clone(), "image/png").await), 403);
    // Not an image, a mislabelled one, SVG, too large: refused, the logo kept.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#.to_vec();
    assert_eq!(status(alice.set_org_logo(svg, "image/svg+xml").await), 422);
    assert_eq!(status(alice.set_org_logo(png.clone(), "image/jpeg").await), 422);
    assert_eq!(status(alice.set_org_logo(b"{}".to_vec(), "application/json").await), 422);
    let mut big = png.clone();
    big.resize(novacula_core::logo::LOGO_BYTES_MAX + 1, 0);
    assert_eq!(status(alice.set_org_logo(big, "image/png").await), 400);
    assert_eq!(alice.org_logo().await.unwrap().as_ref(), png.as_slice());

    let removed = alice.remove_org_logo().await.unwrap();
    assert_eq!(removed.logo_updated_at, None);
    assert_eq!(status(alice.org_logo().await), 404);
    let page = alice.audit(0, 100, &novacula_client::AuditFilter::default()).await.unwrap();
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).filter(|a| a.starts_with("organization.logo")).collect();
    assert_eq!(actions, ["organization.logo.removed", "organization.logo.set"]);
    let set_entry = page.entries.iter().find(|e| e.action.as_str() == "organization.logo.set").unwrap();
    assert_eq!((set_entry.details["contentType"].as_str(), set_entry.details["bytes"].as_str()), ("image/png", "68"));
    cp.stop().await;
}

#[tokio::test]
async fn an_organization_is_named_by_its_slug_too() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, bob) = (cp.login("alice").await, cp.login("bob").await);
    assert_eq!(alice.org().await.unwrap().slug, "acme", "the id until changed");
    let changed = alice.update_org("Acme", Some("acme-validators")).await.unwrap();
    assert_eq!((changed.id.as_str(), changed.slug.as_str()), ("acme", "acme-validators"));
    // Requests and sign-ins name it by either.
    assert_eq!(alice.clone().with_org(Some("acme-validators".into())).org().await.unwrap().id, "acme");
    assert_eq!(alice.clone().with_org(Some("acme".into())).org().await.unwrap().id, "acme");
    let signed_in: Value = cp
        .anon()
        .call(Method::POST, "/api/v1/login", Some(&json!({"username": "alice", "password": PASSWORD, "organization": "acme-validators"})))
        .await
        .unwrap();
    assert_eq!(signed_in["user"]["orgId"], "acme");
    // Not a name another organization has, as id or slug; not a name that is no DNS label.
    assert_eq!(status(alice.update_org("Acme", Some("globex")).await), 409);
    bob.update_org("Globex", Some("gx")).await.unwrap();
    assert_eq!(status(alice.update_org("Acme", Some("gx")).await), 409);
    assert_eq!(status(alice.update_org("Acme", Some("Not A Label")).await), 400);
    // Nor can a new organization take a slug in use.
    let taken = orgs_create("acme-validators");
    assert!(matches!(taken(&cp.state.store), Err(novacula_control_plane::services::ServiceError::Conflict(_))));
    // The old slug is free again; the audit log has both.
    alice.update_org("Acme", Some("acme-2")).await.unwrap();
    assert_eq!(status(alice.clone().with_org(Some("acme-validators".into())).org().await), 403, "named nothing now");
    let page = alice.audit(0, 100, &novacula_client::AuditFilter { action: Some("organization.renamed".into()), ..Default::default() }).await.unwrap();
    assert_eq!((page.entries[0].details["slugFrom"].as_str(), page.entries[0].details["slugTo"].as_str()), ("acme-validators", "acme-2"));
    // A member who may not manage the organization may not change it.
    add(&alice, "olga", "operator").await;
    assert_eq!(status(cp.login("olga").await.update_org("Acme", Some("olga-org")).await), 403);
    cp.stop().await;
}

fn orgs_create(id: &'static str) -> impl Fn(&novacula_control_plane::Store) -> Result<(), novacula_control_plane::services::ServiceError> {
    move |store| {
        novacula_control_plane::services::orgs::create_org_with_owner(
            store,
            &novacula_core::entropy::OsEntropy,
            novacula_core::Timestamp(1),
            id,
            "newcomer",
            PASSWORD,
        )
    }
}

#[tokio::test]
async fn removal_leaving_and_ownership_transfer() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    add(&alice, "ada", "admin").await;
    add(&alice, "otto", "operator").await;
    add(&alice, "mia", "member").await;
    let (ada, otto, mia) = (cp.login("ada").await, cp.login("otto").await, cp.login("mia").await);

    // removed: the next request is refused; the account stays, with no organization to sign in to
    assert_eq!(status(ada.remove_user("alice").await), 403, "not the owner");
    assert_eq!(status(ada.remove_user("ada").await), 403, "not yourself");
    ada.remove_user("otto").await.unwrap();
    let e = otto.me().await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("not a member"), "{e}");
    let e = cp.anon().login("otto", PASSWORD).await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("not a member of any organization"), "{e}");
    assert_eq!(role_of(&alice, "otto").await, Value::Null);
    // their own account still answers: no organizations; signing out works
    assert!(otto.orgs().await.unwrap().is_empty());
    otto.logout().await.unwrap();
    assert_eq!(status(otto.orgs().await), 401);

    // leaving: anyone but the owner
    mia.leave().await.unwrap();
    assert_eq!(status(mia.users().await), 403);
    let e = alice.leave().await.unwrap_err();
    assert!(e.status() == Some(409) && e.to_string().contains("transfer ownership first"), "{e}");

    // ownership moves to ada; alice becomes admin and may no longer transfer it
    assert_eq!(status(ada.transfer_ownership("ada").await), 403, "only the owner transfers");
    let new_owner = alice.transfer_ownership("ada").await.unwrap();
    assert_eq!(new_owner.role, Role::Owner);
    assert_eq!(role_of(&ada, "alice").await, "admin");
    let e = alice.transfer_ownership("alice").await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("needs ownOrganization"), "{e}");
    assert_eq!(alice.me().await.unwrap().user.role, Role::Admin);
    let owners = ada.users().await.unwrap().into_iter().filter(|u| u.role == Role::Owner).count();
    assert_eq!(owners, 1);
    cp.stop().await;
}

#[tokio::test]
async fn a_user_of_several_organizations_works_in_the_one_they_name() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    add(&alice, "sam", "operator").await;
    // sam also joins globex as a member (what accepting an invitation will do)
    let member = Member { role: Role::Member, added_at: T0, added_by: "bob".into() };
    cp.state.store.write(|w| w.put_member("globex", "sam", &member)).unwrap();

    let sam = cp.login("sam").await;
    let mine = sam.orgs().await.unwrap();
    assert_eq!(mine.iter().map(|o| (o.org_id.as_str(), o.role)).collect::<Vec<_>>(), [("acme", Role::Operator), ("globex", Role::Member)]);
    // the session works in the first by name; the header or a login names another
    assert_eq!(sam.me().await.unwrap().user.org_id, "acme");
    let in_globex = sam.clone().with_org(Some("globex".into()));
    let me = in_globex.me().await.unwrap();
    assert_eq!((me.user.org_id.as_str(), me.user.role), ("globex", Role::Member));
    assert_eq!(me.permissions.len(), 1, "read only there");
    let logged = cp.anon().login_to("sam", PASSWORD, Some("globex")).await.unwrap();
    assert_eq!(logged.user.org_id, "globex");
    // the data is the named organization's
    let (bob, bob_exec) = (cp.login("bob").await, cp.executor_client(&cp.login("bob").await, None).await.0);
    bob_exec.sync_executor(&sync_req("globex-edge", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let names = |v: Vec<Value>| v.into_iter().map(|e| e["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(in_globex.get("/api/v1/executors").await.unwrap()), ["globex-edge"]);
    assert!(names(sam.get("/api/v1/executors").await.unwrap()).is_empty());
    drop(bob);
    // an organization sam is not in answers the same whether it exists or not
    for org in ["initech", "nowhere"] {
        let e = sam.clone().with_org(Some(org.into())).me().await.unwrap_err();
        assert!(e.status() == Some(403) && e.to_string().contains(&format!("not a member of organization \"{org}\"")), "{e}");
    }
    let bad = sam.clone().with_org(Some("Not A Name".into())).me().await.unwrap_err();
    assert_eq!(bad.status(), Some(400));
    assert_eq!(status(cp.anon().login_to("sam", PASSWORD, Some("initech")).await), 403);

    // an account in two organizations is not one organization's to lock or reset
    let e = alice.set_user_disabled("sam", true).await.unwrap_err();
    assert!(e.status() == Some(409) && e.to_string().contains("other organizations"), "{e}");
    cp.stop().await;
}

#[tokio::test]
async fn sessions_end_on_sign_out_password_change_reset_and_disable() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    add(&alice, "mia", "member").await;

    // sign-out: the token stops working everywhere at once
    let s1 = cp.login("mia").await;
    s1.logout().await.unwrap();
    assert_eq!(status(s1.me().await), 401);

    // a password change: the current password proves it; every other session ends
    let (s2, s3) = (cp.login("mia").await, cp.login("mia").await);
    let wrong =
        s2.call::<_, Value>(Method::PUT, "/api/v1/me/password", Some(&json!({"currentPassword": "not-it-at-all", "newPassword": "another-long-one"}))).await;
    assert_eq!(status(wrong), 403);
    let short = s2.call::<_, Value>(Method::PUT, "/api/v1/me/password", Some(&json!({"currentPassword": PASSWORD, "newPassword": "short"}))).await;
    assert_eq!(status(short), 400);
    let fresh: Value =
        s2.call(Method::PUT, "/api/v1/me/password", Some(&json!({"currentPassword": PASSWORD, "newPassword": "another-long-one"}))).await.unwrap();
    assert_eq!(status(s2.me().await), 401);
    assert_eq!(status(s3.me().await), 401);
    let s4 = s2.clone().with_token(Some(fresh["token"].as_str().unwrap().into()));
    assert_eq!(s4.me().await.unwrap().user.username, "mia");
    assert_eq!(status(cp.anon().login("mia", PASSWORD).await), 401);
    cp.anon().login("mia", "another-long-one").await.unwrap();

    // disabled: sessions stop at once, sign-in says so; enabled again, sign-in works
    alice.set_user_disabled("mia", true).await.unwrap();
    assert_eq!(status(s4.me().await), 401);
    let e = cp.anon().login("mia", "another-long-one").await.unwrap_err();
    assert!(e.status() == Some(401) && e.to_string().contains("disabled"), "{e}");
    assert!(alice.users().await.unwrap().iter().any(|u| u.username == "mia" && u.disabled));
    alice.set_user_disabled("mia", false).await.unwrap();
    assert_eq!(status(s4.me().await), 401, "enabled again, the sessions of before stay ended");
    let s5 = cp.anon().login("mia", "another-long-one").await.unwrap();

    // reset by an admin: the member's sessions end, the new password works
    let reset = alice.call::<_, Value>(Method::PUT, "/api/v1/users/mia/password", Some(&json!({"newPassword": "reset-by-alice"}))).await;
    reset.unwrap();
    let s5 = cp.anon().with_token(Some(s5.token));
    assert_eq!(status(s5.me().await), 401);
    cp.anon().login("mia", "reset-by-alice").await.unwrap();
    let e = alice.call::<_, Value>(Method::PUT, "/api/v1/users/alice/password", Some(&json!({"newPassword": "not-this-way"}))).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "your own password goes through /me/password: {e}");

    // wrong current passwords count like failed sign-ins: the sixth try is refused
    let mia = cp.login_with("mia", "reset-by-alice").await;
    for _ in 0..5 {
        let wrong =
            mia.call::<_, Value>(Method::PUT, "/api/v1/me/password", Some(&json!({"currentPassword": "guess-guess", "newPassword": "whatever-long"}))).await;
        assert_eq!(status(wrong), 403);
    }
    let locked =
        mia.call::<_, Value>(Method::PUT, "/api/v1/me/password", Some(&json!({"currentPassword": "reset-by-alice", "newPassword": "whatever-long"}))).await;
    assert_eq!(status(locked), 429);

    // expired sessions are removed
    cp.clock.advance(Duration::from_secs(31 * 24 * 3600));
    assert!(users::prune_sessions(&cp.state, cp.state.now()).unwrap() >= 2);
    assert_eq!(status(alice.me().await), 401, "alice's session expired too");
    cp.stop().await;
}

#[tokio::test]
async fn an_owner_renames_deactivates_and_reactivates_the_organization() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, exec) = cp.alice_and_edge().await;
    add(&alice, "ada", "admin").await;
    add(&alice, "mia", "member").await;
    let (ada, mia) = (cp.login("ada").await, cp.login("mia").await);

    // settings: owners and admins rename; the id stays
    assert_eq!(status(mia.rename_org("Mine now").await), 403);
    let renamed = ada.rename_org("Acme Validators").await.unwrap();
    assert_eq!((renamed.id.as_str(), renamed.name.as_str(), renamed.deactivated), ("acme", "Acme Validators", false));
    assert_eq!(status(ada.rename_org("").await), 400);

    // deactivated by the owner alone: members and executors are refused at once
    let e = ada.set_org_active(false).await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("needs ownOrganization"), "{e}");
    assert!(alice.set_org_active(false).await.unwrap().deactivated);
    let e = ada.get::<Value>("/api/v1/nodes").await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("deactivated"), "{e}");
    let e = cp.anon().login("mia", PASSWORD).await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("deactivated"), "{e}");
    let e = exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("deactivated"), "{e}");
    drop(mia);
    // the data is kept; the owner can still sign in, read it and reactivate
    let alice = cp.login("alice").await;
    assert!(alice.org().await.unwrap().deactivated);
    assert_eq!(status(alice.get::<Value>("/api/v1/nodes").await), 403);
    assert!(!alice.set_org_active(true).await.unwrap().deactivated);
    ada.get::<Value>("/api/v1/nodes").await.unwrap();
    exec.sync_executor(&sync_req("edge-1", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let log = alice.audit(0, 50, &novacula_client::AuditFilter { target: Some("acme".into()), ..Default::default() }).await.unwrap().entries;
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["organization.reactivated", "organization.deactivated", "organization.renamed"]);
    cp.stop().await;
}

#[tokio::test]
async fn open_signup_makes_an_owner_of_a_new_organization_only_when_allowed() {
    let off = Cp::with_orgs(Config::default()).await;
    let e = off.anon().signup("zoe", PASSWORD, None).await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("sign-up is off"), "{e}");
    let info: Value = off.anon().get("/api/v1/signup").await.unwrap();
    assert_eq!(info["enabled"], false);
    off.stop().await;

    let cp = Cp::with_orgs(Config { allow_signup: true, ..Config::default() }).await;
    let zoe = cp.anon().signup("zoe", PASSWORD, None).await.unwrap();
    assert_eq!((zoe.user.org_id.as_str(), zoe.user.role), ("zoe", Role::Owner), "a personal organization, named after her");
    let zoe = HttpApi::new(&cp.url, Some(zoe.token)).unwrap();
    assert_eq!(zoe.users().await.unwrap().len(), 1);
    assert!(zoe.get::<Vec<Value>>("/api/v1/nodes").await.unwrap().is_empty(), "nothing of acme's");
    let team = cp.anon().signup("yan", PASSWORD, Some("yan-team")).await.unwrap();
    assert_eq!(team.user.org_id, "yan-team");
    for (user, org, why) in [("zoe", None, "user"), ("xia", Some("acme"), "organization"), ("wu", Some("zoe"), "organization")] {
        let e = cp.anon().signup(user, PASSWORD, org).await.unwrap_err();
        assert!(e.status() == Some(409) && e.to_string().contains(why), "{e}");
    }
    assert_eq!(cp.anon().signup("vic", "short", None).await.unwrap_err().status(), Some(400));
    cp.stop().await;

    // sign-ups count against the address like failed sign-ins: not in bulk
    let limit = novacula_core::throttle::Limit { failures_max: 2, ..novacula_core::throttle::ADDRESS_LIMIT };
    let cp = Cp::with_orgs(Config { allow_signup: true, login_address_limit: limit, ..Config::default() }).await;
    cp.anon().signup("one", PASSWORD, None).await.unwrap();
    cp.anon().signup("two", PASSWORD, None).await.unwrap();
    assert_eq!(cp.anon().signup("three", PASSWORD, None).await.unwrap_err().status(), Some(429));
    cp.stop().await;
}

#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}
