//! Who may do what: the one permission table of an organization's roles, and
//! the permission each user route of the API needs. The API checks requests
//! against [`ROUTES`], the console greys out what [`Role::permissions`] lacks,
//! and the CLI prints the same list; no other place decides.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// An organization role, ordered from most to least privileged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, and alone may make owners.
    Owner,
    /// Everything but making owners.
    Admin,
    /// Reads, and starts, stops and restarts nodes.
    Operator,
    /// Reads everything in the organization, changes nothing.
    Member,
}

/// What a request may do.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Permission {
    /// Read nodes, executors, events, alerts, keys (never secrets), members.
    Read,
    /// Start, stop and restart nodes.
    OperateNodes,
    /// Deploy, edit, upgrade and delete nodes.
    ManageNodes,
    /// Create and revoke API keys, deactivate executors, set upgrade specs.
    ManageExecutors,
    /// Add members and change their roles (see [`Role::can_grant`]).
    ManageMembers,
}

impl Permission {
    pub const ALL: [Permission; 5] =
        [Permission::Read, Permission::OperateNodes, Permission::ManageNodes, Permission::ManageExecutors, Permission::ManageMembers];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::OperateNodes => "operateNodes",
            Permission::ManageNodes => "manageNodes",
            Permission::ManageExecutors => "manageExecutors",
            Permission::ManageMembers => "manageMembers",
        }
    }
}

/// The permission table: the roles that hold each permission.
const TABLE: [(Permission, &[Role]); 5] = {
    use Role::*;
    [
        (Permission::Read, &[Owner, Admin, Operator, Member]),
        (Permission::OperateNodes, &[Owner, Admin, Operator]),
        (Permission::ManageNodes, &[Owner, Admin]),
        (Permission::ManageExecutors, &[Owner, Admin]),
        (Permission::ManageMembers, &[Owner, Admin]),
    ]
};

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::Member];

    pub fn can(self, p: Permission) -> bool {
        TABLE.iter().any(|(q, roles)| *q == p && roles.contains(&self))
    }

    /// The permissions of this role, in [`Permission::ALL`]'s order.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL.into_iter().filter(|p| self.can(*p)).collect()
    }

    /// Whether a user of this role may give `other` to someone: owners any
    /// role, admins any but owner.
    pub fn can_grant(self, other: Role) -> bool {
        self.can(Permission::ManageMembers) && (self == Role::Owner || other != Role::Owner)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Member => "member",
        }
    }
}

impl FromStr for Role {
    type Err = crate::error::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| crate::error::UnknownValue {
            what: "role",
            got: s.to_string(),
            expected: &["owner", "admin", "operator", "member"],
        })
    }
}

/// A user route of the HTTP API and the permission it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// The route's path as the router and the OpenAPI document write it.
    pub path: &'static str,
    pub needs: Permission,
}

/// Every route a user's session may call. A route missing here is refused to
/// everyone (the API fails closed); `control-plane/tests/permissions.rs`
/// checks this list against the API's document and every role's answers.
pub const ROUTES: &[Route] = {
    use Permission::*;
    const fn r(method: &'static str, path: &'static str, needs: Permission) -> Route {
        Route { method, path, needs }
    }
    &[
        r("GET", "/api/v1/me", Read),
        r("GET", "/api/v1/users", Read),
        r("POST", "/api/v1/users", ManageMembers),
        r("GET", "/api/v1/keys", Read),
        r("POST", "/api/v1/keys", ManageExecutors),
        r("DELETE", "/api/v1/keys/{id}", ManageExecutors),
        r("GET", "/api/v1/executors", Read),
        r("GET", "/api/v1/executors/{name}", Read),
        r("POST", "/api/v1/executors/{name}/deactivate", ManageExecutors),
        r("POST", "/api/v1/executors/{name}/reactivate", ManageExecutors),
        r("GET", "/api/v1/upgrades", Read),
        r("PUT", "/api/v1/upgrades", ManageExecutors),
        r("GET", "/api/v1/nodes", Read),
        r("POST", "/api/v1/nodes", ManageNodes),
        r("GET", "/api/v1/nodes/{name}", Read),
        r("DELETE", "/api/v1/nodes/{name}", ManageNodes),
        r("PUT", "/api/v1/nodes/{name}/spec", ManageNodes),
        r("POST", "/api/v1/nodes/{name}/upgrade", ManageNodes),
        r("POST", "/api/v1/nodes/{name}/lifecycle", OperateNodes),
        r("GET", "/api/v1/events", Read),
        r("GET", "/api/v1/alerts", Read),
    ]
};

/// The permission a route needs; `None` for a route not in [`ROUTES`].
pub fn route_needs(method: &str, path: &str) -> Option<Permission> {
    ROUTES.iter().find(|r| r.method == method && r.path == path).map(|r| r.needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_matrix() {
        use Permission::*;
        use Role::*;
        // read, operate, manage nodes, manage executors, manage members
        let table = [
            (Owner, [true, true, true, true, true]),
            (Admin, [true, true, true, true, true]),
            (Operator, [true, true, false, false, false]),
            (Member, [true, false, false, false, false]),
        ];
        for (role, expect) in table {
            let got = [role.can(Read), role.can(OperateNodes), role.can(ManageNodes), role.can(ManageExecutors), role.can(ManageMembers)];
            assert_eq!(got, expect, "{role:?}");
            assert_eq!(role.permissions().len(), expect.iter().filter(|x| **x).count());
        }
    }

    #[test]
    fn only_owners_grant_owner() {
        assert!(Role::Owner.can_grant(Role::Owner));
        assert!(!Role::Admin.can_grant(Role::Owner));
        assert!(Role::Admin.can_grant(Role::Admin));
        assert!(!Role::Operator.can_grant(Role::Member));
        assert!(!Role::Member.can_grant(Role::Member));
    }

    #[test]
    fn roles_read_and_print_alike() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.as_str()));
        }
        let e = "viewer".parse::<Role>().unwrap_err().to_string();
        assert!(e.contains("operator") && e.contains("viewer"), "{e}");
        for p in Permission::ALL {
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.as_str()));
        }
    }

    #[test]
    fn each_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(ROUTES[i + 1..].iter().all(|b| (a.method, a.path) != (b.method, b.path)), "{a:?} twice");
        }
        assert_eq!(route_needs("POST", "/api/v1/nodes/{name}/lifecycle"), Some(Permission::OperateNodes));
        assert_eq!(route_needs("POST", "/api/v1/nowhere"), None);
    }
}
