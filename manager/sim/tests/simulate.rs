//! The cluster simulator: seeded 10–14 node clusters under loss, stalls,
//! latency, partitions, restarts and bandwidth caps all converge to exactly the
//! merge of their writes; the same seed gives the same report; a cluster that
//! cannot converge is reported as such; every metric moves during a run.
//!
//! CI runs [`DEFAULT_SEEDS`] seeds (a few seconds each in a debug build). Set
//! `SYNCTREE_SIM_SEEDS=N` to run N seeds instead, e.g.
//! `SYNCTREE_SIM_SEEDS=500 cargo test --release -p synctree-sim --test simulate`;
//! a failing seed is printed and can be replayed alone with
//! `synctree simulate --seed S …` or [`faulty`]`(S)`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU64;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use synctree_manager::metrics;
use synctree_sim::{SimConfig, SimError, SimReport, run};

/// Seeds run when `SYNCTREE_SIM_SEEDS` is not set.
const DEFAULT_SEEDS: u64 = 8;

/// Simulations run at once (the CI machine has two cores).
const WORKERS: usize = 2;

fn seeds() -> u64 {
    std::env::var("SYNCTREE_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_SEEDS)
}

/// The cluster of `seed`: 10–14 nodes, 5% loss, 2% stalls, 5–24 ms latency,
/// 600 ms partitions, two restarts, and every third seed a 200 KB/s cap.
fn faulty(seed: u64) -> SimConfig {
    SimConfig {
        loss: 0.05,
        stall: 0.02,
        latency: Duration::from_millis(5 + seed % 20),
        partition: Duration::from_millis(600),
        restarts: 2,
        bandwidth: NonZeroU64::new(if seed % 3 == 2 { 200_000 } else { 0 }),
        ..SimConfig::new(10 + (seed % 5) as usize, seed)
    }
}

/// Runs every seed on [`WORKERS`] threads (each simulation is single-threaded).
fn run_all(seeds: u64, config: fn(u64) -> SimConfig) -> Vec<(u64, Result<SimReport, SimError>)> {
    let next = AtomicU64::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds {
                        break;
                    }
                    let report = run(&config(seed));
                    results.lock().unwrap().push((seed, report));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(seed, _)| *seed);
    results
}

#[test]
fn seeded_faulty_clusters_all_converge() {
    let started = Instant::now();
    let results = run_all(seeds(), faulty);
    let mut failures = Vec::new();
    for (seed, result) in &results {
        match result {
            Ok(r) => {
                eprintln!(
                    "seed {seed:>4}: {} nodes, converged={} in {:?} ms after heal, {} sessions ({} failed), {} partitions, {} restarts",
                    r.nodes,
                    r.converged,
                    r.converge_ms,
                    r.sessions,
                    r.failed_sessions,
                    r.partitions,
                    r.restarts
                );
                if !r.converged {
                    failures.push(format!("seed {seed}: {r:?}"));
                }
                assert!(r.failed_sessions > 0 && r.restarts == 2 && r.partitions > 0);
            }
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
    }
    eprintln!("{} seeds in {:?}", results.len(), started.elapsed());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let config = SimConfig {
        stall: 0.05,
        bandwidth: NonZeroU64::new(100_000),
        ..faulty(11)
    };
    let first = run(&config).unwrap();
    let second = run(&config).unwrap();
    assert_eq!(first, second);
    assert!(first.converged && first.failed_sessions > 0);
    let other = run(&SimConfig { seed: 12, ..config }).unwrap();
    assert_ne!(first, other, "another seed, another run");
}

#[test]
fn a_cluster_that_cannot_converge_is_reported_as_such() {
    let config = SimConfig {
        loss: 0.9,
        converge_limit: Duration::from_millis(300),
        ..SimConfig::new(10, 5)
    };
    let report = run(&config).unwrap();
    assert!(!report.converged);
    assert_eq!(report.converge_ms, None);
    assert!(report.mismatches > 0, "{report:?}");
    assert_eq!(report.virtual_ms, 3_300);
}

#[test]
fn invalid_configs_are_refused() {
    let error = run(&SimConfig {
        loss: 1.5,
        ..SimConfig::new(3, 1)
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid simulation config: loss is a probability"
    );
    assert!(matches!(
        run(&SimConfig::new(1, 1)),
        Err(SimError::Config(_))
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inside = runtime.block_on(async { run(&SimConfig::new(3, 1)) });
    assert!(matches!(inside, Err(SimError::InsideRuntime)), "{inside:?}");
}

#[test]
fn every_metric_moves_during_a_simulation() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let config = SimConfig {
        loss: 0.2,
        partition: Duration::from_millis(500),
        restarts: 1,
        ..SimConfig::new(4, 9)
    };
    let report = ::metrics::with_local_recorder(&recorder, || run(&config)).unwrap();
    assert!(report.converged);
    let snapshot = snapshotter.snapshot().into_vec();
    let honest = metrics::ALL
        .into_iter()
        .filter(|name| !metrics::ON_MISBEHAVIOUR.contains(name))
        .filter(|name| !metrics::WITH_GC.contains(name));
    for name in honest {
        let moved = snapshot.iter().any(|(key, _, _, value)| {
            key.key().name() == name
                && match value {
                    DebugValue::Counter(n) => *n > 0,
                    DebugValue::Gauge(_) => true,
                    DebugValue::Histogram(values) => !values.is_empty(),
                }
        });
        assert!(moved, "{name} did not move");
    }
    let failed = snapshot
        .iter()
        .filter(|(k, ..)| k.key().name() == metrics::FAILED);
    assert!(
        failed.count() >= 2,
        "several failure reasons under loss and partitions"
    );
}
