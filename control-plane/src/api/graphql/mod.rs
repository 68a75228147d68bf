//! `POST /graphql`: Novacula's GraphQL API beside the REST one, with the
//! operation names of its documentation. Each resolver checks core's
//! operation table (`authz::OPERATIONS`, whose user operations take the
//! permission of their REST twin) and calls the same service as REST.

mod types;

use super::auth::{self, allow};
use super::error::{ApiError, ApiJson};
use crate::services::users::Caller;
use crate::services::{events, executors, keys, nodes, protocol, users, ServiceError};
use crate::state::AppState;
use crate::store::model::ApiKey as StoredKey;
use async_graphql::{Context, EmptySubscription, ErrorExtensions, Json, Object, Schema};
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use novacula_core::authz::{self, Access, OperationAuth};
use novacula_core::lifecycle::{LifecycleAction, NodeCommand};
use novacula_core::wire::{DeployRequest, ReportRequest, SyncExecutorRequest};
use novacula_core::NodeSpec;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use types::*;

/// Where it is served.
pub const PATH: &str = "/graphql";
/// Deepest selection accepted.
pub const MAX_DEPTH: usize = 10;
/// Largest cost accepted: a field costs 1, a list field its `limit` times its selection.
pub const MAX_COMPLEXITY: usize = 20_000;

pub type NovaculaSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema; introspection only when asked (`serve --graphql-introspection`).
pub fn schema(introspection: bool) -> NovaculaSchema {
    let b = Schema::build(Query, Mutation, EmptySubscription).limit_depth(MAX_DEPTH).limit_complexity(MAX_COMPLEXITY);
    if introspection { b } else { b.disable_introspection() }.finish()
}

/// Who calls: a user in one of their organizations, or an executor's key.
pub enum Principal {
    User(Box<Caller>),
    Executor(Box<StoredKey>),
}

/// Authenticated before the body is read: no token, no parsing (401).
impl axum::extract::FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = auth::bearer(parts)?;
        Ok(if auth::is_api_key(token) {
            Principal::Executor(Box::new(auth::api_key(token, s).await?))
        } else {
            Principal::User(Box::new(auth::session_caller(parts, s).await?))
        })
    }
}

pub async fn handle(
    schema: NovaculaSchema,
    State(s): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(req): ApiJson<async_graphql::Request>,
) -> axum::Json<async_graphql::Response> {
    axum::Json(schema.execute(req.data(principal).data(s)).await)
}

/// An API error as a GraphQL error: its message, with `code`, `status` and `details`.
fn gql(e: ApiError) -> async_graphql::Error {
    let code = match e.status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::UNPROCESSABLE_ENTITY => "INVALID",
        StatusCode::TOO_MANY_REQUESTS => "THROTTLED",
        StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let (status, details) = (e.status.as_u16(), e.details);
    async_graphql::Error::new(e.message).extend_with(|_, ext| {
        ext.set("code", code);
        ext.set("status", status);
        if !details.is_empty() {
            ext.set("details", details.clone());
        }
    })
}

fn service(e: ServiceError) -> async_graphql::Error {
    gql(ApiError::from(e))
}

type GqlResult<T> = async_graphql::Result<T>;

fn state<'a>(ctx: &Context<'a>) -> &'a Arc<AppState> {
    ctx.data_unchecked::<Arc<AppState>>()
}

/// The user calling operation `op`, if its entry in core's table lets them.
fn user<'a>(ctx: &Context<'a>, op: &str) -> GqlResult<&'a Caller> {
    let refused = |m: String| gql(ApiError::forbidden(m));
    let Some(OperationAuth::Session { method, path }) = authz::operation_auth(op) else {
        return Err(refused(format!("{op} is not a user operation of the permission table")));
    };
    let Principal::User(caller) = ctx.data_unchecked::<Principal>() else {
        return Err(refused(format!("{op} takes a user's session; API keys authenticate executors")));
    };
    let Some(Access::Org(needs)) = authz::route_needs(method, path) else {
        return Err(refused(format!("{op} has no permission in the table")));
    };
    allow(caller, method, path, needs).map_err(gql)?;
    Ok(caller)
}

/// The executor's key calling operation `op`.
fn executor<'a>(ctx: &Context<'a>, op: &str) -> GqlResult<&'a StoredKey> {
    let refused = |m: String| gql(ApiError::forbidden(m));
    if authz::operation_auth(op) != Some(OperationAuth::ApiKey) {
        return Err(refused(format!("{op} is not an executor operation of the permission table")));
    }
    match ctx.data_unchecked::<Principal>() {
        Principal::Executor(key) => Ok(key),
        Principal::User(_) => Err(refused(format!("{op} takes an executor's API key"))),
    }
}

/// A JSON argument as the wire type the REST API takes, decoded as REST decodes it.
fn parse<T: DeserializeOwned>(what: &str, v: serde_json::Value) -> GqlResult<T> {
    super::error::decode_value(what, v).map_err(gql)
}

/// A missing object reads as none (no probing of other organizations).
fn found<T>(r: Result<T, ServiceError>) -> GqlResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ServiceError::NotFound(_)) => Ok(None),
        Err(e) => Err(service(e)),
    }
}

/// What a list field costs: its page size (at most the largest page, as
/// asked or by default) times what each item's selection costs.
fn cost(limit: Option<usize>, max: usize, each: usize) -> usize {
    limit.unwrap_or(max).min(max).saturating_mul(each)
}

pub struct Query;

#[Object]
impl Query {
    /// The caller: organization, role and what it may do.
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<Me> {
        Ok(Me::from(user(ctx, "me")?.me(state(ctx))))
    }

    /// The organization's executors by name, a page at a time.
    #[graphql(complexity = "cost(limit, executors::EXECUTOR_PAGE_MAX, child_complexity)")]
    async fn executors(&self, ctx: &Context<'_>, after: Option<String>, limit: Option<usize>) -> GqlResult<Vec<Executor>> {
        let org = user(ctx, "executors")?.org.clone();
        let limit = limit.unwrap_or(executors::EXECUTOR_PAGE_MAX);
        let list = state(ctx).blocking(move |s| executors::list(s, &org, after.as_deref(), limit)).await.map_err(service)?;
        Ok(list.into_iter().map(Executor::from).collect())
    }

    /// One executor; null when the organization has none of that name.
    async fn executor(&self, ctx: &Context<'_>, name: String) -> GqlResult<Option<Executor>> {
        let org = user(ctx, "executor")?.org.clone();
        Ok(found(state(ctx).blocking(move |s| executors::get(s, &org, &name)).await)?.map(Executor::from))
    }

    /// The organization's nodes by name, a page at a time.
    #[graphql(complexity = "cost(limit, nodes::NODE_PAGE_MAX, child_complexity)")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        executor: Option<String>,
        chain: Option<String>,
        phase: Option<String>,
        after: Option<String>,
        limit: Option<usize>,
    ) -> GqlResult<Vec<Node>> {
        let org = user(ctx, "nodes")?.org.clone();
        let phase = phase.map(|p| parse("phase", serde_json::Value::String(p))).transpose()?;
        let filter = nodes::NodeFilter { executor, chain, phase, include_removed: false };
        let limit = limit.unwrap_or(nodes::NODE_PAGE_MAX);
        let list = state(ctx).blocking(move |s| nodes::list(s, &org, &filter, after.as_deref(), limit)).await.map_err(service)?;
        Ok(list.into_iter().map(Node::from).collect())
    }

    /// One node; null when the organization has none of that name.
    async fn node(&self, ctx: &Context<'_>, name: String) -> GqlResult<Option<Node>> {
        let org = user(ctx, "node")?.org.clone();
        Ok(found(state(ctx).blocking(move |s| nodes::get(s, &org, &name)).await)?.map(Node::from))
    }

    /// The events feed, oldest first, after sequence number `after`.
    #[graphql(complexity = "cost(limit, events::MAX_PAGE, child_complexity)")]
    async fn events(&self, ctx: &Context<'_>, after: Option<u64>, limit: Option<usize>, node: Option<String>, kind: Option<String>) -> GqlResult<EventsPage> {
        let org = user(ctx, "events")?.org.clone();
        let limit = limit.unwrap_or(100);
        let from = events::Direction::After(after.unwrap_or(0));
        let page = state(ctx).blocking(move |s| events::page(s, &org, from, limit, node.as_deref(), kind.as_deref())).await.map_err(service)?;
        Ok(EventsPage { next: page.next, events: page.events.into_iter().map(Event::from).collect() })
    }

    /// The organization's API keys (never their secrets).
    async fn api_keys(&self, ctx: &Context<'_>) -> GqlResult<Vec<ApiKey>> {
        let org = user(ctx, "apiKeys")?.org.clone();
        let list = state(ctx).blocking(move |s| keys::list(s, &org)).await.map_err(service)?;
        Ok(list.into_iter().map(ApiKey::from).collect())
    }

    /// The organization's members and their roles.
    async fn members(&self, ctx: &Context<'_>) -> GqlResult<Vec<Member>> {
        let by = user(ctx, "members")?.clone();
        let list = state(ctx).blocking(move |s| users::list(s, &by)).await.map_err(service)?;
        Ok(list.into_iter().map(Member::from).collect())
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// An executor's heartbeat: capabilities, version, kind; answers the
    /// compatibility window and any upgrade offer.
    async fn sync_executor(&self, ctx: &Context<'_>, input: Json<serde_json::Value>) -> GqlResult<SyncExecutorPayload> {
        let key = executor(ctx, "syncExecutor")?.clone();
        let req: SyncExecutorRequest = parse("input", input.0)?;
        Ok(protocol::sync(state(ctx), key, req).await.map_err(service)?.into())
    }

    /// An executor's report: its nodes' observed states (`ObservedNodeState`s)
    /// and what happened to their processes (`RuntimeEvent`s: node, process,
    /// level, message; `runtime.event` in the feed).
    async fn report_runtime_events(
        &self,
        ctx: &Context<'_>,
        executor_name: String,
        nodes: Json<serde_json::Value>,
        events: Option<Json<serde_json::Value>>,
    ) -> GqlResult<ReportPayload> {
        let key = executor(ctx, "reportRuntimeEvents")?.clone();
        let events = events.map_or(serde_json::Value::Array(vec![]), |e| e.0);
        let req: ReportRequest = parse("report", serde_json::json!({ "nodes": nodes.0, "events": events }))?;
        Ok(protocol::report(state(ctx), key, executor_name, req).await.map_err(service)?.into())
    }

    /// Deploy a node (a `NodeSpec`) on one of the organization's executors.
    async fn create_node(&self, ctx: &Context<'_>, executor: String, spec: Json<serde_json::Value>) -> GqlResult<Node> {
        let c = user(ctx, "createNode")?;
        let (org, who) = (c.org.clone(), c.who());
        let req = DeployRequest { executor, spec: parse("spec", spec.0)? };
        Ok(nodes::deploy(state(ctx), &org, &who, req).await.map_err(service)?.into())
    }

    /// Replace a node's spec (a new revision).
    async fn update_node(&self, ctx: &Context<'_>, name: String, spec: Json<serde_json::Value>) -> GqlResult<Node> {
        user(ctx, "updateNode")?;
        let spec: NodeSpec = parse("spec", spec.0)?;
        command(ctx, "updateNode", name, NodeCommand::Edit(spec)).await
    }

    /// Delete a node: irreversible.
    async fn delete_node(&self, ctx: &Context<'_>, name: String) -> GqlResult<Node> {
        command(ctx, "deleteNode", name, NodeCommand::Delete).await
    }

    /// Start, stop or restart a node.
    async fn request_node_lifecycle_action(&self, ctx: &Context<'_>, name: String, action: String) -> GqlResult<Node> {
        user(ctx, "requestNodeLifecycleAction")?;
        let action: LifecycleAction = parse("action", serde_json::Value::String(action))?;
        command(ctx, "requestNodeLifecycleAction", name, NodeCommand::Lifecycle(action)).await
    }
}

async fn command(ctx: &Context<'_>, op: &str, name: String, cmd: NodeCommand) -> GqlResult<Node> {
    let c = user(ctx, op)?;
    let (org, who) = (c.org.clone(), c.who());
    Ok(state(ctx).blocking(move |s| nodes::command(s, &org, &who, &name, cmd)).await.map_err(service)?.into())
}
