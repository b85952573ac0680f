//! Criterion: snapshot throughput — a replica of n entries streamed into an empty
//! one (verification and apply included) over the in-memory pipe and over
//! loopback TCP, beside a raw loopback TCP copy of the same number of bytes (the
//! ceiling). Throughput is in the snapshot's bytes, so the three compare directly.
//! n = 10^6 is included with `SYNCTREE_BENCH_FULL=1`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use synctree_benches::reference::{loopback_pair, tcp_copy};
use synctree_benches::session::{self, Outcome, Protocol};
use synctree_benches::workload::Base;
use synctree_benches::{BenchError, context};
use synctree_primitives::Store;
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;
use tokio::runtime::Runtime;

/// Set (to anything) to add n = 10^6.
const FULL_ENV: &str = "SYNCTREE_BENCH_FULL";

fn sizes() -> Vec<u64> {
    match std::env::var_os(FULL_ENV) {
        Some(_) => vec![10_000, 100_000, 1_000_000],
        None => vec![10_000, 100_000],
    }
}

fn runtime() -> Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    }
}

/// One snapshot into a fresh store; the store is dropped after the timing.
fn snapshot(rt: &Runtime, source: &Arc<MemoryStore>, tcp: bool) -> Result<Outcome, BenchError> {
    let target = Arc::new(MemoryStore::new());
    let out = rt.block_on(async {
        if !tcp {
            return session::run(Protocol::Snapshot, &target, source).await;
        }
        let (client, server) = loopback_pair().await?;
        let (mut ta, mut tb) = (FramedTransport::tcp(client)?, FramedTransport::tcp(server)?);
        session::run_over(Protocol::Snapshot, &target, source, &mut ta, &mut tb).await
    })?;
    let (got, want) = (target.summary(&context())?, source.summary(&context())?);
    if !out.converged || got != want {
        return Err(BenchError::NotConverged {
            what: "snapshot".into(),
            detail: format!("{} of {} entries", got.entry_count, want.entry_count),
        });
    }
    Ok(out)
}

fn timed(result: Result<Outcome, BenchError>) -> Duration {
    match result {
        Ok(out) => out.wall,
        Err(e) => panic!("snapshot failed: {e:?}"),
    }
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    for n in sizes() {
        let source = Arc::new(MemoryStore::new());
        if let Err(e) = Base::new(n).fill(&*source) {
            panic!("fixture n={n}: {e}");
        }
        let bytes = match snapshot(&rt, &source, false) {
            Ok(out) => out.bytes,
            Err(e) => panic!("snapshot n={n}: {e:?}"),
        };
        let mut group = c.benchmark_group("snapshot");
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Bytes(bytes));
        for (name, tcp) in [("memory", false), ("tcp", true)] {
            group.bench_function(BenchmarkId::new(name, n), |bench| {
                bench.iter_custom(|iters| {
                    (0..iters).map(|_| timed(snapshot(&rt, &source, tcp))).sum()
                });
            });
        }
        group.bench_function(BenchmarkId::new("raw-tcp-copy", n), |bench| {
            bench.iter_custom(|iters| {
                (0..iters)
                    .map(|_| match rt.block_on(tcp_copy(bytes)) {
                        Ok(wall) => wall,
                        Err(e) => panic!("tcp copy: {e:?}"),
                    })
                    .sum()
            });
        });
        group.finish();
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
