//! Benchmarks of synctree: fixtures, a session runner, reference yardsticks and the
//! `matrix` report.
//!
//! ```text
//!  workload ── Base (n shared entries) + d differences, scattered or clustered
//!     │          in key-hash space ──► two MemoryStores (or any Store)
//!     ▼
//!  session ─── one protocol session over an in-memory pipe or loopback TCP,
//!     │          or auto: SyncManager::sync ⇄ SyncManager::handle_stream
//!     ▼
//!  matrix ──── rows ──► report (Markdown tables / JSON Lines) ──► targets
//!     ▲
//!  reference ─ negentropy on the same sets · raw loopback TCP copy
//!  maintenance ─ upserts/s on MemoryStore and RedbStore
//!  writes ────── concurrent writers (group commit), MemoryStore bytes per entry
//!  tally ─────── bytes by message kind (`matrix --breakdown`)
//! ```
//!
//! The criterion benches in `benches/` and the `matrix` binary
//! (`cargo run --release -p synctree-benches --bin matrix`) share these modules;
//! results and their reading are in `benches/RESULTS.md`.

#![forbid(unsafe_code)]

pub mod error;
pub mod floor;
pub mod maintenance;
pub mod matrix;
pub mod meter;
pub mod reference;
pub mod report;
pub mod riblt_ref;
pub mod rows;
pub mod session;
pub mod tally;
pub mod targets;
pub mod workload;
pub mod writes;

pub use error::BenchError;

use synctree_primitives::{ContextId, SyncStats};
use synctree_store::MemoryStore;

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
    let entry = |i| workload::entry(i, value_len);
    for chunk_start in (0..n).step_by(workload::FILL_BATCH) {
        let end = n.min(chunk_start + workload::FILL_BATCH as u64);
        let batch: Vec<_> = (chunk_start..end).map(entry).collect();
        apply(&a, &ctx, batch.clone());
        apply(&b, &ctx, batch);
    }
    let (only_a, only_b): (Vec<u64>, Vec<u64>) = (n..n + d).partition(|i| i % 2 == 0);
    apply(&a, &ctx, only_a.into_iter().map(entry).collect());
    apply(&b, &ctx, only_b.into_iter().map(entry).collect());
    (a, b)
}

fn apply(store: &MemoryStore, ctx: &ContextId, entries: Vec<synctree_primitives::Entry>) {
    use synctree_primitives::Store;
    if let Err(e) = store.apply(ctx, entries) {
        panic!("memory store refused a batch: {e}");
    }
}

/// Runs one HashComparison session between `a` (initiator) and `b` over
/// `FramedTransport::memory_pair`, returning the initiator's stats.
pub async fn hash_comparison(a: &MemoryStore, b: &MemoryStore) -> Result<SyncStats, BenchError> {
    let (mut ta, mut tb) = synctree_transport::FramedTransport::memory_pair(session::PIPE_BYTES);
    let ctx = context();
    let initiator = session::initiate(session::Protocol::HashComparison, &mut ta, a, &ctx);
    let responder = session::respond(&mut tb, b, &ctx);
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
