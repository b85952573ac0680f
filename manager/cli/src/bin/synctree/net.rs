//! `sync`: sessions with a peer as initiator, one per context; and what `serve`
//! and the API share with it (the shutdown signal, the sync request and outcomes).

use std::future::Future;
use std::sync::Arc;

use clap::Args;
use serde::{Deserialize, Serialize};
use synctree_manager::{
    DRAIN_GRACE, ManagerConfig, ManagerError, ReportJson, SessionReport, SyncManager,
};
use synctree_primitives::{ContextId, Identity, Store};

use crate::connector::PeerConnector;
use crate::error::{CliError, context};
use crate::identity::node_key;
use crate::node::Node;
use crate::output::emit;
use crate::progress;
use crate::protocol_arg::ProtocolArg;
use synctree_primitives::SyncTransport as _;
use synctree_primitives::tap::Tap;

/// Arguments of `synctree sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// The serving node: `ID@HOST:PORT` over TLS, `quic://ID@HOST:PORT` over
    /// QUIC (ID from `synctree id` on it; the session fails unless the peer
    /// proves that identity), or `HOST:PORT` with `--insecure-plaintext`.
    #[arg(long, value_name = "PEER")]
    pub(crate) peer: String,
    /// Context to reconcile [default: every context this node or the peer holds].
    #[arg(long)]
    pub(crate) context: Option<String>,
    /// Protocol to run.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Auto)]
    pub(crate) protocol: ProtocolArg,
    /// Connect over plain TCP: nothing is encrypted and the peer is not
    /// authenticated. For tests and local demos only.
    #[arg(long)]
    pub(crate) insecure_plaintext: bool,
    /// Print one JSON object on stdout (the fields of `demo --json`, with
    /// `root_local` and `root_remote` for this node and the peer).
    #[arg(long)]
    pub(crate) json: bool,
}

/// What `sync` asks for, on the command line or through the API's "sync now".
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SyncRequest {
    /// The peer (`None` through the API: every configured peer).
    #[serde(default)]
    pub(crate) peer: Option<String>,
    /// The context (`None`: every context this node holds).
    #[serde(default)]
    pub(crate) context: Option<String>,
    /// The protocol.
    #[serde(default)]
    pub(crate) protocol: ProtocolArg,
}

/// Each context's session result, in the order they ran.
pub(crate) type SyncResults = Vec<(ContextId, Result<ReportJson, CliError>)>;

/// How one context's session with one peer went, as the API reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SyncOutcome {
    /// The peer.
    pub(crate) peer: String,
    /// The context.
    pub(crate) context: String,
    /// The session's report, when it completed.
    #[serde(default)]
    pub(crate) report: Option<ReportJson>,
    /// Why it failed, when it did.
    #[serde(default)]
    pub(crate) error: Option<String>,
}

/// `sync`: one session per context with the peer as initiator; prints each
/// report. Fails when a session fails, or ends with different roots.
pub(crate) async fn sync(node: Node, args: SyncArgs) -> Result<(), CliError> {
    let identity = Identity::new(node.node_id()?);
    let key = match args.insecure_plaintext {
        true => None,
        false => Some(Arc::new(node_key(node.dir())?)),
    };
    let connector = PeerConnector::new(key);
    let manager = SyncManager::new(Arc::clone(node.store()), identity, ManagerConfig::default());
    let request = SyncRequest {
        peer: Some(args.peer.clone()),
        context: args.context.clone(),
        protocol: args.protocol,
    };
    let named = request.context.as_deref();
    let contexts = contexts_to_sync((&manager, &connector), &args.peer, named).await?;
    let mut results = Vec::new();
    for context in contexts {
        let synced = sync_one(
            &manager,
            &connector,
            &args.peer,
            (&context, args.protocol),
            !args.json,
        )
        .await;
        results.push((context, synced.map(|r| r.json())));
    }
    drop(manager);
    node.close();
    finish_sync(&args.peer, results, args.json)
}

/// Every context of `request` with `peer`, as the API reports them.
pub(crate) async fn sync_all<S: Store + 'static>(
    (manager, connector): (&SyncManager<S>, &PeerConnector),
    peer: &str,
    request: &SyncRequest,
) -> Result<Vec<SyncOutcome>, CliError> {
    let mut outcomes = Vec::new();
    let named = request.context.as_deref();
    for context in contexts_to_sync((manager, connector), peer, named).await? {
        let synced = sync_one(
            manager,
            connector,
            peer,
            (&context, request.protocol),
            false,
        )
        .await;
        let (report, error) = match synced {
            Ok(report) => (Some(report.json()), None),
            Err(e) => (None, Some(synctree_primitives::error::error_chain(&e))),
        };
        outcomes.push(SyncOutcome {
            peer: peer.to_owned(),
            context: context.to_string(),
            report,
            error,
        });
    }
    Ok(outcomes)
}

/// `--context`, or every context this node or the peer holds (none: an error).
/// A peer that cannot list its contexts (an older node) leaves this node's own.
async fn contexts_to_sync<S: Store + 'static>(
    (manager, connector): (&SyncManager<S>, &PeerConnector),
    peer: &str,
    named: Option<&str>,
) -> Result<Vec<ContextId>, CliError> {
    if let Some(name) = named {
        return Ok(vec![context(name)?]);
    }
    let mut all = manager.store().contexts()?;
    let mut transport = connector.open(peer).await?;
    match manager.list_contexts(&mut transport).await {
        Ok(listed) => {
            if listed.truncated {
                tracing::warn!(%peer, "the peer holds more contexts than it listed");
            }
            all.extend(listed.contexts);
        }
        Err(ManagerError::Rejected { source, .. }) => {
            let why = synctree_primitives::error::error_chain(&source);
            tracing::warn!(%peer, reason = %why, "the peer did not list its contexts");
        }
        Err(source) => {
            let peer = peer.to_owned();
            return Err(CliError::Listing { peer, source });
        }
    }
    all.sort();
    all.dedup();
    match all.is_empty() {
        true => Err(CliError::NothingToSync),
        false => Ok(all),
    }
}

/// One session on `context` with `peer`. A context neither side holds is an
/// error, never a successful sync of nothing.
async fn sync_one<S: Store + 'static>(
    manager: &SyncManager<S>,
    connector: &PeerConnector,
    peer: &str,
    (context, protocol): (&ContextId, ProtocolArg),
    show_progress: bool,
) -> Result<SessionReport, CliError> {
    let failed = |source| CliError::Sync {
        peer: peer.to_owned(),
        context: context.clone(),
        source,
    };
    let message = format!("syncing `{context}` with {peer}");
    let spinner = progress::spinner(message, !show_progress);
    let meter = progress::SessionMeter::new(spinner.clone());
    let mut transport = Tap::new(connector.open(peer).await?, meter);
    let report = manager
        .sync(&mut transport, context, protocol.choice())
        .await;
    spinner.finish_and_clear();
    // Closing twice is a no-op; a QUIC transport closes its connection here.
    let _ = transport.close().await;
    let report = report.map_err(failed)?;
    if !report.local.has_state && !report.remote.has_state {
        return Err(CliError::NotHeld {
            peer: peer.to_owned(),
            context: context.clone(),
        });
    }
    Ok(report)
}

/// Prints every result; with one context its error is the command's, with
/// several each failure is printed and the command fails once at the end.
pub(crate) fn finish_sync(peer: &str, results: SyncResults, json: bool) -> Result<(), CliError> {
    let total = results.len();
    let mut failures = Vec::new();
    for (context, result) in results {
        let failure = match result {
            Ok(report) => {
                print_report(&report, &context, peer, json, total > 1)?;
                match report.converged {
                    true => continue,
                    false => CliError::Diverged {
                        local: report.root_local,
                        remote: report.root_remote,
                    },
                }
            }
            Err(e) => e,
        };
        failures.push(failure);
    }
    match (failures.len(), failures.pop()) {
        (_, None) => Ok(()),
        (1, Some(only)) if total == 1 => Err(only),
        (failed, Some(_)) => Err(CliError::SomeSyncsFailed { failed, total }),
    }
}

/// Completes on the first SIGINT or SIGTERM (Ctrl-C only, off Unix).
pub(crate) fn shutdown_signal() -> Result<impl Future<Output = ()>, CliError> {
    #[cfg(unix)]
    let signalled = {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(CliError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(CliError::Signals)?;
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    };
    #[cfg(not(unix))]
    let signalled = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    Ok(async move {
        signalled.await;
        eprintln!(
            "synctree: shutting down; letting running sessions finish (up to {} s)",
            DRAIN_GRACE.as_secs()
        );
    })
}

/// Prints one report: the `--json` object (one line; with `several`, tagged with
/// its context), or a human summary.
fn print_report(
    s: &ReportJson,
    context: &ContextId,
    peer: &str,
    json: bool,
    several: bool,
) -> Result<(), CliError> {
    if json {
        let line = match several {
            false => serde_json::to_string(s)?,
            true => serde_json::to_string(
                &serde_json::json!({ "context": context.as_str(), "report": s }),
            )?,
        };
        return emit(&format!("{line}\n"));
    }
    let mut lines = Vec::new();
    if several {
        lines.push(format!("context         {context}"));
    }
    lines.extend([
        format!("synced with     {peer}"),
        format!("protocol        {} ({})", s.protocol, s.reason),
        format!("converged       {}", s.converged),
        format!("root local      {}", s.root_local),
        format!("root remote     {}", s.root_remote),
        format!("round trips     {} (tree depth {})", s.rounds, s.tree_depth),
        format!(
            "messages        {} ({} sent, {} received)",
            s.messages, s.messages_sent, s.messages_received
        ),
        format!(
            "bytes           {} sent, {} received",
            s.bytes_sent, s.bytes_received
        ),
        format!(
            "entries         {} pulled, {} pushed ({} B of entries)",
            s.entries_pulled, s.entries_pushed, s.payload_bytes
        ),
        format!("time            {:.1} ms", s.duration_ms),
    ]);
    if several {
        lines.push(String::new());
    }
    emit(&(lines.join("\n") + "\n"))
}
