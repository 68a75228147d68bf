//! One error type for the API: every failure is a JSON body with a status.

use crate::services::ServiceError;
use crate::store::StoreError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use novacula_core::wire::ApiError as ApiErrorBody;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Vec<String>,
    pub problems: Vec<novacula_core::wire::Problem>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), details: Vec::new(), problems: Vec::new() }
    }
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    pub fn unprocessable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, m)
    }
}

/// Each service outcome as its HTTP status.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::BadInput(_) => StatusCode::BAD_REQUEST,
            ServiceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Invalid { .. } | ServiceError::InvalidSpec(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match e {
            ServiceError::Store(s) => ApiError::from(s),
            ServiceError::Invalid { message, details } => ApiError::new(status, message).with_details(details),
            ServiceError::InvalidSpec(errs) => ApiError {
                problems: errs.iter().map(novacula_core::wire::Problem::from).collect(),
                ..ApiError::new(status, "spec is not valid for the target executor").with_details(errs.iter().map(ToString::to_string).collect())
            },
            other => ApiError::new(status, other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Outdated { .. } = e {
            // Another replica runs a newer release: this one must not touch the records.
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
        tracing::error!(error = %e, "storage failure");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal storage error; see control-plane logs")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        }
        self.quiet()
    }
}

impl ApiError {
    /// The response, logged at debug only: for a refusal repeated on every
    /// request whose cause was logged once where it arose.
    pub fn quiet(self) -> Response {
        tracing::debug!(status = %self.status, error = %self.message, "request refused");
        let body = ApiErrorBody { error: self.message, details: self.details, problems: self.problems };
        (self.status, Json(body)).into_response()
    }
}

/// `Json` whose rejections (syntax, unknown fields, size, content type) are JSON errors.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // Checked as JSON (content type, syntax) without building a tree of it.
        let raw = match Json::<Box<serde_json::value::RawValue>>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(r) => return Err(json_rejection(r)),
        };
        let text = raw.get();
        // Every body of this API is an object; serde would also take a struct from an array.
        if !text.trim_start().starts_with('{') {
            return Err(ApiError::bad_request("invalid request body: expected a JSON object"));
        }
        // Most bodies decode in one pass (executors' syncs and reports, many a
        // second); the others take the path that accepts `5.0` for an integer
        // and names the field at fault.
        if let Ok(v) = serde_json::from_str::<T>(text) {
            return Ok(ApiJson(v));
        }
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
        decode_value("request body", value).map(ApiJson)
    }
}

/// A JSON value as a typed one, as the REST API decodes bodies: `5.0` is an
/// integer, and an error names the field at fault (`invalid <what>: <path>: ...`).
pub fn decode_value<T: DeserializeOwned>(what: &str, mut value: serde_json::Value) -> Result<T, ApiError> {
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::bad_request(format!("invalid {what}: {}: {}", e.path(), e.inner())))
}

/// JSON Schema's `integer` includes `5.0`; serde's integers do not. Numbers
/// with no fractional part become integers before typed decoding, so the API
/// accepts what its document says it accepts.
fn integral_floats_to_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0) {
                if f >= 0.0 && f < u64::MAX as f64 {
                    *v = Value::from(f as u64);
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *v = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = match r.status() {
        // Serde's "unknown field"/"missing field" are client errors of the body, not of the syntax.
        s if s == StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        s => s,
    };
    ApiError::new(status, format!("invalid request body: {}", r.body_text()))
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Query integers (cursors, seconds) are documented as int64: larger ones are refused.
pub fn query_int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = <u64 as serde::Deserialize>::deserialize(d)?;
    if v > i64::MAX as u64 {
        return Err(serde::de::Error::custom(format!("{v} is larger than {}", i64::MAX)));
    }
    Ok(v)
}

/// [`query_int`] for an optional parameter.
pub fn query_int_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    query_int(d).map(Some)
}

pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| ApiError::bad_request(format!("invalid query: {}", r.body_text())))
    }
}

pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r: PathRejection| ApiError::bad_request(format!("invalid path: {}", r.body_text())))
    }
}

pub type ApiResult<T> = Result<ApiJson<T>, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica whose database a newer release migrated says so (503: the
    /// load balancer tries another), instead of an internal error.
    #[test]
    fn an_outdated_store_answers_503_saying_why() {
        let e = ApiError::from(ServiceError::Store(StoreError::Outdated { found: 12, known: 11 }));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message.contains("schema version 12") && e.message.contains("newer release"), "{}", e.message);
    }
}
