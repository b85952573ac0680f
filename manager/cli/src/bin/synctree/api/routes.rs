//! The API's routes; each handler runs the same code as the CLI command of the
//! same name, on the node's open store.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use synctree_manager::{AntiEntropyStats, PairStatus};
use synctree_primitives::Store;

use super::{Api, ApiError};
use crate::error::{CliError, context};
use crate::net::{SyncOutcome, SyncRequest};
use crate::node::Node;
use crate::{data, jsonl, root};

type Shared = State<Arc<Api>>;

/// Every route of the API (docs/openapi.yaml).
pub(super) fn router(api: Arc<Api>) -> Router {
    let entry = get(get_entry).put(put_entry).delete(delete_entry);
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/contexts", get(contexts))
        .route("/v1/contexts/{context}/root", get(root_of))
        .route("/v1/contexts/{context}/entries/{*key}", entry)
        .route("/v1/contexts/{context}/export", get(export))
        .route("/v1/contexts/{context}/import", post(import))
        .route("/v1/sync", post(sync_now))
        .with_state(api)
}

/// Runs store work on the blocking pool.
async fn blocking<T: Send + 'static>(
    api: &Arc<Api>,
    work: impl FnOnce(&Node) -> Result<T, CliError> + Send + 'static,
) -> Result<T, ApiError> {
    let node = Arc::clone(&api.node);
    match tokio::task::spawn_blocking(move || work(&node)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            "the request's task failed",
        )),
    }
}

/// `GET /v1/contexts`: every context with entries.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ContextsJson {
    /// Context names, sorted.
    pub(crate) contexts: Vec<String>,
}

async fn contexts(State(api): Shared) -> Result<axum::Json<ContextsJson>, ApiError> {
    let names = blocking(&api, |node| Ok(node.store().contexts()?)).await?;
    let contexts = names.iter().map(ToString::to_string).collect();
    Ok(axum::Json(ContextsJson { contexts }))
}

/// Query of `GET /v1/contexts/{context}/root`.
#[derive(Debug, Deserialize)]
struct RootQuery {
    #[serde(default)]
    verify: bool,
}

async fn root_of(
    State(api): Shared,
    Path(name): Path<String>,
    Query(query): Query<RootQuery>,
) -> Result<axum::Json<root::RootJson>, ApiError> {
    let context = context(&name)?;
    let (described, _) = blocking(&api, move |node| {
        root::describe(node, &context, query.verify)
    })
    .await?;
    Ok(axum::Json(described))
}

/// Query of `GET /v1/contexts/{context}/entries/{key}`.
#[derive(Debug, Deserialize)]
struct GetQuery {
    /// Answer the whole entry as JSON (an export line) instead of the value.
    #[serde(default)]
    json: bool,
}

async fn get_entry(
    State(api): Shared,
    Path((name, key)): Path<(String, String)>,
    Query(query): Query<GetQuery>,
) -> Result<axum::response::Response, ApiError> {
    let context = context(&name)?;
    let entry = blocking(&api, move |node| data::lookup(node, &context, &key)).await?;
    if query.json {
        return entry_json(&entry).map(IntoResponse::into_response);
    }
    let octets = [(header::CONTENT_TYPE, "application/octet-stream")];
    Ok((octets, entry.value).into_response())
}

/// An entry as the API answers it: one export line, `application/json`.
fn entry_json(entry: &synctree_primitives::Entry) -> Result<impl IntoResponse + use<>, ApiError> {
    let mut line = Vec::new();
    synctree_cli::jsonl::write_line(&mut line, entry)
        .map_err(|e| ApiError::from(CliError::from(e)))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], line))
}

async fn put_entry(
    State(api): Shared,
    Path((name, key)): Path<(String, String)>,
    value: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    write(api, name, key, Some(value)).await
}

async fn delete_entry(
    State(api): Shared,
    Path((name, key)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    write(api, name, key, None).await
}

/// Writes locally; answers the entry written.
async fn write(
    api: Arc<Api>,
    name: String,
    key: String,
    value: Option<Bytes>,
) -> Result<impl IntoResponse, ApiError> {
    let context = context(&name)?;
    let written = blocking(&api, move |node| {
        data::write_local(node, &context, &key, value)
    })
    .await?;
    entry_json(&written)
}

async fn export(
    State(api): Shared,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let context = context(&name)?;
    let lines = blocking(&api, move |node| {
        let mut out = Vec::new();
        jsonl::export_to(node, &context, &mut out, false)?;
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], lines))
}

/// Query of `POST /v1/contexts/{context}/import`.
#[derive(Debug, Deserialize)]
struct ImportQuery {
    #[serde(default)]
    accept_future_versions: bool,
}

async fn import(
    State(api): Shared,
    Path(name): Path<String>,
    Query(query): Query<ImportQuery>,
    body: Bytes,
) -> Result<axum::Json<jsonl::Imported>, ApiError> {
    let context = context(&name)?;
    let imported = blocking(&api, move |node| {
        let input = std::io::Cursor::new(body);
        jsonl::import_from(
            node,
            &context,
            input,
            "request",
            query.accept_future_versions,
        )
    })
    .await?;
    Ok(axum::Json(imported))
}

async fn sync_now(
    State(api): Shared,
    axum::Json(request): axum::Json<SyncRequest>,
) -> Result<axum::Json<Vec<SyncOutcome>>, ApiError> {
    let peers = match &request.peer {
        Some(peer) => vec![peer.clone()],
        None => api.peers.clone(),
    };
    if peers.is_empty() {
        let why = "no peer given and none configured";
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", why));
    }
    let mut outcomes = Vec::new();
    for peer in peers {
        let sessions =
            crate::net::sync_all((&api.manager, &api.connector), &peer, &request).await?;
        outcomes.extend(sessions);
    }
    Ok(axum::Json(outcomes))
}

/// `GET /v1/status`: the node, its contexts and its peers.
#[derive(Debug, Serialize)]
struct StatusJson {
    node: String,
    listen: String,
    peers: Vec<String>,
    contexts: Vec<root::RootJson>,
    anti_entropy: TotalsJson,
    pairs: Vec<PairJson>,
}

/// Anti-entropy totals.
#[derive(Debug, Serialize)]
struct TotalsJson {
    attempted: u64,
    succeeded: u64,
    diverged: u64,
    failed: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

impl From<AntiEntropyStats> for TotalsJson {
    fn from(s: AntiEntropyStats) -> Self {
        TotalsJson {
            attempted: s.attempted,
            succeeded: s.succeeded,
            diverged: s.diverged,
            failed: s.failed,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
        }
    }
}

/// One (peer, context) pair with its lag.
#[derive(Debug, Serialize)]
struct PairJson {
    #[serde(flatten)]
    status: PairStatus,
    /// Milliseconds since the pair last converged (`null`: never).
    lag_ms: Option<u64>,
}

async fn status(State(api): Shared) -> Result<axum::Json<StatusJson>, ApiError> {
    let contexts = blocking(&api, |node| {
        let names = node.store().contexts()?;
        let described = names
            .iter()
            .map(|c| root::describe(node, c, false).map(|(d, _)| d));
        described.collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let now = SystemTime::now();
    let pairs = api.stats.pairs().into_iter().map(|status| PairJson {
        lag_ms: status
            .lag(now)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        status,
    });
    Ok(axum::Json(StatusJson {
        node: api.node_id.clone(),
        listen: api.listen.to_string(),
        peers: api.peers.clone(),
        contexts,
        anti_entropy: api.stats.snapshot().into(),
        pairs: pairs.collect(),
    }))
}
