//! Invitations: created, listed, resent and cancelled by owners and admins;
//! previewed and accepted by whoever holds the token.

use super::auth::{optional_user, UserCtx};
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::services::invitations;
use crate::state::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use novacula_core::wire::{
    AcceptInvitationRequest, CreateInvitationRequest, CreatedInvitation, InvitationPreview, InvitationToken, InvitationView, LoginResponse,
};
use std::sync::Arc;

/// Invite someone by email: owners as admin, operator or member; admins as member.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "users", security(("session" = [])), request_body = CreateInvitationRequest, responses((status = 201, description = "the invitation, its token and link shown this once", body = CreatedInvitation)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiJson(req): ApiJson<CreateInvitationRequest>,
) -> Result<(StatusCode, ApiJson<CreatedInvitation>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(invitations::create(&s, &user.caller, &req).await?)))
}

/// The organization's invitations (never their tokens), newest first.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "users", security(("session" = [])), responses((status = 200, body = Vec<InvitationView>)))]
pub async fn list(State(s): State<Arc<AppState>>, user: UserCtx) -> ApiResult<Vec<InvitationView>> {
    let org = user.org().to_string();
    Ok(ApiJson(s.blocking(move |s| invitations::list(s, &org)).await?))
}

/// A new token (the old one stops working) and 7 more days, mailed again.
#[utoipa::path(post, path = "/api/v1/invitations/{id}/resend", tag = "users", security(("session" = [])), params(("id" = String, Path, description = "invitation id")), responses((status = 200, body = CreatedInvitation), (status = 404, description = "no such invitation", body = novacula_core::wire::ApiError), (status = 409, description = "accepted or cancelled", body = novacula_core::wire::ApiError), (status = 429, description = "sent less than a minute ago", body = novacula_core::wire::ApiError)))]
pub async fn resend(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> ApiResult<CreatedInvitation> {
    Ok(ApiJson(invitations::resend(&s, &user.caller, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/invitations/{id}", tag = "users", security(("session" = [])), params(("id" = String, Path, description = "invitation id")), responses((status = 200, body = InvitationView), (status = 404, description = "no such invitation", body = novacula_core::wire::ApiError), (status = 409, description = "accepted already", body = novacula_core::wire::ApiError)))]
pub async fn cancel(State(s): State<Arc<AppState>>, user: UserCtx, ApiPath(id): ApiPath<String>) -> ApiResult<InvitationView> {
    let by = user.caller.clone();
    Ok(ApiJson(s.blocking(move |s| invitations::cancel(s, &by, &id)).await?))
}

/// What an invitation offers (organization, role), for whoever holds its
/// token (in the body: a URL's query lands in access logs).
#[utoipa::path(post, path = "/api/v1/invitations/preview", tag = "users", request_body = InvitationToken, responses((status = 200, body = InvitationPreview), (status = 404, description = "no such invitation", body = novacula_core::wire::ApiError), (status = 409, description = "accepted, cancelled or expired", body = novacula_core::wire::ApiError)))]
pub async fn preview(State(s): State<Arc<AppState>>, ApiJson(q): ApiJson<InvitationToken>) -> ApiResult<InvitationPreview> {
    Ok(ApiJson(s.blocking(move |s| invitations::preview(s, &q.token)).await?))
}

/// Accept: with a session its user joins; without one, `username` and
/// `password` create the account. The answer is a session in the organization.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "users", security((), ("session" = [])), request_body = AcceptInvitationRequest, responses((status = 200, description = "a session in the invited organization", body = LoginResponse), (status = 401, description = "the session given is not valid", body = novacula_core::wire::ApiError), (status = 422, description = "signed in with a username or password too, or neither signed in nor giving them", body = novacula_core::wire::ApiError), (status = 404, description = "no such invitation", body = novacula_core::wire::ApiError), (status = 409, description = "accepted, cancelled or expired; or a member already; or the username is taken", body = novacula_core::wire::ApiError)))]
pub async fn accept(State(s): State<Arc<AppState>>, caller: MaybeSignedIn, ApiJson(req): ApiJson<AcceptInvitationRequest>) -> ApiResult<LoginResponse> {
    Ok(ApiJson(invitations::accept(&s, caller.user, caller.source, &req).await?))
}

/// The session's user on a public route, if a session was sent.
pub struct MaybeSignedIn {
    user: Option<crate::store::model::User>,
    source: novacula_core::audit::Source,
}

impl axum::extract::FromRequestParts<Arc<AppState>> for MaybeSignedIn {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        Ok(MaybeSignedIn { user: optional_user(parts, state).await?, source: super::auth::source(parts) })
    }
}
