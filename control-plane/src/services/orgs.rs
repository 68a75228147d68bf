//! Organizations and their first owner.

use crate::services::credentials::{hash_password, new_salt};
use crate::services::{Result, ServiceError};
use crate::store::model::{Member, Org, User};
use crate::store::{Store, ORGS, USERS};
use novacula_core::authz::Role;
use novacula_core::entropy::Entropy;
use novacula_core::validate::valid_name;
use novacula_core::Timestamp;

/// Create an organization with an owner; refuses to overwrite an existing org or user.
pub fn create_org_with_owner(store: &Store, entropy: &dyn Entropy, now: Timestamp, org: &str, owner: &str, password: &str) -> Result<()> {
    if !valid_name(org) {
        return Err(ServiceError::BadInput(format!("organization name {org:?} must be a lowercase DNS label")));
    }
    check_user_fields(owner, password)?;
    store.write(|w| {
        if name_taken(w, org)? {
            return Err(ServiceError::Conflict(format!("organization {org:?} already exists")));
        }
        if w.get::<User>(USERS, owner)?.is_some() {
            return Err(ServiceError::Conflict(format!("user {owner:?} already exists")));
        }
        put_new(w, &Org::new(org, now))?;
        let user =
            User { username: owner.to_string(), password_hash: hash_password(password, new_salt(entropy)), created_at: now, disabled: false, session_epoch: 0 };
        w.put(USERS, owner, &user)?;
        w.put_member(org, owner, &Member { role: Role::Owner, added_at: now, added_by: "system".into() })?;
        Ok(())
    })
}

/// Whether `name` already names an organization, as its id or its slug
/// (either addresses it: no two organizations may share one).
fn name_taken(w: &crate::store::Write, name: &str) -> crate::store::Result<bool> {
    Ok(w.get::<Org>(ORGS, name)?.is_some() || w.get::<String>(crate::store::SLUGS, name)?.is_some())
}

/// Store a new organization and its slug.
fn put_new(w: &mut crate::store::Write, o: &Org) -> crate::store::Result<()> {
    w.put(ORGS, &o.id, o)?;
    w.put(crate::store::SLUGS, &o.slug, &o.id)
}

pub fn check_user_fields(username: &str, password: &str) -> Result<()> {
    if !valid_name(username) {
        return Err(ServiceError::BadInput(format!("username {username:?} must be lowercase letters, digits and '-'")));
    }
    if password.chars().count() < 8 {
        return Err(ServiceError::BadInput("password must be at least 8 characters".into()));
    }
    if password.chars().count() > crate::services::users::PASSWORD_CHARS_MAX {
        return Err(ServiceError::BadInput(format!("password must be at most {} characters", crate::services::users::PASSWORD_CHARS_MAX)));
    }
    Ok(())
}

pub fn org_exists(store: &Store, org: &str) -> Result<bool> {
    Ok(store.read(|r| r.get::<Org>(ORGS, org))?.is_some())
}

/// Organization `org`'s settings.
pub fn get(s: &crate::AppState, org: &str) -> Result<novacula_core::wire::OrgView> {
    let o: Org = s.store.read(|r| r.get(ORGS, org))?.ok_or_else(|| ServiceError::NotFound(format!("no organization {org:?}")))?;
    Ok(o.view())
}

/// Change `by`'s organization's name and, when given, its slug (its id stays).
pub fn update_settings(s: &crate::AppState, by: &super::users::Caller, name: &str, slug: Option<&str>) -> Result<novacula_core::wire::OrgView> {
    // The document's pattern and length, character for character (its `\s` has U+FEFF too).
    let blank = |c: char| c.is_whitespace() || c == '\u{feff}';
    if name.chars().count() > 100 || name.chars().all(blank) || name.chars().any(char::is_control) {
        return Err(ServiceError::BadInput("name must be 1 to 100 printable characters, not all blank".into()));
    }
    if let Some(slug) = slug.filter(|s| !valid_name(s)) {
        return Err(ServiceError::BadInput(format!("slug {slug:?} must be a lowercase DNS label (letters, digits and '-')")));
    }
    let name = name.trim_matches(blank);
    let now = s.now();
    s.store.write(|w| {
        let mut o: Org = w.get(ORGS, &by.org)?.ok_or_else(|| ServiceError::NotFound(format!("no organization {:?}", by.org)))?;
        let mut changes = Vec::new();
        if o.name != name {
            changes.push(("name", std::mem::replace(&mut o.name, name.to_string()), name.to_string()));
        }
        if let Some(slug) = slug.filter(|s| *s != o.slug) {
            // Its own id stays its own; any other organization's id or slug is taken.
            if slug != o.id && name_taken(w, slug)? {
                return Err(ServiceError::Conflict(format!("{slug:?} already names an organization")));
            }
            w.remove(crate::store::SLUGS, &o.slug)?;
            w.put(crate::store::SLUGS, slug, &o.id)?;
            changes.push(("slug", std::mem::replace(&mut o.slug, slug.to_string()), slug.to_string()));
        }
        if changes.is_empty() {
            return Ok(o.view());
        }
        w.put(ORGS, &by.org, &o)?;
        let mut details = std::collections::BTreeMap::new();
        for (field, from, to) in changes {
            details.insert(format!("{field}From"), from);
            details.insert(format!("{field}To"), to);
        }
        super::audit::record(w, &by.org, now, &by.who(), novacula_core::audit::Action::OrganizationRenamed, &by.org, details)?;
        Ok(o.view())
    })
}

/// Set `by`'s organization's logo: `bytes` must be a PNG or a JPEG (core's `logo::check`).
pub fn set_logo(s: &crate::AppState, by: &super::users::Caller, declared: Option<&str>, bytes: Vec<u8>) -> Result<novacula_core::wire::OrgView> {
    let kind = novacula_core::logo::check(&bytes, declared).map_err(|e| match e {
        novacula_core::logo::LogoError::TooLarge(_) => ServiceError::BadInput(e.to_string()),
        _ => ServiceError::Invalid { message: e.to_string(), details: vec![] },
    })?;
    let now = s.now();
    let size = bytes.len();
    s.store.write(|w| {
        let mut o: Org = w.get(ORGS, &by.org)?.ok_or_else(|| ServiceError::NotFound(format!("no organization {:?}", by.org)))?;
        o.logo_updated_at = Some(now);
        w.put(ORGS, &by.org, &o)?;
        w.put(crate::store::ORG_LOGOS, &by.org, &crate::store::model::Logo { kind, bytes })?;
        let details = super::audit::details([("contentType", kind.content_type().to_string()), ("bytes", size.to_string())]);
        super::audit::record(w, &by.org, now, &by.who(), novacula_core::audit::Action::OrganizationLogoSet, &by.org, details)?;
        Ok(o.view())
    })
}

/// Remove the logo of `by`'s organization (none: nothing changes).
pub fn remove_logo(s: &crate::AppState, by: &super::users::Caller) -> Result<novacula_core::wire::OrgView> {
    let now = s.now();
    s.store.write(|w| {
        let mut o: Org = w.get(ORGS, &by.org)?.ok_or_else(|| ServiceError::NotFound(format!("no organization {:?}", by.org)))?;
        if o.logo_updated_at.take().is_some() {
            w.put(ORGS, &by.org, &o)?;
            w.remove(crate::store::ORG_LOGOS, &by.org)?;
            super::audit::record(w, &by.org, now, &by.who(), novacula_core::audit::Action::OrganizationLogoRemoved, &by.org, Default::default())?;
        }
        Ok(o.view())
    })
}

/// Organization `org`'s logo.
pub fn logo(s: &crate::AppState, org: &str) -> Result<crate::store::model::Logo> {
    s.store.read(|r| r.get(crate::store::ORG_LOGOS, org))?.ok_or_else(|| ServiceError::NotFound(format!("organization {org:?} has no logo")))
}

/// The owner deactivates (`active == false`) or reactivates their
/// organization (not one a platform administrator deactivated).
pub fn set_active(s: &crate::AppState, owner: &super::users::Caller, active: bool) -> Result<novacula_core::wire::OrgView> {
    switch(s, &owner.org, &owner.who(), active, false)
}

/// A platform administrator deactivates or reactivates any organization;
/// recorded in its log and the platform's.
pub fn platform_set_active(s: &crate::AppState, org: &str, admin: &super::audit::Who, active: bool) -> Result<novacula_core::wire::OrgView> {
    switch(s, org, admin, active, true)
}

/// The owner's deactivation and the platform's hold are two switches: the
/// organization answers only when both are off, and each is lifted only by
/// whoever set it.
fn switch(s: &crate::AppState, org: &str, who: &super::audit::Who, active: bool, platform: bool) -> Result<novacula_core::wire::OrgView> {
    use novacula_core::audit::Action;
    let now = s.now();
    let view = s.store.write(|w| {
        let mut o: Org = w.get(ORGS, org)?.ok_or_else(|| ServiceError::NotFound(format!("no organization {org:?}")))?;
        if active && o.platform_hold && !platform {
            return Err(ServiceError::Forbidden(format!("organization {org:?} was deactivated by the platform's administrators; ask them")));
        }
        let flag = if platform { &mut o.platform_hold } else { &mut o.deactivated };
        if *flag == active {
            *flag = !active;
            w.put(ORGS, org, &o)?;
            let action = if active { Action::OrganizationReactivated } else { Action::OrganizationDeactivated };
            let details = super::audit::details([("by", if platform { "platform" } else { "owner" }.to_string())]);
            if platform {
                super::audit::record_in_both(w, org, now, who, action, org, details)?;
            } else {
                super::audit::record(w, org, now, who, action, org, details)?;
            }
        }
        Ok::<_, ServiceError>(o.view())
    })?;
    s.forget_org_status(org);
    tracing::info!(org, by = %who.name, platform, "organization {}", if active { "reactivated" } else { "deactivated" });
    Ok(view)
}

/// Open sign-up: a new account owning a new organization (its id: the
/// username unless given), and a session in it. Off unless the server allows it.
pub async fn signup(
    s: &crate::AppState,
    address: Option<String>,
    source: novacula_core::audit::Source,
    req: &novacula_core::wire::SignupRequest,
) -> Result<novacula_core::wire::LoginResponse> {
    if !s.config.allow_signup {
        return Err(ServiceError::Forbidden("sign-up is off on this server; ask an organization for an invitation".into()));
    }
    check_user_fields(&req.username, &req.password)?;
    // Every sign-up counts against the address as a failed sign-in would
    // (20 in 15 minutes): accounts are not made in bulk.
    if let Some(a) = &address {
        use novacula_core::sync::LockExt;
        let mut t = s.address_throttle.locked();
        if let Err(wait) = t.check(a, s.now()) {
            return Err(ServiceError::Throttled(format!("too many sign-ups from this address; try again in {} s", wait.as_secs().max(1))));
        }
        t.failed(a, s.now());
    }
    let org = req.organization.clone().unwrap_or_else(|| req.username.clone());
    if !valid_name(&org) {
        return Err(ServiceError::BadInput(format!("organization name {org:?} must be a lowercase DNS label")));
    }
    let (password, salt) = (req.password.clone(), new_salt(s.entropy.as_ref()));
    let password_hash = s.hash_pool.run(move || hash_password(&password, salt)).await?;
    let now = s.now();
    let session = super::users::NewSession::draw(s, now);
    let user = User { username: req.username.clone(), password_hash, created_at: now, disabled: false, session_epoch: 0 };
    let member = Member { role: Role::Owner, added_at: now, added_by: "signup".into() };
    s.store.write(|w| {
        if w.get::<User>(USERS, &user.username)?.is_some() {
            return Err(ServiceError::Conflict(format!("user {:?} already exists", user.username)));
        }
        if name_taken(w, &org)? {
            return Err(ServiceError::Conflict(format!("organization {org:?} already exists; choose another name")));
        }
        put_new(w, &Org::new(&org, now))?;
        w.put(USERS, &user.username, &user)?;
        w.put_member(&org, &user.username, &member)?;
        session.store(w, &user, &org, now)?;
        let details = super::audit::details([("address", address.clone().unwrap_or_default())]);
        super::audit::record(w, &org, now, &super::audit::Who::user(&user.username, source), novacula_core::audit::Action::SignedUp, &user.username, details)?;
        Ok(())
    })?;
    tracing::info!(user = %user.username, org = %org, "signed up");
    Ok(session.answer(&user, &org, &member))
}
