//! Fixtures shared by synctree's benchmarks: diverged replica pairs and a session
//! runner over the in-memory transport.

#![forbid(unsafe_code)]

use synctree_primitives::{
    ContextId, Entry, Hash, Identity, NodeId, Store, SyncError, SyncProtocolExecutor, SyncStats,
    SyncTransport, Version,
};
use synctree_protocols::{HashComparison, HashComparisonResponderInit, TreeConfig};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

/// The context every benchmark syncs.
pub fn context() -> ContextId {
    match ContextId::new("bench") {
        Ok(c) => c,
        Err(_) => unreachable!("a valid literal context name"),
    }
}

/// Two stores sharing `n` entries and differing in `d` more, scattered over the key
/// space: even differences only on A, odd only on B. Values are `value_len` bytes.
pub fn diverged(n: u64, d: u64, value_len: usize) -> (MemoryStore, MemoryStore) {
    let (a, b) = (MemoryStore::new(), MemoryStore::new());
    let ctx = context();
    let entry = |i: u64| {
        let mut value = vec![0u8; value_len];
        for (k, byte) in value.iter_mut().enumerate() {
            *byte = (i as usize).wrapping_mul(31).wrapping_add(k) as u8;
        }
        Entry::put(format!("key-{i:010}"), value, Version::new(1, NodeId(1)))
    };
    for chunk_start in (0..n).step_by(10_000) {
        let batch: Vec<Entry> = (chunk_start..n.min(chunk_start + 10_000))
            .map(entry)
            .collect();
        apply(&a, &ctx, batch.clone());
        apply(&b, &ctx, batch);
    }
    let (only_a, only_b): (Vec<u64>, Vec<u64>) = (n..n + d).partition(|i| i % 2 == 0);
    apply(&a, &ctx, only_a.into_iter().map(entry).collect());
    apply(&b, &ctx, only_b.into_iter().map(entry).collect());
    (a, b)
}

fn apply(store: &MemoryStore, ctx: &ContextId, entries: Vec<Entry>) {
    if let Err(e) = store.apply(ctx, entries) {
        panic!("memory store refused a batch: {e}");
    }
}

/// Runs one HashComparison session between `a` (initiator) and `b` over
/// [`FramedTransport::memory_pair`], returning the initiator's stats.
pub async fn hash_comparison(a: &MemoryStore, b: &MemoryStore) -> Result<SyncStats, SyncError> {
    let (mut ta, mut tb) = FramedTransport::memory_pair(1 << 20);
    let ctx = context();
    let id = Identity::new(NodeId(1));
    let responder = async {
        // The manager's job: read the init message before the responder takes over.
        let _init = tb.recv().await;
        let init = HashComparisonResponderInit {
            initiator_root: Hash::ZERO,
        };
        HashComparison::run_responder(&mut tb, b, &ctx, &id, init).await
    };
    let initiator = HashComparison::run_initiator(&mut ta, a, &ctx, &id, TreeConfig::default());
    let (stats, served) = tokio::join!(initiator, responder);
    served?;
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bench_fixture_converges() {
        let (a, b) = diverged(2_000, 50, 16);
        let stats = hash_comparison(&a, &b).await.expect("session");
        assert!(stats.converged());
        assert_eq!(stats.entries_pulled + stats.entries_pushed, 50);
    }
}
