//! The running node's client API: HTTP/JSON on its own address, so `put`, `get`,
//! `sync` and the rest work while `serve` holds the store (docs/openapi.yaml).
//!
//! ```text
//!  synctree put … ──► store held? ──► DIR/api.json ──► client ──HTTP──► Router ──► Node
//!                         │ no                                          (auth: loopback,
//!                         ▼                                            or bearer token)
//!                    open the store directly
//! ```
//!
//! The API listens on loopback by default; on any other address every request
//! must carry `Authorization: Bearer <DIR/api-token>`.

pub(crate) mod client;
pub(crate) mod endpoint;
pub(crate) mod remote;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use synctree_manager::{SharedStats, SyncManager};
use tokio::net::TcpListener;

use crate::connector::PeerConnector;
use crate::error::{CliError, Failure};
use crate::node::{Backend, Logged, Node};

/// Largest request body the API reads (an import): bounded so one request cannot
/// take the node's memory; larger imports go in several requests or offline.
pub(crate) const MAX_REQUEST_BODY_BYTES: usize = 256 * 1024 * 1024;

/// What every handler shares.
pub(crate) struct Api {
    /// The open store directory.
    pub(crate) node: Arc<Node>,
    /// The node's sync manager (for "sync now").
    pub(crate) manager: Arc<SyncManager<Logged<Backend>>>,
    /// How "sync now" reaches a peer.
    pub(crate) connector: PeerConnector,
    /// Configured peers, for "sync now" without a peer and for the status page.
    pub(crate) peers: Vec<String>,
    /// Anti-entropy totals and the per-pair table.
    pub(crate) stats: SharedStats,
    /// This node's id, as the status page shows it.
    pub(crate) node_id: String,
    /// Where sync sessions are served.
    pub(crate) listen: SocketAddr,
    /// The bearer token required beyond loopback (`None`: loopback only, no token).
    pub(crate) token: Option<String>,
}

/// A failed request: an HTTP status and `{"error", "kind"}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

/// The JSON body of an [`ApiError`].
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct ErrorJson {
    /// One line saying what went wrong.
    pub(crate) error: String,
    /// `not_found`, `bad_request`, `unauthorized` or `failed`.
    pub(crate) kind: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }
}

impl From<CliError> for ApiError {
    fn from(e: CliError) -> Self {
        let failure = e.failure();
        let status = match failure {
            Failure::NotFound => StatusCode::NOT_FOUND,
            Failure::BadRequest => StatusCode::BAD_REQUEST,
            Failure::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = synctree_primitives::error::error_chain(&e);
        ApiError::new(status, failure.name(), message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorJson {
            error: self.message,
            kind: self.kind.to_owned(),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    api: Arc<Api>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app: Router = routes::router(Arc::clone(&api))
        .layer(axum::middleware::from_fn_with_state(api, authorize))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY_BYTES));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Refuses a request without the token, when one is required.
async fn authorize(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    match &api.token {
        Some(token) if !bearer_matches(request.headers(), token) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong token",
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Whether `Authorization: Bearer T` carries `token`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, "abc"));
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert!(bearer_matches(&headers, "abc"));
        assert!(!bearer_matches(&headers, "abd"));
        assert!(!bearer_matches(&headers, "abcd"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert!(!bearer_matches(&headers, "abc"));
    }
}
