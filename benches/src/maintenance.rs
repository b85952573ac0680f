//! Merkle tree maintenance: how fast a store takes upserts, index updates included.

use std::path::Path;
use std::time::{Duration, Instant};

use synctree_primitives::{Entry, Store};
use synctree_store::{MemoryStore, RedbStore};

use crate::context;
use crate::error::BenchError;
use crate::meter::on_cpu;
use crate::workload::{Base, VALUE_LEN, entry};

/// A store backend the maintenance benchmarks run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// [`MemoryStore`].
    Memory,
    /// [`RedbStore`] in a temporary directory (immediate durability per batch).
    Redb,
}

impl Backend {
    /// `memory` or `redb`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redb => "redb",
        }
    }

    /// A fresh, empty store of this backend; redb files go under `dir`.
    pub fn open(self, dir: &Path) -> Result<Box<dyn Store>, BenchError> {
        Ok(match self {
            Backend::Memory => Box::new(MemoryStore::new()),
            Backend::Redb => Box::new(RedbStore::open_dir(dir)?),
        })
    }
}

/// `count` new entries (keys numbered from `first`) split into batches of `batch`.
pub fn batches(first: u64, count: u64, batch: usize) -> Vec<Vec<Entry>> {
    let entries: Vec<Entry> = (first..first + count)
        .map(|i| entry(i, VALUE_LEN))
        .collect();
    entries
        .chunks(batch.max(1))
        .map(<[Entry]>::to_vec)
        .collect()
}

/// Fills `store` with `base` (untimed), then times applying `batches` one
/// [`Store::apply`] each: key hashing, entry digests, bucket merges and the
/// re-hashing of every touched path. Returns wall and on-CPU time.
pub fn time_upserts<S: Store + ?Sized>(
    store: &S,
    base: &Base,
    batches: Vec<Vec<Entry>>,
) -> Result<(Duration, Option<Duration>), BenchError> {
    base.fill(store)?;
    let ctx = context();
    let started = Instant::now();
    let (applied, cpu) = on_cpu(|| {
        batches
            .into_iter()
            .try_for_each(|batch| store.apply(&ctx, batch).map(drop))
    });
    let wall = started.elapsed();
    applied?;
    Ok((wall, cpu))
}

/// Upserts per second.
pub fn per_sec(upserts: u64, wall: Duration) -> f64 {
    upserts as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_land_in_both_backends() {
        let dir = tempfile::tempdir().unwrap();
        let base = Base::new(500);
        for backend in [Backend::Memory, Backend::Redb] {
            let store = backend.open(&dir.path().join(backend.name())).unwrap();
            let (wall, _) = time_upserts(&*store, &base, batches(500, 250, 100)).unwrap();
            assert!(wall > Duration::ZERO);
            let summary = store.summary(&context()).unwrap();
            assert_eq!(summary.entry_count, 750, "{}", backend.name());
        }
        assert_eq!(batches(0, 250, 100).len(), 3);
    }
}
