//! The web console in headless Chromium (Debian packages `chromium` and
//! `chromium-driver`, which `.ci/run` installs), driven over WebDriver: an owner
//! connects an agent, deploys a node, sees it run and stops it; an operator may only start, stop and restart, a member cannot
//! press the lifecycle buttons. Screenshots go to `target/browser-artifacts/`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;
mod live;

use fantoccini::{Client, ClientBuilder, Locator};
use live::{add_user, control_plane, control_plane_seeded, start_agent, wait_for_node, OWNER, PASSWORD};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(profile: &std::path::Path) -> (Driver, Client) {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(std::path::Path::new(bin).exists(), "{bin} is missing: install the Debian packages chromium and chromium-driver (.ci/run does)");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Driver(Command::new(CHROMEDRIVER).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            // the flags that keep Chromium from reaching for the network on a closed machine
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                     format!("--user-data-dir={}", profile.display())]
        }
    });
    let caps: fantoccini::wd::Capabilities = caps.as_object().unwrap().clone();
    for _ in 0..100 {
        if let Ok(c) = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            return (driver, c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// Wait until `css` exists and `check` holds for it (20 s at most).
async fn until(c: &Client, css: &str, what: &str, check: impl AsyncFn(&fantoccini::elements::Element) -> bool) -> fantoccini::elements::Element {
    for _ in 0..200 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if check(&e).await {
                return e;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(c, &format!("failed-{}", what.replace(' ', "-"))).await;
    panic!("{css}: never {what}");
}

async fn value_is(c: &Client, css: &str, want: &str) {
    until(c, css, &format!("shows {want}"), async |e| e.attr("data-value").await.ok().flatten().as_deref() == Some(want)).await;
}

async fn login(c: &Client, url: &str, user: &str) {
    c.goto(&format!("{url}/")).await.unwrap();
    until(c, "#login-username", "visible", async |e| e.is_displayed().await.unwrap_or(false)).await.send_keys(user).await.unwrap();
    c.find(Locator::Css("#login-password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("#login-submit")).await.unwrap().click().await.unwrap();
    until(c, "#who", "names the user", async |e| e.text().await.unwrap_or_default().starts_with(user)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_connects_an_agent_deploys_stops_and_limits_roles() {
    let dir = tempfile::tempdir().unwrap();
    let (url, owner) = control_plane().await;
    let (_driver, c) = browser(&dir.path().join("profile")).await;

    // owner signs in and connects a new executor: the key is shown once, with an install command
    login(&c, &url, OWNER).await;
    c.find(Locator::Css("#nav-connect")).await.unwrap().click().await.unwrap();
    let name = until(&c, "#connect-name", "visible", async |e| e.is_displayed().await.unwrap_or(false)).await;
    name.clear().await.unwrap();
    name.send_keys("web-edge").await.unwrap();
    c.find(Locator::Css("#connect-submit")).await.unwrap().click().await.unwrap();
    let key = until(&c, "#connect-key", "shows the key", async |e| e.text().await.unwrap_or_default().starts_with("nvk_")).await.text().await.unwrap();
    let command = c.find(Locator::Css("#connect-command")).await.unwrap().text().await.unwrap();
    assert!(command.contains(&key) && command.contains("sudo novacula-agent install --control-plane") && command.contains("--name web-edge"), "{command}");
    shot(&c, "1-connect-executor").await;

    // the agent starts with that key and shows online
    let agent = start_agent(&url, &key, &dir.path().join("agent"), "web-edge");
    c.goto(&format!("{url}/#/executors")).await.unwrap();
    value_is(&c, "tr[data-executor='web-edge'] .badge", "online").await;
    shot(&c, "2-executor-online").await;

    // deploy a stand-in node from the Nodes page
    c.goto(&format!("{url}/#/nodes")).await.unwrap();
    until(&c, "#deploy-executor option", "lists the executor", async |e| e.prop("value").await.ok().flatten().as_deref() == Some("web-edge")).await;
    c.find(Locator::Css("#deploy > summary")).await.unwrap().click().await.unwrap();
    // a whole spec as JSON, the wizard's advanced way (the wizard has its own test)
    c.find(Locator::Css("#deploy-json > summary")).await.unwrap().click().await.unwrap();
    let spec = json!({"name": "web-node", "chain": "demo", "network": "local", "clients": [{"role": "main", "client": "standin", "version": "1.0.0"}]});
    c.execute("document.querySelector('#deploy-spec').value = arguments[0]", vec![Value::String(spec.to_string())]).await.unwrap();
    c.find(Locator::Css("#deploy-submit")).await.unwrap().click().await.unwrap();

    // its badge turns running
    value_is(&c, "#node-phase", "running").await;
    until(&c, "#node-disk", "shows the disk under the node", async |e| e.text().await.unwrap_or_default().contains(" used by the node, ")).await;
    shot(&c, "3-node-running").await;

    // stop, confirmed in the dialog: the badge turns stopped
    c.find(Locator::Css("#action-stop")).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    value_is(&c, "#node-phase", "stopped").await;
    shot(&c, "4-node-stopped").await;
    let n = wait_for_node(&owner, "web-node", |n| n["phase"] == "stopped").await;
    assert_eq!((n["revision"].as_u64(), n["spec"]["desiredState"].as_str()), (Some(2), Some("stopped")));

    // the Nodes page filters by phase (and chain, executor) through the API
    c.goto(&format!("{url}/#/nodes")).await.unwrap();
    until(&c, "tr[data-node='web-node']", "lists the node", async |e| e.is_displayed().await.unwrap_or(false)).await;
    let filter = async |phase: &str| {
        c.execute("document.querySelector('#filter-phase').value = arguments[0]", vec![Value::String(phase.into())]).await.unwrap();
        c.find(Locator::Css("#filter-apply")).await.unwrap().click().await.unwrap();
    };
    filter("running").await;
    until(&c, "#live tbody", "no running node", async |e| e.text().await.unwrap_or_default().contains("No nodes.")).await;
    filter("stopped").await;
    until(&c, "#live tbody", "the stopped node", async |e| e.text().await.unwrap_or_default().contains("web-node")).await;
    assert!(!c.find(Locator::Css("#nodes-next")).await.unwrap().is_enabled().await.unwrap(), "one page only");
    shot(&c, "4b-nodes-filtered").await;

    // an operator may start, stop and restart, but not delete or deploy (the table in core, through /me)
    add_user(&owner, "olga", "operator").await;
    c.find(Locator::Css("#logout")).await.unwrap().click().await.unwrap();
    login(&c, &url, "olga").await;
    assert!(!c.find(Locator::Css("#nav-connect")).await.unwrap().is_displayed().await.unwrap(), "operators cannot connect executors");
    c.goto(&format!("{url}/#/nodes/web-node")).await.unwrap();
    value_is(&c, "#node-phase", "stopped").await;
    for (action, enabled) in [("start", true), ("stop", true), ("restart", true), ("delete", false)] {
        let button = c.find(Locator::Css(&format!("#action-{action}"))).await.unwrap();
        assert_eq!(button.is_enabled().await.unwrap(), enabled, "an operator's {action} button");
    }
    shot(&c, "5-operator-may-start").await;
    c.find(Locator::Css("#action-start")).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    value_is(&c, "#node-phase", "running").await;
    c.goto(&format!("{url}/#/nodes")).await.unwrap();
    until(&c, "tr[data-node='web-node']", "lists the node", async |e| e.is_displayed().await.unwrap_or(false)).await;
    assert!(!c.find(Locator::Css("#deploy")).await.unwrap().is_displayed().await.unwrap(), "operators cannot deploy");

    // a member sees the node but every lifecycle button is disabled
    add_user(&owner, "vera", "member").await;
    c.find(Locator::Css("#logout")).await.unwrap().click().await.unwrap();
    login(&c, &url, "vera").await;
    assert!(!c.find(Locator::Css("#nav-connect")).await.unwrap().is_displayed().await.unwrap(), "members cannot connect executors");
    c.goto(&format!("{url}/#/nodes/web-node")).await.unwrap();
    value_is(&c, "#node-phase", "running").await;
    for action in ["start", "stop", "restart", "delete"] {
        let button = c.find(Locator::Css(&format!("#action-{action}"))).await.unwrap();
        assert!(!button.is_enabled().await.unwrap(), "a member's {action} button is enabled");
    }
    c.find(Locator::Css("#action-stop")).await.unwrap().click().await.ok();
    shot(&c, "6-member-cannot-operate").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n: Value = owner.get("/api/v1/nodes/web-node").await.unwrap();
    assert_eq!(n["revision"], 3, "the operator's start was revision 3; the member's click changed nothing");

    c.close().await.unwrap();
    agent.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_manages_members_switches_organizations_and_signs_out() {
    use novacula_control_plane::services::orgs;
    use novacula_control_plane::store::model::Member;
    use novacula_core::authz::Role;
    let dir = tempfile::tempdir().unwrap();
    // alice owns acme and is a read-only member of globex
    let (url, owner) = control_plane_seeded(|store| {
        let now = novacula_core::Timestamp(1);
        orgs::create_org_with_owner(store, &novacula_core::entropy::OsEntropy, now, "globex", "bob", PASSWORD).unwrap();
        store.write(|w| w.put_member("globex", OWNER, &Member { role: Role::Member, added_at: now, added_by: "bob".into() })).unwrap();
    })
    .await;
    let (_driver, c) = browser(&dir.path().join("profile")).await;
    login(&c, &url, OWNER).await;

    // add a member from the Members page
    c.goto(&format!("{url}/#/members")).await.unwrap();
    until(&c, "#member-add summary", "visible", async |e| e.is_displayed().await.unwrap_or(false)).await.click().await.unwrap();
    c.find(Locator::Css("#member-name")).await.unwrap().send_keys("mia").await.unwrap();
    c.find(Locator::Css("#member-password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("#member-add-submit")).await.unwrap().click().await.unwrap();
    until(&c, "tr[data-user='mia']", "lists mia", async |e| e.is_displayed().await.unwrap_or(false)).await;
    let role_of = async |name: &str| {
        let users: Vec<Value> = owner.get("/api/v1/users").await.unwrap();
        users.into_iter().find(|u| u["username"] == name).unwrap()["role"].as_str().unwrap().to_string()
    };
    assert_eq!(role_of("mia").await, "member", "a new member reads only, unless chosen otherwise");
    // the owner's own row offers no change; mia's role select offers what the owner may grant
    assert!(c.find(Locator::Css("[data-role-of='alice']")).await.is_err(), "nobody changes their own role");
    c.execute("const s = document.querySelector(\"[data-role-of='mia']\"); s.value = 'operator'; s.dispatchEvent(new Event('change'));", vec![]).await.unwrap();
    for _ in 0..50 {
        if role_of("mia").await == "operator" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(role_of("mia").await, "operator");

    // the audit log says who added mia, through the console
    c.goto(&format!("{url}/#/audit")).await.unwrap();
    c.find(Locator::Css("#audit-action")).await.unwrap().send_keys("user.created").await.unwrap();
    c.find(Locator::Css("#audit-apply")).await.unwrap().click().await.unwrap();
    let entry = until(&c, "#audit tbody tr", "shows the entry", async |e| e.text().await.unwrap_or_default().contains("user.created")).await;
    let text = entry.text().await.unwrap();
    assert!(text.contains("alice") && text.contains("user mia") && text.contains("ui") && text.contains("role=member"), "{text}");
    shot(&c, "6b-audit").await;
    c.goto(&format!("{url}/#/members")).await.unwrap();

    // the organization's name, from its settings on the Members page
    let name = until(&c, "#org-name-input", "visible", async |e| e.is_displayed().await.unwrap_or(false)).await;
    name.clear().await.unwrap();
    name.send_keys("Acme Validators").await.unwrap();
    let slug = c.find(Locator::Css("#org-slug-input")).await.unwrap();
    slug.clear().await.unwrap();
    slug.send_keys("acme-validators").await.unwrap();
    c.find(Locator::Css("#org-save")).await.unwrap().click().await.unwrap();
    until(&c, "#org-name", "shows the new name", async |e| e.text().await.unwrap_or_default() == "Acme Validators").await;
    for _ in 0..50 {
        if owner.org().await.unwrap().slug == "acme-validators" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(owner.org().await.unwrap().slug, "acme-validators");

    // a logo, uploaded from a file: the sidebar shows it, decoded as the image it is
    let png = dir.path().join("logo.png");
    std::fs::write(&png, include_bytes!("data/logo.png")).unwrap();
    until(&c, "#org-logo-file", "offers a logo upload", async |e| e.is_displayed().await.unwrap_or(false))
        .await
        .send_keys(png.to_str().unwrap())
        .await
        .unwrap();
    // (a 1x1 transparent pixel: shown, though WebDriver may not call it visible)
    until(&c, "#org-logo:not([hidden])", "shows the logo", async |e| e.attr("src").await.ok().flatten().is_some_and(|s| s.starts_with("blob:"))).await;
    let mut width = json!(0);
    for _ in 0..50 {
        width = c.execute("return document.querySelector('#org-logo').naturalWidth", vec![]).await.unwrap();
        if width == json!(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(width, json!(1), "the image decodes (and the page's policy lets it show)");
    assert!(owner.org().await.unwrap().logo_updated_at.is_some());
    shot(&c, "6c-logo").await;

    // disabling mia ends her session at once
    let mia = live::login(&url, "mia").await;
    mia.me().await.unwrap();
    until(&c, "tr[data-user='mia'] [data-toggle]", "offers Disable", async |e| e.text().await.unwrap_or_default() == "Disable").await.click().await.unwrap();
    c.accept_alert().await.unwrap();
    until(&c, "tr[data-user='mia'] .badge", "shows disabled", async |e| e.text().await.unwrap_or_default() == "disabled").await;
    assert_eq!(mia.me().await.unwrap_err().status(), Some(401));
    shot(&c, "7-members").await;

    // API keys: rotate shows the new key once and revokes the old; a revoked key can be deleted
    let old: Value = owner.call(novacula_client::Method::POST, "/api/v1/keys", Some(&json!({"label": "edge", "executor": "x-edge"}))).await.unwrap();
    let old_id = old["id"].as_str().unwrap().to_string();
    c.goto(&format!("{url}/#/keys")).await.unwrap();
    let row = format!("tr[data-key='{old_id}']");
    until(&c, &format!("{row} .badge"), "shows the key active", async |e| e.text().await.unwrap_or_default() == "active").await;
    c.find(Locator::Css(&format!("{row} [data-key-rotate]"))).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    let shown = until(&c, "#rotated-key", "shows the new key", async |e| e.text().await.unwrap_or_default().starts_with("nvk_")).await.text().await.unwrap();
    let fresh = novacula_client::HttpApi::new(&url, Some(shown)).unwrap();
    fresh.sync_executor(&live::sync_request("x-edge")).await.unwrap();
    until(&c, &format!("{row} .badge"), "shows the old key revoked", async |e| e.text().await.unwrap_or_default() == "revoked").await;
    shot(&c, "7b-keys-rotated").await;
    c.find(Locator::Css(&format!("{row} [data-key-delete]"))).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    for _ in 0..50 {
        if c.find(Locator::Css(&row)).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(c.find(Locator::Css(&row)).await.is_err(), "the deleted key is gone");
    let keys: Vec<Value> = owner.get("/api/v1/keys").await.unwrap();
    assert!(keys.iter().all(|k| k["id"] != old_id.as_str()));

    // an invitation from the Members page: the link is shown once
    c.goto(&format!("{url}/#/members")).await.unwrap();
    until(&c, "#invite-form summary", "visible", async |e| e.is_displayed().await.unwrap_or(false)).await.click().await.unwrap();
    c.find(Locator::Css("#invite-email")).await.unwrap().send_keys("nina@example.com").await.unwrap();
    c.execute("document.querySelector('#invite-role').value = 'operator'", vec![]).await.unwrap();
    c.find(Locator::Css("#invite-submit")).await.unwrap().click().await.unwrap();
    let link = until(&c, "#invite-link", "shows the link", async |e| e.text().await.unwrap_or_default().contains("/#/invite/nvi_")).await.text().await.unwrap();
    until(&c, "#invitations tbody tr", "lists it pending", async |e| e.text().await.unwrap_or_default().contains("pending")).await;

    // the organization switcher: in globex alice is a member, so she adds nobody there
    let switch = until(&c, "#org-switch", "offers two organizations", async |e| e.is_displayed().await.unwrap_or(false)).await;
    assert!(switch.text().await.unwrap().contains("globex (member)"));
    c.execute("const s = document.querySelector('#org-switch'); s.value = 'globex'; s.dispatchEvent(new Event('change'));", vec![]).await.unwrap();
    until(&c, "#org-name", "names globex", async |e| e.text().await.unwrap_or_default() == "globex").await;
    c.goto(&format!("{url}/#/members")).await.unwrap();
    until(&c, "tr[data-user='bob']", "lists globex's owner", async |e| e.is_displayed().await.unwrap_or(false)).await;
    assert!(!c.find(Locator::Css("#member-add")).await.unwrap().is_displayed().await.unwrap(), "a member adds nobody");
    assert!(c.find(Locator::Css("tr[data-user='mia']")).await.is_err(), "acme's members are not globex's");
    shot(&c, "8-other-organization").await;

    // signing out ends the session on the server: the token is worthless afterwards
    let token = c.execute("return sessionStorage.getItem('novacula-token')", vec![]).await.unwrap();
    let token = token.as_str().unwrap().to_string();
    c.find(Locator::Css("#logout")).await.unwrap().click().await.unwrap();
    until(&c, "#login-username", "visible", async |e| e.is_displayed().await.unwrap_or(false)).await;
    let stale = novacula_client::HttpApi::new(&url, Some(token)).unwrap();
    assert_eq!(stale.orgs().await.unwrap_err().status(), Some(401));

    // signed out, the invitation link offers to create an account; nina joins acme as operator
    c.goto(&link).await.unwrap();
    let offer = until(&c, "#invite-offer", "shows the offer", async |e| e.is_displayed().await.unwrap_or(false)).await.text().await.unwrap();
    assert!(offer.contains("alice invites nina@example.com to acme as operator"), "{offer}");
    c.find(Locator::Css("#invite-username")).await.unwrap().send_keys("nina").await.unwrap();
    c.find(Locator::Css("#invite-password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("#invite-accept")).await.unwrap().click().await.unwrap();
    until(&c, "#who", "names nina", async |e| e.text().await.unwrap_or_default() == "nina (operator)").await;
    shot(&c, "9-invited").await;
    let nina = live::login(&url, "nina").await;
    assert_eq!(nina.me().await.unwrap().user.org_id, "acme");
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_signs_up_a_new_owner_when_the_server_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = novacula_control_plane::Config { allow_signup: true, ..Default::default() };
    let (url, _) = live::control_plane_with(config, |_| {}).await;
    let (_driver, c) = browser(&dir.path().join("profile")).await;
    c.goto(&format!("{url}/")).await.unwrap();
    until(&c, "#signup-open", "offers sign-up", async |e| e.is_displayed().await.unwrap_or(false)).await.click().await.unwrap();
    c.find(Locator::Css("#signup-username")).await.unwrap().send_keys("zed").await.unwrap();
    c.find(Locator::Css("#signup-password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("#signup-submit")).await.unwrap().click().await.unwrap();
    until(&c, "#who", "names zed, owner", async |e| e.text().await.unwrap_or_default() == "zed (owner)").await;
    until(&c, "#org-name", "names zed's organization", async |e| e.text().await.unwrap_or_default() == "zed").await;
    shot(&c, "10-signed-up").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_platform_administrator_impersonates_under_a_banner_and_ends_it() {
    use novacula_core::audit::Action;
    use novacula_core::wire::AuditPage;
    let dir = tempfile::tempdir().unwrap();
    let config = novacula_control_plane::Config { platform_admins: [OWNER.to_string()].into(), ..Default::default() };
    let (url, _) = live::control_plane_with(config, |store| {
        let now = novacula_core::Timestamp(1);
        novacula_control_plane::services::orgs::create_org_with_owner(store, &novacula_core::entropy::OsEntropy, now, "globex", "bob", PASSWORD).unwrap();
    })
    .await;
    let bob = live::login(&url, "bob").await;
    let (_driver, c) = browser(&dir.path().join("profile")).await;
    login(&c, &url, OWNER).await;

    // The platform page, offered to platform administrators only.
    until(&c, "#nav-platform", "offers Platform", async |e| e.is_displayed().await.unwrap_or(false)).await.click().await.unwrap();
    until(&c, "tr[data-platform-org='globex']", "lists globex and its owner", async |e| e.text().await.unwrap_or_default().contains("bob")).await;
    shot(&c, "11-platform").await;

    // Impersonate bob: a banner says so, and what is done is bob's, by alice.
    c.find(Locator::Css("#impersonate-username")).await.unwrap().send_keys("bob").await.unwrap();
    c.find(Locator::Css("#impersonate-reason")).await.unwrap().send_keys("ticket 9").await.unwrap();
    c.find(Locator::Css("#impersonate-form button")).await.unwrap().click().await.unwrap();
    until(&c, "#who", "names bob", async |e| e.text().await.unwrap_or_default() == "bob (owner)").await;
    let banner = until(&c, "#impersonation-banner", "shows the banner", async |e| e.is_displayed().await.unwrap_or(false)).await.text().await.unwrap();
    assert!(banner.contains("acting as bob in globex"), "{banner}");
    assert!(!c.find(Locator::Css("#nav-platform")).await.unwrap().is_displayed().await.unwrap());
    let token = c.execute("return sessionStorage.getItem('novacula-token')", vec![]).await.unwrap().as_str().unwrap().to_string();
    c.goto(&format!("{url}/#/members")).await.unwrap();
    let name = until(&c, "#org-name-input", "visible", async |e| e.is_displayed().await.unwrap_or(false)).await;
    name.clear().await.unwrap();
    name.send_keys("Globex Support").await.unwrap();
    c.find(Locator::Css("#org-save")).await.unwrap().click().await.unwrap();
    until(&c, "#org-name", "shows the new name", async |e| e.text().await.unwrap_or_default() == "Globex Support").await;
    shot(&c, "12-impersonating").await;
    let page: AuditPage = bob.get("/api/v1/audit?action=organization.renamed").await.unwrap();
    let renamed = &page.entries[0];
    assert_eq!((renamed.action, renamed.actor_id.as_str(), renamed.impersonator.as_deref()), (Action::OrganizationRenamed, "bob", Some(OWNER)));
    assert_eq!(serde_json::to_value(renamed.source).unwrap(), "ui");

    // Ending it: the impersonated session dies, alice is back on the platform page.
    c.find(Locator::Css("#end-impersonation")).await.unwrap().click().await.unwrap();
    until(&c, "#who", "names alice again", async |e| e.text().await.unwrap_or_default().starts_with(OWNER)).await;
    assert!(!c.find(Locator::Css("#impersonation-banner")).await.unwrap().is_displayed().await.unwrap());
    let ended = novacula_client::HttpApi::new(&url, Some(token)).unwrap();
    assert_eq!(ended.me().await.unwrap_err().status(), Some(401));

    // Deactivate globex from the platform page: bob is refused.
    until(&c, "[data-org-deactivate='globex']", "offers Deactivate", async |e| e.is_displayed().await.unwrap_or(false)).await.click().await.unwrap();
    c.accept_alert().await.unwrap();
    until(&c, "tr[data-platform-org='globex'] .badge", "shows deactivated", async |e| e.text().await.unwrap_or_default() == "deactivated").await;
    assert_eq!(bob.get::<Value>("/api/v1/nodes").await.unwrap_err().status(), Some(403));
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sets_alert_rules_channels_and_a_nodes_policy_and_shows_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let (url, owner) = control_plane().await;
    // a receiver for the webhook channel, recording what it gets
    let got: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let g = got.clone();
    let app = axum::Router::new().fallback(axum::routing::post(move |body: String| async move {
        g.lock().unwrap().push(serde_json::from_str::<Value>(&body).unwrap());
        "ok"
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // a real agent runs a stand-in node, whose reports carry its disk
    let _agent = live::agent_with_demo_node(&url, &owner, &dir.path().join("agent"), "edge-a", "alerted").await;
    wait_for_node(&owner, "alerted", |n| n["observed"]["disk"]["totalBytes"].as_u64().unwrap_or(0) > 0).await;

    let (_driver, c) = browser(&dir.path().join("profile")).await;
    login(&c, &url, OWNER).await;
    c.goto(&format!("{url}/#/alerts")).await.unwrap();
    let threshold = until(&c, "#rule-disk-threshold", "shows the default", async |e| e.prop("value").await.ok().flatten().as_deref() == Some("85")).await;
    // 100 %: whatever this machine's disk holds, the node's own threshold decides below
    threshold.clear().await.unwrap();
    threshold.send_keys("100").await.unwrap();
    c.find(Locator::Css("#alert-settings-save")).await.unwrap().click().await.unwrap();
    until(&c, "#alert-settings-saved", "says saved", async |e| e.text().await.unwrap_or_default() == "saved").await;
    let settings: Value = owner.get("/api/v1/alerts/settings").await.unwrap();
    assert_eq!(settings["diskUsageThresholdPercent"], 100);
    assert!(owner.get::<Vec<Value>>("/api/v1/incidents").await.unwrap().is_empty(), "no disk is 100 % full");

    // a webhook channel, tested from its row
    c.find(Locator::Css("#channel-name")).await.unwrap().send_keys("ops").await.unwrap();
    c.find(Locator::Css("#channel-url")).await.unwrap().send_keys(&hook).await.unwrap();
    c.find(Locator::Css("#channel-secret")).await.unwrap().send_keys("s3cret").await.unwrap();
    c.find(Locator::Css("#channel-add")).await.unwrap().click().await.unwrap();
    until(&c, "#channels-table tr[data-channel] td", "lists the channel", async |e| e.text().await.unwrap_or_default() == "ops").await;
    c.find(Locator::Css("[data-channel-test]")).await.unwrap().click().await.unwrap();
    until(&c, "[data-channel-result]", "reports the test delivered", async |e| e.text().await.unwrap_or_default().starts_with("delivered (200")).await;
    assert_eq!(got.lock().unwrap()[0]["status"], "test");

    // the node's own threshold of 1 % opens a disk_usage incident, delivered to the channel
    let row = "#policies tr[data-policy='alerted']";
    let input = until(&c, &format!("{row} input[data-field='diskUsageThresholdPercent']"), "offers the node's threshold", async |e| {
        e.is_displayed().await.unwrap_or(false)
    })
    .await;
    input.send_keys("1").await.unwrap();
    c.find(Locator::Css(&format!("{row} [data-policy-save]"))).await.unwrap().click().await.unwrap();
    until(&c, &format!("{row} .effective-threshold"), "shows 1 % in effect", async |e| e.text().await.unwrap_or_default() == "1 %").await;
    until(&c, "#incidents-open tbody tr[data-incident] td:nth-child(2)", "lists the open incident", async |e| {
        e.text().await.unwrap_or_default() == "disk_usage"
    })
    .await;
    // newest first: the incident's delivery above the Test's
    until(&c, "#deliveries tbody tr[data-delivery]", "shows the incident's delivery", async |e| {
        let row = e.text().await.unwrap_or_default();
        row.contains("disk_usage open") && row.contains("delivered")
    })
    .await;
    assert!(got.lock().unwrap().iter().any(|n| n["rule"] == "disk_usage" && n["status"] == "open" && n["subject"]["name"] == "alerted"));
    shot(&c, "12-alerts").await;

    // back to inherit: 100 % is not reached, the incident resolves
    let input = c.find(Locator::Css(&format!("{row} input[data-field='diskUsageThresholdPercent']"))).await.unwrap();
    input.clear().await.unwrap();
    c.find(Locator::Css(&format!("{row} [data-policy-save]"))).await.unwrap().click().await.unwrap();
    until(&c, "#incidents-open tbody td", "shows nothing firing", async |e| e.text().await.unwrap_or_default() == "Nothing is firing.").await;
    until(&c, "#incidents-recent tbody tr[data-incident] .badge", "shows it resolved", async |e| {
        e.attr("data-value").await.ok().flatten().as_deref() == Some("resolved")
    })
    .await;

    // a member sees incidents, but neither channels nor a way to change the rules
    add_user(&owner, "watcher", "member").await;
    c.find(Locator::Css("#logout")).await.unwrap().click().await.unwrap();
    login(&c, &url, "watcher").await;
    c.goto(&format!("{url}/#/alerts")).await.unwrap();
    until(&c, "#incidents-recent tbody tr[data-incident]", "lists the incident", async |e| e.is_displayed().await.unwrap_or(false)).await;
    assert!(!c.find(Locator::Css("#alert-channels")).await.unwrap().is_displayed().await.unwrap(), "channels are for owners and admins");
    assert!(!c.find(Locator::Css("#alert-settings-save")).await.unwrap().is_enabled().await.unwrap());
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_streams_a_nodes_log_with_level_filter_pause_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (url, owner) = control_plane().await;
    let _agent = live::agent_with_demo_node(&url, &owner, &dir.path().join("agent"), "edge-l", "chatty").await;
    let started = "stand-in node chatty client standin 1.0.0 started";
    let lines = async |c: &Client| -> Vec<String> {
        let mut out = vec![];
        for e in c.find_all(Locator::Css("#logs .log-line")).await.unwrap() {
            out.push(e.text().await.unwrap());
        }
        out
    };

    let (_driver, c) = browser(&dir.path().join("profile")).await;
    login(&c, &url, OWNER).await;
    c.goto(&format!("{url}/#/nodes/chatty")).await.unwrap();
    until(&c, "#logs .log-line", "shows the replayed line", async |e| e.text().await.unwrap_or_default() == started).await;
    until(&c, "#logs-status", "says it streams", async |e| e.text().await.unwrap_or_default() == "streaming").await;
    shot(&c, "13-node-logs").await;

    // a level above the line's: nothing; back to all: the line again
    c.find(Locator::Css("#logs-level option[value='warn']")).await.unwrap().click().await.unwrap();
    until(&c, "#logs-status", "streams again", async |e| e.text().await.unwrap_or_default() == "streaming").await;
    assert!(lines(&c).await.is_empty(), "an info line under a warn filter");
    c.find(Locator::Css("#logs-level option[value='']")).await.unwrap().click().await.unwrap();
    until(&c, "#logs .log-line", "shows the line again", async |e| e.text().await.unwrap_or_default() == started).await;

    // paused, a restart's line is held, not lost; resumed, it shows
    c.find(Locator::Css("#logs-pause")).await.unwrap().click().await.unwrap();
    let _: Value = owner.call(novacula_client::Method::POST, "/api/v1/nodes/chatty/lifecycle", Some(&json!({"action": "restart"}))).await.unwrap();
    until(&c, "#logs-status", "holds the new line", async |e| e.text().await.unwrap_or_default().contains("paused, 1 new line held")).await;
    assert_eq!(lines(&c).await, [started], "nothing added while paused");
    c.find(Locator::Css("#logs-pause")).await.unwrap().click().await.unwrap();
    assert_eq!(lines(&c).await, [started, started], "the held line, on resume");

    // clear empties the pane; the stream goes on
    c.find(Locator::Css("#logs-clear")).await.unwrap().click().await.unwrap();
    assert!(lines(&c).await.is_empty());
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_node_page_shows_sync_tiles_and_a_day_of_head_and_peers() {
    use novacula_core::{DiskUsage, ObservedNodeState, ObservedNodeStatus, SyncMetrics};
    let dir = tempfile::tempdir().unwrap();
    let cp = common::Cp::with_orgs(novacula_control_plane::Config::default()).await;
    let (alice, edge) = cp.alice_and_edge().await;
    let rev = common::deploy(&alice, "edge-1", "geth-1").await.unwrap()["revision"].as_u64().unwrap();
    let report = |head: u64, peers: u32| {
        let mut o: ObservedNodeState = common::obs("geth-1", rev, ObservedNodeStatus::Syncing);
        o.processes[0].sync = Some(SyncMetrics::new(head, 1000, peers));
        o.disk = Some(DiskUsage { used_bytes: 5 << 30, free_bytes: 60 << 30, total_bytes: 100 << 30 });
        o
    };
    edge.report("edge-1", vec![report(100, 3)]).await.unwrap();
    cp.advance(Duration::from_secs(61));
    edge.sync_executor(&common::sync_req("edge-1", novacula_core::ExecutorKind::Agent, "1.0.0")).await.unwrap();
    edge.report("edge-1", vec![report(200, 5)]).await.unwrap();

    let (_driver, c) = browser(&dir.path().join("profile")).await;
    login(&c, &cp.url, "alice").await;
    c.goto(&format!("{}/#/nodes/geth-1", cp.url)).await.unwrap();
    value_is(&c, "#tile-head", "200").await;
    value_is(&c, "#tile-peers", "5").await;
    value_is(&c, "#tile-sync", "20.00 %").await;
    value_is(&c, "#tile-disk", "5.0 GiB").await;
    let tile = c.find(Locator::Css("#tile-disk")).await.unwrap().text().await.unwrap();
    assert!(tile.contains("40 % of its disk full"), "{tile}");
    let chart = until(&c, "#history-chart", "draws two points", async |e| e.attr("data-points").await.ok().flatten().as_deref() == Some("2")).await;
    assert!(chart.text().await.unwrap().contains("head 100 to 200"));
    let processes: Vec<String> = {
        let mut v = vec![];
        for o in c.find_all(Locator::Css("#logs-process option")).await.unwrap() {
            v.push(o.text().await.unwrap());
        }
        v
    };
    assert_eq!(processes, ["execution", "consensus"], "one process at a time, chosen from the spec");
    shot(&c, "14-node-tiles").await;
    c.close().await.unwrap();
}

/// Set a form field's value as a user would, firing `input` and `change`.
async fn set(c: &Client, css: &str, value: &str) {
    until(c, css, "is there", async |_| true).await;
    c.execute(
        "const e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![Value::String(css.into()), Value::String(value.into())],
    )
    .await
    .unwrap();
}

/// The values of a select's options.
async fn options(c: &Client, css: &str) -> Vec<String> {
    let v = c.execute("return [...document.querySelectorAll(arguments[0] + ' option')].map(o => o.value)", vec![Value::String(css.into())]).await.unwrap();
    serde_json::from_value(v).unwrap()
}

async fn field(c: &Client, css: &str) -> String {
    until(c, css, "is there", async |_| true).await.prop("value").await.unwrap().unwrap_or_default()
}

/// The wizard's review step: the spec the control plane built, or the problems it listed.
async fn review(c: &Client) -> Value {
    c.find(Locator::Css("#wz-review")).await.unwrap().click().await.unwrap();
    let pane = until(c, "#wz-review-pane", "shows the spec", async |e| e.is_displayed().await.unwrap_or(false)).await;
    let text = pane.find(Locator::Css("#wz-spec")).await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn deploy_reviewed(c: &Client, name: &str) {
    c.find(Locator::Css("#wz-deploy")).await.unwrap().click().await.unwrap();
    for _ in 0..100 {
        if c.current_url().await.unwrap().fragment() == Some(&format!("/nodes/{name}")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the wizard did not open node {name}'s page after deploying");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_deploy_wizard_offers_what_each_executor_runs_and_edits_a_node() {
    use novacula_core::wire::SyncExecutorRequest;
    let dir = tempfile::tempdir().unwrap();
    let (url, owner) = control_plane().await;
    // Executors as they sync: every real chain on a host; Ethereum only; a
    // cluster with its storage classes; and a real agent running the demo chain.
    let standard = novacula_executor::adapter::Adapters::standard().capabilities();
    let mut eth_only = standard.clone();
    eth_only.chains.retain(|c| c.chain == "ethereum");
    let mut cluster = standard.clone();
    cluster.storage_classes = Some(vec!["fast-ssd".into(), "standard".into()]);
    for (name, kind, caps) in [
        ("fleet-host", novacula_core::ExecutorKind::Agent, standard.clone()),
        ("eth-only", novacula_core::ExecutorKind::Agent, eth_only),
        ("cluster", novacula_core::ExecutorKind::Operator, cluster),
    ] {
        let exec = novacula_client::HttpApi::new(&url, Some(live::key_for(&owner, name).await)).unwrap();
        exec.sync_executor(&SyncExecutorRequest { kind, capabilities: Some(caps), ..live::sync_request(name) }).await.unwrap();
    }
    let _agent = start_agent(&url, &live::key_for(&owner, "web-edge").await, &dir.path().join("agent"), "web-edge");
    let (_driver, c) = browser(&dir.path().join("profile")).await;
    login(&c, &url, OWNER).await;
    let open_wizard = async || {
        c.goto(&format!("{url}/#/nodes")).await.unwrap();
        until(&c, "#wz-executor option[value='web-edge']", "lists the agent", async |_| true).await;
        c.find(Locator::Css("#deploy > summary")).await.unwrap().click().await.unwrap();
    };
    open_wizard().await;

    // the chains offered are the chosen executor's, and nothing else
    set(&c, "#wz-executor", "eth-only").await;
    assert_eq!(options(&c, "#wz-chain").await, ["ethereum"], "an executor without a chain never offers it");
    set(&c, "#wz-executor", "fleet-host").await;
    let every: Vec<String> = standard.chains.iter().map(|c| c.chain.clone()).collect();
    assert_eq!(options(&c, "#wz-chain").await, every);
    assert!(every.len() >= 5, "ethereum, bitcoin, bsc, tron, sui: {every:?}");
    set(&c, "#wz-executor", "web-edge").await;
    until(&c, "#wz-chain option[value='demo']", "offers the demo chain the agent runs", async |_| true).await;

    // Ethereum on the host: clients per role for the network, resources from its defaults,
    // a version below the network's floor marked at its field
    set(&c, "#wz-executor", "fleet-host").await;
    set(&c, "#wz-chain", "ethereum").await;
    set(&c, "#wz-network", "hoodi").await;
    set(&c, "#wz-node-type", "full").await;
    let hoodi = standard.chain("ethereum").unwrap().defaults("hoodi").unwrap();
    let exec_default = hoodi.resources.iter().find(|r| r.role == "execution").unwrap().resources;
    assert_eq!(field(&c, "#wz-cpu-execution").await, exec_default.cpu_millis.to_string());
    assert_eq!(field(&c, "#wz-disk").await, hoodi.disk_gib.to_string());
    assert!(options(&c, "#wz-client-execution").await.contains(&"geth".to_string()));
    set(&c, "#wz-client-execution", "geth").await;
    set(&c, "#wz-version-execution", "1.15.0").await;
    set(&c, "#wz-client-consensus", "lighthouse").await;
    set(&c, "#wz-version-consensus", "8.0.0").await;
    set(&c, "#wz-name", "eth-hoodi").await;
    c.find(Locator::Css("#wz-review")).await.unwrap().click().await.unwrap();
    until(&c, "#wz-problems li[data-code='version_below_network_minimum']", "names the version's problem", async |_| true).await;
    let version = c.find(Locator::Css("#wz-version-execution")).await.unwrap();
    assert_eq!(version.attr("aria-invalid").await.unwrap().as_deref(), Some("true"), "the version field is marked");
    shot(&c, "9-wizard-problem").await;
    set(&c, "#wz-version-execution", "1.15.6").await;
    let spec = review(&c).await;
    assert_eq!((spec["chain"].as_str(), spec["network"].as_str(), spec["clients"][0]["version"].as_str()), (Some("ethereum"), Some("hoodi"), Some("1.15.6")));
    assert_eq!(spec["clients"][0]["resources"]["cpuMillis"].as_u64(), Some(u64::from(exec_default.cpu_millis)));
    shot(&c, "9b-wizard-review").await;
    deploy_reviewed(&c, "eth-hoodi").await;
    let n = live::wait_for_node(&owner, "eth-hoodi", |_| true).await;
    assert_eq!((n["executor"].as_str(), n["spec"]["storage"][0]["sizeGib"].as_u64()), (Some("fleet-host"), Some(u64::from(hoodi.disk_gib))));

    // Bitcoin in the cluster: an archive node, a storage class of the cluster, typed settings
    open_wizard().await;
    set(&c, "#wz-executor", "cluster").await;
    assert_eq!(options(&c, "#wz-storage-class").await, ["", "fast-ssd", "standard"]);
    set(&c, "#wz-chain", "bitcoin").await;
    set(&c, "#wz-network", "mainnet").await;
    set(&c, "#wz-node-type", "archive").await;
    let mainnet = standard.chain("bitcoin").unwrap().defaults("mainnet").unwrap();
    assert_eq!(field(&c, "#wz-disk").await, mainnet.archive_disk_gib.to_string(), "an archive node gets its larger disk");
    assert_eq!(options(&c, "#wz-settings-node-onlynet").await, ["", "ipv4", "ipv6"], "an enum setting offers its values");
    set(&c, "#wz-version-node", "28.1.0").await;
    set(&c, "#wz-storage-class", "fast-ssd").await;
    set(&c, "#wz-settings-node-dbcache", "2").await;
    set(&c, "#wz-settings-node-onlynet", "ipv4").await;
    set(&c, "#wz-name", "btc-main").await;
    c.find(Locator::Css("#wz-review")).await.unwrap().click().await.unwrap();
    until(&c, "#wz-problems li[data-code='override_value_invalid']", "refuses a cache below its minimum", async |_| true).await;
    assert_eq!(c.find(Locator::Css("#wz-settings-node")).await.unwrap().attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    set(&c, "#wz-settings-node-dbcache", "300").await;
    let spec = review(&c).await;
    assert_eq!(spec["clients"][0]["configOverrides"], json!({"dbcache": "300", "onlynet": "ipv4"}));
    assert_eq!(spec["storage"][0]["storageClass"].as_str(), Some("fast-ssd"));
    deploy_reviewed(&c, "btc-main").await;

    // every other chain of the host, on its first network: reviewed and deployed
    for (chain, version) in [("bsc", "1.7.8"), ("tron", "4.8.2"), ("sui", "1.78.0")] {
        open_wizard().await;
        set(&c, "#wz-executor", "fleet-host").await;
        set(&c, "#wz-chain", chain).await;
        set(&c, "#wz-version-node", version).await;
        let name = format!("{chain}-wizard");
        set(&c, "#wz-name", &name).await;
        let spec = review(&c).await;
        assert_eq!((spec["chain"].as_str(), spec["clients"][0]["version"].as_str()), (Some(chain), Some(version)));
        deploy_reviewed(&c, &name).await;
    }

    // Ink: two roles, and the L1 named by secrets the executor holds, asked for up front
    open_wizard().await;
    set(&c, "#wz-executor", "fleet-host").await;
    set(&c, "#wz-chain", "ink").await;
    set(&c, "#wz-version-execution", "2.8.2").await;
    set(&c, "#wz-version-rollup", "1.20.1").await;
    set(&c, "#wz-name", "ink-wizard").await;
    c.find(Locator::Css("#wz-review")).await.unwrap().click().await.unwrap();
    until(&c, "#wz-problems li[data-code='required'][data-field='clients[1].configOverrides.l1']", "asks for the L1 secret", async |_| true).await;
    let l1 = c.find(Locator::Css("[id='wz-settings-rollup-l1']")).await.unwrap();
    assert!(l1.is_displayed().await.unwrap(), "a secret the node needs is shown, not folded away");
    set(&c, "[id='wz-settings-rollup-l1']", "eth-l1").await;
    set(&c, "[id='wz-settings-rollup-l1.beacon']", "eth-beacon").await;
    let spec = review(&c).await;
    assert_eq!(spec["clients"][1]["configOverrides"], json!({"l1": "eth-l1", "l1.beacon": "eth-beacon"}));
    deploy_reviewed(&c, "ink-wizard").await;

    // the demo chain on the real agent: deployed and running
    open_wizard().await;
    set(&c, "#wz-executor", "web-edge").await;
    set(&c, "#wz-chain", "demo").await;
    set(&c, "#wz-version-main", "1.0.0").await;
    set(&c, "#wz-name", "wizard-demo").await;
    review(&c).await;
    deploy_reviewed(&c, "wizard-demo").await;
    value_is(&c, "#node-phase", "running").await;

    // edit: what the node's data is of is shown, not editable; the changes are counted and shown before saving
    c.goto(&format!("{url}/#/nodes/btc-main")).await.unwrap();
    until(&c, "#action-edit", "offers an edit", async |e| e.is_enabled().await.unwrap_or(false)).await.click().await.unwrap();
    let fixed = until(&c, "#edit-fixed", "shows the fixed fields", async |e| e.is_displayed().await.unwrap_or(false)).await.text().await.unwrap();
    assert!(fixed.contains("bitcoin") && fixed.contains("mainnet") && fixed.contains("archive") && fixed.contains("fast-ssd"), "{fixed}");
    assert_eq!(field(&c, "#edit-settings-0-dbcache").await, "300", "pre-filled from the spec");
    set(&c, "#edit-version-0", "28.2.0").await;
    set(&c, "#edit-settings-0-dbcache", "450").await;
    until(&c, "#edit-changed", "counts two changes", async |e| e.text().await.unwrap_or_default() == "2 changed").await;
    let diff = c.find(Locator::Css("#edit-diff")).await.unwrap().text().await.unwrap();
    assert!(diff.contains(r#"clients[0].version: "28.1.0" -> "28.2.0""#) && diff.contains(r#"clients[0].configOverrides.dbcache: "300" -> "450""#), "{diff}");
    shot(&c, "9c-edit-dialog").await;
    c.find(Locator::Css("#edit-save")).await.unwrap().click().await.unwrap();
    let n = live::wait_for_node(&owner, "btc-main", |n| n["spec"]["clients"][0]["version"] == "28.2.0").await;
    assert_eq!((n["revision"].as_u64(), n["spec"]["clients"][0]["configOverrides"]["dbcache"].as_str()), (Some(2), Some("450")));

    // the server refuses what the dialog does not offer: another node type is not an edit
    let mut other = n["spec"].clone();
    other["nodeType"] = json!("full");
    let err = owner.call::<Value, Value>(novacula_client::Method::PUT, "/api/v1/nodes/btc-main/spec", Some(&json!({"spec": other}))).await.unwrap_err();
    assert!(err.to_string().contains("cannot change after deploy"), "{err}");
    c.close().await.unwrap();
}
