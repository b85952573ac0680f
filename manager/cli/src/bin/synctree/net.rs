//! Network commands: `serve` answers sync sessions, `sync` opens one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use synctree_manager::{DRAIN_GRACE, ManagerConfig, ServeSummary, SessionReport, SyncManager};
use synctree_primitives::{Identity, SyncTransport};
use synctree_secure::{PeerAddr, PeerId, PeerPolicy, Scheme, TlsAcceptor};
use synctree_transport::FramedTransport;
use tokio::net::{TcpListener, TcpStream};

use crate::error::{CliError, context};
use crate::identity::node_key;
use crate::node::Node;
use crate::output::emit;
use crate::peers::{PEERS_FILE, Peers};
use crate::progress;
use crate::protocol_arg::ProtocolArg;

/// Longest wait for a plaintext TCP connection to the peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `--insecure-plaintext` prints, so nobody runs it by accident.
const PLAINTEXT_WARNING: &str = "synctree: WARNING: --insecure-plaintext: nothing is encrypted or \
     authenticated; anyone who can reach this node can read and overwrite every context";

/// Arguments of `synctree serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on, e.g. `127.0.0.1:7000`; port 0 picks a free port. The
    /// bound address is printed on stderr as `synctree: listening on ADDR`.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Allow the node with this ID (from `synctree id` on it) to connect, with
    /// read and write access to every context. Repeatable; adds to the peers
    /// file `DIR/peers` (one `ID [read=CONTEXTS] [write=CONTEXTS]` per line).
    #[arg(long, value_name = "ID")]
    allow: Vec<PeerId>,
    /// Also accept QUIC connections on this UDP address (same identity and
    /// allowlist). The bound address is printed as `synctree: quic on ADDR`.
    #[arg(long, value_name = "ADDR")]
    listen_quic: Option<String>,
    /// Serve plain TCP: no encryption, no authentication, every client may read
    /// and write everything. For tests and local demos only.
    #[arg(long, conflicts_with_all = ["allow", "listen_quic"])]
    insecure_plaintext: bool,
    /// Serve Prometheus metrics (sessions, bytes, rounds, outcomes) over HTTP at
    /// `http://ADDR/metrics`.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
}

/// Arguments of `synctree sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// The serving node: `ID@HOST:PORT` over TLS, `quic://ID@HOST:PORT` over
    /// QUIC (ID from `synctree id` on it; the session fails unless the peer
    /// proves that identity), or `HOST:PORT` with `--insecure-plaintext`.
    #[arg(long, value_name = "PEER")]
    peer: String,
    /// Context to reconcile.
    #[arg(long)]
    context: String,
    /// Protocol to run.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Auto)]
    protocol: ProtocolArg,
    /// Connect over plain TCP: nothing is encrypted and the peer is not
    /// authenticated. For tests and local demos only.
    #[arg(long)]
    insecure_plaintext: bool,
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
    let manager = Arc::new(SyncManager::new(
        Arc::clone(node.store()),
        identity,
        ManagerConfig::default(),
    ));
    let summary = if args.insecure_plaintext {
        eprintln!("{PLAINTEXT_WARNING}");
        eprintln!("synctree: listening on {addr}");
        manager.serve(listener, shutdown).await
    } else {
        let key = node_key(node.dir())?;
        let peers = Arc::new(Peers::open(node.dir(), &args.allow)?);
        if peers.count() == 0 {
            eprintln!(
                "synctree: no node is allowed to connect yet: pass --allow ID or list IDs in {}",
                node.dir().join(PEERS_FILE).display()
            );
        }
        let policy: Arc<dyn PeerPolicy> = peers;
        let acceptor = Arc::new(TlsAcceptor::new(&key, Arc::clone(&policy))?);
        eprintln!("synctree: node ID {}", key.id());
        let quic = match &args.listen_quic {
            Some(quic_addr) => Some(crate::quic_serve::bind(&key, policy, quic_addr)?),
            None => None,
        };
        eprintln!("synctree: listening on {addr}");
        tracing::info!(node = %key.id(), %addr, "serving");
        let tls_manager = Arc::clone(&manager);
        let tls = move |until| -> crate::quic_serve::TcpServe {
            Box::pin(tls_manager.serve_with(listener, acceptor, until))
        };
        crate::quic_serve::alongside(manager, quic, tls, shutdown).await
    }
    .map_err(listen_err)?;
    node.close();
    report_stopped(&summary);
    Ok(())
}

fn report_stopped(summary: &ServeSummary) {
    eprintln!(
        "synctree: stopped after {} connections ({} refused as busy, {} failed the handshake); store closed",
        summary.accepted, summary.busy, summary.handshake_failures
    );
}

/// `sync`: one session with the peer as initiator; prints the report. Fails when
/// the session fails or ends with different roots.
pub(crate) async fn sync(node: Node, args: SyncArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let identity = Identity::new(node.node_id()?);
    let mut transport = connect(&node, &args).await?;
    let manager = SyncManager::new(Arc::clone(node.store()), identity, ManagerConfig::default());
    let message = format!("syncing `{context}` with {}", args.peer);
    let spinner = progress::spinner(message, args.json);
    let report = manager
        .sync(&mut *transport, &context, args.protocol.choice())
        .await;
    spinner.finish_and_clear();
    // Closing twice is a no-op; a QUIC transport closes its connection here.
    let _ = transport.close().await;
    drop(transport);
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

/// The transport to the peer of `args`: TLS or QUIC to `ID@ADDR`, or plain TCP
/// with `--insecure-plaintext`.
async fn connect(node: &Node, args: &SyncArgs) -> Result<Box<dyn SyncTransport>, CliError> {
    if args.insecure_plaintext {
        return Ok(Box::new(connect_plain(&args.peer).await?));
    }
    let peer: PeerAddr = args.peer.parse().map_err(|source| CliError::BadPeer {
        peer: args.peer.clone(),
        source,
    })?;
    let key = node_key(node.dir())?;
    let transport: Box<dyn SyncTransport> = match peer.scheme {
        Scheme::Quic => Box::new(crate::quic_serve::connect(&key, &peer).await?),
        _ => Box::new(synctree_secure::tls::connect(&peer.addr, &key, peer.id).await?),
    };
    Ok(transport)
}

/// Connects to `peer` over plain TCP within [`CONNECT_TIMEOUT`].
async fn connect_plain(peer: &str) -> Result<FramedTransport<TcpStream>, CliError> {
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
