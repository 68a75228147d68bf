//! Invitations: who may invite as what, the single-use link (shown once and
//! mailed through a real SMTP exchange with a local sink), accepting as a new
//! or a signed-in user, resending, cancelling, expiry.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::{AuditFilter, HttpApi};
use novacula_control_plane::mail::MailConfig;
use novacula_control_plane::Config;
use novacula_core::audit::Action;
use novacula_core::authz::Role;
use novacula_core::wire::InvitationState;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A local SMTP server that accepts every message and keeps it (envelope recipient, data).
struct Sink {
    port: u16,
    mails: Arc<Mutex<Vec<(String, String)>>>,
}

async fn smtp_sink() -> Sink {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails: Arc<Mutex<Vec<(String, String)>>> = Default::default();
    let kept = mails.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = conn.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let (mut to, mut data, mut in_data) = (String::new(), String::new(), false);
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            kept.lock().unwrap().push((to.clone(), std::mem::take(&mut data)));
                            write.write_all(b"250 2.0.0 kept\r\n").await.unwrap();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "RCPT" => {
                            to = line.split_once(':').map(|(_, a)| a.trim().trim_matches(['<', '>']).to_string()).unwrap_or_default();
                            b"250 2.1.5 ok\r\n"
                        }
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    Sink { port, mails }
}

/// A quoted-printable body as text (soft line breaks joined, `=XX` decoded).
fn unquote(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mail_config(port: u16) -> Config {
    Config {
        mail: Some(MailConfig {
            smtp_url: format!("smtp://127.0.0.1:{port}"),
            from: "Novacula <novacula@cp.example>".into(),
            public_url: "https://cp.example/".into(),
        }),
        ..Config::default()
    }
}

#[tokio::test]
async fn an_invitation_is_mailed_shown_once_and_accepted_by_a_new_account() {
    let sink = smtp_sink().await;
    let cp = Cp::with_orgs(mail_config(sink.port)).await;
    let alice = cp.login("alice").await;

    // who may invite as what: nobody as owner, admins only members
    assert_eq!(alice.invite("x@example.com", Role::Owner).await.unwrap_err().status(), Some(403));
    assert_eq!(alice.invite("not an address", Role::Member).await.unwrap_err().status(), Some(400));
    alice.create_user(&novacula_core::wire::CreateUserRequest { username: "ada".into(), password: PASSWORD.into(), role: Role::Admin }).await.unwrap();
    let ada = cp.login("ada").await;
    let e = ada.invite("x@example.com", Role::Operator).await.unwrap_err();
    assert!(e.status() == Some(403) && e.to_string().contains("admins members"), "{e}");
    ada.invite("m@example.com", Role::Member).await.unwrap();

    // alice invites sam as operator: mailed, with the link the answer shows once
    let inv = alice.invite("sam@example.com", Role::Operator).await.unwrap();
    assert!(inv.emailed && inv.email_error.is_none(), "{inv:?}");
    assert!(inv.token.starts_with("nvi_") && inv.path == format!("/#/invite/{}", inv.token));
    let (to, body) = sink.mails.lock().unwrap().iter().find(|(to, _)| to == "sam@example.com").cloned().expect("mailed to sam");
    assert_eq!(to, "sam@example.com");
    let body = unquote(&body);
    assert!(body.contains(&format!("https://cp.example/#/invite/{}", inv.token)), "{body}");
    assert!(body.contains("Subject: Join acme on Novacula") && body.contains("as operator"), "{body}");
    let listed = alice.invitations().await.unwrap();
    assert!(listed.iter().any(|i| i.id == inv.invitation.id && i.state == InvitationState::Pending));
    assert!(!serde_json::to_string(&listed).unwrap().contains(&inv.token), "the token is never listed");

    // the holder sees what it offers and accepts with a new account
    let anon = cp.anon();
    let offer = anon.preview_invitation(&inv.token).await.unwrap();
    assert_eq!((offer.org_id.as_str(), offer.role, offer.invited_by.as_str()), ("acme", Role::Operator, "alice"));
    assert_eq!(anon.preview_invitation("nvi_nope_00").await.unwrap_err().status(), Some(404));
    let taken = anon.accept_invitation(&inv.token, Some(("ada", PASSWORD))).await.unwrap_err();
    assert!(taken.status() == Some(409) && taken.to_string().contains("sign in"), "{taken}");
    let session = anon.accept_invitation(&inv.token, Some(("sam", PASSWORD))).await.unwrap();
    assert_eq!((session.user.username.as_str(), session.user.org_id.as_str(), session.user.role), ("sam", "acme", Role::Operator));
    let sam = HttpApi::new(&cp.url, Some(session.token)).unwrap();
    assert_eq!(sam.me().await.unwrap().user.role, Role::Operator);
    // single use
    let again = anon.accept_invitation(&inv.token, Some(("sam2", PASSWORD))).await.unwrap_err();
    assert!(again.status() == Some(409) && again.to_string().contains("accepted already"), "{again}");
    let listed = alice.invitations().await.unwrap();
    let accepted = listed.iter().find(|i| i.id == inv.invitation.id).unwrap();
    assert_eq!((accepted.state, accepted.accepted_by.as_deref()), (InvitationState::Accepted, Some("sam")));

    // audited
    let log = alice.audit(0, 100, &AuditFilter { target: Some(inv.invitation.id.clone()), ..Default::default() }).await.unwrap().entries;
    assert_eq!(log.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::InvitationAccepted, Action::InvitationCreated]);
    assert_eq!(log[0].actor_id, "sam");
    cp.stop().await;
}

#[tokio::test]
async fn a_signed_in_user_joins_a_second_organization_and_links_are_resent_cancelled_or_expire() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, bob) = (cp.login("alice").await, cp.login("bob").await);

    // without SMTP the link is shown, not mailed
    let inv = bob.invite("alice@example.com", Role::Member).await.unwrap();
    assert!(!inv.emailed && inv.email_error.is_none());
    // alice, signed in, joins globex: a session there; both organizations listed
    let joined = alice.accept_invitation(&inv.token, None).await.unwrap();
    assert_eq!((joined.user.org_id.as_str(), joined.user.role), ("globex", Role::Member));
    let orgs: Vec<String> = alice.orgs().await.unwrap().into_iter().map(|o| o.org_id).collect();
    assert_eq!(orgs, ["acme", "globex"]);
    let member_again = bob.invite("alice@example.com", Role::Member).await.unwrap();
    let e = alice.accept_invitation(&member_again.token, None).await.unwrap_err();
    assert!(e.status() == Some(409) && e.to_string().contains("member of globex already"), "{e}");

    // resent: the old link stops working, the new one works
    let first = bob.invite("carol@example.com", Role::Operator).await.unwrap();
    // not twice within a minute
    assert_eq!(bob.resend_invitation(&first.invitation.id).await.unwrap_err().status(), Some(429));
    cp.advance(Duration::from_secs(61));
    let second = bob.resend_invitation(&first.invitation.id).await.unwrap();
    assert_eq!(bob.resend_invitation(&first.invitation.id).await.unwrap_err().status(), Some(429));
    assert_ne!(first.token, second.token);
    assert_eq!(cp.anon().preview_invitation(&first.token).await.unwrap_err().status(), Some(404));
    cp.anon().preview_invitation(&second.token).await.unwrap();
    // cancelled: refused
    bob.cancel_invitation(&first.invitation.id).await.unwrap();
    let e = cp.anon().accept_invitation(&second.token, Some(("carol", PASSWORD))).await.unwrap_err();
    assert!(e.status() == Some(409) && e.to_string().contains("cancelled"), "{e}");
    assert_eq!(bob.resend_invitation(&first.invitation.id).await.unwrap_err().status(), Some(409));

    // expired after 7 days, until resent
    let late = bob.invite("dan@example.com", Role::Member).await.unwrap();
    cp.advance(Duration::from_secs(8 * 24 * 3600));
    let bob = cp.login("bob").await;
    let e = cp.anon().accept_invitation(&late.token, Some(("dan", PASSWORD))).await.unwrap_err();
    assert!(e.status() == Some(409) && e.to_string().contains("expired"), "{e}");
    assert_eq!(bob.invitations().await.unwrap().iter().find(|i| i.id == late.invitation.id).unwrap().state, InvitationState::Expired);
    let renewed = bob.resend_invitation(&late.invitation.id).await.unwrap();
    cp.anon().accept_invitation(&renewed.token, Some(("dan", PASSWORD))).await.unwrap();

    // an invitation outlives nobody's rights: once its sender is gone, it is refused
    bob.create_user(&novacula_core::wire::CreateUserRequest { username: "eve".into(), password: PASSWORD.into(), role: Role::Admin }).await.unwrap();
    let eve = cp.login("eve").await;
    let hers = eve.invite("fay@example.com", Role::Member).await.unwrap();
    bob.remove_user("eve").await.unwrap();
    let e = cp.anon().accept_invitation(&hers.token, Some(("fay", PASSWORD))).await.unwrap_err();
    assert!(e.status() == Some(409) && e.to_string().contains("can no longer invite"), "{e}");
    // a made-up token is refused before any password is hashed
    assert_eq!(cp.anon().accept_invitation("nvi_nope_00", Some(("gus", PASSWORD))).await.unwrap_err().status(), Some(404));

    // another organization's invitations are out of reach
    assert_eq!(cp.login("alice").await.cancel_invitation(&renewed.invitation.id).await.unwrap_err().status(), Some(404));
    cp.stop().await;
}

#[tokio::test]
async fn an_unreachable_mail_server_is_reported_and_the_link_still_works() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again: nobody listens
    let cp = Cp::with_orgs(mail_config(port)).await;
    let alice = cp.login("alice").await;
    let inv = alice.invite("sam@example.com", Role::Member).await.unwrap();
    assert!(!inv.emailed && inv.email_error.as_deref().is_some_and(|e| e.contains("sending mail")), "{inv:?}");
    cp.anon().accept_invitation(&inv.token, Some(("sam", PASSWORD))).await.unwrap();
    cp.stop().await;
}

#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}
