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
        if w.get::<Org>(ORGS, org)?.is_some() {
            return Err(ServiceError::Conflict(format!("organization {org:?} already exists")));
        }
        if w.get::<User>(USERS, owner)?.is_some() {
            return Err(ServiceError::Conflict(format!("user {owner:?} already exists")));
        }
        w.put(ORGS, org, &Org { id: org.to_string(), created_at: now })?;
        let user =
            User { username: owner.to_string(), password_hash: hash_password(password, new_salt(entropy)), created_at: now, disabled: false, session_epoch: 0 };
        w.put(USERS, owner, &user)?;
        w.put_member(org, owner, &Member { role: Role::Owner, added_at: now, added_by: "system".into() })?;
        Ok(())
    })
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
