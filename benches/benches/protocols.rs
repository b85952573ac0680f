//! Criterion: one session per protocol (hash-comparison, level-wise, auto) over the
//! in-memory framed transport, for replica pairs of n entries differing in d.
//!
//! Each pair is built once per cell; before every timed session the d difference
//! keys get newer versions (A's half on A, B's half on B), so the session always
//! starts diverged by exactly d entries while the stores keep n + d entries. Only
//! the session is timed. n = 10^6 is included with `SYNCTREE_BENCH_FULL=1` (its
//! fixtures take seconds to build). Snapshot sessions are in `benches/snapshot.rs`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use synctree_benches::session::{self, Protocol};
use synctree_benches::workload::{Base, Placement, Workload, converged};
use synctree_benches::{BenchError, context};
use synctree_store::MemoryStore;
use tokio::runtime::Runtime;

/// Set (to anything) to add n = 10^6.
const FULL_ENV: &str = "SYNCTREE_BENCH_FULL";

const PROTOCOLS: [Protocol; 3] = [
    Protocol::HashComparison,
    Protocol::LevelWise,
    Protocol::Auto,
];

const CELLS: [(u64, Placement); 4] = [
    (0, Placement::Scattered),
    (100, Placement::Scattered),
    (100, Placement::Clustered),
    (10_000, Placement::Scattered),
];

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

/// Re-diverges the pair, runs one session, checks it converged; returns its time.
fn one_session(
    rt: &Runtime,
    protocol: Protocol,
    w: &Workload,
    pair: &(Arc<MemoryStore>, Arc<MemoryStore>),
    hlc: u64,
) -> Result<Duration, BenchError> {
    let (a, b) = pair;
    w.diverge_by_update(&**a, &**b, hlc)?;
    let out = rt.block_on(session::run(protocol, a, b))?;
    if !out.converged || !converged(&**a, &**b, &context(), w.n() + w.d)? {
        return Err(BenchError::NotConverged {
            what: protocol.name().to_owned(),
            detail: format!("n={} d={}", w.n(), w.d),
        });
    }
    Ok(out.wall)
}

fn sessions(c: &mut Criterion) {
    let rt = runtime();
    for n in sizes() {
        let base = Base::new(n);
        let mut group = c.benchmark_group(format!("sessions/n={n}"));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (d, placement) in CELLS {
            let w = Workload::new(base.clone(), d, placement);
            let pair = match w.synced_memory_pair() {
                Ok(pair) => pair,
                Err(e) => panic!("fixture n={n} d={d}: {e}"),
            };
            let mut hlc = 1;
            if d > 0 {
                // d = 0 comes first in CELLS, before any throughput is set.
                group.throughput(Throughput::Elements(d));
            }
            for protocol in PROTOCOLS {
                let id = BenchmarkId::new(protocol.name(), format!("d={d}/{}", placement.name()));
                group.bench_function(id, |bench| {
                    bench.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                hlc += 1;
                                match one_session(&rt, protocol, &w, &pair, hlc) {
                                    Ok(wall) => wall,
                                    Err(e) => panic!("{}: {e:?}", protocol.name()),
                                }
                            })
                            .sum()
                    });
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, sessions);
criterion_main!(benches);
