//! Who may do what: the one permission table of an organization's roles, and
//! what each user route of the API needs. The API checks requests
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
    /// Add, remove and disable members, change their roles (see [`member_change`]).
    ManageMembers,
    /// Hand the organization to another member.
    OwnOrganization,
    /// Read the organization's audit log (who did what).
    ReadAudit,
    /// Change the organization's settings (its name).
    ManageOrganization,
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Permission::Read,
        Permission::OperateNodes,
        Permission::ManageNodes,
        Permission::ManageExecutors,
        Permission::ManageMembers,
        Permission::OwnOrganization,
        Permission::ReadAudit,
        Permission::ManageOrganization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::OperateNodes => "operateNodes",
            Permission::ManageNodes => "manageNodes",
            Permission::ManageExecutors => "manageExecutors",
            Permission::ManageMembers => "manageMembers",
            Permission::OwnOrganization => "ownOrganization",
            Permission::ReadAudit => "readAudit",
            Permission::ManageOrganization => "manageOrganization",
        }
    }
}

/// The permission table: the roles that hold each permission.
const TABLE: [(Permission, &[Role]); 8] = {
    use Role::*;
    [
        (Permission::Read, &[Owner, Admin, Operator, Member]),
        (Permission::OperateNodes, &[Owner, Admin, Operator]),
        (Permission::ManageNodes, &[Owner, Admin]),
        (Permission::ManageExecutors, &[Owner, Admin]),
        (Permission::ManageMembers, &[Owner, Admin]),
        (Permission::OwnOrganization, &[Owner]),
        (Permission::ReadAudit, &[Owner, Admin]),
        (Permission::ManageOrganization, &[Owner, Admin]),
    ]
};

// The table has a row per permission; `ALL` names each of them.
const _: () = assert!(Permission::ALL.len() == TABLE.len());

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::Member];

    pub fn can(self, p: Permission) -> bool {
        TABLE.iter().any(|(q, roles)| *q == p && roles.contains(&self))
    }

    /// The permissions of this role, in [`Permission::ALL`]'s order.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL.into_iter().filter(|p| self.can(*p)).collect()
    }

    /// Whether a user of this role may give `other` to someone. Nobody makes
    /// an owner: an organization has one, and it moves by transfer.
    pub fn can_grant(self, other: Role) -> bool {
        self.can(Permission::ManageMembers) && other != Role::Owner
    }

    /// Whether a user of this role may invite someone as `role`: owners any
    /// role but owner, admins members only (they may promote them after).
    pub fn can_invite(self, role: Role) -> bool {
        match self {
            Role::Owner => role != Role::Owner,
            Role::Admin => role == Role::Member,
            Role::Operator | Role::Member => false,
        }
    }

    /// Whether a user of this role may change, remove, disable or reset the
    /// password of a member of role `target`: nobody touches an owner (an
    /// owner hands over by transfer; databases of before may hold several).
    pub fn can_manage(self, target: Role) -> bool {
        self.can(Permission::ManageMembers) && target != Role::Owner
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

/// What may happen to a member, beyond the route's permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    SetRole(Role),
    Remove,
    /// Disable the account, or reset its password.
    Account,
}

/// Why a change to a member is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberRefusal {
    #[error("you cannot do this to yourself (an owner transfers ownership; others leave the organization)")]
    Yourself,
    #[error("role {actor} may not change a member whose role is {target}")]
    Outranked { actor: &'static str, target: &'static str },
    #[error("role {actor} may not give role {to}")]
    CannotGrant { actor: &'static str, to: &'static str },
    #[error("an organization has one owner; ownership moves by transfer (POST /api/v1/ownership)")]
    OwnerByTransfer,
}

/// The rule for a change by `actor` (role `actor_role`) to member `target`
/// (role `target_role`): never to oneself, admins never over owners, and a
/// role only where [`Role::can_grant`].
pub fn member_change(actor: &str, actor_role: Role, target: &str, target_role: Role, change: MemberChange) -> Result<(), MemberRefusal> {
    if actor == target {
        return Err(MemberRefusal::Yourself);
    }
    if !actor_role.can_manage(target_role) {
        return Err(MemberRefusal::Outranked { actor: actor_role.as_str(), target: target_role.as_str() });
    }
    match change {
        MemberChange::SetRole(Role::Owner) => Err(MemberRefusal::OwnerByTransfer),
        MemberChange::SetRole(to) if !actor_role.can_grant(to) => Err(MemberRefusal::CannotGrant { actor: actor_role.as_str(), to: to.as_str() }),
        MemberChange::Remove if target_role == Role::Owner => Err(MemberRefusal::OwnerByTransfer),
        _ => Ok(()),
    }
}

/// What a user route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A signed-in user, in no organization in particular: their own
    /// account (sign out, password, which organizations they are in).
    Account,
    /// A role holding this permission in the organization the request works in.
    Org(Permission),
    /// A platform administrator (named in the control plane's own
    /// configuration, never granted through the API), in their own session.
    Platform,
}

impl Access {
    /// Whether a member of role `role` (`None`: of no organization), who is
    /// a platform administrator or not, may.
    pub fn allows(self, role: Option<Role>, platform_admin: bool) -> bool {
        match self {
            Access::Account => true,
            Access::Org(p) => role.is_some_and(|r| r.can(p)),
            Access::Platform => platform_admin,
        }
    }
}

/// A user route of the HTTP API and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// The route's path as the router and the OpenAPI document write it.
    pub path: &'static str,
    pub needs: Access,
}

/// Every route a user's session may call. A route missing here is refused to
/// everyone (the API fails closed); `control-plane/tests/permissions.rs`
/// checks this list against the API's document and every role's answers.
pub const ROUTES: &[Route] = {
    use Permission::*;
    const fn r(method: &'static str, path: &'static str, needs: Permission) -> Route {
        Route { method, path, needs: Access::Org(needs) }
    }
    const fn account(method: &'static str, path: &'static str) -> Route {
        Route { method, path, needs: Access::Account }
    }
    const fn platform(method: &'static str, path: &'static str) -> Route {
        Route { method, path, needs: Access::Platform }
    }
    &[
        account("POST", "/api/v1/logout"),
        account("PUT", "/api/v1/me/password"),
        account("GET", "/api/v1/orgs"),
        r("GET", "/api/v1/me", Read),
        r("DELETE", "/api/v1/me/membership", Read),
        r("POST", "/api/v1/ownership", OwnOrganization),
        r("GET", "/api/v1/org", Read),
        r("PUT", "/api/v1/org", ManageOrganization),
        r("GET", "/api/v1/org/logo", Read),
        r("PUT", "/api/v1/org/logo", ManageOrganization),
        r("DELETE", "/api/v1/org/logo", ManageOrganization),
        r("POST", "/api/v1/org/deactivate", OwnOrganization),
        r("POST", "/api/v1/org/reactivate", OwnOrganization),
        r("GET", "/api/v1/users", Read),
        r("POST", "/api/v1/users", ManageMembers),
        r("GET", "/api/v1/invitations", ManageMembers),
        r("POST", "/api/v1/invitations", ManageMembers),
        r("POST", "/api/v1/invitations/{id}/resend", ManageMembers),
        r("DELETE", "/api/v1/invitations/{id}", ManageMembers),
        r("PUT", "/api/v1/users/{username}", ManageMembers),
        r("DELETE", "/api/v1/users/{username}", ManageMembers),
        r("PUT", "/api/v1/users/{username}/password", ManageMembers),
        r("POST", "/api/v1/users/{username}/disable", ManageMembers),
        r("POST", "/api/v1/users/{username}/enable", ManageMembers),
        r("GET", "/api/v1/keys", Read),
        r("POST", "/api/v1/keys", ManageExecutors),
        r("POST", "/api/v1/keys/{id}/revoke", ManageExecutors),
        r("POST", "/api/v1/keys/{id}/rotate", ManageExecutors),
        r("DELETE", "/api/v1/keys/{id}", ManageExecutors),
        r("GET", "/api/v1/executors", Read),
        r("GET", "/api/v1/executors/{name}", Read),
        r("DELETE", "/api/v1/executors/{name}", ManageExecutors),
        r("POST", "/api/v1/executors/{name}/deactivate", ManageExecutors),
        r("POST", "/api/v1/executors/{name}/reactivate", ManageExecutors),
        r("POST", "/api/v1/executors/{name}/draft", ManageNodes),
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
        r("GET", "/api/v1/audit", ReadAudit),
        r("GET", "/api/v1/me/activity", Read),
        r("GET", "/api/v1/alerts", Read),
        r("GET", "/api/v1/alerts/settings", Read),
        r("PUT", "/api/v1/alerts/settings", ManageOrganization),
        r("GET", "/api/v1/alerts/policies", Read),
        r("GET", "/api/v1/nodes/{name}/alert-policy", Read),
        r("GET", "/api/v1/nodes/{name}/logs", Read),
        r("GET", "/api/v1/nodes/{name}/history", Read),
        r("PUT", "/api/v1/nodes/{name}/alert-policy", ManageNodes),
        r("GET", "/api/v1/incidents", Read),
        // A Slack webhook's URL is itself a credential: only those who manage channels see them.
        r("GET", "/api/v1/alerts/channels", ManageOrganization),
        r("POST", "/api/v1/alerts/channels", ManageOrganization),
        r("PUT", "/api/v1/alerts/channels/{id}", ManageOrganization),
        r("DELETE", "/api/v1/alerts/channels/{id}", ManageOrganization),
        r("POST", "/api/v1/alerts/channels/{id}/test", ManageOrganization),
        r("GET", "/api/v1/alerts/deliveries", Read),
        r("POST", "/api/v1/alerts/deliveries/{id}/replay", ManageOrganization),
        platform("GET", "/api/v1/platform/orgs"),
        platform("POST", "/api/v1/platform/orgs/{id}/deactivate"),
        platform("POST", "/api/v1/platform/orgs/{id}/reactivate"),
        platform("GET", "/api/v1/platform/releases"),
        platform("PUT", "/api/v1/platform/releases"),
        platform("POST", "/api/v1/platform/impersonate"),
        platform("GET", "/api/v1/platform/audit"),
    ]
};

/// Whether a route answers in a deactivated organization: only the owner's
/// way back (reading it, reactivating it) and knowing who one is.
pub fn open_when_deactivated(method: &str, path: &str) -> bool {
    matches!((method, path), ("GET", "/api/v1/me") | ("GET", "/api/v1/org") | ("POST", "/api/v1/org/reactivate"))
}

/// Who may call a GraphQL operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationAuth {
    /// A user's session, with what the REST route doing the same needs
    /// (`method`, `path` in [`ROUTES`]): one rule for both APIs.
    Session { method: &'static str, path: &'static str },
    /// An executor's API key (the executor protocol).
    ApiKey,
}

/// A GraphQL operation (a field of `Query` or `Mutation`) and who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub name: &'static str,
    pub auth: OperationAuth,
}

/// Every GraphQL operation, with the names of Novacula's documentation. An
/// operation missing here is refused to everyone;
/// `control-plane/tests/graphql.rs` checks this list against the schema.
pub const OPERATIONS: &[Operation] = {
    const fn user(name: &'static str, method: &'static str, path: &'static str) -> Operation {
        Operation { name, auth: OperationAuth::Session { method, path } }
    }
    const fn executor(name: &'static str) -> Operation {
        Operation { name, auth: OperationAuth::ApiKey }
    }
    &[
        user("me", "GET", "/api/v1/me"),
        user("executors", "GET", "/api/v1/executors"),
        user("executor", "GET", "/api/v1/executors/{name}"),
        user("nodes", "GET", "/api/v1/nodes"),
        user("node", "GET", "/api/v1/nodes/{name}"),
        user("events", "GET", "/api/v1/events"),
        user("apiKeys", "GET", "/api/v1/keys"),
        user("members", "GET", "/api/v1/users"),
        user("createNode", "POST", "/api/v1/nodes"),
        user("updateNode", "PUT", "/api/v1/nodes/{name}/spec"),
        user("deleteNode", "DELETE", "/api/v1/nodes/{name}"),
        user("requestNodeLifecycleAction", "POST", "/api/v1/nodes/{name}/lifecycle"),
        executor("syncExecutor"),
        executor("reportRuntimeEvents"),
    ]
};

/// Who may call GraphQL operation `name`; `None` for one not in [`OPERATIONS`].
pub fn operation_auth(name: &str) -> Option<OperationAuth> {
    OPERATIONS.iter().find(|o| o.name == name).map(|o| o.auth)
}

/// Whether a session in which a platform administrator acts as a user may
/// call a route: not to make what would outlive the impersonation (accounts,
/// passwords, API keys, invitations), move ownership, or leave.
pub fn impersonation_allows(method: &str, path: &str) -> bool {
    !matches!(
        (method, path),
        ("POST", "/api/v1/users")
            | ("PUT", "/api/v1/users/{username}/password")
            | ("PUT", "/api/v1/me/password")
            | ("POST", "/api/v1/keys")
            | ("POST", "/api/v1/keys/{id}/rotate")
            | ("POST", "/api/v1/invitations")
            | ("POST", "/api/v1/invitations/{id}/resend")
            | ("POST", "/api/v1/ownership")
            | ("DELETE", "/api/v1/me/membership")
    )
}

/// What a route needs; `None` for a route not in [`ROUTES`].
pub fn route_needs(method: &str, path: &str) -> Option<Access> {
    ROUTES.iter().find(|r| r.method == method && r.path == path).map(|r| r.needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_graphql_operation_of_a_user_has_its_rest_twin_in_the_table() {
        for op in OPERATIONS {
            if let OperationAuth::Session { method, path } = op.auth {
                assert!(route_needs(method, path).is_some(), "{}: {method} {path} is not in ROUTES", op.name);
            }
        }
        assert_eq!(operation_auth("createNode"), Some(OperationAuth::Session { method: "POST", path: "/api/v1/nodes" }));
        assert_eq!(operation_auth("syncExecutor"), Some(OperationAuth::ApiKey));
        assert_eq!(operation_auth("__schema"), None);
    }

    #[test]
    fn an_impersonation_makes_nothing_that_outlives_it() {
        for (m, p) in [("POST", "/api/v1/keys"), ("POST", "/api/v1/users"), ("POST", "/api/v1/invitations"), ("PUT", "/api/v1/me/password")] {
            assert!(route_needs(m, p).is_some(), "{m} {p} is a route");
            assert!(!impersonation_allows(m, p), "{m} {p}");
        }
        assert!(impersonation_allows("POST", "/api/v1/nodes/{name}/lifecycle"));
        assert!(impersonation_allows("GET", "/api/v1/nodes"));
    }

    #[test]
    fn permission_matrix() {
        use Permission::*;
        use Role::*;
        // read, operate, manage nodes, manage executors, manage members, own, read audit, manage organization
        let table = [
            (Owner, [true, true, true, true, true, true, true, true]),
            (Admin, [true, true, true, true, true, false, true, true]),
            (Operator, [true, true, false, false, false, false, false, false]),
            (Member, [true, false, false, false, false, false, false, false]),
        ];
        for (role, expect) in table {
            let got = [
                role.can(Read),
                role.can(OperateNodes),
                role.can(ManageNodes),
                role.can(ManageExecutors),
                role.can(ManageMembers),
                role.can(OwnOrganization),
                role.can(ReadAudit),
                role.can(ManageOrganization),
            ];
            assert_eq!(got, expect, "{role:?}");
            assert_eq!(role.permissions().len(), expect.iter().filter(|x| **x).count());
        }
    }

    #[test]
    fn nobody_grants_owner() {
        assert!(!Role::Owner.can_grant(Role::Owner));
        assert!(!Role::Admin.can_grant(Role::Owner));
        assert!(Role::Admin.can_grant(Role::Admin));
        assert!(!Role::Operator.can_grant(Role::Member));
        assert!(!Role::Member.can_grant(Role::Member));
    }

    #[test]
    fn invitations() {
        use Role::*;
        assert!(Owner.can_invite(Admin) && Owner.can_invite(Operator) && Owner.can_invite(Member));
        assert!(!Owner.can_invite(Owner), "nobody invites owners");
        assert!(Admin.can_invite(Member) && !Admin.can_invite(Operator) && !Admin.can_invite(Admin));
        assert!(!Operator.can_invite(Member) && !Member.can_invite(Member));
    }

    #[test]
    fn member_changes() {
        use MemberChange::*;
        use Role::*;
        let ok = |a: Role, t: Role, c: MemberChange| member_change("a", a, "t", t, c);
        // owners: anything to anyone but themselves, never a second owner
        assert_eq!(ok(Owner, Admin, SetRole(Member)), Ok(()));
        assert_eq!(ok(Owner, Member, SetRole(Admin)), Ok(()));
        assert_eq!(ok(Owner, Member, SetRole(Owner)), Err(MemberRefusal::OwnerByTransfer));
        assert_eq!(member_change("a", Owner, "a", Owner, SetRole(Admin)), Err(MemberRefusal::Yourself));
        assert_eq!(member_change("a", Admin, "a", Admin, Remove), Err(MemberRefusal::Yourself));
        // admins: member, operator and admin, never over an owner
        assert_eq!(ok(Admin, Member, SetRole(Admin)), Ok(()));
        assert_eq!(ok(Admin, Admin, SetRole(Operator)), Ok(()));
        assert!(matches!(ok(Admin, Owner, SetRole(Member)), Err(MemberRefusal::Outranked { .. })));
        assert!(matches!(ok(Admin, Owner, Account), Err(MemberRefusal::Outranked { .. })));
        assert_eq!(ok(Admin, Operator, Remove), Ok(()));
        assert!(matches!(ok(Owner, Owner, Remove), Err(MemberRefusal::Outranked { .. })), "an owner is never removed");
        assert!(matches!(ok(Owner, Owner, SetRole(Admin)), Err(MemberRefusal::Outranked { .. })), "nor demoted, even by another owner");
        // operators and members change nobody
        for r in [Operator, Member] {
            assert!(matches!(ok(r, Member, SetRole(Operator)), Err(MemberRefusal::Outranked { .. })));
            assert!(matches!(ok(r, Member, Remove), Err(MemberRefusal::Outranked { .. })));
        }
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
        assert_eq!(route_needs("POST", "/api/v1/nodes/{name}/lifecycle"), Some(Access::Org(Permission::OperateNodes)));
        assert_eq!(route_needs("POST", "/api/v1/logout"), Some(Access::Account));
        assert!(Access::Account.allows(None, false));
        assert!(!Access::Org(Permission::Read).allows(None, true));
        assert!(!Access::Platform.allows(Some(Role::Owner), false));
        assert!(Access::Platform.allows(None, true));
        assert_eq!(route_needs("POST", "/api/v1/nowhere"), None);
    }
}
