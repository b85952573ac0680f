//! Workloads: two replicas sharing `n` entries and differing in `d` more, the
//! differences placed **scattered** over the key-hash space or **clustered** in one
//! narrow, aligned range of leaf buckets.
//!
//! Entries land in buckets by SHA-256 of the key, so consecutive key names scatter
//! anyway; a clustered workload therefore keeps generating candidate keys and
//! retains only those whose leaf index falls in the first [`cluster_width`]
//! buckets (the range `0x0000…` upwards of the key-hash space).

use std::sync::Arc;

use serde::Serialize;
use synctree_primitives::merkle::leaf_index;
use synctree_primitives::sketch::SketchItem;
use synctree_primitives::{ContextId, Entry, Hash, NodeId, Store, Version, key_hash};
use synctree_store::MemoryStore;

use crate::context;
use crate::error::BenchError;

/// A set-reconciliation item: `(timestamp, id)`.
pub type Item = (u64, Hash);

/// Value bytes of every generated entry.
pub const VALUE_LEN: usize = 100;

/// Entries per `Store::apply` call when filling a store.
pub const FILL_BATCH: usize = 10_000;

/// Average differing entries per bucket a clustered workload aims for at most.
const CLUSTER_DENSITY: u64 = 64;

/// Where the differing entries sit in key-hash space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Random keys: spread over the whole key-hash space.
    Scattered,
    /// One contiguous range of [`cluster_width`] leaf buckets.
    Clustered,
}

impl Placement {
    /// `scattered` or `clustered`.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Scattered => "scattered",
            Placement::Clustered => "clustered",
        }
    }
}

/// Leaf buckets a clustered placement of `d` differences spans: the smallest aligned
/// subtree (1, 16, 256, … buckets) that keeps them at no more than 64 per bucket on
/// average. d = 1 → one bucket, d = 100 → 16 (one level-3 node), d = 10^4 → 256
/// (one level-2 node, 1/256 of the key space).
pub fn cluster_width(d: u64) -> u32 {
    let need = d.div_ceil(CLUSTER_DENSITY).max(1);
    let mut width = 1u32;
    while u64::from(width) < need {
        width *= 16;
    }
    width
}

/// The name of generated key `i`.
pub fn key_name(i: u64) -> String {
    format!("key-{i:010}")
}

/// Generated entry `i`: key [`key_name`], a deterministic `value_len`-byte value,
/// version `(1, node 1)`.
pub fn entry(i: u64, value_len: usize) -> Entry {
    let mut value = vec![0u8; value_len];
    for (k, byte) in value.iter_mut().enumerate() {
        *byte = (i as usize).wrapping_mul(31).wrapping_add(k) as u8;
    }
    Entry::put(key_name(i), value, Version::new(1, NodeId(1)))
}

/// The `n` entries both replicas share, generated once and reused by every cell of
/// that size.
#[derive(Debug)]
pub struct Base {
    /// The entries, keys `0..n`.
    pub entries: Vec<Entry>,
    /// Their key hashes, in the same order.
    pub key_hashes: Vec<Hash>,
}

impl Base {
    /// Generates `n` entries of [`VALUE_LEN`] bytes.
    pub fn new(n: u64) -> Arc<Self> {
        let entries: Vec<Entry> = (0..n).map(|i| entry(i, VALUE_LEN)).collect();
        let key_hashes = entries.iter().map(Entry::key_hash).collect();
        Arc::new(Base {
            entries,
            key_hashes,
        })
    }

    /// Number of shared entries.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Applies every shared entry to `store`, in batches of [`FILL_BATCH`].
    pub fn fill<S: Store + ?Sized>(&self, store: &S) -> Result<(), BenchError> {
        let ctx = context();
        for batch in self.entries.chunks(FILL_BATCH) {
            store.apply(&ctx, batch.to_vec())?;
        }
        Ok(())
    }
}

/// One cell's replica contents: the shared base plus the entries only A and only B
/// hold (differences alternate: even ones on A, odd ones on B).
#[derive(Debug, Clone)]
pub struct Workload {
    /// The shared entries.
    pub base: Arc<Base>,
    /// Differences.
    pub d: u64,
    /// Where they sit.
    pub placement: Placement,
    /// Entries only replica A holds.
    pub only_a: Vec<Entry>,
    /// Entries only replica B holds.
    pub only_b: Vec<Entry>,
}

impl Workload {
    /// `d` differences over `base`, placed as asked. Difference keys are numbered
    /// from `n` up, so they never collide with shared keys.
    pub fn new(base: Arc<Base>, d: u64, placement: Placement) -> Self {
        let (only_a, only_b) = difference_ids(base.len(), d, placement)
            .into_iter()
            .enumerate()
            .map(|(j, i)| (j, entry(i, VALUE_LEN)))
            .partition::<Vec<_>, _>(|(j, _)| j % 2 == 0);
        let strip = |v: Vec<(usize, Entry)>| v.into_iter().map(|(_, e)| e).collect();
        Workload {
            base,
            d,
            placement,
            only_a: strip(only_a),
            only_b: strip(only_b),
        }
    }

    /// Shared entries.
    pub fn n(&self) -> u64 {
        self.base.len()
    }

    /// Every differing entry, A's then B's.
    pub fn differences(&self) -> impl Iterator<Item = &Entry> {
        self.only_a.iter().chain(&self.only_b)
    }

    /// P: the encoded size of the differing entries ([`Entry::encoded_len`]), the
    /// least any protocol must move.
    pub fn payload_bytes(&self) -> u64 {
        self.differences().map(|e| e.encoded_len() as u64).sum()
    }

    /// Fills `a` and `b` (base plus their own differences), on two threads.
    pub fn fill_pair<S: Store + ?Sized>(&self, a: &S, b: &S) -> Result<(), BenchError> {
        let fill = |store: &S, own: &[Entry]| -> Result<(), BenchError> {
            self.base.fill(store)?;
            if !own.is_empty() {
                store.apply(&context(), own.to_vec())?;
            }
            Ok(())
        };
        std::thread::scope(|scope| {
            let on_b = scope.spawn(|| fill(b, &self.only_b));
            let on_a = fill(a, &self.only_a);
            let on_b = match on_b.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            on_a.and(on_b)
        })
    }

    /// Two fresh in-memory replicas holding this workload.
    pub fn memory_pair(&self) -> Result<(Arc<MemoryStore>, Arc<MemoryStore>), BenchError> {
        let (a, b) = (MemoryStore::new(), MemoryStore::new());
        self.fill_pair(&a, &b)?;
        Ok((Arc::new(a), Arc::new(b)))
    }

    /// Two in-memory replicas that hold the same `n + d` entries, for
    /// [`Workload::diverge_by_update`] to pull apart again and again.
    pub fn synced_memory_pair(&self) -> Result<(Arc<MemoryStore>, Arc<MemoryStore>), BenchError> {
        let (a, b) = self.memory_pair()?;
        let ctx = context();
        a.apply(&ctx, self.only_b.clone())?;
        b.apply(&ctx, self.only_a.clone())?;
        Ok((a, b))
    }

    /// Makes the replicas differ in exactly the `d` difference keys again by writing
    /// newer versions (`hlc`) of A's keys to A and of B's keys to B; the store sizes
    /// stay `n + d`, so a benchmark can repeat a session without rebuilding.
    pub fn diverge_by_update<S: Store + ?Sized>(
        &self,
        a: &S,
        b: &S,
        hlc: u64,
    ) -> Result<(), BenchError> {
        let ctx = context();
        let bump = |entries: &[Entry]| -> Vec<Entry> {
            let mut out = entries.to_vec();
            out.iter_mut()
                .for_each(|e| e.version = Version::new(hlc, NodeId(2)));
            out
        };
        if !self.only_a.is_empty() {
            a.apply(&ctx, bump(&self.only_a))?;
        }
        if !self.only_b.is_empty() {
            b.apply(&ctx, bump(&self.only_b))?;
        }
        Ok(())
    }

    /// `(timestamp, id)` items of each side for set reconciliation: timestamp the
    /// version's hlc, id the 32-byte key hash.
    pub fn items(&self) -> (Vec<Item>, Vec<Item>) {
        let shared = self
            .base
            .entries
            .iter()
            .zip(&self.base.key_hashes)
            .map(|(e, h)| (e.version.hlc, *h));
        let side = |own: &[Entry]| -> Vec<Item> {
            let own = own.iter().map(|e| (e.version.hlc, e.key_hash()));
            shared.clone().chain(own).collect()
        };
        (side(&self.only_a), side(&self.only_b))
    }

    /// Each side's sketch items ([`SketchItem`]), for a from-scratch RIBLT.
    pub fn sketch_items(&self) -> (Vec<SketchItem>, Vec<SketchItem>) {
        let item = |e: &Entry| SketchItem::new(&e.key_hash(), &e.digest());
        let shared: Vec<SketchItem> = self.base.entries.iter().map(item).collect();
        let side = |own: &[Entry]| -> Vec<SketchItem> {
            shared.iter().copied().chain(own.iter().map(item)).collect()
        };
        (side(&self.only_a), side(&self.only_b))
    }
}

/// Key numbers of `d` differences over a base of `n`: `n..n + d` when scattered;
/// the first `d` numbers from `n` up whose key hash falls in the first
/// [`cluster_width`]`(d)` buckets when clustered.
pub fn difference_ids(n: u64, d: u64, placement: Placement) -> Vec<u64> {
    match placement {
        Placement::Scattered => (n..n + d).collect(),
        Placement::Clustered => {
            let width = cluster_width(d);
            (n..)
                .filter(|&i| leaf_index(&key_hash(key_name(i).as_bytes())) < width)
                .take(d as usize)
                .collect()
        }
    }
}

/// True when both stores hold the same root and `expected` entries.
pub fn converged<S: Store + ?Sized>(
    a: &S,
    b: &S,
    ctx: &ContextId,
    expected: u64,
) -> Result<bool, BenchError> {
    let (sa, sb) = (a.summary(ctx)?, b.summary(ctx)?);
    Ok(sa.root == sb.root && sa.entry_count == expected && sb.entry_count == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clustered_differences_stay_in_their_buckets() {
        for d in [1, 65, 100] {
            let width = cluster_width(d);
            let ids = difference_ids(500, d, Placement::Clustered);
            assert_eq!(ids.len() as u64, d);
            assert!(ids.iter().all(|&i| i >= 500));
            let leaves = ids
                .iter()
                .map(|&i| leaf_index(&key_hash(key_name(i).as_bytes())));
            assert!(leaves.into_iter().all(|l| l < width), "d = {d}");
        }
        assert_eq!(
            (cluster_width(1), cluster_width(100), cluster_width(10_000)),
            (1, 16, 256)
        );
    }

    #[test]
    fn a_workload_differs_in_exactly_d_entries() {
        let base = Base::new(300);
        let w = Workload::new(base, 7, Placement::Scattered);
        assert_eq!((w.only_a.len(), w.only_b.len()), (4, 3));
        let (a, b) = w.memory_pair().unwrap();
        let ctx = context();
        assert_eq!(a.summary(&ctx).unwrap().entry_count, 304);
        assert_eq!(b.summary(&ctx).unwrap().entry_count, 303);
        assert!(!converged(&*a, &*b, &ctx, 307).unwrap());
        let p: u64 = w.differences().map(|e| e.encoded_len() as u64).sum();
        assert_eq!(w.payload_bytes(), p);
        let (ia, ib) = w.items();
        assert_eq!((ia.len(), ib.len()), (304, 303));
    }

    #[test]
    fn updates_diverge_a_synced_pair_again() {
        let w = Workload::new(Base::new(200), 4, Placement::Clustered);
        let (a, b) = w.synced_memory_pair().unwrap();
        let ctx = context();
        assert!(converged(&*a, &*b, &ctx, 204).unwrap());
        w.diverge_by_update(&*a, &*b, 9).unwrap();
        assert!(!converged(&*a, &*b, &ctx, 204).unwrap());
    }
}
