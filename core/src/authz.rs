//! Who may do what: the role rules of an organization.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Ordered from most to least privileged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read nodes, executors, events, alerts.
    Read,
    /// Deploy, edit, upgrade, start/stop/restart, delete nodes.
    OperateNodes,
    /// Create/revoke API keys, deactivate executors, set upgrade specs.
    ManageExecutors,
    /// Create users of a role at or below one's own (owners alone create owners).
    ManageUsers,
}

impl Role {
    pub fn can(self, p: Permission) -> bool {
        match p {
            Permission::Read => true,
            Permission::OperateNodes => self != Role::Viewer,
            Permission::ManageExecutors | Permission::ManageUsers => matches!(self, Role::Owner | Role::Admin),
        }
    }

    /// Whether a user of this role may grant `other` to someone.
    pub fn can_grant(self, other: Role) -> bool {
        self.can(Permission::ManageUsers) && (self == Role::Owner || other != Role::Owner)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = crate::error::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "viewer" => Ok(Role::Viewer),
            _ => Err(crate::error::UnknownValue { what: "role", got: s.to_string(), expected: &["owner", "admin", "member", "viewer"] }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_matrix() {
        use Permission::*;
        use Role::*;
        let table =
            [(Owner, [true, true, true, true]), (Admin, [true, true, true, true]), (Member, [true, true, false, false]), (Viewer, [true, false, false, false])];
        for (role, expect) in table {
            let got = [role.can(Read), role.can(OperateNodes), role.can(ManageExecutors), role.can(ManageUsers)];
            assert_eq!(got, expect, "{role:?}");
        }
    }

    #[test]
    fn only_owners_grant_owner() {
        assert!(Role::Owner.can_grant(Role::Owner));
        assert!(!Role::Admin.can_grant(Role::Owner));
        assert!(Role::Admin.can_grant(Role::Admin));
        assert!(!Role::Member.can_grant(Role::Viewer));
    }
}
