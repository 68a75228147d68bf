//! What the platform's administrators do across organizations: see them
//! all, deactivate one, publish executor releases, and act as a user for
//! support. Who is one comes from the server's configuration
//! (`serve --platform-admin`), never from the API.

use super::audit::{self, Who};
use super::executors::upgrade_row;
use super::users::NewSession;
use super::{Result, ServiceError};
use crate::state::AppState;
use crate::store::model::{Member, Org, UpgradeRow, User};
use crate::store::{key, MEMBERS, ORGS, RELEASES, USERS};
use novacula_core::audit::{Action, Source};
use novacula_core::wire::{ImpersonateRequest, LoginResponse, PlatformOrgView, SetUpgradeRequest};
use std::time::Duration;

/// How long an impersonation lasts at most (it ends sooner by signing out).
pub const IMPERSONATION_TTL: Duration = Duration::from_secs(3600);

/// Whether `username` is one of the platform's administrators.
pub fn is_admin(s: &AppState, username: &str) -> bool {
    s.config.platform_admins.contains(username)
}

/// Check the configured administrators at start: each must be an account
/// that exists (else whoever first took the name would be one).
pub fn check_admins(s: &AppState) -> Result<()> {
    for name in &s.config.platform_admins {
        let user: Option<User> = s.store.read(|r| r.get(USERS, name))?;
        match user {
            None => return Err(ServiceError::BadInput(format!("platform administrator {name:?} has no account: create it (or name an existing one) first"))),
            Some(u) if u.disabled => tracing::warn!(user = %name, "platform administrator is disabled: cannot sign in"),
            Some(_) => tracing::info!(user = %name, "platform administrator"),
        }
    }
    Ok(())
}

/// Every organization, with its members' count and owner.
pub fn orgs(s: &AppState) -> Result<Vec<PlatformOrgView>> {
    Ok(s.store.read(|r| {
        let orgs: Vec<(String, Org)> = r.scan(ORGS, "")?;
        orgs.into_iter()
            .map(|(id, o)| {
                let members: Vec<(String, Member)> = r.scan(MEMBERS, &format!("{id}/"))?;
                let owner = members.iter().find(|(_, m)| m.role == novacula_core::authz::Role::Owner).map(|(k, _)| k[id.len() + 1..].to_string());
                Ok(PlatformOrgView { org: o.view(), members: members.len() as u64, owner })
            })
            .collect::<crate::store::Result<Vec<_>>>()
    })?)
}

/// The platform's releases, offered to executors of organizations that set none of their own.
pub fn releases(s: &AppState) -> Result<Vec<UpgradeRow>> {
    let rows: Vec<(String, UpgradeRow)> = s.store.read(|r| r.scan(RELEASES, ""))?;
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// Publish the release executors of a channel and kind run, in every
/// organization that has not set its own.
pub fn publish_release(s: &AppState, admin: &Who, req: SetUpgradeRequest) -> Result<UpgradeRow> {
    let now = s.now();
    let row = upgrade_row(req, admin, now)?;
    let (channel, kind) = (row.spec.channel.as_str(), row.kind.as_str());
    s.store.write(|w| {
        w.put(RELEASES, &key(&[channel, kind]), &row)?;
        let details = audit::details([("channel", channel.to_string()), ("kind", kind.to_string()), ("version", row.spec.version.clone())]);
        audit::record_platform(w, "", now, admin, Action::ReleasePublished, &format!("{channel}/{kind}"), details)
    })?;
    tracing::info!(channel, kind, version = %row.spec.version, by = %admin.name, "release published");
    Ok(row)
}

/// A session in which `admin` acts as `req.username` (in one of their
/// organizations) for [`IMPERSONATION_TTL`]. Recorded in that organization's
/// log and the platform's; everything done in it names both.
pub fn impersonate(s: &AppState, admin: &User, source: Source, req: &ImpersonateRequest) -> Result<LoginResponse> {
    if req.username == admin.username {
        return Err(ServiceError::Conflict("you cannot impersonate yourself".into()));
    }
    if is_admin(s, &req.username) {
        return Err(ServiceError::Forbidden("a platform administrator cannot be impersonated".into()));
    }
    let reason = req.reason.clone().unwrap_or_default();
    if reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(ServiceError::BadInput("reason must be at most 200 printable characters".into()));
    }
    let now = s.now();
    let session = NewSession { expires_at: now.plus(IMPERSONATION_TTL), ..NewSession::draw(s, now) };
    let (user, org, member) = s.store.write(|w| {
        let user: User = w.get(USERS, &req.username)?.ok_or_else(|| ServiceError::NotFound(format!("no user {:?}", req.username)))?;
        if user.disabled {
            return Err(ServiceError::Conflict(format!("user {:?} is disabled", user.username)));
        }
        let org = match &req.org {
            // Named by its id or its slug, as everywhere.
            Some(org) => w.org_id_of(org)?,
            None => w
                .orgs_of(&user.username)?
                .into_iter()
                .next()
                .ok_or_else(|| ServiceError::Conflict(format!("user {:?} is in no organization", user.username)))?,
        };
        let member = w
            .member(&org, &user.username)?
            .ok_or_else(|| ServiceError::NotFound(format!("user {:?} is not a member of organization {org:?}", user.username)))?;
        session.store_as(w, &user, &org, now, Some(&admin.username))?;
        let by = Who::user(&admin.username, source);
        let details = audit::details([("reason", reason.clone()), ("expiresAt", session.expires_at.as_millis().to_string())]);
        audit::record_in_both(w, &org, now, &by, Action::ImpersonationStarted, &user.username, details)?;
        Ok((user, org, member))
    })?;
    tracing::warn!(admin = %admin.username, user = %user.username, org = %org, "impersonation started");
    Ok(session.answer(&user, &org, &member))
}
