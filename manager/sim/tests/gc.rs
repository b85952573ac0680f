//! Tombstone GC under simulation (docs/PROTOCOL.md, "Tombstone GC"): seeded
//! scripts of writes, deletes, sweeps, sessions and long partitions over real
//! `SyncManager`s and `MemoryStore`s on a virtual clock of days, checked after
//! every step and at the end:
//!
//! - **no resurrection**: a node that ever held a delete of a key never later
//!   holds an older value of it (whether it still keeps the tombstone or purged
//!   it), however long any other node was cut off;
//! - after the partitions heal and the horizon passes, every node holds the same
//!   root, no node holds a value whose key's last write was a delete, and every
//!   write made while its writer was in touch with the cluster survives where it
//!   won the merge.
//!
//! Each session runs in-process over a memory pipe (the protocols and the
//! manager are the real ones; only time and topology are simulated).

#![allow(clippy::expect_used, clippy::unwrap_used)] // A test: failing is panicking.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synctree_manager::gc::{self, GcConfig};
use synctree_manager::metrics::{self, ServedStream};
use synctree_manager::{ManagerConfig, ProtocolChoice, Served, SyncManager};
use synctree_primitives::{
    ContextId, Entry, Hash, Hlc, Identity, NodeId, Store, Version, WallClock,
};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
/// The horizon every node runs with.
const HORIZON_MS: u64 = DAY_MS;
/// Virtual start: 2020, so versions stay behind the real clock the protocols
/// check received versions against.
const T0_MS: u64 = 1_600_000_000_000;
const NODES: usize = 4;
const KEYS: usize = 24;

struct Node {
    store: Arc<MemoryStore>,
    /// The node's manager for the current virtual time (a manager remembers
    /// how its last session with each peer ended, which selection uses).
    manager: Option<(u64, Arc<SyncManager<MemoryStore>>)>,
    clock: Hlc,
    /// Virtual time this node's partition ends (`None`: in touch).
    cut_until: Option<u64>,
}

struct Cluster {
    nodes: Vec<Node>,
    now_ms: u64,
    context: ContextId,
    /// Per node and key: the newest delete version the node ever held.
    deletes_seen: Vec<HashMap<Hash, Version>>,
    /// Every write: (key, entry, written while the writer was in touch).
    writes: Vec<(String, Entry, bool)>,
    rng: StdRng,
    /// Entries refused by a watermark, and removed by adoption, in sessions.
    refused: u64,
    adopted: u64,
}

impl Cluster {
    fn new(seed: u64) -> Self {
        let nodes = (0..NODES)
            .map(|_| Node {
                store: Arc::new(MemoryStore::new()),
                manager: None,
                clock: Hlc::new(),
                cut_until: None,
            })
            .collect();
        Cluster {
            nodes,
            now_ms: T0_MS,
            context: ContextId::new("gc-sim").expect("context"),
            deletes_seen: vec![HashMap::new(); NODES],
            writes: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            refused: 0,
            adopted: 0,
        }
    }

    fn manager(&mut self, node: usize) -> Arc<SyncManager<MemoryStore>> {
        if let Some((at, manager)) = &self.nodes[node].manager
            && *at == self.now_ms
        {
            return Arc::clone(manager);
        }
        let manager = Arc::new(self.fresh_manager(node));
        self.nodes[node].manager = Some((self.now_ms, Arc::clone(&manager)));
        manager
    }

    fn fresh_manager(&self, node: usize) -> SyncManager<MemoryStore> {
        let config = ManagerConfig {
            gc: GcConfig {
                horizon: Some(Duration::from_millis(HORIZON_MS)),
                clock: WallClock::Fixed(self.now_ms),
                standalone: false,
            },
            ..ManagerConfig::default()
        };
        let identity = Identity::new(NodeId(node as u64 + 1));
        SyncManager::new(Arc::clone(&self.nodes[node].store), identity, config)
            .with_nonce_rng(StdRng::seed_from_u64(self.now_ms ^ node as u64))
    }

    fn in_touch(&self, node: usize) -> bool {
        self.nodes[node]
            .cut_until
            .is_none_or(|until| until <= self.now_ms)
    }

    fn write(&mut self, node: usize) {
        let key = format!("k{}", self.rng.random_range(0..KEYS));
        let hlc = self.nodes[node].clock.tick(self.now_ms);
        let version = Version::new(hlc, NodeId(node as u64 + 1));
        let entry = if self.rng.random_bool(0.35) {
            Entry::delete(key.clone(), version)
        } else {
            Entry::put(key.clone(), format!("v{hlc}"), version)
        };
        let in_touch = self.in_touch(node);
        self.nodes[node]
            .store
            .apply(&self.context, vec![entry.clone()])
            .expect("local write");
        self.writes.push((key, entry, in_touch));
    }

    async fn sync(&mut self, a: usize, b: usize) {
        if a == b || !self.in_touch(a) || !self.in_touch(b) {
            return;
        }
        let (initiator, responder) = (self.manager(a), self.manager(b));
        let (mut ta, mut tb) = FramedTransport::memory_pair(1 << 16);
        let (report, served) = tokio::join!(
            initiator.sync(&mut ta, &self.context, ProtocolChoice::Auto),
            responder.handle_stream(&mut tb)
        );
        let report = report.expect("session");
        if let Some(stats) = &report.stats {
            self.refused += stats.entries_refused_gc;
            self.adopted += stats.entries_adopted_away;
        }
        let served = served.expect("served");
        // What a serving node records for every stream.
        let stream = ServedStream {
            peer: "sim",
            transport: Default::default(),
            duration: Duration::ZERO,
        };
        synctree_manager::metrics::record_served(&Ok(served.clone()), stream);
        if let Served::Session { stats, .. } = served {
            self.refused += stats.entries_refused_gc;
        }
        // The clocks observe what the session brought in, as the CLI's do.
        for node in [a, b] {
            let newest = all(&self.nodes[node].store, &self.context)
                .iter()
                .map(|e| e.version.hlc)
                .max()
                .unwrap_or(0);
            let now = self.now_ms;
            self.nodes[node].clock.observe(newest, now);
        }
    }

    fn sweep(&mut self, node: usize) {
        let manager = self.manager(node);
        gc::sweep(&**manager.store(), &manager.config().gc).expect("sweep");
    }

    /// Records every tombstone each node holds, then checks that no node holds
    /// a value older than a delete it ever held.
    fn check_no_resurrection(&mut self, step: usize) {
        for node in 0..NODES {
            for e in all(&self.nodes[node].store, &self.context) {
                let kh = e.key_hash();
                let seen = self.deletes_seen[node].get(&kh).copied();
                if e.tombstone {
                    if seen.is_none_or(|s| s < e.version) {
                        self.deletes_seen[node].insert(kh, e.version);
                    }
                } else if let Some(deleted) = seen {
                    assert!(
                        e.version > deleted,
                        "step {step}: node {node} took back {:?} (version {:?}) after holding its delete at {deleted:?}",
                        String::from_utf8_lossy(&e.key),
                        e.version
                    );
                }
            }
        }
    }

    async fn step(&mut self, step: usize) {
        let node = self.rng.random_range(0..NODES);
        match self.rng.random_range(0..100) {
            0..35 => self.write(node),
            35..75 => {
                let peer = self.rng.random_range(0..NODES);
                self.sync(node, peer).await;
            }
            75..85 => self.sweep(node),
            85..97 => self.now_ms += self.rng.random_range(0..6 * HOUR_MS),
            _ => {
                let cut = self.rng.random_range(HOUR_MS..3 * HORIZON_MS);
                self.nodes[node].cut_until = Some(self.now_ms + cut);
            }
        }
        self.check_no_resurrection(step);
    }

    /// Heals, lets the horizon pass, and runs rounds of sessions and sweeps.
    async fn settle(&mut self) {
        for node in &mut self.nodes {
            node.cut_until = None;
        }
        self.now_ms += 2 * HORIZON_MS + HOUR_MS;
        for round in 0..6 {
            for a in 0..NODES {
                for b in 0..NODES {
                    self.sync(a, b).await;
                }
            }
            for node in 0..NODES {
                self.sweep(node);
            }
            self.check_no_resurrection(10_000 + round);
        }
    }

    fn check_final(&self) {
        let roots: Vec<Hash> = (0..NODES)
            .map(|n| {
                self.nodes[n]
                    .store
                    .summary(&self.context)
                    .expect("summary")
                    .root
            })
            .collect();
        if !roots.windows(2).all(|w| w[0] == w[1]) {
            let show = |n: usize| {
                let mut v: Vec<String> = all(&self.nodes[n].store, &self.context)
                    .iter()
                    .map(|e| {
                        format!(
                            "{}:{}:{}",
                            String::from_utf8_lossy(&e.key),
                            e.version.hlc,
                            e.tombstone
                        )
                    })
                    .collect();
                v.sort();
                v
            };
            let (a, b) = (show(0), show(1));
            let only_a: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
            let only_b: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
            panic!(
                "roots differ: {roots:?}; only on 0: {only_a:?}; only on 1: {only_b:?}; now {}; watermarks {:?}",
                self.now_ms,
                (0..NODES)
                    .map(|n| self.nodes[n].store.gc_watermark(&self.context).unwrap())
                    .collect::<Vec<_>>()
            );
        }
        let mut last: HashMap<&str, &Entry> = HashMap::new();
        for (key, entry, _) in &self.writes {
            let newer = last
                .get(key.as_str())
                .is_none_or(|held| entry.supersedes(held));
            if newer {
                last.insert(key, entry);
            }
        }
        let held = all(&self.nodes[0].store, &self.context);
        for (key, winner) in &last {
            let found = held.iter().find(|e| e.key == key.as_bytes());
            if winner.tombstone {
                assert!(
                    found.is_none_or(|e| e.tombstone),
                    "{key}: deleted last, yet a value is held: {found:?}"
                );
            }
        }
        for (key, entry, in_touch) in &self.writes {
            if *in_touch && !entry.tombstone && last.get(key.as_str()) == Some(&entry) {
                let found = held.iter().find(|e| e.key == key.as_bytes());
                assert_eq!(
                    found,
                    Some(entry),
                    "{key}: the last write, made in touch, is lost"
                );
            }
        }
    }
}

fn all(store: &MemoryStore, context: &ContextId) -> Vec<Entry> {
    store
        .range(context, &Hash::ZERO, &Hash::MAX, usize::MAX)
        .expect("range")
        .into_iter()
        .map(|s| s.entry)
        .collect()
}

async fn simulate(seed: u64, steps: usize) -> Cluster {
    let mut cluster = Cluster::new(seed);
    for step in 0..steps {
        cluster.step(step).await;
    }
    cluster.settle().await;
    cluster.check_final();
    cluster
}

/// Many seeds of random writes, deletes, sweeps, sessions and partitions up to
/// three horizons long.
#[tokio::test]
async fn random_partitions_and_sweeps_never_resurrect_a_delete() {
    let (mut purged_somewhere, mut refused, mut adopted) = (0, 0, 0);
    for seed in 0..12 {
        let cluster = simulate(seed, 600).await;
        refused += cluster.refused;
        adopted += cluster.adopted;
        let watermarks: Vec<u64> = (0..NODES)
            .map(|n| {
                cluster.nodes[n]
                    .store
                    .gc_watermark(&cluster.context)
                    .expect("w")
            })
            .collect();
        purged_somewhere += usize::from(watermarks.iter().all(|&w| w > 0));
    }
    assert_eq!(purged_somewhere, 12, "every run purged on every node");
    // The runs reach the cases the rule is for: values refused below a
    // watermark, and stale entries adopted away.
    assert!(
        refused > 0 && adopted > 0,
        "refused {refused}, adopted {adopted}"
    );
}

/// The case the rule exists for: a node cut off longer than the horizon comes
/// back holding the value of a delete every other node has purged. The GC
/// metrics count what happened.
#[test]
fn a_node_back_after_the_horizon_does_not_bring_a_purged_delete_back() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    ::metrics::with_local_recorder(&recorder, || runtime.block_on(comes_back()));
    let snapshot = snapshotter.snapshot().into_vec();
    // Refusals and adoptions are counted from the session stats in `comes_back`
    // (the metrics of those come from anti-entropy's and serve's records).
    let purged = snapshot.iter().any(|(key, _, _, value)| {
        key.key().name() == metrics::GC_PURGED && matches!(value, DebugValue::Counter(n) if *n > 0)
    });
    assert!(purged, "{} did not move", metrics::GC_PURGED);
}

async fn comes_back() {
    let mut cluster = Cluster::new(99);
    cluster.write(0);
    let key = cluster.writes[0].0.clone();
    let value = cluster.writes[0].1.clone();
    for b in 1..NODES {
        cluster.sync(0, b).await;
        cluster.sync(b, 0).await;
    }
    cluster.nodes[3].cut_until = Some(cluster.now_ms + 3 * HORIZON_MS);
    cluster.now_ms += HOUR_MS;
    let hlc = cluster.nodes[1].clock.tick(cluster.now_ms);
    let delete = Entry::delete(key.clone(), Version::new(hlc, NodeId(2)));
    cluster.nodes[1]
        .store
        .apply(&cluster.context, vec![delete.clone()])
        .expect("delete");
    cluster.writes.push((key.clone(), delete, true));
    for _ in 0..3 {
        cluster.now_ms += HORIZON_MS;
        for (a, b) in [(0, 1), (1, 2), (2, 0)] {
            cluster.sync(a, b).await;
        }
        for node in 0..3 {
            cluster.sweep(node);
        }
    }
    for node in 0..3 {
        assert!(
            all(&cluster.nodes[node].store, &cluster.context).is_empty(),
            "purged on {node}"
        );
    }
    assert_eq!(all(&cluster.nodes[3].store, &cluster.context), vec![value]);
    cluster.now_ms += HOUR_MS;
    // The others reach it first: each pulls the old value and refuses it.
    for a in 0..3 {
        cluster.sync(a, 3).await;
        assert!(
            all(&cluster.nodes[a].store, &cluster.context).is_empty(),
            "{a} refused it"
        );
    }
    // Then it reaches out, finds itself stale, and adopts their state.
    cluster.sync(3, 0).await;
    assert_eq!(
        (cluster.adopted, cluster.refused),
        (1, 3),
        "one adopted away, refused by 3"
    );
    assert!(
        all(&cluster.nodes[3].store, &cluster.context).is_empty(),
        "adopted"
    );
    cluster.settle().await;
    cluster.check_final();
}
