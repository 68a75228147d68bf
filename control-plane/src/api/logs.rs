//! A node's logs: viewers read them as Server-Sent Events
//! (`GET /nodes/{name}/logs`), executors push them (`POST /executor/logs`)
//! while someone watches (see `crate::logs`).

use super::auth::{ExecutorKey, UserCtx};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::logs::{Update, Viewer};
use crate::services::{nodes, protocol};
use crate::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use novacula_core::logs::{LogBatch, LogLevel, LogLine, LogPushResponse, BATCH_MAX, LINE_MAX, REPLAY_DEFAULT, REPLAY_MAX};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long a viewer without `follow` waits for the executor's replay (it
/// learns of the watch at its next sync, every 5 s).
const REPLAY_WAIT: Duration = Duration::from_secs(15);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsQuery {
    /// The process (a client role or sidecar name); default: the spec's first client.
    #[serde(default)]
    process: Option<String>,
    /// Lines replayed first (default 200, at most 1000).
    #[serde(default, deserialize_with = "crate::api::error::query_int_opt")]
    #[param(minimum = 0, maximum = 1000)]
    tail: Option<u64>,
    /// Only lines at this level or above.
    #[serde(default)]
    #[param(inline)]
    level: Option<LogLevel>,
    /// Keep streaming new lines (default: end after the replay).
    #[serde(default)]
    follow: bool,
}

/// The node's log as `text/event-stream`: `line` events (data: `{at, level,
/// text}`), then `replayed` once the executor's replay is in; with `follow`,
/// new `line`s as they come, `skipped` (data: a count) when this viewer fell
/// behind, `error` when the executor cannot read the log. One process at a time.
#[utoipa::path(get, path = "/api/v1/nodes/{name}/logs", tag = "nodes", security(("session" = [])), params(("name" = String, Path, description = "node name"), LogsQuery), responses((status = 200, description = "Server-Sent Events", content_type = "text/event-stream", body = String), (status = 404, description = "no such node", body = novacula_core::wire::ApiError), (status = 422, description = "no such process, or a bad tail", body = novacula_core::wire::ApiError)))]
pub async fn stream(
    State(s): State<Arc<AppState>>,
    user: UserCtx,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tail = q.tail.unwrap_or(u64::from(REPLAY_DEFAULT));
    if tail > u64::from(REPLAY_MAX) {
        return Err(ApiError::unprocessable(format!("tail: at most {REPLAY_MAX} lines")));
    }
    let org = user.org().to_string();
    let n = s.blocking(move |s| nodes::get(s, &org, &name)).await?;
    let processes: Vec<String> = n.spec.clients.iter().map(|c| c.role.clone()).chain(n.spec.sidecars.iter().map(|c| c.name.clone())).collect();
    let process = match q.process {
        Some(p) if processes.contains(&p) => p,
        Some(p) => return Err(ApiError::unprocessable(format!("node {} has no process {p:?}; it has {}", n.name, processes.join(", ")))),
        None => processes.first().cloned().ok_or_else(|| ApiError::unprocessable(format!("node {} has no process", n.name)))?,
    };
    if n.removed {
        return Err(ApiError::unprocessable(format!("node {} is removed: its logs went with it", n.name)));
    }
    let viewer = s.logs.watch(user.org(), &n.executor, &n.name, &process, tail as u32);
    // Other replicas learn of it now, not at the next announcement: the executor may sync with one of them.
    let announcement = s.logs.announce(&viewer);
    s.blocking(move |s| s.publish_all(announcement)).await;
    let min = q.level.unwrap_or(LogLevel::Debug);
    let state = Replay {
        viewer,
        min,
        follow: q.follow,
        backlog: Default::default(),
        started: false,
        done: false,
        deadline: tokio::time::Instant::now() + REPLAY_WAIT,
        executor: n.executor,
    };
    Ok(Sse::new(futures_util::stream::unfold(state, next_event)).keep_alive(KeepAlive::default()))
}

struct Replay {
    viewer: Viewer,
    min: LogLevel,
    follow: bool,
    /// What is decided but not yet sent, oldest first.
    backlog: std::collections::VecDeque<Out>,
    started: bool,
    done: bool,
    deadline: tokio::time::Instant,
    executor: String,
}

enum Out {
    Line(LogLine),
    Replayed,
    Skipped(u64),
    Error(String),
}

impl Replay {
    fn lines(&mut self, lines: &[LogLine]) {
        let min = self.min;
        self.backlog.extend(lines.iter().filter(|l| l.level >= min).cloned().map(Out::Line));
    }

    /// The next event to send; a viewer without `follow` ends after the replay (or an error).
    fn emit(mut self, out: Out) -> Option<(Result<Event, Infallible>, Replay)> {
        let event = match out {
            Out::Line(l) => Event::default().event("line").json_data(&l).unwrap_or_else(|_| Event::default().event("line").data(l.text)),
            Out::Replayed => {
                self.done = !self.follow;
                Event::default().event("replayed").data("")
            }
            Out::Skipped(n) => Event::default().event("skipped").data(n.to_string()),
            Out::Error(e) => {
                self.done = !self.follow;
                Event::default().event("error").data(e)
            }
        };
        Some((Ok(event), self))
    }
}

async fn next_event(mut st: Replay) -> Option<(Result<Event, Infallible>, Replay)> {
    if !st.started {
        // A running watch: its last lines at once, and its replay is in.
        st.started = true;
        let recent = std::mem::take(&mut st.viewer.recent);
        st.lines(&recent);
        if st.viewer.replayed {
            st.backlog.push_back(Out::Replayed);
        }
    }
    loop {
        if st.done {
            return None;
        }
        if let Some(out) = st.backlog.pop_front() {
            return st.emit(out);
        }
        let got = if st.follow {
            st.viewer.updates.recv().await
        } else {
            match tokio::time::timeout_at(st.deadline, st.viewer.updates.recv()).await {
                Ok(r) => r,
                Err(_) => {
                    let why = format!("no lines from executor {} within {} s (is it online?)", st.executor, REPLAY_WAIT.as_secs());
                    return st.emit(Out::Error(why));
                }
            }
        };
        match got {
            Ok(Update::Lines(lines)) => st.lines(&lines),
            Ok(Update::Replayed) => st.backlog.push_back(Out::Replayed),
            Ok(Update::Error(e)) => st.backlog.push_back(Out::Error(e)),
            Err(RecvError::Lagged(n)) => st.backlog.push_back(Out::Skipped(n)),
            Err(RecvError::Closed) => return None,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushQuery {
    pub executor: String,
}

/// Lines of a log someone watches (the sync answer's `logWatches`).
#[utoipa::path(post, path = "/api/v1/executor/logs", tag = "executor protocol", security(("apiKey" = [])), params(PushQuery), request_body = LogBatch, responses((status = 200, body = LogPushResponse), (status = 422, description = "too many or too long lines", body = novacula_core::wire::ApiError), (status = 404, description = "not found", body = novacula_core::wire::ApiError), (status = 409, description = "conflict with the current state", body = novacula_core::wire::ApiError)))]
pub async fn push(
    State(s): State<Arc<AppState>>,
    auth: ExecutorKey,
    ApiQuery(q): ApiQuery<PushQuery>,
    ApiJson(batch): ApiJson<LogBatch>,
) -> ApiResult<LogPushResponse> {
    if batch.lines.len() > BATCH_MAX {
        return Err(ApiError::unprocessable(format!("lines: at most {BATCH_MAX} a push")));
    }
    if batch.lines.iter().any(|l| l.text.chars().count() > LINE_MAX + 16) || batch.error.as_ref().is_some_and(|e| e.len() > LINE_MAX) {
        return Err(ApiError::unprocessable(format!("a line is longer than {LINE_MAX} characters")));
    }
    let exec = protocol::node_caller_now(&s, auth.key, q.executor).await?;
    let watched = match s.logs.push(&exec.org_id, &exec.name, batch) {
        crate::logs::Pushed::Here(watched) => watched,
        // A viewer on another replica: through the database, off the async workers.
        crate::logs::Pushed::Relay(messages) => {
            s.blocking(move |s| s.publish_all(messages)).await;
            true
        }
    };
    Ok(ApiJson(LogPushResponse { watched }))
}
