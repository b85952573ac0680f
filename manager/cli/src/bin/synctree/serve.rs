//! `serve`: the long-running node. It answers sync sessions (TLS, with QUIC
//! beside it, or plain TCP behind `--insecure-plaintext`), keeps every context in
//! sync with its `--peer`s, and serves the client API, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use synctree_manager::gc::GcConfig;
use synctree_manager::{
    AntiEntropy, AntiEntropyConfig, ManagerConfig, ServeSummary, SharedStats, SyncManager,
};
use synctree_primitives::{Identity, WallClock};
use synctree_secure::quic::QuicServer;
use synctree_secure::{NodeKey, PeerPolicy, TlsAcceptor};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{Api, endpoint};
use crate::config::{self, Effective, ServeArgs};
use crate::connector::PeerConnector;
use crate::error::CliError;
use crate::identity::node_key;
use crate::net::shutdown_signal;
use crate::node::{Backend, Logged, Node};
use crate::peers::{PEERS_FILE, Peers};

/// Shortest `--interval`: a node cannot be made to sync every pair in a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// Longest `--interval`: a day (anything longer is a typo; it would also overflow
/// the scheduler's deadlines).
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// What `--insecure-plaintext` prints, so nobody runs it by accident.
const PLAINTEXT_WARNING: &str = "synctree: WARNING: --insecure-plaintext: nothing is encrypted or \
     authenticated; anyone who can reach this node can read and overwrite every context";

/// How peers' sessions arrive.
enum Listening {
    /// Plain TCP (`--insecure-plaintext`).
    Plain(TcpListener),
    /// TLS with the node key and the allowlist, and QUIC when asked for.
    Secure {
        listener: TcpListener,
        acceptor: Arc<TlsAcceptor>,
        quic: Option<QuicServer>,
    },
}

/// `serve`: runs the node until SIGINT or SIGTERM; then lets running sessions
/// finish (up to the drain grace period) and closes the store.
pub(crate) async fn serve(node: Node, dir: &Path, flags: ServeArgs) -> Result<(), CliError> {
    let args = config::load(dir)?.effective(Some(&flags))?;
    let interval = interval(args.interval_secs)?;
    let Some(listen) = args.listen.clone() else {
        return Err(CliError::NoListen(dir.join(config::CONFIG_FILE)));
    };
    let node_id = node.node_id()?;
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(listen_err(listen.clone()))?;
    let addr = listener.local_addr().map_err(listen_err(listen))?;
    let key = match flags.insecure_plaintext {
        true => None,
        false => Some(Arc::new(node_key(dir)?)),
    };
    let listening = match &key {
        None => Listening::Plain(listener),
        Some(key) => secure(listener, key, dir, &flags, &args)?,
    };
    let (api_listener, api_addr, token) = bind_api(dir, args.api).await?;
    let metrics_addr = match args.metrics {
        Some(metrics) => {
            let bound = synctree_cli::prometheus::install_prometheus(metrics).await?;
            eprintln!("synctree: metrics on http://{bound}/metrics");
            Some(bound)
        }
        None => None,
    };
    let node = Arc::new(node);
    let manager_config = ManagerConfig {
        gc: GcConfig {
            horizon: args.gc_horizon()?,
            clock: WallClock::System,
            standalone: args.peers.is_empty(),
        },
        ..ManagerConfig::default()
    };
    let manager = Arc::new(SyncManager::new(
        Arc::clone(node.store()),
        Identity::new(node_id),
        manager_config,
    ));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop.send_replace(true);
    });
    let stats = SharedStats::default();
    let node_label = key
        .as_ref()
        .map_or_else(|| node_id.to_string(), |k| k.id().to_string());
    let ae_config = AntiEntropyConfig {
        interval,
        jitter: interval / 5,
        seed: node_id.0,
        ..AntiEntropyConfig::default()
    };
    let connector = PeerConnector::new(key.clone());
    let scheduler = AntiEntropy::new(
        Arc::clone(&manager),
        connector.clone(),
        args.peers.clone(),
        ae_config,
    )
    .with_stats(stats.clone());
    let api = Arc::new(Api {
        node: Arc::clone(&node),
        manager: Arc::clone(&manager),
        connector,
        peers: args.peers.clone(),
        stats,
        node_id: key
            .as_ref()
            .map_or_else(|| node_id.to_string(), |k| k.id().to_string()),
        listen: addr,
        token,
    });
    let published = endpoint::publish(dir, api_addr)?;
    let api_task = tokio::spawn(crate::api::serve(api_listener, api, until(stopped.clone())));
    let anti_entropy = tokio::spawn(scheduler.run(until(stopped.clone())));
    let sweeps = tokio::spawn(crate::sweeper::run(
        Arc::clone(&manager),
        until(stopped.clone()),
    ));
    eprintln!("synctree: api on http://{api_addr}");
    eprintln!("synctree: listening on {addr}");
    if flags.json {
        let quic = match &listening {
            Listening::Secure { quic: Some(q), .. } => q.local_addr().ok().map(|a| a.to_string()),
            _ => None,
        };
        let started = serde_json::json!({
            "node": node_label, "listen": addr.to_string(), "quic": quic,
            "api": api_addr.to_string(), "metrics": metrics_addr.map(|a| a.to_string()),
        });
        crate::output::emit(&format!("{started}\n"))?;
    }
    tracing::info!(node = %node_id, %addr, %api_addr, peers = args.peers.len(), "serving");
    let summary = sessions(Arc::clone(&manager), listening, stopped).await;
    let _ = anti_entropy.await;
    let _ = sweeps.await;
    if let Ok(Err(e)) = api_task.await {
        tracing::warn!(error = %e, "the client API stopped with an error");
    }
    drop(published);
    drop(manager);
    let summary = summary.map_err(listen_err(addr.to_string()))?;
    match Arc::try_unwrap(node) {
        Ok(node) => node.close(),
        Err(_) => tracing::warn!("store still in use; it closes on exit"),
    }
    report_stopped(&summary);
    Ok(())
}

/// The TLS acceptor over the node key and the allowlist, and QUIC if asked for.
fn secure(
    listener: TcpListener,
    key: &NodeKey,
    dir: &Path,
    flags: &ServeArgs,
    args: &Effective,
) -> Result<Listening, CliError> {
    let peers = Arc::new(Peers::open(dir, &flags.allow)?);
    if peers.count() == 0 {
        eprintln!(
            "synctree: no node is allowed to connect yet: pass --allow ID or list IDs in {}",
            dir.join(PEERS_FILE).display()
        );
    }
    let policy: Arc<dyn PeerPolicy> = peers;
    let acceptor = Arc::new(TlsAcceptor::new(key, Arc::clone(&policy))?);
    eprintln!("synctree: node ID {}", key.id());
    let quic = match &args.listen_quic {
        Some(quic_addr) => Some(crate::quic_serve::bind(key, policy, quic_addr)?),
        None => None,
    };
    Ok(Listening::Secure {
        listener,
        acceptor,
        quic,
    })
}

/// Serves peers' sessions until `stopped` turns true.
async fn sessions(
    manager: Arc<SyncManager<Logged<Backend>>>,
    listening: Listening,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<ServeSummary> {
    match listening {
        Listening::Plain(listener) => {
            eprintln!("{PLAINTEXT_WARNING}");
            manager.serve(listener, until(stopped)).await
        }
        Listening::Secure {
            listener,
            acceptor,
            quic,
        } => {
            let tls_manager = Arc::clone(&manager);
            let tls = move |until| -> crate::quic_serve::TcpServe {
                Box::pin(tls_manager.serve_with(listener, acceptor, until))
            };
            crate::quic_serve::alongside(manager, quic, tls, until(stopped)).await
        }
    }
}

/// Binds the client API; beyond loopback it requires the store's token.
async fn bind_api(
    dir: &Path,
    api: SocketAddr,
) -> Result<(TcpListener, SocketAddr, Option<String>), CliError> {
    let api_listener = TcpListener::bind(api)
        .await
        .map_err(listen_err(api.to_string()))?;
    let api_addr = api_listener
        .local_addr()
        .map_err(listen_err(api.to_string()))?;
    let token = match api_addr.ip().is_loopback() {
        true => None,
        false => Some(endpoint::token(dir)?),
    };
    Ok((api_listener, api_addr, token))
}

fn listen_err(addr: String) -> impl FnOnce(std::io::Error) -> CliError {
    move |source| CliError::Listen { addr, source }
}

fn report_stopped(summary: &ServeSummary) {
    eprintln!(
        "synctree: stopped after {} connections ({} refused as busy, {} failed the handshake); store closed",
        summary.accepted, summary.busy, summary.handshake_failures
    );
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
