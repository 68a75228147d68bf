//! The audit log's vocabulary: who acted (a user, an API key, the system),
//! through what (console, CLI, API), and the typed actions. Separate from the
//! events feed, which tells what happened to nodes and executors; the audit
//! log tells who changed what. It never holds a secret: details are the
//! changed fields, roles and names, written by the services.

use serde::{Deserialize, Serialize};

/// Who acted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActorKind {
    User,
    /// An executor, through its API key.
    ApiKey,
    /// The control plane itself (retention, migrations).
    System,
}

/// Through what the actor acted: the console and the CLI say so in the
/// `X-Novacula-Client` header; anything else is the API.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Ui,
    Cli,
    Api,
    System,
}

impl Source {
    /// The source a request's `X-Novacula-Client` header names (`console`, `cli`); else the API.
    pub fn of_client(header: Option<&str>) -> Source {
        match header {
            Some("console") => Source::Ui,
            Some("cli") => Source::Cli,
            _ => Source::Api,
        }
    }
}

macro_rules! actions {
    ($($variant:ident = $name:literal, $target:literal;)*) => {
        /// What was done. Each names the kind of thing it was done to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Action {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => $name,)* }
            }

            /// The kind of target: `user`, `apiKey`, `executor`, `node`, `upgrade`, `organization`, `invitation`, `events`, `channel`.
            pub fn target_kind(self) -> &'static str {
                match self { $(Action::$variant => $target,)* }
            }
        }
    };
}

actions! {
    SignedUp = "user.signed.up", "user";
    SessionStarted = "session.started", "user";
    SessionEnded = "session.ended", "user";
    PasswordChanged = "user.password.changed", "user";
    UserCreated = "user.created", "user";
    RoleChanged = "user.role.changed", "user";
    UserRemoved = "user.removed", "user";
    UserLeft = "user.left", "user";
    UserDisabled = "user.disabled", "user";
    UserEnabled = "user.enabled", "user";
    PasswordReset = "user.password.reset", "user";
    OwnershipTransferred = "organization.ownership.transferred", "organization";
    OrganizationRenamed = "organization.renamed", "organization";
    OrganizationDeactivated = "organization.deactivated", "organization";
    OrganizationReactivated = "organization.reactivated", "organization";
    InvitationCreated = "invitation.created", "invitation";
    InvitationResent = "invitation.resent", "invitation";
    InvitationCancelled = "invitation.cancelled", "invitation";
    InvitationAccepted = "invitation.accepted", "invitation";
    KeyCreated = "apikey.created", "apiKey";
    KeyRotated = "apikey.rotated", "apiKey";
    KeyRevoked = "apikey.revoked", "apiKey";
    KeyDeleted = "apikey.deleted", "apiKey";
    KeyBound = "apikey.bound", "apiKey";
    ExecutorRegistered = "executor.registered", "executor";
    ExecutorDeactivated = "executor.deactivated", "executor";
    ExecutorReactivated = "executor.reactivated", "executor";
    UpgradeSet = "upgrade.set", "upgrade";
    NodeDeployed = "node.deployed", "node";
    NodeEdited = "node.edited", "node";
    NodeClientUpgraded = "node.client.upgraded", "node";
    NodeLifecycle = "node.lifecycle", "node";
    NodeDeleted = "node.deleted", "node";
    EventsPruned = "events.pruned", "events";
    AuditPruned = "audit.pruned", "events";
    ImpersonationStarted = "impersonation.started", "user";
    ReleasePublished = "release.published", "upgrade";
    OrganizationLogoSet = "organization.logo.set", "organization";
    OrganizationLogoRemoved = "organization.logo.removed", "organization";
    ExecutorDeleted = "executor.deleted", "executor";
    AlertSettingsChanged = "alerts.settings.changed", "organization";
    NodeAlertPolicySet = "node.alert_policy.set", "node";
    ChannelCreated = "alerts.channel.created", "channel";
    ChannelUpdated = "alerts.channel.updated", "channel";
    ChannelDeleted = "alerts.channel.deleted", "channel";
    DeliveryReplayed = "alerts.delivery.replayed", "channel";
}

// By hand: the derive does not see the names the macro gives the variants.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Action {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("What was done (the audit log's typed action)."))
            .enum_values(Some(Action::ALL.iter().map(|a| a.as_str())))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Action {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Action")
    }
}

impl std::str::FromStr for Action {
    type Err = crate::error::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL.iter().copied().find(|a| a.as_str() == s).ok_or_else(|| crate::error::UnknownValue {
            what: "audit action",
            got: s.to_string(),
            expected: &["session.started", "user.created", "apikey.rotated", "node.lifecycle", "..."],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_and_print_alike() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), *a);
            assert_eq!(serde_json::to_string(a).unwrap(), format!("\"{}\"", a.as_str()));
            assert!(["user", "apiKey", "executor", "node", "upgrade", "organization", "events", "invitation", "channel"].contains(&a.target_kind()));
        }
        assert!("node.exploded".parse::<Action>().is_err());
        assert_eq!(Source::of_client(Some("console")), Source::Ui);
        assert_eq!(Source::of_client(Some("curl")), Source::Api);
    }
}
