//! Invitations: owners and admins invite someone by email with a role; the
//! invitation is a single-use token (`nvi_<id>_<secret>`, stored hashed,
//! shown once, mailed when SMTP is configured) that expires. Accepting it
//! adds the signed-in user to the organization, or creates the account.

use super::audit::{self, Who};
use super::credentials::{ct_eq, hash_password, new_salt, sha256_hex};
use super::orgs::check_user_fields;
use super::users::{Caller, NewSession};
use super::{Result, ServiceError};
use crate::state::AppState;
use crate::store::model::{Invitation, Member, User};
use crate::store::{Write, INVITATIONS, USERS};
use novacula_core::audit::{Action, Source};
use novacula_core::entropy::random_hex;
use novacula_core::wire::{
    AcceptInvitationRequest, CreateInvitationRequest, CreatedInvitation, InvitationPreview, InvitationState, InvitationView, LoginResponse,
};
use novacula_core::Timestamp;
use std::time::Duration;

pub const INVITATION_PREFIX: &str = "nvi";
/// How long an invitation can be accepted.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The console's page for a token.
fn path_of(token: &str) -> String {
    format!("/#/invite/{token}")
}

fn check_email(email: &str) -> Result<()> {
    // The document's pattern, character for character (JSON Schema's `\s` has U+FEFF too).
    let ok = email.chars().count() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\u{feff}')
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::BadInput(format!("{email:?} is not an email address")))
    }
}

/// A fresh secret for invitation `id`: the token and its stored hash.
fn new_token(s: &AppState, id: &str) -> (String, String) {
    let secret = random_hex(s.entropy.as_ref(), 32);
    (format!("{INVITATION_PREFIX}_{id}_{secret}"), sha256_hex(&secret))
}

/// Mail the invitation, when SMTP is configured: `(emailed, why not)`.
async fn mail(s: &AppState, inv: &Invitation, token: &str) -> (bool, Option<String>) {
    let Some(m) = &s.mailer else { return (false, None) };
    let link = format!("{}{}", m.public_url, path_of(token));
    let body = format!(
        "{} invites you to the organization {} on Novacula, as {}.\n\nAccept within 7 days: {link}\n\nIf you did not expect this, ignore this mail.\n",
        inv.invited_by,
        inv.org_id,
        inv.role.as_str()
    );
    match m.send(&inv.email, &format!("Join {} on Novacula", inv.org_id), body).await {
        Ok(()) => (true, None),
        Err(e) => {
            tracing::warn!(invitation = %inv.id, error = %e, "invitation not mailed");
            (false, Some(e.to_string()))
        }
    }
}

/// Invite `req.email` to `by`'s organization as `req.role`.
pub async fn create(s: &AppState, by: &Caller, req: &CreateInvitationRequest) -> Result<CreatedInvitation> {
    if !by.role.can_invite(req.role) {
        return Err(ServiceError::Forbidden(format!(
            "role {} may not invite as {} (owners invite admins, operators and members; admins members)",
            by.role.as_str(),
            req.role.as_str()
        )));
    }
    check_email(&req.email)?;
    let now = s.now();
    let id = s.random_hex(6);
    let (token, secret_hash) = new_token(s, &id);
    let inv = Invitation {
        id: id.clone(),
        org_id: by.org.clone(),
        email: req.email.clone(),
        role: req.role,
        secret_hash,
        invited_by: by.user.username.clone(),
        created_at: now,
        expires_at: now.plus(INVITATION_TTL),
        accepted_by: None,
        cancelled: false,
    };
    s.store.write(|w| {
        if w.get::<Invitation>(INVITATIONS, &id)?.is_some() {
            return Err(ServiceError::Busy("an invitation id was drawn twice; retry".into()));
        }
        w.put(INVITATIONS, &id, &inv)?;
        let details = audit::details([("email", inv.email.clone()), ("role", inv.role.as_str().into())]);
        Ok(audit::record(w, &by.org, now, &by.who(), Action::InvitationCreated, &id, details)?)
    })?;
    let (emailed, email_error) = mail(s, &inv, &token).await;
    Ok(CreatedInvitation { path: path_of(&token), token, emailed, email_error, invitation: inv.view(now) })
}

/// The organization's invitations, newest first.
pub fn list(s: &AppState, org: &str) -> Result<Vec<InvitationView>> {
    let now = s.now();
    let all: Vec<(String, Invitation)> = s.store.read(|r| r.scan(INVITATIONS, ""))?;
    let mut mine: Vec<InvitationView> = all.into_iter().map(|(_, i)| i).filter(|i| i.org_id == org).map(|i| i.view(now)).collect();
    mine.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
    Ok(mine)
}

/// Invitation `id` of `org`, or 404.
fn of_org(w: &Write, org: &str, id: &str) -> Result<Invitation> {
    w.get::<Invitation>(INVITATIONS, id)?.filter(|i| i.org_id == org).ok_or_else(|| ServiceError::NotFound(format!("no invitation {id:?}")))
}

/// A new token and expiry for an invitation not yet accepted or cancelled; the old token stops working.
/// How long after a send the same invitation may be sent again.
pub const RESEND_GAP: std::time::Duration = std::time::Duration::from_secs(60);

pub async fn resend(s: &AppState, by: &Caller, id: &str) -> Result<CreatedInvitation> {
    let now = s.now();
    let (token, secret_hash) = new_token(s, id);
    let inv = s.store.write(|w| {
        let mut inv = of_org(w, &by.org, id)?;
        if matches!(inv.state(now), InvitationState::Accepted | InvitationState::Cancelled) {
            return Err(ServiceError::Conflict(format!("invitation {id:?} is {}", state_word(inv.state(now)))));
        }
        if !by.role.can_invite(inv.role) {
            return Err(ServiceError::Forbidden(format!("role {} may not invite as {}", by.role.as_str(), inv.role.as_str())));
        }
        // Sent last when its lifetime began: not again within the gap (nobody's mailbox is flooded).
        let sent = Timestamp(inv.expires_at.as_millis().saturating_sub(INVITATION_TTL.as_millis() as u64));
        if now.since(sent) < RESEND_GAP {
            let wait = RESEND_GAP.saturating_sub(now.since(sent)).as_secs().max(1);
            return Err(ServiceError::Throttled(format!("invitation {id:?} was sent less than a minute ago; resend in {wait} s")));
        }
        inv.secret_hash = secret_hash;
        inv.expires_at = now.plus(INVITATION_TTL);
        w.put(INVITATIONS, id, &inv)?;
        audit::record(w, &by.org, now, &by.who(), Action::InvitationResent, id, audit::details([("email", inv.email.clone())]))?;
        Ok::<_, ServiceError>(inv)
    })?;
    let (emailed, email_error) = mail(s, &inv, &token).await;
    Ok(CreatedInvitation { path: path_of(&token), token, emailed, email_error, invitation: inv.view(now) })
}

pub fn cancel(s: &AppState, by: &Caller, id: &str) -> Result<InvitationView> {
    let now = s.now();
    s.store.write(|w| {
        let mut inv = of_org(w, &by.org, id)?;
        if inv.state(now) == InvitationState::Accepted {
            return Err(ServiceError::Conflict(format!("invitation {id:?} was accepted; remove the member instead")));
        }
        if !inv.cancelled {
            inv.cancelled = true;
            w.put(INVITATIONS, id, &inv)?;
            audit::record(w, &by.org, now, &by.who(), Action::InvitationCancelled, id, audit::details([("email", inv.email.clone())]))?;
        }
        Ok(inv.view(now))
    })
}

fn state_word(state: InvitationState) -> &'static str {
    match state {
        InvitationState::Pending => "pending",
        InvitationState::Accepted => "accepted already",
        InvitationState::Expired => "expired; ask for it to be resent",
        InvitationState::Cancelled => "cancelled",
    }
}

fn unknown() -> ServiceError {
    ServiceError::NotFound("no such invitation; check the link".into())
}

/// A token's `(id, secret)`.
fn parse(token: &str) -> Result<(&str, &str)> {
    token.strip_prefix(INVITATION_PREFIX).and_then(|r| r.strip_prefix('_')).and_then(|r| r.split_once('_')).ok_or_else(unknown)
}

/// The pending invitation a token is for; the same answer for a wrong or
/// unknown token, while a used, cancelled or expired one says so.
fn pending_of(found: Option<Invitation>, secret: &str, now: Timestamp) -> Result<Invitation> {
    let inv = found.ok_or_else(unknown)?;
    if !ct_eq(&inv.secret_hash, &sha256_hex(secret)) {
        return Err(unknown());
    }
    match inv.state(now) {
        InvitationState::Pending => Ok(inv),
        other => Err(ServiceError::Conflict(format!("this invitation is {}", state_word(other)))),
    }
}

/// [`pending_of`] in a write transaction.
fn pending(w: &Write, token: &str, now: Timestamp) -> Result<Invitation> {
    let (id, secret) = parse(token)?;
    pending_of(w.get(INVITATIONS, id)?, secret, now)
}

/// [`pending_of`] in a read transaction: no writer is held for a visitor.
fn pending_read(s: &AppState, token: &str, now: Timestamp) -> Result<Invitation> {
    let (id, secret) = parse(token)?;
    pending_of(s.store.read(|r| r.get(INVITATIONS, id))?, secret, now)
}

/// What a token offers, for whoever holds it.
pub fn preview(s: &AppState, token: &str) -> Result<InvitationPreview> {
    let inv = pending_read(s, token, s.now())?;
    Ok(InvitationPreview { org_id: inv.org_id, role: inv.role, email: inv.email, invited_by: inv.invited_by, expires_at: inv.expires_at })
}

/// Well-formed, but not for this caller: 422.
fn invalid(message: &str) -> ServiceError {
    ServiceError::Invalid { message: message.into(), details: vec![] }
}

/// Accept: the signed-in `user` joins, or (no session) a new account
/// `req.username` is created; either way the answer is a session in the
/// invited organization.
pub async fn accept(s: &AppState, user: Option<User>, source: Source, req: &AcceptInvitationRequest) -> Result<LoginResponse> {
    // The token first: nobody makes the server hash a password without a valid one.
    pending_read(s, &req.token, s.now())?;
    let new_account = match (&user, &req.username, &req.password) {
        (Some(_), None, None) => None,
        (Some(_), _, _) => return Err(invalid("signed in: accept without username and password")),
        (None, Some(u), Some(p)) => {
            check_user_fields(u, p)?;
            let (password, salt) = (p.clone(), new_salt(s.entropy.as_ref()));
            Some((u.clone(), s.hash_pool.run(move || hash_password(&password, salt)).await?))
        }
        (None, _, _) => return Err(invalid("sign in to accept as yourself, or give a username and password for a new account")),
    };
    let now = s.now();
    let session = NewSession::draw(s, now);
    let (account, inv) = s.store.write(|w| {
        let mut inv = pending(w, &req.token, now)?;
        // Whoever sent it must still be there, allowed to invite as that role.
        let sender = w.member(&inv.org_id, &inv.invited_by)?.map(|m| m.role);
        if !sender.is_some_and(|r| r.can_invite(inv.role)) {
            return Err(ServiceError::Conflict(format!("{} can no longer invite as {}; ask for a new invitation", inv.invited_by, inv.role.as_str())));
        }
        if w.org_deactivated(&inv.org_id)? {
            return Err(ServiceError::Conflict(format!("organization {} is deactivated", inv.org_id)));
        }
        let account = match (&user, &new_account) {
            (Some(u), _) => w.get::<User>(USERS, &u.username)?.ok_or_else(|| ServiceError::NotFound("no such user".into()))?,
            (None, Some((username, password_hash))) => {
                if w.get::<User>(USERS, username)?.is_some() {
                    return Err(ServiceError::Conflict(format!("user {username:?} exists: sign in as them, then accept")));
                }
                let u = User { username: username.clone(), password_hash: password_hash.clone(), created_at: now, disabled: false, session_epoch: 0 };
                w.put(USERS, username, &u)?;
                u
            }
            (None, None) => return Err(ServiceError::BadInput("no account to accept with".into())),
        };
        if w.member(&inv.org_id, &account.username)?.is_some() {
            return Err(ServiceError::Conflict(format!("you are a member of {} already", inv.org_id)));
        }
        w.put_member(&inv.org_id, &account.username, &Member { role: inv.role, added_at: now, added_by: inv.invited_by.clone() })?;
        inv.accepted_by = Some(account.username.clone());
        w.put(INVITATIONS, &inv.id, &inv)?;
        session.store(w, &account, &inv.org_id, now)?;
        let details =
            audit::details([("role", inv.role.as_str().into()), ("invitedBy", inv.invited_by.clone()), ("newAccount", new_account.is_some().to_string())]);
        audit::record(w, &inv.org_id, now, &Who::user(&account.username, source), Action::InvitationAccepted, &inv.id, details)?;
        Ok::<_, ServiceError>((account, inv))
    })?;
    tracing::info!(user = %account.username, org = %inv.org_id, role = inv.role.as_str(), "invitation accepted");
    let member = Member { role: inv.role, added_at: now, added_by: inv.invited_by.clone() };
    Ok(session.answer(&account, &inv.org_id, &member))
}
