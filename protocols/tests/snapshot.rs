//! Snapshot: a fresh node gets exactly the responder's set, a node with state
//! converges (merge mode), and interrupted downloads resume. Hostile input is in
//! `snapshot_hostile.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{assert_converged, ctx, diverged, sorted_entries, store_with};
use proptest::prelude::*;
use synctree_primitives::SyncProtocolExecutor;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{MAX_SNAPSHOT_PAGE_BYTES, MAX_SNAPSHOT_PAGES_IN_FLIGHT};
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{Compression, InitPayload};
use synctree_primitives::{
    ContextId, Entry, Hash, Identity, NodeId, Store, SyncTransport, Version,
};
use synctree_protocols::{
    Machine, Snapshot, SnapshotConfig, SnapshotInitiator, SnapshotProgress, SnapshotResponderInit,
};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

use common::snapshot::*;

// ---------------------------------------------------------------------------
// Fresh node, merge mode
// ---------------------------------------------------------------------------

#[test]
fn a_fresh_node_gets_exactly_the_responders_set() {
    for (n, page_bytes, window) in [
        (0, 4096, 4),
        (1, 4096, 1),
        (2_000, 4096, 3),
        (2_000, MAX_SNAPSHOT_PAGE_BYTES, 8),
    ] {
        let b = sample(n, 40);
        let (sa, sb) = (MemoryStore::new(), store_with(&b));
        let (sa_stats, sb_stats) =
            sync_pair(&sa, &sb, config(window, Compression::None), page_bytes).expect("pair run");
        assert_converged(&sa, &sb, &[], &b);
        assert_eq!(sa_stats.entries_pulled, n as u64);
        assert_eq!((sa_stats.entries_pushed, sb_stats.entries_pulled), (0, 0));
        assert_eq!(sb_stats.entries_pushed, n as u64);
        assert_eq!(sa_stats.payload_bytes, sb_stats.payload_bytes);
        assert_eq!(sa_stats.root_before, Hash::ZERO);
        assert!(sa_stats.converged() && sb_stats.converged());
        assert_eq!(sa_stats.remote_root, root(&sb));
        assert!(sa_stats.rounds >= 2);
    }
}

#[test]
fn a_small_window_costs_round_trips_and_a_large_one_does_not() {
    let b = sample(2_000, 40);
    let sb = store_with(&b);
    let rounds = |window| {
        let sa = MemoryStore::new();
        let (stats, _) = sync_pair(&sa, &sb, config(window, Compression::None), 4096).expect("run");
        assert_converged(&sa, &sb, &[], &b);
        stats.rounds
    };
    let (narrow, wide) = (rounds(1), rounds(MAX_SNAPSHOT_PAGES_IN_FLIGHT));
    assert!(
        narrow > 2 * wide,
        "window 1: {narrow} rounds, window 8: {wide}"
    );
}

#[test]
fn merge_mode_keeps_local_newer_versions_and_both_sides_converge() {
    let (a, b) = diverged(1_500, 300);
    let (sa, sb) = (store_with(&a), store_with(&b));
    let (sa_stats, sb_stats) =
        sync_pair(&sa, &sb, config(4, Compression::Lz4), 2048).expect("pair run");
    assert_converged(&sa, &sb, &a, &b);
    assert!(sa_stats.converged() && sb_stats.converged());
    assert!(sa_stats.entries_pushed > 0);
    assert_eq!(sa_stats.entries_pushed, sb_stats.entries_pulled);
    // `diverged` gives A some keys at version 2..6 where B holds version 100, and B
    // some where A holds nothing: the newer side wins either way.
    let newer_local = Entry::put("mine", "newest", Version::new(1_000, NodeId(9)));
    let older_remote = Entry::put("mine", "old", Version::new(1, NodeId(1)));
    let (sa, sb) = (
        store_with(std::slice::from_ref(&newer_local)),
        store_with(&[older_remote]),
    );
    sync_pair(&sa, &sb, SnapshotConfig::default(), 4096).expect("pair run");
    assert_eq!(sorted_entries(&sa), vec![newer_local.clone()]);
    assert_eq!(sorted_entries(&sb), vec![newer_local]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_two_replicas_converge(
        n_a in 0usize..200,
        n_b in 0usize..200,
        shift in 0u64..3,
        window in 1usize..=MAX_SNAPSHOT_PAGES_IN_FLIGHT,
        lz4 in any::<bool>(),
    ) {
        let a: Vec<Entry> = sample(n_a, 8)
            .into_iter()
            .map(|mut e| { e.version.hlc += shift; e })
            .collect();
        let b = sample(n_b, 8);
        let (sa, sb) = (store_with(&a), store_with(&b));
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        sync_pair(&sa, &sb, config(window, compression), 256).expect("pair run");
        assert_converged(&sa, &sb, &a, &b);
    }
}

#[tokio::test]
async fn fresh_and_merge_mode_over_a_framed_transport_in_both_encodings() {
    let b = sample(3_000, 100);
    let sb = store_with(&b);
    let mut received = Vec::new();
    for compression in [Compression::None, Compression::Lz4] {
        let sa = MemoryStore::new();
        let run = sync_framed(
            &sa,
            &sb,
            config(4, compression),
            MAX_SNAPSHOT_PAGE_BYTES,
            None,
        )
        .await;
        let (sa_stats, sb_stats) = (
            run.initiator.expect("initiator"),
            run.responder.expect("responder"),
        );
        assert_converged(&sa, &sb, &[], &b);
        assert!(sa_stats.converged() && sb_stats.converged());
        assert_eq!(sa_stats.entries_pulled, b.len() as u64);
        received.push(sa_stats.transport.bytes_received);

        let (a, _) = diverged(200, 60);
        let sa = store_with(&a);
        let sb = store_with(&b);
        let run = sync_framed(&sa, &sb, config(2, compression), 8192, None).await;
        run.initiator.expect("initiator");
        run.responder.expect("responder");
        assert_converged(&sa, &sb, &a, &b);
    }
    assert!(
        received[1] < received[0],
        "lz4 {} vs plain {} bytes",
        received[1],
        received[0]
    );
}

#[tokio::test]
async fn run_responder_serves_a_snapshot_opened_by_run_initiator() {
    let b = sample(500, 30);
    let (sa, sb) = (MemoryStore::new(), store_with(&b));
    let (mut ta, mut tb) = FramedTransport::memory_pair(16 * 1024);
    let (id, context) = (Identity::new(NodeId(2)), ctx());
    let responder = async {
        let first = tb.recv().await.expect("recv").expect("init");
        let Some(Body::Init(InitPayload {
            kind: Some(Kind::Snapshot(init)),
            ..
        })) = first.body
        else {
            panic!("not a snapshot init");
        };
        assert_eq!(init.window, 4);
        let init = SnapshotResponderInit::try_from(&init).expect("valid");
        Snapshot::run_responder(&mut tb, &sb, &context, &id, init).await
    };
    let initiator = Snapshot::run_initiator(&mut ta, &sa, &context, &id, SnapshotConfig::default());
    let (ra, rb) = tokio::join!(initiator, responder);
    assert!(ra.expect("initiator").converged() && rb.expect("responder").converged());
    assert_converged(&sa, &sb, &[], &b);
}

// ---------------------------------------------------------------------------
// Resume
// ---------------------------------------------------------------------------

/// Cuts a session after `cut` frames, resumes it with the same handle, and checks
/// the result and the pages spent against an uninterrupted run's `total`.
fn cut_and_resume(
    b: &[Entry],
    sb: &MemoryStore,
    compression: Compression,
    cut: usize,
    total: usize,
) {
    let rt = runtime();
    let sa = MemoryStore::new();
    let progress = SnapshotProgress::new();
    let resume = SnapshotConfig {
        resume: Some(progress.clone()),
        ..config(3, compression)
    };
    let first = rt.block_on(sync_framed(&sa, sb, resume.clone(), 1024, Some(cut)));
    let err = first.initiator.expect_err("cut session fails");
    assert!(matches!(err.kind, SyncErrorKind::Transport(_)), "{err:?}");
    assert!(first.responder.is_err());
    assert_eq!(
        sa.entries(&ctx()).len(),
        progress.entries_staged(),
        "every page that arrived is applied, nothing more"
    );
    assert_eq!(progress.pages_staged() as usize, first.pages);
    assert_eq!(progress.is_empty(), cut == 0);

    let second = rt.block_on(sync_framed(&sa, sb, resume, 1024, None));
    let stats = second.initiator.expect("resumed session");
    second.responder.expect("responder");
    assert_converged(&sa, sb, &[], b);
    assert!(stats.converged() && progress.is_empty());
    assert!(
        first.pages + second.pages <= total + 1,
        "cut at {cut}: {} + {} pages, {total} in one go",
        first.pages,
        second.pages
    );
}

fn uninterrupted_pages(sb: &MemoryStore, compression: Compression) -> usize {
    let sa = MemoryStore::new();
    let run = runtime().block_on(sync_framed(&sa, sb, config(3, compression), 1024, None));
    run.initiator.expect("uninterrupted");
    run.pages
}

#[test]
fn a_cut_session_resumes_after_its_last_staged_page() {
    let b = sample(600, 50);
    let sb = store_with(&b);
    for compression in [Compression::None, Compression::Lz4] {
        let total = uninterrupted_pages(&sb, compression);
        assert!(total > 20, "{total} pages");
        for cut in [0, 1, 2, 3, 7, total / 2, total] {
            cut_and_resume(&b, &sb, compression, cut, total);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn a_cut_at_any_frame_resumes(n in 50usize..400, cut_per_mille in 0usize..1000, lz4 in any::<bool>()) {
        let b = sample(n, 40);
        let sb = store_with(&b);
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let total = uninterrupted_pages(&sb, compression);
        // Begin is frame 1, so cuts up to `total` fall before the last page.
        let cut = cut_per_mille * total / 1000;
        cut_and_resume(&b, &sb, compression, cut, total);
    }
}

#[tokio::test]
async fn a_resume_against_a_moved_responder_rebases_keeps_what_it_applied_and_a_tree_session_converges()
 {
    let b = sample(400, 50);
    let sb = store_with(&b);
    let (a, _) = diverged(20, 0);
    let sa = store_with(&a);
    let progress = SnapshotProgress::new();
    let resume = SnapshotConfig {
        resume: Some(progress.clone()),
        ..SnapshotConfig::default()
    };
    let total = {
        let fresh = MemoryStore::new();
        let run = sync_framed(&fresh, &sb, SnapshotConfig::default(), 1024, None).await;
        run.initiator.expect("uninterrupted");
        run.pages
    };
    let first = sync_framed(&sa, &sb, resume.clone(), 1024, Some(5)).await;
    assert!(first.initiator.is_err() && progress.pages_staged() == 4);
    let applied = sorted_entries(&sa);
    sb.apply(
        &ctx(),
        vec![Entry::put("late", "write", Version::new(99, NodeId(9)))],
    )
    .expect("apply");

    // The responder serves its current state above the cursor; the initiator keeps
    // what it applied and ends unverified (the prefix came under another root).
    let second = sync_framed(&sa, &sb, resume, 1024, None).await;
    second.initiator.expect("rebased session");
    second.responder.expect("responder");
    assert!(progress.is_empty());
    assert!(
        first.pages + second.pages <= total + 1,
        "the rebase re-sends at most one page"
    );
    let now = sorted_entries(&sa);
    assert!(
        applied.iter().all(|e| now.contains(e)),
        "nothing applied is lost"
    );

    // Whatever the cursor skipped (the late write, if below it) a tree session brings.
    let (mut ta, mut tb) = FramedTransport::memory_pair(64 * 1024);
    let (ra, rb) = tokio::join!(
        common::initiate(
            synctree_primitives::ProtocolKind::HashComparison,
            &mut ta,
            &sa
        ),
        common::respond(&mut tb, &sb)
    );
    ra.expect("tree initiator");
    rb.expect("tree responder");
    assert_converged(
        &sa,
        &sb,
        &a,
        &[
            b,
            vec![Entry::put("late", "write", Version::new(99, NodeId(9)))],
        ]
        .concat(),
    );
}

#[test]
fn a_handle_staged_for_another_context_starts_over() {
    let progress = SnapshotProgress::new();
    let b = sample(50, 10);
    let sb = store_with(&b);
    let mut stale = SnapshotInitiator::new(
        ContextId::new("other").expect("context"),
        SnapshotConfig {
            resume: Some(progress.clone()),
            ..SnapshotConfig::default()
        },
        Hash::ZERO,
    );
    let sa = MemoryStore::new();
    stale
        .poll_transmit(&sa, crate::common::now())
        .expect("init");
    stale
        .handle(&sa, crate::common::now(), begin(Hash([5; 32]), 3))
        .expect("begin");
    assert!(!progress.is_empty());
    let resume = SnapshotConfig {
        resume: Some(progress.clone()),
        ..SnapshotConfig::default()
    };
    let init = resume_fields(
        &mut SnapshotInitiator::new(ctx(), resume.clone(), Hash::ZERO),
        &sa,
    );
    assert_eq!(init, (Bytes::new(), Bytes::new()));
    let (_, _) = sync_pair(&sa, &sb, resume, 4096).expect("fresh run");
    assert_converged(&sa, &sb, &[], &b);
}

// ---------------------------------------------------------------------------
// Figures (run with --release --ignored --nocapture)
// ---------------------------------------------------------------------------

/// `n` entries with `len`-byte values: JSON-like records (`text`) whose free-form
/// field is random hex, or random bytes.
fn records(n: usize, len: usize, text: bool) -> Vec<Entry> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let value: Vec<u8> = if text {
                let mut v = format!("{{\"id\":{i},\"score\":{},\"note\":\"", next() % 1000);
                while v.len() < len {
                    v.push_str(&format!("{:016x}", next()));
                }
                v.truncate(len - 2);
                v.push_str("\"}");
                v.into_bytes()
            } else {
                (0..len).map(|_| next() as u8).collect()
            };
            Entry::put(format!("record/{i:08}"), value, Version::new(1, NodeId(1)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement: prints figures"]
async fn measure_a_snapshot_of_100k_entries() {
    for text in [true, false] {
        let b = records(100_000, 100, text);
        let sb = store_with(&b);
        for compression in [Compression::None, Compression::Lz4] {
            let sa = MemoryStore::new();
            let started = Instant::now();
            let run = sync_framed(
                &sa,
                &sb,
                config(4, compression),
                MAX_SNAPSHOT_PAGE_BYTES,
                None,
            )
            .await;
            let elapsed: Duration = started.elapsed();
            let stats = run.initiator.expect("initiator");
            assert_eq!(root(&sa), root(&sb));
            println!(
                "text values: {text}, {compression:?}: {} pages, {} B received, {} B sent, {} B payload, {} rounds, {:?}",
                run.pages,
                stats.transport.bytes_received,
                stats.transport.bytes_sent,
                stats.payload_bytes,
                stats.rounds,
                elapsed
            );
        }
    }
}

/// After its last page the responder waits `SNAPSHOT_APPLY_TIMEOUT`, not the
/// ordinary idle timeout, for an initiator that is verifying and applying.
#[tokio::test(start_paused = true)]
async fn the_responder_allows_the_initiator_time_to_verify_and_apply() {
    use synctree_primitives::TransportError;
    use synctree_primitives::limits::{IDLE_TIMEOUT, SNAPSHOT_APPLY_TIMEOUT};
    let sb = store_with(&sample(40, 20));
    let (mut ta, mut tb) = FramedTransport::memory_pair(1 << 20);
    let init = responder_init(&config(8, Compression::None));
    let id = Identity::new(NodeId(2));
    let context = ctx();
    let responder = Snapshot::run_responder(&mut tb, &sb, &context, &id, init);
    // The initiator reads every page, then goes silent (as while applying).
    let initiator = async {
        loop {
            let msg = ta.recv().await.expect("recv").expect("a frame");
            if let Some(Body::SnapshotPage(page)) = msg.body
                && page.last
            {
                break;
            }
        }
        ta
    };
    let (outcome, _ta) = tokio::join!(responder, initiator);
    let err = outcome.expect_err("a silent initiator times out");
    assert_eq!(err.phase, "applying pushes");
    match err.kind {
        SyncErrorKind::Transport(TransportError::Timeout(waited)) => {
            assert_eq!(waited, SNAPSHOT_APPLY_TIMEOUT);
            assert!(waited > IDLE_TIMEOUT);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}
