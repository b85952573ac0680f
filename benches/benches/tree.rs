//! Criterion: Merkle tree maintenance — upserts per second on `MemoryStore` and
//! `RedbStore`, in batches of 1k and 100k entries (100-byte values), one thread.
//!
//! The store is preloaded with 100k entries plus the batch's keys; every timed
//! `apply` then writes newer versions of the batch's keys (so the store keeps its
//! size): key hashes, entry digests, bucket merges and re-hashing every touched
//! path are all inside the timing, building the batch is not. The `matrix` binary
//! reports the same for inserts of new keys.

use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use synctree_benches::context;
use synctree_benches::maintenance::{Backend, batches};
use synctree_benches::workload::Base;
use synctree_primitives::{Entry, NodeId, Store, Version};

/// Entries in the store besides the batch's keys.
const PRELOAD: u64 = 100_000;

fn bumped(batch: &[Entry], hlc: u64) -> Vec<Entry> {
    let mut out = batch.to_vec();
    out.iter_mut()
        .for_each(|e| e.version = Version::new(hlc, NodeId(2)));
    out
}

fn apply(store: &dyn Store, entries: Vec<Entry>) -> Duration {
    let ctx = context();
    let started = Instant::now();
    if let Err(e) = store.apply(&ctx, entries) {
        panic!("apply failed: {e}");
    }
    started.elapsed()
}

fn upserts(c: &mut Criterion) {
    let base = Base::new(PRELOAD);
    let mut group = c.benchmark_group("upserts");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for backend in [Backend::Memory, Backend::Redb] {
        for size in [1_000usize, 100_000] {
            let dir = match tempfile::tempdir() {
                Ok(dir) => dir,
                Err(e) => panic!("no temporary directory: {e}"),
            };
            let store = match backend.open(dir.path()) {
                Ok(store) => store,
                Err(e) => panic!("cannot open {}: {e}", backend.name()),
            };
            let batch = batches(PRELOAD, size as u64, size).concat();
            if let Err(e) = base.fill(&*store) {
                panic!("preload failed: {e}");
            }
            apply(&*store, batch.clone());
            let mut hlc = 1;
            group.throughput(Throughput::Elements(size as u64));
            group.bench_function(BenchmarkId::new(backend.name(), size), |bench| {
                bench.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            hlc += 1;
                            apply(&*store, bumped(&batch, hlc))
                        })
                        .sum()
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, upserts);
criterion_main!(benches);
