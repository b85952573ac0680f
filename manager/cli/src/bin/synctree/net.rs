//! Network commands: `serve` answers sync sessions, `sync` opens one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use synctree_manager::{DRAIN_GRACE, ManagerConfig, SessionReport, SyncManager};
use synctree_primitives::Identity;
use synctree_transport::FramedTransport;
use tokio::net::{TcpListener, TcpStream};

use crate::error::{CliError, context};
use crate::node::Node;
use crate::output::emit;
use crate::progress;
use crate::protocol_arg::ProtocolArg;

/// Longest wait for a TCP connection to the peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `synctree serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on, e.g. `127.0.0.1:7000`; port 0 picks a free port. The
    /// bound address is printed on stderr as `synctree: listening on ADDR`.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Serve Prometheus metrics (sessions, bytes, rounds, outcomes) over HTTP at
    /// `http://ADDR/metrics`.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
}

/// Arguments of `synctree sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Address of a node running `synctree serve`.
    #[arg(long, value_name = "ADDR")]
    peer: String,
    /// Context to reconcile.
    #[arg(long)]
    context: String,
    /// Protocol to run.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Auto)]
    protocol: ProtocolArg,
    /// Print one JSON object on stdout (the fields of `demo --json`, with
    /// `root_local` and `root_remote` for this node and the peer).
    #[arg(long)]
    json: bool,
}

/// `serve`: answers sync sessions until SIGINT or SIGTERM, then lets running
/// sessions finish (up to the drain grace period) and closes the store.
pub(crate) async fn serve(node: Node, args: ServeArgs) -> Result<(), CliError> {
    let identity = Identity::new(node.node_id()?);
    let shutdown = shutdown_signal()?;
    let listen_err = |source| CliError::Listen {
        addr: args.listen.clone(),
        source,
    };
    let listener = TcpListener::bind(&args.listen).await.map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?;
    if let Some(metrics) = args.metrics {
        synctree_cli::prometheus::install_prometheus(metrics)?;
        eprintln!("synctree: metrics on http://{metrics}/metrics");
    }
    eprintln!("synctree: listening on {addr}");
    tracing::info!(node = %identity.node_id, %addr, "serving");
    let manager = SyncManager::new(Arc::clone(node.store()), identity, ManagerConfig::default());
    let summary = Arc::new(manager)
        .serve(listener, shutdown)
        .await
        .map_err(listen_err)?;
    node.close();
    eprintln!(
        "synctree: stopped after {} connections ({} refused as busy); store closed",
        summary.accepted, summary.busy
    );
    Ok(())
}

/// `sync`: one session with the peer as initiator; prints the report. Fails when
/// the session fails or ends with different roots.
pub(crate) async fn sync(node: Node, args: SyncArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let identity = Identity::new(node.node_id()?);
    let mut transport = connect(&args.peer).await?;
    let manager = SyncManager::new(Arc::clone(node.store()), identity, ManagerConfig::default());
    let message = format!("syncing `{context}` with {}", args.peer);
    let spinner = progress::spinner(message, args.json);
    let report = manager
        .sync(&mut transport, &context, args.protocol.choice())
        .await;
    spinner.finish_and_clear();
    drop(manager);
    node.close();
    let report = report.map_err(|source| CliError::Sync {
        peer: args.peer.clone(),
        context,
        source,
    })?;
    print_report(&report, &args.peer, args.json)?;
    if report.converged() {
        return Ok(());
    }
    let json = report.json();
    Err(CliError::Diverged {
        local: json.root_local,
        remote: json.root_remote,
    })
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

/// Prints the report: the `--json` object, or a human summary.
fn print_report(report: &SessionReport, peer: &str, json: bool) -> Result<(), CliError> {
    let s = report.json();
    if json {
        return emit(&format!("{}\n", serde_json::to_string(&s)?));
    }
    let lines = [
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
    ];
    emit(&(lines.join("\n") + "\n"))
}
