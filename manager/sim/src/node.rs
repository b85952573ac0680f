//! One simulated node: a real [`SyncManager`] serving turmoil connections and an
//! [`AntiEntropy`] scheduler dialing its peers through a [`SimConnector`].

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use synctree_primitives::{Identity, NodeId, SyncTransport};
use synctree_store::MemoryStore;
use synctree_transport::sim::{FaultPlan, SimFaults, SimTransport};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use turmoil::net::TcpListener;

use synctree_manager::anti_entropy::{AntiEntropy, AntiEntropyConfig, Connector, SharedStats};
use synctree_manager::{ManagerConfig, SyncManager};

/// The port every simulated node listens on.
pub const PORT: u16 = 7000;

/// Opens simulated connections, each with a [`FaultPlan`] drawn from
/// `faults` and the next seed of a seeded sequence.
#[derive(Debug)]
pub struct SimConnector {
    faults: SimFaults,
    seed: u64,
    next: AtomicU64,
    connect_timeout: Duration,
}

impl SimConnector {
    /// A connector whose `n`-th connection gets `faults.plan(mix(seed, n))`.
    pub fn new(faults: SimFaults, seed: u64, connect_timeout: Duration) -> Self {
        SimConnector {
            faults,
            seed,
            next: AtomicU64::new(0),
            connect_timeout,
        }
    }
}

impl Connector for SimConnector {
    type Transport = SimTransport;
    type Error = io::Error;

    /// Connects over turmoil; must run on a turmoil host.
    async fn connect(&self, peer: &str) -> io::Result<SimTransport> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let plan = self.faults.plan(crate::seed::mix(self.seed, n));
        let connecting = SimTransport::connect(peer, plan);
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "simulated connect timed out"))?
    }
}

/// What a node keeps across restarts: its store, its totals and its name.
#[derive(Clone, Debug)]
pub(crate) struct Seat {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) stats: SharedStats,
    /// How many times the node's software started.
    pub(crate) starts: Arc<AtomicU64>,
    /// Notified to restart the node.
    pub(crate) restart: Arc<Notify>,
}

/// Everything nodes share: tunables and the network's fault rates.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    pub(crate) seed: u64,
    pub(crate) peers: Vec<String>,
    pub(crate) faults: SimFaults,
    pub(crate) manager: ManagerConfig,
    pub(crate) anti_entropy: AntiEntropyConfig,
    pub(crate) connect_timeout: Duration,
    /// Longest a served stream may take before the responder gives up on it.
    pub(crate) stream_deadline: Duration,
}

/// Runs a node: serves incoming streams and runs anti-entropy with every other
/// node. A restart (`seat.restart`) drops the manager, the scheduler, the
/// listener and every session in progress (their sockets close as a process's
/// would: what was sent still leaves, then FIN) and starts them again over the
/// same store.
///
/// Restarts happen here rather than through turmoil's `bounce`, which drops the
/// host's whole runtime: tokio drops tasks in an order that depends on their
/// process-wide ids, and each dropped socket draws from turmoil's RNG, so two
/// runs of one seed would diverge.
pub(crate) async fn run(seat: Seat, setup: Arc<Setup>) -> turmoil::Result {
    loop {
        tokio::select! {
            biased;
            () = seat.restart.notified() => {}
            ended = incarnation(&seat, &setup) => return ended,
        }
    }
}

/// Mixed into a node's seed for its handshake nonces, apart from its other draws.
const NONCE_STREAM: u64 = 0x6e6f_6e63_6573;

/// One life of a node, until its listener fails.
async fn incarnation(seat: &Seat, setup: &Setup) -> turmoil::Result {
    let start = seat.starts.fetch_add(1, Ordering::Relaxed);
    let seed = crate::seed::mix(crate::seed::mix(setup.seed, seat.index as u64), start);
    let identity = Identity::new(NodeId(seat.index as u64 + 1));
    // Handshake nonces from the seed too: the same seed, the same bytes.
    let nonces = StdRng::seed_from_u64(crate::seed::mix(seed, NONCE_STREAM));
    let manager = Arc::new(
        SyncManager::new(Arc::clone(&seat.store), identity, setup.manager.clone())
            .with_nonce_rng(nonces),
    );
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    let peers = setup.peers.iter().filter(|p| **p != peer_addr(&seat.name));
    let connector = SimConnector::new(setup.faults, seed, setup.connect_timeout);
    let config = AntiEntropyConfig {
        seed,
        ..setup.anti_entropy.clone()
    };
    let scheduler = AntiEntropy::new(Arc::clone(&manager), connector, peers.cloned(), config)
        .with_stats(seat.stats.clone());
    let serving = serve(manager, listener, setup);
    tokio::select! {
        biased;
        served = serving => served?,
        _ = scheduler.run(std::future::pending()) => {}
    }
    Ok(())
}

/// `name:PORT`.
pub(crate) fn peer_addr(name: &str) -> String {
    format!("{name}:{PORT}")
}

/// Answers every incoming stream on its own task, each within the stream deadline.
/// Accepted connections get the bandwidth cap but no fault: faults are planned
/// by the connecting side, so `loss` is the chance that a session's connection
/// breaks.
async fn serve(
    manager: Arc<SyncManager<MemoryStore>>,
    listener: TcpListener,
    setup: &Setup,
) -> io::Result<()> {
    let plan = FaultPlan {
        fault: None,
        bandwidth: setup.faults.bandwidth,
    };
    let mut streams = JoinSet::new();
    loop {
        let (stream, addr) = tokio::select! {
            biased;
            Some(_) = streams.join_next(), if !streams.is_empty() => continue,
            accepted = listener.accept() => accepted?,
        };
        let mut transport = SimTransport::new(stream, addr.to_string(), plan);
        let manager = Arc::clone(&manager);
        let deadline = setup.stream_deadline;
        streams.spawn(async move {
            let started = tokio::time::Instant::now();
            let served = tokio::time::timeout(deadline, manager.handle_stream(&mut transport));
            if let Ok(outcome) = served.await {
                let stream = synctree_manager::metrics::ServedStream {
                    peer: transport.peer(),
                    transport: transport.stats(),
                    duration: started.elapsed(),
                };
                synctree_manager::metrics::record_served(&outcome, stream);
            }
        });
    }
}
