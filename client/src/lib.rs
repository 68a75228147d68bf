//! JSON-over-HTTP(S) client for the control plane API (hyper-util, rustls),
//! used by the executor loops, the CLI, the simulator and tests. Generic over
//! the connector so the simulator can route it through its own network.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use novacula_core::authz::Role;
use novacula_core::lifecycle::LifecycleAction;
use novacula_core::wire::{
    AcceptInvitationRequest, Alert, ApiError, ApiKeyView, AuditPage, CreateInvitationRequest, CreateKeyRequest, CreateUserRequest, CreatedInvitation,
    CreatedKey, DeployRequest, EditRequest, EventsPage, ExecutorView, InvitationPreview, InvitationToken, InvitationView, LifecycleRequest, LoginRequest,
    LoginResponse, MeView, NodeView, OrgMembershipView, OrgSettingsRequest, OrgView, ReportRequest, ReportResponse, SetRoleRequest, SetUpgradeRequest,
    SignupRequest, SpecPollResponse, SyncExecutorRequest, SyncExecutorResponse, TransferOwnershipRequest, UpgradeRequest, UpgradeRow, UserView,
};
use novacula_core::NodeSpec;
use novacula_core::ObservedNodeState;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Largest API answer read (a spec poll for 10,000 nodes is a few MiB).
pub const ANSWER_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Idle pooled connections are dropped after this (less than the server's header timeout).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

pub use hyper::Method;

/// Which nodes a listing returns (every filter optional).
#[derive(Debug, Clone, Default)]
pub struct NodeQuery {
    pub executor: Option<String>,
    pub chain: Option<String>,
    /// A derived phase, as the API spells it (`running`, `error`, ...).
    pub phase: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach control plane: {0}")]
    Transport(String),
    #[error("control plane answered {status}: {error}{}", if details.is_empty() { String::new() } else { format!(" ({})", details.join("; ")) })]
    Status { status: u16, error: String, details: Vec<String> },
    #[error("unexpected response from control plane: {0}")]
    Decode(String),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the failure means for a retry: the network, a busy or failing
    /// server, or an answer that is not the API's will pass; a refusal
    /// (authentication, permission, out of support, bad request) will not
    /// until someone acts.
    pub fn category(&self) -> novacula_core::error::ErrorCategory {
        use novacula_core::error::ErrorCategory;
        match self {
            ClientError::Status { status, .. } if (400..500).contains(status) && !matches!(status, 408 | 429) => ErrorCategory::Refused,
            _ => ErrorCategory::Transient,
        }
    }
}

/// The production connector: plain HTTP for `http://` URLs, TLS for `https://`.
pub type Connector = HttpsConnector<HttpConnector>;

#[derive(Clone)]
pub struct HttpApi<C = Connector> {
    /// The control plane's URLs: one, or several replicas (comma-separated
    /// when given); requests go to one until it cannot be reached or answers
    /// 503, then to the next.
    bases: Arc<Vec<String>>,
    current: Arc<std::sync::atomic::AtomicUsize>,
    token: Option<String>,
    /// The organization requests work in (`X-Novacula-Org`), else the session's.
    org: Option<String>,
    /// Who sends the requests (`X-Novacula-Client`: `cli`, `console`), for the audit log.
    client_name: Option<&'static str>,
    /// `Authorization: Basic ...` instead of the bearer token (a chain client's RPC).
    basic: Option<String>,
    client: Client<C, Full<Bytes>>,
    timeout: Duration,
}

impl HttpApi<Connector> {
    /// `base` like `http://127.0.0.1:8080` or `https://novacula.example.com`;
    /// an `https://` server must present a certificate the system trusts.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        Self::with_ca(base, token, None)
    }

    /// Like [`HttpApi::new`], also trusting the PEM certificates in `ca_file`
    /// (a private CA, or a self-signed control plane).
    pub fn with_ca(base: &str, token: Option<String>, ca_file: Option<&Path>) -> Result<Self, ClientError> {
        Self::with_connector(base, token, connector(base.contains("https://"), ca_file)?)
    }
}

/// What `audit` shows of the log.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
}

/// Plain HTTP, or TLS trusting the system's roots plus `ca_file` when `https`.
fn connector(https: bool, ca_file: Option<&Path>) -> Result<Connector, ClientError> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.set_nodelay(true);
    http.enforce_http(false);
    let roots = if https { trusted_roots(ca_file)? } else { RootCertStore::empty() };
    let tls = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Transport(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http))
}

/// GET `url` into `out` as it arrives, following up to 5 redirects (release
/// downloads redirect to a CDN), refusing bodies over `limit` bytes, within
/// `timeout` overall. Returns how many bytes were written.
pub async fn download_to(
    url: &str,
    ca_file: Option<&Path>,
    limit: u64,
    timeout: Duration,
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<u64, ClientError> {
    use tokio::io::AsyncWriteExt;
    let fut = async {
        let client: Client<Connector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector(url.starts_with("https://"), ca_file)?);
        let mut uri: hyper::Uri = url.parse().map_err(|e| ClientError::Transport(format!("bad URL {url:?}: {e}")))?;
        for _ in 0..=5 {
            let req = Request::get(uri.clone()).body(Full::new(Bytes::new())).map_err(|e| ClientError::Transport(e.to_string()))?;
            let resp = client.request(req).await.map_err(|e| transport_error(&e))?;
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| ClientError::Decode(format!("{status} from {uri} without a Location")))?;
                uri = resolve(&uri, location)?;
                continue;
            }
            if !status.is_success() {
                return Err(ClientError::Status { status: status.as_u16(), error: format!("GET {uri}"), details: vec![] });
            }
            let mut body = resp.into_body();
            let mut written = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ClientError::Transport(format!("reading {uri}: {e}")))?;
                let Ok(chunk) = frame.into_data() else { continue };
                written += chunk.len() as u64;
                if written > limit {
                    return Err(ClientError::Transport(format!("{uri} is larger than {limit} bytes")));
                }
                out.write_all(&chunk).await.map_err(|e| ClientError::Transport(format!("storing {uri}: {e}")))?;
            }
            out.flush().await.map_err(|e| ClientError::Transport(format!("storing {uri}: {e}")))?;
            return Ok(written);
        }
        Err(ClientError::Transport(format!("too many redirects from {url}")))
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| ClientError::Timeout(timeout))?
}

/// A redirect's Location resolved against `base` as a browser would (RFC 3986:
/// absolute, scheme-relative `//host/path`, absolute path, relative path).
fn resolve(base: &hyper::Uri, location: &str) -> Result<hyper::Uri, ClientError> {
    let bad = |e: String| ClientError::Decode(format!("bad redirect {location:?}: {e}"));
    let base = url::Url::parse(&base.to_string()).map_err(|e| bad(e.to_string()))?;
    let next = base.join(location).map_err(|e| bad(e.to_string()))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad(format!("scheme {} is not http(s)", next.scheme())));
    }
    next.as_str().parse().map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))
}

/// The system's root certificates plus those in `ca_file`.
fn trusted_roots(ca_file: Option<&Path>) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: a private CA may be all there is.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(file) = ca_file {
        for cert in pem_certificates(file).map_err(|e| ClientError::Transport(e.to_string()))? {
            roots.add(cert).map_err(|e| ClientError::Transport(format!("bad CA certificate in {}: {e}", file.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(ClientError::Transport("no trusted root certificates: install ca-certificates or give a CA file".into()));
    }
    Ok(roots)
}

/// Why a CA file gives no certificate to trust.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("cannot read certificates from {}: {source}", file.display())]
    Read { file: std::path::PathBuf, source: rustls::pki_types::pem::Error },
    #[error("{} holds no PEM certificate", file.display())]
    Empty { file: std::path::PathBuf },
}

/// Every certificate in a PEM file (a CA file); a file with none is an error.
pub fn pem_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_file_iter(file)
        .and_then(std::iter::Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|source| PemError::Read { file: file.to_path_buf(), source })?;
    if certs.is_empty() {
        return Err(PemError::Empty { file: file.to_path_buf() });
    }
    Ok(certs)
}

/// The error and its causes in one line, e.g. "client error (Connect): invalid
/// peer certificate: UnknownIssuer", with a hint when the certificate is not trusted.
fn transport_error(e: &(dyn std::error::Error + 'static)) -> ClientError {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    if msg.contains("invalid peer certificate") {
        msg.push_str(" (for a private CA, give its certificate: ca_file in agent.toml, NOVACULA_CA_FILE or --ca-file)");
    }
    ClientError::Transport(msg)
}

impl<C: Connect + Clone + Send + Sync + 'static> HttpApi<C> {
    /// `base`: one URL, or several replicas' separated by commas.
    pub fn with_connector(base: &str, token: Option<String>, connector: C) -> Result<Self, ClientError> {
        let bases: Vec<String> = base.split(',').map(|b| b.trim().trim_end_matches('/').to_string()).filter(|b| !b.is_empty()).collect();
        if bases.is_empty() {
            return Err(ClientError::Transport("no control plane URL given".into()));
        }
        if let Some(bad) = bases.iter().find(|b| !b.starts_with("http://") && !b.starts_with("https://")) {
            return Err(ClientError::Transport(format!("control plane URL {bad:?} must start with http:// or https://")));
        }
        // Close idle connections well before the server would (it allows 30 s
        // between requests), so a request never races the server's close.
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(connector);
        Ok(HttpApi {
            bases: Arc::new(bases),
            current: Default::default(),
            token,
            org: None,
            client_name: None,
            basic: None,
            client,
            timeout: Duration::from_secs(15),
        })
    }

    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Work in organization `org` (one of the user's) instead of the session's.
    pub fn with_org(mut self, org: Option<String>) -> Self {
        self.org = org;
        self
    }

    /// Send `user:password` as HTTP basic authentication (a chain client's RPC), not a token.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        use base64::Engine as _;
        self.basic = Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))));
        self
    }

    /// Name the program sending the requests (`cli`), which the audit log records as its source.
    pub fn with_client_name(mut self, name: &'static str) -> Self {
        self.client_name = Some(name);
        self
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The URL requests go to now.
    pub fn base(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        &self.bases[i % self.bases.len()]
    }

    /// After a request could not reach `failed` (or it answered 503), send the next ones to the
    /// next URL (if another request has not moved on already).
    fn fail_over(&self, failed: usize) {
        if self.bases.len() > 1 {
            let next = (failed + 1) % self.bases.len();
            if self.current.compare_exchange(failed, next, std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed).is_ok() {
                tracing::warn!(from = %self.bases[failed], to = %self.bases[next], "control plane unreachable or unavailable; trying the next URL");
            }
        }
    }

    /// Send a request and return status and raw body (no status check; at most [`ANSWER_BYTES_MAX`]).
    pub async fn raw(&self, method: Method, path: &str, body: Option<Vec<u8>>, timeout: Duration) -> Result<(StatusCode, Bytes), ClientError> {
        self.raw_as(method, path, body.map(|b| (b, "application/json")), timeout).await
    }

    /// [`HttpApi::raw`] with a body of another content type.
    pub async fn raw_as(&self, method: Method, path: &str, body: Option<(Vec<u8>, &str)>, timeout: Duration) -> Result<(StatusCode, Bytes), ClientError> {
        let at = self.current.load(std::sync::atomic::Ordering::Relaxed) % self.bases.len();
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.bases[at]));
        if let Some(b) = &self.basic {
            req = req.header(hyper::header::AUTHORIZATION, b);
        } else if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(org) = &self.org {
            req = req.header("x-novacula-org", org);
        }
        if let Some(name) = self.client_name {
            req = req.header("x-novacula-client", name);
        }
        if let Some((_, content_type)) = &body {
            req = req.header(hyper::header::CONTENT_TYPE, *content_type);
        }
        let body = body.map(|(b, _)| b).unwrap_or_default();
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| ClientError::Transport(e.to_string()))?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| {
                // Not reached (refused, reset, no route): the next request tries another replica.
                self.fail_over(at);
                transport_error(&e)
            })?;
            let status = resp.status();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                // A replica stepping aside (its database migrated by a newer
                // release, or unreachable from it): the next request tries another.
                self.fail_over(at);
            }
            // A control plane (or whatever answers in its place) cannot make us buffer without bound.
            let body = http_body_util::Limited::new(resp.into_body(), ANSWER_BYTES_MAX);
            let bytes =
                body.collect().await.map_err(|e| ClientError::Transport(format!("reading the answer (at most {ANSWER_BYTES_MAX} bytes): {e}")))?.to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| ClientError::Timeout(timeout))?
    }

    /// Read Server-Sent Events from `GET path` as they come: `on_event(event,
    /// data)` for each, until it returns false or the server ends the stream.
    /// An event larger than [`ANSWER_BYTES_MAX`] ends it with an error.
    pub async fn server_events(&self, path: &str, mut on_event: impl FnMut(&str, &str) -> bool) -> Result<(), ClientError> {
        let at = self.current.load(std::sync::atomic::Ordering::Relaxed) % self.bases.len();
        let mut req = Request::builder().method(Method::GET).uri(format!("{}{path}", self.bases[at])).header(hyper::header::ACCEPT, "text/event-stream");
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(org) = &self.org {
            req = req.header("x-novacula-org", org);
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|e| ClientError::Transport(e.to_string()))?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
            .map_err(|e| transport_error(&e))?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = http_body_util::Limited::new(body, ANSWER_BYTES_MAX).collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
            return Self::success((status, bytes)).map(drop);
        }
        let mut pending = String::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Transport(format!("reading events: {e}")))?;
            let Ok(chunk) = frame.into_data() else { continue };
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find("\n\n") {
                let block: String = pending.drain(..end + 2).collect();
                let (mut event, mut data) = ("message".to_string(), Vec::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim_start().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                // Comments (keep-alives) carry neither.
                if (!data.is_empty() || event != "message") && !on_event(&event, &data.join("\n")) {
                    return Ok(());
                }
            }
            if pending.len() > ANSWER_BYTES_MAX {
                return Err(ClientError::Decode(format!("an event larger than {ANSWER_BYTES_MAX} bytes")));
            }
        }
        Ok(())
    }

    pub async fn call<B: Serialize, T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&B>) -> Result<T, ClientError> {
        self.call_with_timeout(method, path, body, self.timeout).await
    }

    pub async fn call_with_timeout<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let bytes = self.send(method, path, body, timeout).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode(format!("{e} in {}", String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>())))
    }

    /// A call whose answer has no body (204).
    pub async fn call_empty<B: Serialize>(&self, method: Method, path: &str, body: Option<&B>) -> Result<(), ClientError> {
        self.send(method, path, body, self.timeout).await.map(drop)
    }

    /// The body of a successful answer; an error answer as [`ClientError::Status`].
    async fn send<B: Serialize>(&self, method: Method, path: &str, body: Option<&B>, timeout: Duration) -> Result<Bytes, ClientError> {
        let body = body.map(|b| serde_json::to_vec(b).map_err(|e| ClientError::Decode(e.to_string()))).transpose()?;
        let answer = self.raw(method, path, body, timeout).await?;
        Self::success(answer)
    }

    /// The body of a successful answer; an error answer as [`ClientError::Status`].
    fn success((status, bytes): (StatusCode, Bytes)) -> Result<Bytes, ClientError> {
        if !status.is_success() {
            let (error, details) = match serde_json::from_slice::<ApiError>(&bytes) {
                Ok(e) => (e.error, e.details),
                Err(_) => (String::from_utf8_lossy(&bytes).chars().take(300).collect(), vec![]),
            };
            return Err(ClientError::Status { status: status.as_u16(), error, details });
        }
        Ok(bytes)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    // --- executor protocol ---

    pub async fn sync_executor(&self, req: &SyncExecutorRequest) -> Result<SyncExecutorResponse, ClientError> {
        self.call(Method::POST, "/api/v1/executor/sync", Some(req)).await
    }

    /// Long-poll the executor's nodes: answers with all of them when they
    /// change past `since`, or after `wait`.
    pub async fn poll_specs(&self, executor: &str, since: u64, wait: Duration) -> Result<SpecPollResponse, ClientError> {
        self.poll(executor, since, wait, "").await
    }

    /// The same, answered with the changes since `since` when the control
    /// plane can (see [`SpecPollResponse::apply`]); control planes that
    /// answer syncs with no `capabilitiesDigest` refuse it.
    pub async fn poll_spec_changes(&self, executor: &str, since: u64, wait: Duration) -> Result<SpecPollResponse, ClientError> {
        self.poll(executor, since, wait, "&changes=true").await
    }

    async fn poll(&self, executor: &str, since: u64, wait: Duration, extra: &str) -> Result<SpecPollResponse, ClientError> {
        let path = format!("/api/v1/executor/specs?executor={}&since={since}&waitSecs={}{extra}", segment(executor), wait.as_secs());
        self.call_with_timeout::<(), _>(Method::GET, &path, None, wait + self.timeout).await
    }

    pub async fn report(&self, executor: &str, nodes: Vec<ObservedNodeState>) -> Result<ReportResponse, ClientError> {
        self.report_with_events(executor, nodes, Vec::new()).await
    }

    /// A report that also carries runtime events (`reportRuntimeEvents`).
    pub async fn report_with_events(
        &self,
        executor: &str,
        nodes: Vec<ObservedNodeState>,
        events: Vec<novacula_core::observed::RuntimeEvent>,
    ) -> Result<ReportResponse, ClientError> {
        self.call(Method::POST, &format!("/api/v1/executor/report?executor={}", segment(executor)), Some(&ReportRequest { nodes, events })).await
    }

    /// Lines of a log someone watches (a sync answer's `logWatches`).
    pub async fn push_logs(&self, executor: &str, batch: &novacula_core::logs::LogBatch) -> Result<novacula_core::logs::LogPushResponse, ClientError> {
        self.call(Method::POST, &format!("/api/v1/executor/logs?executor={}", segment(executor)), Some(batch)).await
    }

    // --- user API: every route, typed by core::wire ---

    /// Sign in; the answer's token is what later calls send (see [`Self::with_token`]).
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse, ClientError> {
        self.login_to(username, password, None).await
    }

    /// Sign in to organization `org` (one of the user's; else the first by name).
    pub async fn login_to(&self, username: &str, password: &str, org: Option<&str>) -> Result<LoginResponse, ClientError> {
        let req = LoginRequest { username: username.into(), password: password.into(), organization: org.map(str::to_string) };
        self.call(Method::POST, "/api/v1/login", Some(&req)).await
    }

    /// Create an account owning organization `org` (default: the username), when the server allows it.
    pub async fn signup(&self, username: &str, password: &str, org: Option<&str>) -> Result<LoginResponse, ClientError> {
        let req = SignupRequest { username: username.into(), password: password.into(), organization: org.map(str::to_string) };
        self.call(Method::POST, "/api/v1/signup", Some(&req)).await
    }

    /// End this session on the server.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::POST, "/api/v1/logout", None).await
    }

    /// The user's organizations and role in each.
    pub async fn orgs(&self) -> Result<Vec<OrgMembershipView>, ClientError> {
        self.get("/api/v1/orgs").await
    }

    pub async fn set_role(&self, username: &str, role: Role) -> Result<UserView, ClientError> {
        self.call(Method::PUT, &format!("/api/v1/users/{}", segment(username)), Some(&SetRoleRequest { role })).await
    }

    /// Take a member out of the organization (the account stays).
    pub async fn remove_user(&self, username: &str) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/users/{}", segment(username)), None).await
    }

    /// Disable (`true`) or enable a member's account.
    pub async fn set_user_disabled(&self, username: &str, disabled: bool) -> Result<UserView, ClientError> {
        let action = if disabled { "disable" } else { "enable" };
        self.call::<(), _>(Method::POST, &format!("/api/v1/users/{}/{action}", segment(username)), None).await
    }

    /// A page of the organization's audit log, newest first (`before` 0: from the newest).
    pub async fn audit(&self, before: u64, limit: usize, filter: &AuditFilter) -> Result<AuditPage, ClientError> {
        let mut q = format!("/api/v1/audit?before={before}&limit={limit}");
        for (k, v) in [("actor", &filter.actor), ("action", &filter.action), ("target", &filter.target)] {
            if let Some(v) = v {
                q.push_str(&format!("&{k}={}", segment(v)));
            }
        }
        self.get(&q).await
    }

    /// Your own recent activity in this organization.
    pub async fn my_activity(&self, before: u64, limit: usize) -> Result<AuditPage, ClientError> {
        self.get(&format!("/api/v1/me/activity?before={before}&limit={limit}")).await
    }

    /// Invite `email` as `role`; the answer holds the token, shown once.
    pub async fn invite(&self, email: &str, role: Role) -> Result<CreatedInvitation, ClientError> {
        self.call(Method::POST, "/api/v1/invitations", Some(&CreateInvitationRequest { email: email.into(), role })).await
    }

    pub async fn invitations(&self) -> Result<Vec<InvitationView>, ClientError> {
        self.get("/api/v1/invitations").await
    }

    /// A new token for invitation `id` (the old one stops working).
    pub async fn resend_invitation(&self, id: &str) -> Result<CreatedInvitation, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/invitations/{}/resend", segment(id)), None).await
    }

    pub async fn cancel_invitation(&self, id: &str) -> Result<InvitationView, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("/api/v1/invitations/{}", segment(id)), None).await
    }

    /// What an invitation token offers.
    pub async fn preview_invitation(&self, token: &str) -> Result<InvitationPreview, ClientError> {
        self.call(Method::POST, "/api/v1/invitations/preview", Some(&InvitationToken { token: token.into() })).await
    }

    /// Accept an invitation: as the signed-in user (no `account`), or creating `account` (username, password).
    pub async fn accept_invitation(&self, token: &str, account: Option<(&str, &str)>) -> Result<LoginResponse, ClientError> {
        let req = AcceptInvitationRequest { token: token.into(), username: account.map(|a| a.0.to_string()), password: account.map(|a| a.1.to_string()) };
        self.call(Method::POST, "/api/v1/invitations/accept", Some(&req)).await
    }

    /// The organization this client works in.
    pub async fn org(&self) -> Result<OrgView, ClientError> {
        self.get("/api/v1/org").await
    }

    pub async fn rename_org(&self, name: &str) -> Result<OrgView, ClientError> {
        self.update_org(name, None).await
    }

    /// The organization's name and, when given, its slug.
    pub async fn update_org(&self, name: &str, slug: Option<&str>) -> Result<OrgView, ClientError> {
        self.call(Method::PUT, "/api/v1/org", Some(&OrgSettingsRequest { name: name.into(), slug: slug.map(str::to_string) })).await
    }

    /// Deactivate (`false`) or reactivate the organization (its owner).
    /// Set the organization's logo (`image/png` or `image/jpeg`).
    pub async fn set_org_logo(&self, image: Vec<u8>, content_type: &str) -> Result<OrgView, ClientError> {
        let answer = self.raw_as(Method::PUT, "/api/v1/org/logo", Some((image, content_type)), self.timeout).await?;
        let bytes = Self::success(answer)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// The organization's logo.
    pub async fn org_logo(&self) -> Result<Bytes, ClientError> {
        Self::success(self.raw(Method::GET, "/api/v1/org/logo", None, self.timeout).await?)
    }

    pub async fn remove_org_logo(&self) -> Result<OrgView, ClientError> {
        self.call::<(), _>(Method::DELETE, "/api/v1/org/logo", None).await
    }

    pub async fn set_org_active(&self, active: bool) -> Result<OrgView, ClientError> {
        let verb = if active { "reactivate" } else { "deactivate" };
        self.call::<(), _>(Method::POST, &format!("/api/v1/org/{verb}"), None).await
    }

    /// Leave the organization this client works in.
    pub async fn leave(&self) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, "/api/v1/me/membership", None).await
    }

    pub async fn transfer_ownership(&self, username: &str) -> Result<UserView, ClientError> {
        self.call(Method::POST, "/api/v1/ownership", Some(&TransferOwnershipRequest { username: username.into() })).await
    }

    pub async fn me(&self) -> Result<MeView, ClientError> {
        self.get("/api/v1/me").await
    }

    pub async fn users(&self) -> Result<Vec<UserView>, ClientError> {
        self.get("/api/v1/users").await
    }

    pub async fn create_user(&self, req: &CreateUserRequest) -> Result<UserView, ClientError> {
        self.call(Method::POST, "/api/v1/users", Some(req)).await
    }

    pub async fn keys(&self) -> Result<Vec<ApiKeyView>, ClientError> {
        self.get("/api/v1/keys").await
    }

    pub async fn create_key(&self, req: &CreateKeyRequest) -> Result<CreatedKey, ClientError> {
        self.call(Method::POST, "/api/v1/keys", Some(req)).await
    }

    pub async fn revoke_key(&self, id: &str) -> Result<ApiKeyView, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/keys/{}/revoke", segment(id)), None).await
    }

    /// A new key for the same executor and lifetime; the old one is revoked.
    pub async fn rotate_key(&self, id: &str) -> Result<CreatedKey, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/keys/{}/rotate", segment(id)), None).await
    }

    /// Remove a revoked key's record.
    pub async fn delete_key(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/keys/{}", segment(id)), None).await
    }

    /// Every executor of the organization, page by page.
    pub async fn executors(&self) -> Result<Vec<ExecutorView>, ClientError> {
        every_page(
            EXECUTOR_PAGE,
            |e: &ExecutorView| e.executor.name.as_str(),
            |after| async move { self.executors_page(after.as_deref(), EXECUTOR_PAGE).await },
        )
        .await
    }

    /// One page of executors by name: at most `limit`, after the name `after`.
    pub async fn executors_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<ExecutorView>, ClientError> {
        let mut path = format!("/api/v1/executors?limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={}", segment(after)));
        }
        self.get(&path).await
    }

    pub async fn executor(&self, name: &str) -> Result<ExecutorView, ClientError> {
        self.get(&format!("/api/v1/executors/{}", segment(name))).await
    }

    /// Delete an executor with no nodes left that is offline or deactivated.
    pub async fn delete_executor(&self, name: &str) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/executors/{}", segment(name)), None).await
    }

    pub async fn deactivate_executor(&self, name: &str) -> Result<ExecutorView, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/executors/{}/deactivate", segment(name)), None).await
    }

    pub async fn reactivate_executor(&self, name: &str) -> Result<ExecutorView, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/executors/{}/reactivate", segment(name)), None).await
    }

    pub async fn upgrades(&self) -> Result<Vec<UpgradeRow>, ClientError> {
        self.get("/api/v1/upgrades").await
    }

    pub async fn set_upgrade(&self, req: &SetUpgradeRequest) -> Result<UpgradeRow, ClientError> {
        self.call(Method::PUT, "/api/v1/upgrades", Some(req)).await
    }

    /// The organization's nodes, or one executor's, page by page.
    pub async fn nodes(&self, executor: Option<&str>) -> Result<Vec<NodeView>, ClientError> {
        self.nodes_matching(&NodeQuery { executor: executor.map(str::to_string), ..NodeQuery::default() }).await
    }

    /// The nodes `q` selects, page by page.
    pub async fn nodes_matching(&self, q: &NodeQuery) -> Result<Vec<NodeView>, ClientError> {
        every_page(NODE_PAGE, |n: &NodeView| n.name.as_str(), |after| async move { self.nodes_page_matching(q, after.as_deref(), NODE_PAGE).await }).await
    }

    /// One page of nodes by name: at most `limit`, after the name `after`.
    pub async fn nodes_page(&self, executor: Option<&str>, after: Option<&str>, limit: usize) -> Result<Vec<NodeView>, ClientError> {
        self.nodes_page_matching(&NodeQuery { executor: executor.map(str::to_string), ..NodeQuery::default() }, after, limit).await
    }

    /// One page of the nodes `q` selects.
    pub async fn nodes_page_matching(&self, q: &NodeQuery, after: Option<&str>, limit: usize) -> Result<Vec<NodeView>, ClientError> {
        let mut path = format!("/api/v1/nodes?limit={limit}");
        for (name, value) in [("executor", &q.executor), ("chain", &q.chain), ("phase", &q.phase), ("after", &after.map(str::to_string))] {
            if let Some(v) = value {
                path.push_str(&format!("&{name}={}", segment(v)));
            }
        }
        self.get(&path).await
    }

    pub async fn node(&self, name: &str) -> Result<NodeView, ClientError> {
        self.get(&format!("/api/v1/nodes/{}", segment(name))).await
    }

    pub async fn deploy(&self, executor: &str, spec: NodeSpec) -> Result<NodeView, ClientError> {
        self.call(Method::POST, "/api/v1/nodes", Some(&DeployRequest { executor: executor.into(), spec })).await
    }

    pub async fn edit_spec(&self, name: &str, spec: NodeSpec) -> Result<NodeView, ClientError> {
        self.call(Method::PUT, &format!("/api/v1/nodes/{}/spec", segment(name)), Some(&EditRequest { spec })).await
    }

    pub async fn upgrade_client(&self, name: &str, req: &UpgradeRequest) -> Result<NodeView, ClientError> {
        self.call(Method::POST, &format!("/api/v1/nodes/{}/upgrade", segment(name)), Some(req)).await
    }

    pub async fn lifecycle(&self, name: &str, action: LifecycleAction) -> Result<NodeView, ClientError> {
        self.call(Method::POST, &format!("/api/v1/nodes/{}/lifecycle", segment(name)), Some(&LifecycleRequest { action })).await
    }

    /// Irreversible: the executor removes the node's processes (and, on an agent, its data).
    pub async fn delete_node(&self, name: &str) -> Result<NodeView, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("/api/v1/nodes/{}", segment(name)), None).await
    }

    pub async fn alerts(&self) -> Result<Vec<Alert>, ClientError> {
        self.get("/api/v1/alerts").await
    }

    /// One page of the events feed, oldest first, after the cursor `after`.
    pub async fn events(&self, after: u64, limit: usize, node: Option<&str>, kind: Option<&str>) -> Result<EventsPage, ClientError> {
        let mut q = format!("/api/v1/events?after={after}&limit={limit}");
        for (k, v) in [("node", node), ("kind", kind)] {
            if let Some(v) = v {
                q.push_str(&format!("&{k}={}", segment(v)));
            }
        }
        self.get(&q).await
    }
}

/// Every page of a listing by name: `page(after)` asks for at most `limit`
/// after the name `after`; a page shorter than `limit` is the last one.
async fn every_page<T, Fut>(limit: usize, name: fn(&T) -> &str, mut page: impl FnMut(Option<String>) -> Fut) -> Result<Vec<T>, ClientError>
where
    Fut: std::future::Future<Output = Result<Vec<T>, ClientError>>,
{
    let mut all: Vec<T> = Vec::new();
    loop {
        let batch = page(all.last().map(|t| name(t).to_string())).await?;
        let done = batch.len() < limit;
        all.extend(batch);
        if done {
            return Ok(all);
        }
    }
}

/// The largest page of nodes the API answers.
pub const NODE_PAGE: usize = 1000;
/// Executors asked for per page (the control plane's most).
pub const EXECUTOR_PAGE: usize = 1000;

/// `s` percent-encoded for a path segment or a query value.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_into_one_segment() {
        assert_eq!(segment("edge-1.a_b"), "edge-1.a_b");
        assert_eq!(segment("../x y"), "..%2Fx%20y");
    }

    #[test]
    fn redirects_resolve_as_a_browser_would() {
        let base: hyper::Uri = "https://releases.example/v1/geth/download?arch=amd64".parse().unwrap();
        let r = |l: &str| resolve(&base, l).map(|u| u.to_string());
        assert_eq!(r("https://cdn.example/a/geth.tar.gz").unwrap(), "https://cdn.example/a/geth.tar.gz");
        // scheme-relative: another host, same scheme (read as a path before)
        assert_eq!(r("//cdn.example/a/geth.tar.gz").unwrap(), "https://cdn.example/a/geth.tar.gz");
        assert_eq!(r("/files/geth.tar.gz").unwrap(), "https://releases.example/files/geth.tar.gz");
        // relative: against the base's directory (replaced the whole path before)
        assert_eq!(r("latest/geth.tar.gz").unwrap(), "https://releases.example/v1/geth/latest/geth.tar.gz");
        assert_eq!(r("../lighthouse").unwrap(), "https://releases.example/v1/lighthouse");
        assert!(r("ftp://files.example/geth").is_err());
    }
}
