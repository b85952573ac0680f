//! Network commands: `serve` runs the node (sessions, anti-entropy, client API),
//! `sync` opens sessions with a peer.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use synctree_manager::{
    AntiEntropy, AntiEntropyConfig, DRAIN_GRACE, ManagerConfig, ReportJson, SessionReport,
    SharedStats, SyncManager, TcpConnector,
};
use synctree_primitives::{ContextId, Identity, Store};
use synctree_transport::FramedTransport;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::api::{Api, endpoint};
use crate::config::{self, ServeArgs};
use crate::error::{CliError, context};
use crate::node::Node;
use crate::output::emit;
use crate::progress;
use crate::protocol_arg::ProtocolArg;

/// Longest wait for a TCP connection to the peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `synctree sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Address of a node running `synctree serve`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) peer: String,
    /// Context to reconcile [default: every context this node holds].
    #[arg(long)]
    pub(crate) context: Option<String>,
    /// Protocol to run.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Auto)]
    pub(crate) protocol: ProtocolArg,
    /// Print one JSON object on stdout (the fields of `demo --json`, with
    /// `root_local` and `root_remote` for this node and the peer).
    #[arg(long)]
    pub(crate) json: bool,
}

/// Shortest `--interval`: a node cannot be made to sync every pair in a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// Longest `--interval`: a day (anything longer is a typo; it would also overflow
/// the scheduler's deadlines).
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// `serve`: the long-running node. Answers sync sessions, keeps every context in
/// sync with `--peer`s, and serves the client API, until SIGINT or SIGTERM; then
/// lets running sessions finish (up to the drain grace period) and closes the store.
pub(crate) async fn serve(node: Node, dir: &Path, flags: ServeArgs) -> Result<(), CliError> {
    let args = config::load(dir)?.effective(Some(&flags))?;
    let interval = interval(args.interval_secs)?;
    let Some(listen) = args.listen.clone() else {
        return Err(CliError::NoListen(dir.join(config::CONFIG_FILE)));
    };
    let node_id = node.node_id()?;
    let shutdown = shutdown_signal()?;
    let listen_err = |addr: String| move |source| CliError::Listen { addr, source };
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(listen_err(listen.clone()))?;
    let addr = listener.local_addr().map_err(listen_err(listen))?;
    let api_listener = TcpListener::bind(args.api)
        .await
        .map_err(listen_err(args.api.to_string()))?;
    let api_addr = api_listener
        .local_addr()
        .map_err(listen_err(args.api.to_string()))?;
    let token = match api_addr.ip().is_loopback() {
        true => None,
        false => Some(endpoint::token(dir)?),
    };
    if let Some(metrics) = args.metrics {
        synctree_cli::prometheus::install_prometheus(metrics)?;
        eprintln!("synctree: metrics on http://{metrics}/metrics");
    }
    let node = Arc::new(node);
    let manager = Arc::new(SyncManager::new(
        Arc::clone(node.store()),
        Identity::new(node_id),
        ManagerConfig::default(),
    ));
    let stats = SharedStats::default();
    let config = AntiEntropyConfig {
        interval,
        jitter: interval / 5,
        seed: node_id.0,
        ..AntiEntropyConfig::default()
    };
    let peers = args.peers.clone();
    let scheduler = AntiEntropy::new(Arc::clone(&manager), TcpConnector::default(), peers, config)
        .with_stats(stats.clone());
    let api = Arc::new(Api {
        node: Arc::clone(&node),
        manager: Arc::clone(&manager),
        peers: args.peers.clone(),
        stats,
        node_id: node_id.to_string(),
        listen: addr,
        token,
    });
    let (stop, stopped) = watch::channel(false);
    let published = endpoint::publish(dir, api_addr)?;
    let api_task = tokio::spawn(crate::api::serve(api_listener, api, until(stopped.clone())));
    let anti_entropy = tokio::spawn(scheduler.run(until(stopped)));
    eprintln!("synctree: api on http://{api_addr}");
    eprintln!("synctree: listening on {addr}");
    tracing::info!(node = %node_id, %addr, %api_addr, peers = args.peers.len(), "serving");
    let summary = Arc::clone(&manager)
        .serve(listener, async move {
            shutdown.await;
            stop.send_replace(true);
        })
        .await
        .map_err(listen_err(addr.to_string()))?;
    let _ = anti_entropy.await;
    if let Ok(Err(e)) = api_task.await {
        tracing::warn!(error = %e, "the client API stopped with an error");
    }
    drop(published);
    drop(manager);
    match Arc::try_unwrap(node) {
        Ok(node) => node.close(),
        Err(_) => tracing::warn!("store still in use; it closes on exit"),
    }
    eprintln!(
        "synctree: stopped after {} connections ({} refused as busy); store closed",
        summary.accepted, summary.busy
    );
    Ok(())
}

/// Checks `--interval`.
fn interval(seconds: f64) -> Result<Duration, CliError> {
    let interval = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO);
    match (MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        true => Ok(interval),
        false => Err(CliError::BadInterval(seconds)),
    }
}

/// Completes once `stopped` turns true (or its sender is gone).
async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
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
    let manager = SyncManager::new(Arc::clone(node.store()), identity, ManagerConfig::default());
    let request = SyncRequest {
        peer: Some(args.peer.clone()),
        context: args.context.clone(),
        protocol: args.protocol,
    };
    let contexts = contexts_to_sync(&**node.store(), request.context.as_deref())?;
    let mut results = Vec::new();
    for context in contexts {
        let synced = sync_one(&manager, &args.peer, &context, args.protocol, !args.json).await;
        results.push((context, synced.map(|r| r.json())));
    }
    drop(manager);
    node.close();
    finish_sync(&args.peer, results, args.json)
}

/// Every context of `request` with `peer`, as the API reports them.
pub(crate) async fn sync_all<S: Store + 'static>(
    manager: &SyncManager<S>,
    store: &S,
    peer: &str,
    request: &SyncRequest,
) -> Result<Vec<SyncOutcome>, CliError> {
    let mut outcomes = Vec::new();
    for context in contexts_to_sync(store, request.context.as_deref())? {
        let synced = sync_one(manager, peer, &context, request.protocol, false).await;
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

/// `--context`, or every context the store holds (none: an error).
fn contexts_to_sync<S: Store + ?Sized>(
    store: &S,
    named: Option<&str>,
) -> Result<Vec<ContextId>, CliError> {
    match named {
        Some(name) => Ok(vec![context(name)?]),
        None => {
            let held = store.contexts()?;
            match held.is_empty() {
                true => Err(CliError::NothingToSync),
                false => Ok(held),
            }
        }
    }
}

/// One session on `context` with `peer`. A context neither side holds is an
/// error, never a successful sync of nothing.
async fn sync_one<S: Store + 'static>(
    manager: &SyncManager<S>,
    peer: &str,
    context: &ContextId,
    protocol: ProtocolArg,
    show_progress: bool,
) -> Result<SessionReport, CliError> {
    let failed = |source| CliError::Sync {
        peer: peer.to_owned(),
        context: context.clone(),
        source,
    };
    let mut transport = connect(peer).await?;
    let message = format!("syncing `{context}` with {peer}");
    let spinner = progress::spinner(message, !show_progress);
    let report = manager
        .sync(&mut transport, context, protocol.choice())
        .await;
    spinner.finish_and_clear();
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

/// Connects to `peer` within [`CONNECT_TIMEOUT`].
async fn connect(peer: &str) -> Result<FramedTransport<TcpStream>, CliError> {
    let connect_err = |source| CliError::Connect {
        peer: peer.to_owned(),
        source,
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Ok(connected) => connected.map_err(connect_err)?,
        Err(_) => {
            let timeout = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            );
            return Err(connect_err(timeout));
        }
    };
    FramedTransport::tcp(stream).map_err(connect_err)
}

/// Completes on the first SIGINT or SIGTERM (Ctrl-C only, off Unix).
fn shutdown_signal() -> Result<impl Future<Output = ()>, CliError> {
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
