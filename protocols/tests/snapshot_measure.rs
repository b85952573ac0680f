//! Measurement, not a check (ignored; run in release): a fresh node bootstraps n
//! entries by Snapshot from a responder taking writes at a steady rate, then one
//! HashComparison session catches up. Prints times, outcome and peak RSS.
//!
//! ```text
//! SYNCTREE_N=1000000 SYNCTREE_WRITES_PER_S=50 cargo test --release -p synctree-protocols \
//!     --test snapshot_measure -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{Compression, InitPayload};
use synctree_primitives::{
    ContextId, Entry, Identity, NodeId, Store, SyncProtocolExecutor, SyncStats, SyncTransport,
    Version,
};
use synctree_protocols::{
    HashComparison, HashComparisonConfig, HashComparisonResponderInit, Snapshot, SnapshotConfig,
    SnapshotResponderInit,
};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

fn ctx() -> ContextId {
    ContextId::new("measure").expect("context")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set so far, from /proc (0 where there is none).
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    kib / 1024
}

async fn respond<T: SyncTransport, S: Store>(t: &mut T, store: &S) -> Option<SyncStats> {
    let id = Identity::new(NodeId(2));
    let first = t.recv().await.ok()??;
    let Some(Body::Init(InitPayload {
        kind: Some(kind), ..
    })) = first.body
    else {
        return None;
    };
    match kind {
        Kind::Snapshot(init) => {
            let init = SnapshotResponderInit::try_from(&init).ok()?;
            Snapshot::run_responder(t, store, &ctx(), &id, init)
                .await
                .ok()
        }
        Kind::HashComparison(init) => {
            let init = HashComparisonResponderInit::try_from(&init).ok()?;
            HashComparison::run_responder(t, store, &ctx(), &id, init)
                .await
                .ok()
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: prints figures"]
async fn measure_bootstrap_under_writes() {
    let n = env("SYNCTREE_N", 1_000_000) as usize;
    let rate = env("SYNCTREE_WRITES_PER_S", 50);
    let responder = Arc::new(MemoryStore::new());
    let v = Version::new(1, NodeId(2));
    for chunk in (0..n).collect::<Vec<_>>().chunks(50_000) {
        let batch = chunk
            .iter()
            .map(|i| {
                Entry::put(
                    format!("key-{i:08}"),
                    format!("value-{i}-{}", "x".repeat(80)),
                    v,
                )
            })
            .collect();
        responder.apply(&ctx(), batch).expect("apply");
    }
    let baseline = peak_rss_mib();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = (rate > 0).then(|| {
        let (store, stop, written) = (responder.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let i = written.fetch_add(1, Ordering::Relaxed);
                let e = Entry::put(
                    format!("live-{i}"),
                    "during",
                    Version::new(10 + i, NodeId(3)),
                );
                store.apply(&ctx(), vec![e]).expect("write");
            }
        })
    });
    let initiator = MemoryStore::new();
    let id = Identity::new(NodeId(1));
    let started = Instant::now();
    let (mut ta, mut tb) = FramedTransport::memory_pair(1 << 20);
    let config = SnapshotConfig {
        compression: Compression::Lz4,
        ..SnapshotConfig::default()
    };
    let context = ctx();
    let run = Snapshot::run_initiator(&mut ta, &initiator, &context, &id, config);
    let (snap, _) = tokio::join!(run, respond(&mut tb, &*responder));
    let snapshot_time = started.elapsed();
    let snapshot_ok = snap.as_ref().map(|_| "ok").unwrap_or("FAILED");
    let peak_after_snapshot = peak_rss_mib();
    let during = written.load(Ordering::Relaxed);
    let catch_up = Instant::now();
    let (mut ta, mut tb) = FramedTransport::memory_pair(1 << 20);
    let tree = HashComparison::run_initiator(
        &mut ta,
        &initiator,
        &context,
        &id,
        HashComparisonConfig::default(),
    );
    let (tree, _) = tokio::join!(tree, respond(&mut tb, &*responder));
    let catch_up_time = catch_up.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(w) = writer {
        let _ = w.await;
    }
    // One more tree session after the writes stopped must leave equal roots.
    let (mut ta, mut tb) = FramedTransport::memory_pair(1 << 20);
    let last = HashComparison::run_initiator(
        &mut ta,
        &initiator,
        &context,
        &id,
        HashComparisonConfig::default(),
    );
    let _ = tokio::join!(last, respond(&mut tb, &*responder));
    let equal = initiator.summary(&ctx()).unwrap().root == responder.summary(&ctx()).unwrap().root;
    println!(
        "n={n} writes/s={rate}: snapshot {snapshot_ok} in {snapshot_time:.2?} ({during} writes during it{}), \
         catch-up {} in {catch_up_time:.2?}, converged after writes stopped: {equal}; \
         peak RSS {baseline} MiB with the responder built, {peak_after_snapshot} MiB after the snapshot \
         (initiator share {} MiB)",
        snap.as_ref()
            .err()
            .map(|e| format!(", error {e}"))
            .unwrap_or_default(),
        tree.as_ref().map(|_| "ok").unwrap_or("FAILED"),
        peak_after_snapshot.saturating_sub(baseline),
    );
    assert!(snap.is_ok() && equal);
}
