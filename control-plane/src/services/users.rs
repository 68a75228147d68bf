//! Sign-in, sessions, and the members of an organization. A user is an
//! account; their role is per organization (`Member`), and the rules of who
//! may change whom are core's (`authz::member_change`).

use super::audit::{self, Who};
use super::credentials::{hash_password, new_salt, sha256_hex, verify_password, SESSION_PREFIX, SESSION_TTL};
use super::orgs::check_user_fields;
use super::{Result, ServiceError};
use crate::state::AppState;
use crate::store::model::{user_view, Member, Session, User, UserView};
use crate::store::{key, MEMBERS, SESSIONS, USERS};
use novacula_core::audit::{Action, Source};
use novacula_core::authz::{self, MemberChange, Role};
use novacula_core::sync::LockExt;
use novacula_core::throttle::LoginThrottle;
use novacula_core::validate::valid_name;
use novacula_core::wire::{ChangePasswordRequest, CreateUserRequest, LoginRequest, LoginResponse, OrgMembershipView};
use novacula_core::Timestamp;

/// Longest password accepted (argon2 takes any length; a megabyte would only cost us).
pub const PASSWORD_CHARS_MAX: usize = 1024;

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no user has this password", [0; 16]))
}

/// Who a request comes from: a user, working in one of their organizations.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub org: String,
    pub role: Role,
    /// Through what the request came (the audit log's `source`).
    pub source: Source,
    /// The organization is deactivated: only its owner's way back answers.
    pub org_deactivated: bool,
    /// A platform administrator acting as this user (the session's).
    pub impersonator: Option<String>,
}

impl Caller {
    pub fn actor(&self) -> String {
        format!("user:{}", self.user.username)
    }

    /// The caller as the audit log names them.
    pub fn who(&self) -> Who {
        Who { impersonator: self.impersonator.clone(), ..Who::user(&self.user.username, self.source) }
    }

    /// Member `u` (of this organization) as this caller sees them.
    fn view(&self, u: &User, m: &Member) -> UserView {
        let manageable = authz::member_change(&self.user.username, self.role, &u.username, m.role, MemberChange::Account).is_ok();
        user_view(u, &self.org, m, manageable)
    }

    /// The caller with what their role may do, and whether they are a
    /// platform administrator (in their own session) or impersonated.
    pub fn me(&self, s: &AppState) -> novacula_core::wire::MeView {
        novacula_core::wire::MeView {
            user: self.own_view(),
            permissions: self.role.permissions(),
            grantable_roles: Role::ALL.into_iter().filter(|r| self.role.can_grant(*r)).collect(),
            platform_admin: self.impersonator.is_none() && super::platform::is_admin(s, &self.user.username),
            impersonated_by: self.impersonator.clone(),
        }
    }

    /// The caller themselves.
    pub fn own_view(&self) -> UserView {
        let m = Member { role: self.role, added_at: self.user.created_at, added_by: String::new() };
        user_view(&self.user, &self.org, &m, false)
    }
}

/// A session being opened: its token (answered once, stored hashed).
pub struct NewSession {
    pub token: String,
    pub expires_at: Timestamp,
}

impl NewSession {
    /// A fresh token, valid [`SESSION_TTL`] from `now` (drawn outside the transaction).
    pub fn draw(s: &AppState, now: Timestamp) -> NewSession {
        NewSession { token: format!("{SESSION_PREFIX}_{}", s.random_hex(32)), expires_at: now.plus(SESSION_TTL) }
    }

    /// Store it for `user` (at their current session epoch), working in `org`.
    pub fn store(&self, w: &mut crate::store::Write, user: &User, org: &str, now: Timestamp) -> crate::store::Result<()> {
        self.store_as(w, user, org, now, None)
    }

    /// As [`NewSession::store`], for `impersonator` acting as `user`.
    pub fn store_as(&self, w: &mut crate::store::Write, user: &User, org: &str, now: Timestamp, impersonator: Option<&str>) -> crate::store::Result<()> {
        let session = Session {
            username: user.username.clone(),
            org_id: org.to_string(),
            epoch: user.session_epoch,
            created_at: now,
            expires_at: self.expires_at,
            impersonator: impersonator.map(str::to_string),
        };
        w.put(SESSIONS, &sha256_hex(&self.token), &session)
    }

    /// The answer to whoever opened it.
    pub fn answer(self, user: &User, org: &str, m: &Member) -> LoginResponse {
        LoginResponse { token: self.token, expires_at: self.expires_at, user: user_view(user, org, m, false) }
    }
}

/// The user and session of a token: `None` for an unknown, expired or
/// revoked session or a disabled user.
fn signed_in(s: &AppState, r: &crate::store::Read, token_hash: &str, now: Timestamp) -> crate::store::Result<Option<(User, Session)>> {
    let Some(session) = r.get::<Session>(SESSIONS, token_hash)? else { return Ok(None) };
    if session.expires_at <= now {
        return Ok(None);
    }
    let Some(user) = r.get::<User>(USERS, &session.username)? else { return Ok(None) };
    if user.disabled || session.epoch != user.session_epoch {
        return Ok(None);
    }
    // An impersonation ends with its administrator's rights (or account).
    if let Some(admin) = &session.impersonator {
        let admin_active = super::platform::is_admin(s, admin) && r.get::<User>(USERS, admin)?.is_some_and(|a| !a.disabled);
        if !admin_active {
            return Ok(None);
        }
    }
    Ok(Some((user, session)))
}

/// The account behind a session token (see [`signed_in`]).
pub fn account(s: &AppState, token_hash: &str, now: Timestamp) -> Result<Option<(User, Session)>> {
    Ok(s.store.read(|r| signed_in(s, r, token_hash, now))?)
}

/// The caller of a session token, in `org` (else the session's own
/// organization): `Ok(None)` as for [`account`]; `Forbidden` when the user is
/// not a member there.
pub fn caller(s: &AppState, token_hash: &str, org: Option<&str>, now: Timestamp, source: Source) -> Result<Option<Caller>> {
    s.store.read(|r| {
        let Some((user, session)) = signed_in(s, r, token_hash, now)? else { return Ok(None) };
        // Named by its id or its slug.
        let named = org.map(|o| r.org_id_of(o)).transpose()?;
        let org = named.as_deref().unwrap_or(&session.org_id);
        // An impersonation works in the organization it was opened for (and audited in).
        if session.impersonator.is_some() && org != session.org_id {
            return Err(ServiceError::Forbidden(format!("this impersonation works in organization {:?} only", session.org_id)));
        }
        // The same answer whether the organization exists or not.
        let Some(m) = r.member(org, &user.username)? else {
            return Err(ServiceError::Forbidden(format!(
                "you are not a member of organization {org:?}; GET /api/v1/orgs lists yours (X-Novacula-Org, or `novacula org use`, picks one)"
            )));
        };
        let org_deactivated = r.org_deactivated(org)?;
        Ok(Some(Caller { user, org: org.to_string(), role: m.role, source, org_deactivated, impersonator: session.impersonator }))
    })
}

/// Check a password and open a session; failures count against the user and
/// the client's `address` (the throttles lock both out for a while).
pub async fn login(s: &AppState, address: Option<String>, source: Source, req: &LoginRequest) -> Result<LoginResponse> {
    // Nothing is stored, hashed or logged for a name that cannot exist.
    if !valid_name(&req.username) {
        return Err(ServiceError::BadInput("username must be lowercase letters, digits and '-' (at most 63)".into()));
    }
    if req.password.chars().count() > PASSWORD_CHARS_MAX {
        return Err(ServiceError::BadInput(format!("password longer than {PASSWORD_CHARS_MAX} characters")));
    }
    let now = s.now();
    let locked = |t: &std::sync::Mutex<LoginThrottle>, key: &str| t.locked().check(key, now);
    let lockout = locked(&s.user_throttle, &req.username)
        .err()
        .map(|w| (w, "for this user"))
        .or_else(|| address.as_deref().and_then(|a| locked(&s.address_throttle, a).err()).map(|w| (w, "from this address")));
    if let Some((wait, whom)) = lockout {
        tracing::warn!(user = %req.username, address = ?address, "sign-in refused: too many failed attempts {whom}");
        return Err(ServiceError::Throttled(format!("too many failed sign-ins {whom}; try again in {} s", wait.as_secs().max(1))));
    }
    let user: Option<User> = s.store.read(|r| r.get(USERS, &req.username))?;
    // An unknown user costs the same hash as a known one, so timing does not tell names apart.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = req.password.clone();
    let ok = s.hash_pool.run(move || verify_password(&password, hash.as_deref().unwrap_or_else(|| dummy_hash()))).await? && user.is_some();
    let Some(user) = user.filter(|_| ok) else {
        s.user_throttle.locked().failed(&req.username, now);
        if let Some(a) = &address {
            s.address_throttle.locked().failed(a, now);
        }
        tracing::info!(user = %req.username, address = ?address, "sign-in failed");
        return Err(ServiceError::Unauthenticated("wrong username or password".into()));
    };
    s.user_throttle.locked().succeeded(&req.username);
    // Only the right password learns that the account is disabled.
    if user.disabled {
        tracing::info!(user = %user.username, "sign-in refused: user disabled");
        return Err(ServiceError::Unauthenticated("this user is disabled; ask an owner or admin of your organization".into()));
    }
    let session = NewSession::draw(s, now);
    let (org, member) = s.store.write(|w| {
        // A deactivated organization takes sign-ins from its owner alone (to reactivate it).
        let mut open = Vec::new();
        for o in w.orgs_of(&user.username)? {
            let role = w.member(&o, &user.username)?.map(|m| m.role);
            let off = w.org_deactivated(&o)?;
            open.push((o, !off || role == Some(Role::Owner)));
        }
        let named = req.organization.as_deref().map(|o| w.org_id_of(o)).transpose()?;
        let org = match &named {
            Some(o) => match open.iter().find(|(x, _)| x == o) {
                Some((_, true)) => o.clone(),
                Some((_, false)) => return Err(ServiceError::Forbidden(format!("organization {o:?} is deactivated; its owner can reactivate it"))),
                None => return Err(ServiceError::Forbidden(format!("you are not a member of organization {o:?}"))),
            },
            None => match open.iter().find(|(_, ok)| *ok) {
                Some((o, _)) => o.clone(),
                None if open.is_empty() => return Err(ServiceError::Forbidden("you are not a member of any organization".into())),
                None => return Err(ServiceError::Forbidden("your organizations are deactivated; their owners can reactivate them".into())),
            },
        };
        let member = w.member(&org, &user.username)?.ok_or_else(|| ServiceError::Forbidden(format!("you are not a member of organization {org:?}")))?;
        session.store(w, &user, &org, now)?;
        let details = audit::details([("address", address.clone().unwrap_or_default())]);
        audit::record(w, &org, now, &Who::user(&user.username, source), Action::SessionStarted, &user.username, details)?;
        Ok((org, member))
    })?;
    tracing::info!(user = %user.username, org = %org, "login");
    Ok(session.answer(&user, &org, &member))
}

/// End `session` (key `token_hash`): sign out.
pub fn logout(s: &AppState, token_hash: &str, session: &Session, source: Source) -> Result<()> {
    let now = s.now();
    Ok(s.store.write(|w| {
        w.remove(SESSIONS, token_hash)?;
        let who = Who { impersonator: session.impersonator.clone(), ..Who::user(&session.username, source) };
        audit::record(w, &session.org_id, now, &who, Action::SessionEnded, &session.username, Default::default()).map(drop)
    })?)
}

/// The caller's organizations, by name.
pub fn orgs(s: &AppState, username: &str) -> Result<Vec<OrgMembershipView>> {
    s.store.read(|r| {
        let orgs = r.orgs_of(username)?;
        let keys: Vec<String> = orgs.iter().map(|o| key(&[o, username])).collect();
        let members = r.get_many::<Member>(MEMBERS, &keys)?;
        Ok(orgs.into_iter().zip(members).filter_map(|(org_id, m)| m.map(|m| OrgMembershipView { org_id, role: m.role })).collect())
    })
}

/// A new user of `org`, created by `by`.
pub async fn create(s: &AppState, by: &Caller, req: &CreateUserRequest) -> Result<UserView> {
    if req.role == Role::Owner {
        return Err(ServiceError::Forbidden(authz::MemberRefusal::OwnerByTransfer.to_string()));
    }
    if !by.role.can_grant(req.role) {
        return Err(ServiceError::Forbidden(format!("role {} may not create a user with role {}", by.role.as_str(), req.role.as_str())));
    }
    check_user_fields(&req.username, &req.password)?;
    let password_hash = hash(s, &req.password).await?;
    let now = s.now();
    let new = User { username: req.username.clone(), password_hash, created_at: now, disabled: false, session_epoch: 0 };
    let member = Member { role: req.role, added_at: now, added_by: by.user.username.clone() };
    s.store.write(|w| {
        if w.get::<User>(USERS, &req.username)?.is_some() {
            return Err(ServiceError::Conflict(format!("user {:?} already exists", req.username)));
        }
        if !current_role(w, by)?.can_grant(req.role) {
            return Err(ServiceError::Forbidden(format!("your role may not create a user with role {}", req.role.as_str())));
        }
        w.put(USERS, &req.username, &new)?;
        w.put_member(&by.org, &req.username, &member)?;
        audit::record(w, &by.org, now, &by.who(), Action::UserCreated, &req.username, audit::details([("role", req.role.as_str().into())]))?;
        Ok(())
    })?;
    tracing::info!(user = %req.username, org = %by.org, role = req.role.as_str(), by = %by.user.username, "user created");
    Ok(by.view(&new, &member))
}

async fn hash(s: &AppState, password: &str) -> Result<String> {
    let (password, salt) = (password.to_string(), new_salt(s.entropy.as_ref()));
    Ok(s.hash_pool.run(move || hash_password(&password, salt)).await?)
}

/// The members of the caller's organization.
pub fn list(s: &AppState, by: &Caller) -> Result<Vec<UserView>> {
    let org = by.org.as_str();
    s.store.read(|r| {
        let members: Vec<(String, Member)> = r.scan(MEMBERS, &format!("{org}/"))?;
        let names: Vec<String> = members.iter().map(|(k, _)| k[org.len() + 1..].to_string()).collect();
        let users = r.get_many::<User>(USERS, &names)?;
        Ok(users.iter().zip(&members).filter_map(|(u, (_, m))| u.as_ref().map(|u| by.view(u, m))).collect())
    })
}

/// The member `username` of `by.org` and their account, once core's rule
/// lets `by` make `change` to them.
fn target(w: &crate::store::Write, by: &Caller, username: &str, change: MemberChange) -> Result<(User, Member)> {
    // The caller's role as it is now, in this transaction (a demotion that committed first wins).
    let by_role = current_role(w, by)?;
    let not_found = || ServiceError::NotFound(format!("no user {username:?} in this organization"));
    let m = w.member(&by.org, username)?.ok_or_else(not_found)?;
    let u = w.get::<User>(USERS, username)?.ok_or_else(not_found)?;
    authz::member_change(&by.user.username, by_role, username, m.role, change).map_err(|e| ServiceError::Forbidden(e.to_string()))?;
    Ok((u, m))
}

/// The caller's role in their organization, re-read inside a write transaction.
fn current_role(w: &crate::store::Write, by: &Caller) -> Result<Role> {
    Ok(w.member(&by.org, &by.user.username)?.ok_or_else(|| ServiceError::Forbidden("you are no longer a member of this organization".into()))?.role)
}

/// An account that belongs to other organizations is theirs too: this one's
/// owners and admins may not lock it or set its password.
fn only_here(w: &crate::store::Write, org: &str, username: &str) -> Result<()> {
    if w.orgs_of(username)?.iter().any(|o| o != org) {
        return Err(ServiceError::Conflict(format!("user {username:?} also belongs to other organizations; remove them from this one instead")));
    }
    Ok(())
}

pub fn set_role(s: &AppState, by: &Caller, username: &str, role: Role) -> Result<UserView> {
    let view = s.store.write(|w| {
        let (u, mut m) = target(w, by, username, MemberChange::SetRole(role))?;
        let from = m.role;
        m.role = role;
        w.put_member(&by.org, username, &m)?;
        let details = audit::details([("from", from.as_str().into()), ("to", role.as_str().into())]);
        audit::record(w, &by.org, s.now(), &by.who(), Action::RoleChanged, username, details)?;
        tracing::info!(user = %username, org = %by.org, from = from.as_str(), to = role.as_str(), by = %by.user.username, "role changed");
        Ok::<_, ServiceError>(by.view(&u, &m))
    })?;
    Ok(view)
}

/// Take `username` out of the organization; the account stays.
pub fn remove(s: &AppState, by: &Caller, username: &str) -> Result<()> {
    s.store.write(|w| {
        let (_, m) = target(w, by, username, MemberChange::Remove)?;
        w.remove_member(&by.org, username)?;
        audit::record(w, &by.org, s.now(), &by.who(), Action::UserRemoved, username, audit::details([("role", m.role.as_str().into())]))?;
        Ok::<_, ServiceError>(())
    })?;
    tracing::info!(user = %username, org = %by.org, by = %by.user.username, "member removed");
    Ok(())
}

/// The caller leaves the organization they work in; an owner hands it over first.
pub fn leave(s: &AppState, me: &Caller) -> Result<()> {
    s.store.write(|w| {
        if current_role(w, me)? == Role::Owner {
            return Err(ServiceError::Conflict("the owner cannot leave; transfer ownership first (POST /api/v1/ownership)".into()));
        }
        w.remove_member(&me.org, &me.user.username)?;
        audit::record(w, &me.org, s.now(), &me.who(), Action::UserLeft, &me.user.username, audit::details([("role", me.role.as_str().into())]))?;
        Ok::<_, ServiceError>(())
    })?;
    tracing::info!(user = %me.user.username, org = %me.org, "member left");
    Ok(())
}

/// The owner hands the organization to another member and becomes admin.
pub fn transfer_ownership(s: &AppState, owner: &Caller, username: &str) -> Result<UserView> {
    if owner.role != Role::Owner {
        return Err(ServiceError::Forbidden("only the owner transfers ownership".into()));
    }
    if username == owner.user.username {
        return Err(ServiceError::Conflict("you are the owner already".into()));
    }
    let view = s.store.write(|w| {
        if current_role(w, owner)? != Role::Owner {
            return Err(ServiceError::Forbidden("only the owner transfers ownership".into()));
        }
        let mut m = w.member(&owner.org, username)?.ok_or_else(|| ServiceError::NotFound(format!("no user {username:?} in this organization")))?;
        let u = w.get::<User>(USERS, username)?.ok_or_else(|| ServiceError::NotFound(format!("no user {username:?}")))?;
        if u.disabled {
            return Err(ServiceError::Conflict(format!("user {username:?} is disabled")));
        }
        m.role = Role::Owner;
        w.put_member(&owner.org, username, &m)?;
        let mut mine = w.member(&owner.org, &owner.user.username)?.ok_or_else(|| ServiceError::Conflict("you are no longer a member".into()))?;
        mine.role = Role::Admin;
        w.put_member(&owner.org, &owner.user.username, &mine)?;
        let details = audit::details([("from", owner.user.username.clone()), ("to", username.to_string())]);
        audit::record(w, &owner.org, s.now(), &owner.who(), Action::OwnershipTransferred, &owner.org, details)?;
        Ok::<_, ServiceError>(owner.view(&u, &m))
    })?;
    tracing::info!(org = %owner.org, from = %owner.user.username, to = %username, "ownership transferred");
    Ok(view)
}

/// Disable or enable an account of this organization alone; disabling ends its sessions at once.
pub fn set_disabled(s: &AppState, by: &Caller, username: &str, disabled: bool) -> Result<UserView> {
    let view = s.store.write(|w| {
        let (mut u, m) = target(w, by, username, MemberChange::Account)?;
        only_here(w, &by.org, username)?;
        if disabled && !u.disabled {
            // Re-enabling must not bring back the sessions of before (a stolen one among them).
            u.session_epoch += 1;
        }
        u.disabled = disabled;
        w.put(USERS, username, &u)?;
        let action = if disabled { Action::UserDisabled } else { Action::UserEnabled };
        audit::record(w, &by.org, s.now(), &by.who(), action, username, Default::default())?;
        Ok::<_, ServiceError>(by.view(&u, &m))
    })?;
    tracing::info!(user = %username, org = %by.org, disabled, by = %by.user.username, "user {}", if disabled { "disabled" } else { "enabled" });
    Ok(view)
}

/// An owner or admin sets the password of an account of this organization
/// alone; its sessions end.
pub async fn reset_password(s: &AppState, by: &Caller, username: &str, password: &str) -> Result<UserView> {
    check_user_fields(username, password)?;
    let password_hash = hash(s, password).await?;
    let view = s.store.write(|w| {
        let (mut u, m) = target(w, by, username, MemberChange::Account)?;
        only_here(w, &by.org, username)?;
        u.password_hash = password_hash;
        u.session_epoch += 1;
        w.put(USERS, username, &u)?;
        audit::record(w, &by.org, s.now(), &by.who(), Action::PasswordReset, username, Default::default())?;
        Ok::<_, ServiceError>(by.view(&u, &m))
    })?;
    tracing::info!(user = %username, org = %by.org, by = %by.user.username, "password reset; the user's sessions ended");
    Ok(view)
}

/// A user changes their own password, proving the current one. Every
/// session of theirs ends; the answer is a new one, in the organization of
/// `session` while they are a member there, else their first.
pub async fn change_password(s: &AppState, user: &User, session: &Session, source: Source, req: &ChangePasswordRequest) -> Result<LoginResponse> {
    if let Some(admin) = &session.impersonator {
        return Err(ServiceError::Forbidden(format!("{admin} is impersonating {}: a password is changed only by its owner", user.username)));
    }
    check_user_fields(&user.username, &req.new_password)?;
    if req.current_password.chars().count() > PASSWORD_CHARS_MAX {
        return Err(ServiceError::BadInput(format!("password longer than {PASSWORD_CHARS_MAX} characters")));
    }
    // Wrong guesses count as failed sign-ins: a stolen session cannot try passwords without end.
    let now = s.now();
    if let Err(wait) = s.user_throttle.locked().check(&user.username, now) {
        return Err(ServiceError::Throttled(format!("too many wrong passwords; try again in {} s", wait.as_secs().max(1))));
    }
    let (current, stored) = (req.current_password.clone(), user.password_hash.clone());
    if !s.hash_pool.run(move || verify_password(&current, &stored)).await? {
        s.user_throttle.locked().failed(&user.username, now);
        return Err(ServiceError::Forbidden("the current password is wrong".into()));
    }
    let password_hash = hash(s, &req.new_password).await?;
    let fresh = NewSession::draw(s, now);
    let (user, org, member) = s.store.write(|w| {
        let mut u = w.get::<User>(USERS, &user.username)?.ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
        let org = match w.member(&session.org_id, &u.username)? {
            Some(_) => session.org_id.clone(),
            None => w.orgs_of(&u.username)?.into_iter().next().ok_or_else(|| ServiceError::Forbidden("you are not a member of any organization".into()))?,
        };
        let m = w.member(&org, &u.username)?.ok_or_else(|| ServiceError::Forbidden("you are not a member of any organization".into()))?;
        u.password_hash = password_hash;
        u.session_epoch += 1;
        w.put(USERS, &u.username, &u)?;
        fresh.store(w, &u, &org, now)?;
        audit::record(w, &org, now, &Who::user(&u.username, source), Action::PasswordChanged, &u.username, Default::default())?;
        Ok::<_, ServiceError>((u, org, m))
    })?;
    tracing::info!(user = %user.username, "password changed; the user's other sessions ended");
    Ok(fresh.answer(&user, &org, &member))
}

/// Remove expired sessions.
pub fn prune_sessions(s: &AppState, now: Timestamp) -> crate::store::Result<usize> {
    s.store.write(|w| {
        let sessions: Vec<(String, Session)> = w.scan(SESSIONS, "")?;
        let mut removed = 0;
        for (k, session) in sessions {
            if session.expires_at <= now {
                w.remove(SESSIONS, &k)?;
                removed += 1;
            }
        }
        Ok(removed)
    })
}
