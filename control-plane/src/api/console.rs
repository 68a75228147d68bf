//! The web console: one static page and script, embedded in the binary (no CDN,
//! nothing fetched at run time). It uses the same HTTP API as the CLI and the
//! executors, with a session token, and refreshes by polling.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

/// Only the console's own files run, and it is never framed (no clickjacking
/// of the lifecycle buttons); user data reaches the page escaped, never as code.
/// Images may also come from the blob: URLs the console makes of what it
/// fetched with the session (the organization's logo).
const CSP: &str = "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/console.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/console.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn pages_carry_a_strict_content_security_policy() {
        for path in ["/", "/console.js", "/console.css"] {
            let req = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
            let resp = routes::<()>().oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            let h = resp.headers();
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
        // the page loads its script and style from files, which the policy allows
        assert!(INDEX.contains(r#"<script src="/console.js"></script>"#) && !INDEX.contains("<script>") && !INDEX.contains("style="));
    }
}
