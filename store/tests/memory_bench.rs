//! Throughput of [`MemoryStore::apply`] with the Merkle index kept current,
//! printed rather than asserted (machines differ). The product target is
//! 10^6 upserts/s on one core.
//!
//! ```sh
//! cargo test --release -p synctree-store --test memory_bench -- --ignored --nocapture
//! ```
//!
//! Three workloads, with 16-byte random keys and 100-byte values:
//!
//! - (a) 10^6 new keys in 1,000-entry batches into a growing store;
//! - (b) one 10^5-entry batch into an empty store;
//! - (c) 10^5 overwrites (newer versions) of keys of (a), in 1,000-entry
//!   batches, into the 10^6-entry store (a) left.
//!
//! Each reports a wall-clock rate and an on-CPU rate (this thread's run time,
//! from `/proc/thread-self/schedstat`, so a busy machine shows as a gap).
//!
//! A second, untimed-for-throughput pass replays the same batches on a fresh
//! store to split the time of each `apply` into phases, by timing the very
//! primitives the store calls on the very inputs it hashes:
//!
//! - entry hashing: `StoredEntry::new` (key hash and digest) over the batch;
//! - leaf hashing: `merkle::leaf_hash` of every touched bucket, as it is after
//!   the batch;
//! - internal re-hashing: every ancestor of a touched bucket, each once, with
//!   `merkle::InternalMidstates` resuming after the children that did not
//!   change, as the store does;
//! - merge and bookkeeping: the rest of `apply` (grouping by leaf, bucket
//!   merges, node storage, the lock, dropping replaced entries).

#![allow(clippy::expect_used)] // Tests fail by panicking.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use synctree_primitives::merkle::{self, FANOUT, InternalMidstates, NodePos, TREE_DEPTH};
use synctree_primitives::{ContextId, Entry, Hash, NodeId, Store, StoredEntry, Version, store};
use synctree_store::MemoryStore;

/// Entries of the growing-store run: a store of a million keys.
const GROWING: u64 = 1_000_000;
/// Entries applied as one batch.
const ONE_BATCH: u64 = 100_000;
/// Entries overwritten in the overwrite run.
const OVERWRITES: u64 = 100_000;
/// Entries per batch in the batched runs.
const BATCH: u64 = 1_000;
/// Bytes of every value: a typical small record.
const VALUE_LEN: usize = 100;

/// SplitMix64's finalizer: a bijection, so distinct key numbers give distinct keys.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Key number `n`: 16 bytes, a random-looking 64-bit number in hex.
fn key(n: u64) -> Bytes {
    Bytes::from(format!("{:016x}", mix(n)))
}

/// The upserts of one workload, generated a batch at a time just before it is
/// applied, as a batch decoded from the network would be: warm in the cache.
#[derive(Clone)]
struct Workload {
    /// Key numbers: `first + step * i` for `i` in `0..count`.
    first: u64,
    step: u64,
    count: u64,
    batch: u64,
    hlc: u64,
}

impl Workload {
    /// (a): 10^6 new keys in 1k batches.
    const GROWING: Workload = Workload::new(0, 1, GROWING, BATCH, 1);
    /// (b): 10^5 new keys in one batch.
    const ONE_BATCH: Workload = Workload::new(GROWING, 1, ONE_BATCH, ONE_BATCH, 1);
    /// (c): newer versions of every tenth key of (a), in 1k batches.
    const OVERWRITES: Workload = Workload::new(0, GROWING / OVERWRITES, OVERWRITES, BATCH, 2);

    const fn new(first: u64, step: u64, count: u64, batch: u64, hlc: u64) -> Self {
        Workload {
            first,
            step,
            count,
            batch,
            hlc,
        }
    }

    /// Batch `b`, with values drawn from `seed`.
    fn batch(&self, b: u64) -> Vec<Entry> {
        let version = Version::new(self.hlc, NodeId(1));
        let start = b * self.batch;
        let end = (start + self.batch).min(self.count);
        (start..end)
            .map(|i| {
                let n = self.first + self.step * i;
                let value: Vec<u8> = (0..VALUE_LEN.div_ceil(8) as u64)
                    .flat_map(|w| mix(n ^ (self.hlc << 56) ^ (w << 48)).to_le_bytes())
                    .take(VALUE_LEN)
                    .collect();
                Entry::put(key(n), value, version)
            })
            .collect()
    }

    fn batches(&self) -> u64 {
        self.count.div_ceil(self.batch)
    }

    /// Applies every batch, checking each entry changed the store; only the
    /// `apply` calls are timed.
    fn run(&self, store: &MemoryStore, ctx: &ContextId) -> Took {
        let mut took = Took::default();
        for b in 0..self.batches() {
            let batch = self.batch(b);
            let len = batch.len() as u64;
            let report = took.add(|| store.apply(ctx, batch).expect("apply"));
            assert_eq!(report.changed, len, "every upsert must change the store");
        }
        took
    }
}

/// Time this thread has spent on a CPU, as the kernel last accounted it (at
/// most a scheduler tick behind: summed over many stretches, that evens out).
fn on_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Wall-clock and on-CPU time of measured stretches, summed.
#[derive(Clone, Copy, Default)]
struct Took {
    wall: Duration,
    cpu: Option<Duration>,
}

impl Took {
    fn add<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (cpu, start) = (on_cpu(), Instant::now());
        let out = f();
        self.wall += start.elapsed();
        let cpu = on_cpu()
            .zip(cpu)
            .map(|(end, start)| end.saturating_sub(start));
        self.cpu = cpu.map(|c| c + self.cpu.unwrap_or_default());
        out
    }
}

fn rate(upserts: u64, took: Duration) -> f64 {
    upserts as f64 / took.as_secs_f64()
}

fn report(what: &str, upserts: u64, took: Took) {
    let wall = rate(upserts, took.wall);
    let cpu = took
        .cpu
        .map_or("n/a".to_owned(), |c| format!("{:.0}", rate(upserts, c)));
    println!(
        "{what:<40} {upserts:>8} upserts in {:>9.1?}: {wall:>9.0} upserts/s wall, {cpu:>9} on-CPU",
        took.wall
    );
}

/// Time spent per phase, summed over batches.
#[derive(Default)]
struct Split {
    apply: Duration,
    entry: Duration,
    leaf: Duration,
    internal: Duration,
    /// The resumable hash of every internal node, as the store keeps it.
    midstates: HashMap<NodePos, InternalMidstates>,
}

impl Split {
    /// Replays `work` on `store`, timing each phase.
    fn of(work: &Workload, store: &MemoryStore, ctx: &ContextId) -> Self {
        let mut split = Split::default();
        for b in 0..work.batches() {
            split.replay(store, ctx, work.batch(b));
        }
        split
    }

    fn print(&self, what: &str, upserts: u64) {
        let per = |d: Duration| d.as_nanos() as f64 / upserts as f64;
        let share = |d: Duration| 100.0 * d.as_secs_f64() / self.apply.as_secs_f64();
        let hashing = self.entry + self.leaf + self.internal;
        let rest = self.apply.saturating_sub(hashing);
        println!("  {what}: {:.0} ns/upsert in apply", per(self.apply));
        for (phase, d) in [
            ("entry hashing (key hash + digest)", self.entry),
            ("bucket merge and bookkeeping", rest),
            ("leaf hashing", self.leaf),
            ("internal node re-hashing", self.internal),
        ] {
            println!(
                "    {phase:<36} {:>6.0} ns/upsert {:>5.1}%",
                per(d),
                share(d)
            );
        }
    }

    /// Applies `batch`, then times the hashing `apply` did on the same inputs.
    fn replay(&mut self, store: &MemoryStore, ctx: &ContextId, batch: Vec<Entry>) {
        let copy = batch.clone();
        let start = Instant::now();
        let stored: Vec<StoredEntry> = copy.into_iter().map(StoredEntry::new).collect();
        self.entry += start.elapsed();

        let start = Instant::now();
        store.apply(ctx, batch).expect("apply");
        self.apply += start.elapsed();

        let leaves: BTreeSet<u32> = stored
            .iter()
            .map(|e| merkle::leaf_index(&e.key_hash))
            .collect();
        let buckets: Vec<Vec<Hash>> = leaves
            .iter()
            .map(|&leaf| {
                let bucket = store::bucket(store, ctx, NodePos::new(TREE_DEPTH, leaf));
                bucket.expect("bucket").iter().map(|e| e.digest).collect()
            })
            .collect();
        let start = Instant::now();
        for digests in &buckets {
            std::hint::black_box(merkle::leaf_hash(digests.iter()));
        }
        self.leaf += start.elapsed();

        let children: Vec<(NodePos, usize, [Hash; FANOUT])> = dirty_internal_nodes(&leaves)
            .into_iter()
            .map(|(pos, unchanged)| (pos, unchanged, store.children(ctx, pos).expect("children")))
            .collect();
        let start = Instant::now();
        for (pos, unchanged, kids) in &children {
            let node = self.midstates.entry(*pos).or_default();
            std::hint::black_box(node.hash(kids, *unchanged));
        }
        self.internal += start.elapsed();
    }
}

/// Every ancestor of `leaves`, once each, with the first of its children the
/// batch changed.
fn dirty_internal_nodes(leaves: &BTreeSet<u32>) -> Vec<(NodePos, usize)> {
    let mut dirty = Vec::new();
    for level in (0..TREE_DEPTH).rev() {
        let shift = 4 * u32::from(TREE_DEPTH - level);
        let mut first_child: BTreeMap<u32, usize> = BTreeMap::new();
        for &leaf in leaves {
            let child = (leaf >> (shift - 4)) as usize % FANOUT;
            let first = first_child.entry(leaf >> shift).or_insert(child);
            *first = (*first).min(child);
        }
        dirty.extend(
            first_child
                .into_iter()
                .map(|(i, c)| (NodePos::new(level, i), c)),
        );
    }
    dirty
}

#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn measure_upserts_per_second() {
    let ctx = ContextId::new("bench").expect("valid");
    let (growing, one_batch, overwrites) =
        (Workload::GROWING, Workload::ONE_BATCH, Workload::OVERWRITES);

    let store = MemoryStore::new();
    let took = growing.run(&store, &ctx);
    report("(a) 10^6 new keys, 1k batches", growing.count, took);
    let took = overwrites.run(&store, &ctx);
    report(
        "(c) 10^5 overwrites, 1k batches, 10^6",
        overwrites.count,
        took,
    );
    let summary = store.summary(&ctx).expect("summary");
    assert_eq!(summary.entry_count, growing.count);
    drop(store);

    let store = MemoryStore::new();
    let took = one_batch.run(&store, &ctx);
    report("(b) one 10^5 batch, empty store", one_batch.count, took);
    drop(store);

    println!("phase split, wall clock (the same batches replayed on fresh stores):");
    let store = MemoryStore::new();
    Split::of(&growing, &store, &ctx).print("(a)", growing.count);
    Split::of(&overwrites, &store, &ctx).print("(c)", overwrites.count);
    let root = store.summary(&ctx).expect("summary").root;
    assert_eq!(root, merkle::root_of(&store.entries(&ctx)));
    drop(store);
    let store = MemoryStore::new();
    Split::of(&one_batch, &store, &ctx).print("(b)", one_batch.count);
}
