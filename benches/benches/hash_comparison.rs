//! HashComparison over the in-memory framed transport: time per session for a
//! replica pair of n entries differing in d, rebuilt before every iteration so each
//! session starts diverged.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use synctree_benches::{diverged, hash_comparison};

fn sessions(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    };
    let mut group = c.benchmark_group("hash_comparison");
    group.sample_size(10);
    for (n, d) in [(10_000, 0), (10_000, 100), (100_000, 1), (100_000, 1_000)] {
        group.bench_with_input(
            BenchmarkId::new(format!("n={n}"), format!("d={d}")),
            &(n, d),
            |bench, &(n, d)| {
                bench.iter_batched_ref(
                    || diverged(n, d, 100),
                    |(a, b)| runtime.block_on(hash_comparison(a, b)).map(|s| s.rounds),
                    BatchSize::LargeInput,
                );
            },
        );
    }
    group.finish();
}

criterion_group!(benches, sessions);
criterion_main!(benches);
