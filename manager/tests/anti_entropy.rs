//! The anti-entropy scheduler over in-memory connections on tokio's paused
//! clock (and once over real TCP): it converges every held and configured
//! context, never loses a write that lands mid-session, backs off from failing
//! peers and resets on success, respects its concurrency cap and deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use synctree_manager::anti_entropy::Outcome;
use synctree_manager::{
    AntiEntropy, AntiEntropyConfig, Connector, ManagerConfig, SyncManager, TcpConnector,
};
use synctree_primitives::{
    ContextId, Entry, Identity, NodeId, Store, StreamMessage, SyncTransport, Version,
};
use synctree_store::MemoryStore;
use synctree_test_support::{Tap, TransportHook};
use synctree_transport::FramedTransport;
use tokio::io::DuplexStream;
use tokio::time::Instant;

type Manager = Arc<SyncManager<MemoryStore>>;
type Hook = Box<dyn FnOnce() + Send>;

fn ctx(name: &str) -> ContextId {
    ContextId::new(name).unwrap()
}

fn node(id: u64, entries: &[(&str, &str)]) -> Manager {
    let store = MemoryStore::new();
    for (context, key) in entries {
        let value = format!("{key}@{id}");
        let entry = Entry::put(key.to_string(), value, Version::new(id, NodeId(id)));
        store.apply(&ctx(context), vec![entry]).unwrap();
    }
    Arc::new(SyncManager::new(
        Arc::new(store),
        Identity::new(NodeId(id)),
        ManagerConfig::default(),
    ))
}

/// In-memory connections to named managers; peers can be taken down, every
/// attempt is logged, and a hook can run inside the next session.
#[derive(Default)]
struct Mesh {
    nodes: BTreeMap<String, Manager>,
    down: Mutex<BTreeSet<String>>,
    attempts: Mutex<Vec<(String, Instant)>>,
    open: Mutex<(usize, usize)>,
    hook: Mutex<Option<Hook>>,
    /// Connections to this peer never answer.
    black_hole: Option<String>,
}

#[derive(Clone)]
struct MeshConnector(Arc<Mesh>);

impl Connector for MeshConnector {
    type Transport = Tap<FramedTransport<DuplexStream>, Tracked>;
    type Error = io::Error;

    async fn connect(&self, peer: &str) -> io::Result<Self::Transport> {
        let mesh = Arc::clone(&self.0);
        mesh.attempts
            .lock()
            .unwrap()
            .push((peer.to_owned(), Instant::now()));
        if mesh.down.lock().unwrap().contains(peer) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "peer down",
            ));
        }
        let (client, mut server) = FramedTransport::memory_pair(1 << 16);
        if mesh.black_hole.as_deref() != Some(peer) {
            let remote = Arc::clone(&mesh.nodes[peer]);
            tokio::spawn(async move {
                let served = remote.handle_stream(&mut server).await;
                let stream = synctree_manager::metrics::ServedStream {
                    peer: server.peer(),
                    transport: server.stats(),
                    duration: Duration::ZERO,
                };
                synctree_manager::metrics::record_served(&served, stream);
            });
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(server);
            });
        }
        let mut open = mesh.open.lock().unwrap();
        open.0 += 1;
        open.1 = open.1.max(open.0);
        let hook = mesh.hook.lock().unwrap().take();
        Ok(Tap::new(
            client,
            Tracked {
                hook,
                received: 0,
                mesh: Arc::clone(&mesh),
            },
        ))
    }
}

/// A [`Tap`] hook that runs a hook after its second message (the first protocol
/// reply) arrives and counts its transport open until dropped.
struct Tracked {
    hook: Option<Hook>,
    received: usize,
    mesh: Arc<Mesh>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.mesh.open.lock().unwrap().0 -= 1;
    }
}

impl TransportHook for Tracked {
    fn after_recv(&mut self, _: Option<&StreamMessage>) {
        self.received += 1;
        if self.received == 2
            && let Some(hook) = self.hook.take()
        {
            hook();
        }
    }
}

fn config() -> AntiEntropyConfig {
    AntiEntropyConfig {
        interval: Duration::from_secs(10),
        jitter: Duration::from_secs(1),
        max_concurrent: 2,
        session_deadline: Duration::from_secs(5),
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(8),
        seed: 42,
        ..AntiEntropyConfig::default()
    }
}

/// Runs `local`'s scheduler against the mesh for `time` of (paused) virtual time.
async fn run_for(local: &Manager, mesh: &Arc<Mesh>, config: AntiEntropyConfig, time: Duration) {
    let peers: Vec<String> = mesh.nodes.keys().cloned().collect();
    let scheduler = AntiEntropy::new(
        Arc::clone(local),
        MeshConnector(Arc::clone(mesh)),
        peers,
        config,
    );
    scheduler.run(tokio::time::sleep(time)).await;
}

fn entries(manager: &Manager, context: &str) -> Vec<Entry> {
    manager.store().entries(&ctx(context))
}

#[tokio::test(start_paused = true)]
async fn held_and_configured_contexts_converge_with_every_peer() {
    let a = node(1, &[("users", "alice")]);
    let b = node(2, &[("users", "bob"), ("orders", "o-1")]);
    let c = node(3, &[("audit", "only-c")]);
    let mesh = Arc::new(Mesh {
        nodes: [
            ("b".to_owned(), Arc::clone(&b)),
            ("c".to_owned(), Arc::clone(&c)),
        ]
        .into(),
        ..Mesh::default()
    });
    let config = AntiEntropyConfig {
        contexts: vec![ctx("orders"), ctx("audit")],
        ..config()
    };
    run_for(&a, &mesh, config, Duration::from_secs(25)).await;
    assert_eq!(entries(&a, "users").len(), 2, "pulled bob");
    assert_eq!(entries(&b, "users"), entries(&a, "users"), "pushed alice");
    assert_eq!(entries(&c, "users"), entries(&a, "users"));
    assert_eq!(entries(&a, "orders").len(), 1, "configured context pulled");
    assert_eq!(entries(&c, "orders"), entries(&b, "orders"));
    assert_eq!(entries(&a, "audit"), entries(&c, "audit"));
    // 3 contexts × 2 peers, every 10–11 s from a first round spread over 10 s.
    let attempts = mesh.attempts.lock().unwrap().len();
    assert!((12..=18).contains(&attempts), "{attempts} sessions in 25 s");
}

#[tokio::test(start_paused = true)]
async fn writes_landing_during_a_session_are_carried_or_synced_next_round() {
    let a = node(1, &[("users", "alice")]);
    let b = node(2, &[("users", "bob")]);
    let mesh = Arc::new(Mesh {
        nodes: [("b".to_owned(), Arc::clone(&b))].into(),
        ..Mesh::default()
    });
    let (a_store, b_store) = (Arc::clone(a.store()), Arc::clone(b.store()));
    let hook: Hook = Box::new(move || {
        // Mid-protocol: both sides change under the running session.
        let late =
            |key: &str, id| Entry::put(key.to_owned(), "late", Version::new(100, NodeId(id)));
        a_store
            .apply(&ctx("users"), vec![late("late-on-a", 1)])
            .unwrap();
        b_store
            .apply(&ctx("users"), vec![late("late-on-b", 2)])
            .unwrap();
    });
    *mesh.hook.lock().unwrap() = Some(hook);
    let peers = ["b"];
    let scheduler = AntiEntropy::new(
        Arc::clone(&a),
        MeshConnector(Arc::clone(&mesh)),
        peers,
        config(),
    );
    let first = scheduler.sync_once(&ctx("users"), "b").await;
    assert_eq!(first.outcome, Outcome::Diverged, "{first:?}");
    let stats = scheduler.stats();
    scheduler
        .run(tokio::time::sleep(Duration::from_secs(25)))
        .await;
    let keys = |m: &Manager| -> Vec<_> { entries(m, "users").into_iter().map(|e| e.key).collect() };
    assert_eq!(keys(&a).len(), 4, "{:?}", keys(&a));
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(
        a.store().summary(&ctx("users")).unwrap(),
        b.store().summary(&ctx("users")).unwrap()
    );
    assert!(stats.snapshot().succeeded >= 3);
    // The diverged first session is counted apart, and kept the (zero) backoff.
    assert!(stats.snapshot().diverged >= 1, "{:?}", stats.snapshot());
}

#[tokio::test(start_paused = true)]
async fn failing_peers_back_off_exponentially_and_reset_on_success() {
    let a = node(1, &[("users", "alice")]);
    let b = node(2, &[]);
    let mesh = Arc::new(Mesh {
        nodes: [("b".to_owned(), Arc::clone(&b))].into(),
        down: Mutex::new(["b".to_owned()].into()),
        ..Mesh::default()
    });
    let config = AntiEntropyConfig {
        jitter: Duration::ZERO,
        ..config()
    };
    let started = Instant::now();
    let scheduler = AntiEntropy::new(
        Arc::clone(&a),
        MeshConnector(Arc::clone(&mesh)),
        ["b"],
        config,
    );
    let stats = scheduler.stats();
    let up_again = {
        let mesh = Arc::clone(&mesh);
        async move {
            tokio::time::sleep(Duration::from_secs(40)).await;
            mesh.down.lock().unwrap().clear();
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    };
    scheduler.run(up_again).await;
    let times: Vec<u64> = mesh
        .attempts
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| (*t - started).as_secs())
        .collect();
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Down: 1, 2, 4, 8, 8, 8 … s apart; up from 40 s: the next retry succeeds, then
    // the interval (10 s) applies again.
    assert_eq!(&gaps[..5], &[1, 2, 4, 8, 8], "{times:?}");
    let first_up = times.iter().position(|t| *t >= 40).unwrap();
    assert_eq!(
        gaps[first_up], 10,
        "reset to the interval after a success: {times:?}"
    );
    let totals = stats.snapshot();
    assert_eq!(totals.attempted, times.len() as u64);
    assert_eq!(totals.failed, first_up as u64);
    assert_eq!(entries(&b, "users"), entries(&a, "users"));
}

#[tokio::test(start_paused = true)]
async fn the_cap_holds_and_stuck_sessions_end_at_the_deadline() {
    let a = node(1, &[("users", "alice"), ("orders", "o-1"), ("audit", "x")]);
    let mut nodes = BTreeMap::new();
    for (i, name) in ["b", "c", "d"].iter().enumerate() {
        nodes.insert((*name).to_owned(), node(i as u64 + 2, &[]));
    }
    let mesh = Arc::new(Mesh {
        nodes,
        black_hole: Some("d".to_owned()),
        ..Mesh::default()
    });
    let scheduler = AntiEntropy::new(
        Arc::clone(&a),
        MeshConnector(Arc::clone(&mesh)),
        ["b", "c", "d"],
        config(),
    );
    let mut records = Vec::new();
    for peer in ["b", "d"] {
        records.push(scheduler.sync_once(&ctx("users"), peer).await);
    }
    let stats = scheduler.stats();
    scheduler
        .run(tokio::time::sleep(Duration::from_secs(30)))
        .await;
    let max_open = mesh.open.lock().unwrap().1;
    assert_eq!(max_open, 2, "at most max_concurrent sessions at once");
    assert_eq!(records[0].outcome, Outcome::Converged);
    assert_eq!(records[1].outcome, Outcome::DeadlineExceeded);
    assert_eq!(records[1].duration(), Duration::from_secs(5));
    let totals = stats.snapshot();
    assert!(totals.failed >= 3 && totals.succeeded >= 6, "{totals:?}");
}

#[tokio::test]
async fn the_same_scheduler_runs_over_tcp() {
    let a = node(1, &[("users", "alice")]);
    let b = node(2, &[("users", "bob")]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Arc::clone(&b).serve(listener, async move {
        let _ = stopped.await;
    }));
    let config = AntiEntropyConfig {
        interval: Duration::from_millis(100),
        jitter: Duration::from_millis(10),
        ..config()
    };
    let scheduler = AntiEntropy::new(Arc::clone(&a), TcpConnector::default(), [addr], config);
    let stats = scheduler.stats();
    scheduler
        .run(tokio::time::sleep(Duration::from_millis(500)))
        .await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert_eq!(entries(&a, "users"), entries(&b, "users"));
    assert_eq!(entries(&a, "users").len(), 2);
    assert!(stats.snapshot().succeeded >= 2, "{:?}", stats.snapshot());
}
