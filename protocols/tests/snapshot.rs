//! Snapshot: a fresh node gets exactly the responder's set, a node with state
//! converges (merge mode), interrupted downloads resume, and every hostile page is
//! refused with a typed error before the store changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::{assert_converged, ctx, diverged, sorted_entries, store_with};
use proptest::prelude::*;
use prost::Message;
use synctree_primitives::SyncProtocolExecutor;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    MAX_ENTRIES_PER_BATCH, MAX_KEY_BYTES, MAX_SNAPSHOT_PAGE_BYTES, MAX_SNAPSHOT_PAGES_IN_FLIGHT,
    MAX_VALUE_BYTES,
};
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    Compression, EntryPush, Finish, InitPayload, SnapshotAck, SnapshotBegin, SnapshotInit,
    SnapshotPage, WireEntry,
};
use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, Identity, NodeId, NodePos, ProtocolError, ProtocolKind,
    Role, SessionInfo, Store, StoreError, StoredEntry, StreamMessage, SyncError, SyncStats,
    SyncTransport, TransportError, TransportStats, TreeSummary, Version, merkle,
};
use synctree_protocols::pair::{PairError, run_pair};
use synctree_protocols::{
    Machine, Snapshot, SnapshotConfig, SnapshotInitiator, SnapshotProgress, SnapshotResponder,
    SnapshotResponderInit, drive,
};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `n` live entries and a few tombstones, with `value_len`-byte values.
fn sample(n: usize, value_len: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let version = Version::new(10 + i as u64 % 7, NodeId(1 + i as u64 % 3));
            let key = format!("key-{i:06}");
            if i % 11 == 10 {
                Entry::delete(key, version)
            } else {
                let value = format!("{i:x}-").repeat(value_len / 2 + 1);
                Entry::put(key, value[..value_len].to_owned(), version)
            }
        })
        .collect()
}

fn root(store: &impl Store) -> Hash {
    store.summary(&ctx()).expect("summary").root
}

fn config(window: usize, compression: Compression) -> SnapshotConfig {
    SnapshotConfig {
        window,
        compression,
        ..SnapshotConfig::default()
    }
}

fn responder_init(config: &SnapshotConfig) -> SnapshotResponderInit {
    SnapshotResponderInit {
        initiator_root: Hash::ZERO,
        window: config.window,
        compression: config.compression,
        resume_root: None,
        resume_after: None,
    }
}

/// Runs a fresh snapshot session with the no-I/O pair stepper.
fn sync_pair(
    sa: &MemoryStore,
    sb: &MemoryStore,
    config: SnapshotConfig,
    page_bytes: usize,
) -> Result<(SyncStats, SyncStats), PairError> {
    let init = responder_init(&config);
    let mut a = SnapshotInitiator::new(ctx(), config, root(sa));
    let mut b = SnapshotResponder::new(ctx(), init, root(sb)).with_page_bytes(page_bytes);
    run_pair(&mut a, sa, &mut b, sb, 1_000_000)?;
    Ok((a.into_stats(), b.into_stats()))
}

fn protocol_error(result: Result<(), SyncErrorKind>) -> ProtocolError {
    match result {
        Err(SyncErrorKind::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

fn assert_limit(result: Result<(), SyncErrorKind>, what: &str) {
    match protocol_error(result) {
        ProtocolError::LimitExceeded { what: w, .. } => assert_eq!(w, what),
        other => panic!("expected limit `{what}`, got {other:?}"),
    }
}

fn assert_malformed(result: Result<(), SyncErrorKind>) {
    let err = protocol_error(result);
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
}

fn session_error(result: Result<SyncStats, SyncError>) -> ProtocolError {
    match result {
        Err(e) => e
            .protocol_error()
            .cloned()
            .unwrap_or_else(|| panic!("{e:?}")),
        Ok(stats) => panic!("expected a failure, got {stats:?}"),
    }
}

// ---------------------------------------------------------------------------
// Framed transport: a responder task, and a transport that counts pages and cuts.
// ---------------------------------------------------------------------------

/// Wraps a transport: counts the snapshot pages received, and fails every receive
/// after `cut_after` frames as if the connection dropped.
struct Cut<T> {
    inner: T,
    cut_after: Option<usize>,
    frames: usize,
    pages: usize,
}

impl<T> Cut<T> {
    fn new(inner: T, cut_after: Option<usize>) -> Self {
        Cut {
            inner,
            cut_after,
            frames: 0,
            pages: 0,
        }
    }
}

#[async_trait]
impl<T: SyncTransport> SyncTransport for Cut<T> {
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.inner.send(message).await
    }

    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
        if self.cut_after.is_some_and(|k| self.frames >= k) {
            let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
            return Err(TransportError::Io(cut));
        }
        let message = self.inner.recv().await?;
        self.frames += 1;
        if message
            .as_ref()
            .is_some_and(|m| m.kind() == "snapshot page")
        {
            self.pages += 1;
        }
        Ok(message)
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.inner.close().await
    }

    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }

    fn peer(&self) -> &str {
        self.inner.peer()
    }
}

/// Reads the init message as the manager would, then serves it with pages of at
/// most `page_bytes`.
async fn serve<T, S>(
    transport: &mut T,
    store: &S,
    page_bytes: usize,
) -> Result<SyncStats, SyncError>
where
    T: SyncTransport,
    S: Store,
{
    let first = transport.recv().await.expect("recv").expect("init");
    let Some(Body::Init(InitPayload {
        kind: Some(Kind::Snapshot(init)),
        ..
    })) = first.body
    else {
        panic!("not a snapshot init: {first:?}");
    };
    let init = SnapshotResponderInit::try_from(&init).expect("valid init");
    let info = SessionInfo {
        peer: "initiator".into(),
        context: ctx(),
        protocol: ProtocolKind::Snapshot,
        role: Role::Responder,
    };
    let root = store.summary(&ctx()).expect("summary").root;
    let mut machine = SnapshotResponder::new(ctx(), init, root).with_page_bytes(page_bytes);
    drive(transport, store, &mut machine, &info).await?;
    Ok(machine.into_stats())
}

/// What one framed session returned, with the pages the initiator received.
struct Framed {
    initiator: Result<SyncStats, SyncError>,
    responder: Result<SyncStats, SyncError>,
    pages: usize,
}

async fn sync_framed<S: Store>(
    sa: &MemoryStore,
    sb: &S,
    config: SnapshotConfig,
    page_bytes: usize,
    cut_after: Option<usize>,
) -> Framed {
    let (ta, mut tb) = FramedTransport::memory_pair(64 * 1024);
    let mut ta = Cut::new(ta, cut_after);
    let id = Identity::new(NodeId(1));
    let context = ctx();
    let initiator = Snapshot::run_initiator(&mut ta, sa, &context, &id, config);
    let (initiator, responder) = tokio::join!(initiator, serve(&mut tb, sb, page_bytes));
    Framed {
        initiator,
        responder,
        pages: ta.pages,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

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
        root(&sa),
        Hash::ZERO,
        "nothing is visible before verification"
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
async fn a_resume_against_a_moved_responder_fails_with_state_moved_and_clears_the_handle() {
    let b = sample(400, 50);
    let sb = store_with(&b);
    let pinned = root(&sb);
    let (a, _) = diverged(20, 0);
    let sa = store_with(&a);
    let progress = SnapshotProgress::new();
    let resume = SnapshotConfig {
        resume: Some(progress.clone()),
        ..SnapshotConfig::default()
    };
    let first = sync_framed(&sa, &sb, resume.clone(), 1024, Some(5)).await;
    assert!(first.initiator.is_err() && progress.pages_staged() == 4);
    sb.apply(
        &ctx(),
        vec![Entry::put("late", "write", Version::new(99, NodeId(9)))],
    )
    .expect("apply");
    let before = sorted_entries(&sa);

    let second = sync_framed(&sa, &sb, resume, 1024, None).await;
    let want = ProtocolError::StateMoved {
        pinned: pinned.to_hex(),
    };
    assert_eq!(session_error(second.initiator), want);
    assert_eq!(session_error(second.responder), want);
    assert!(progress.is_empty());
    assert_eq!(sorted_entries(&sa), before, "initiator store unchanged");
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
    stale.poll_transmit(&sa).expect("init");
    stale.handle(&sa, begin(Hash([5; 32]), 3)).expect("begin");
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
// Verification and moving state
// ---------------------------------------------------------------------------

fn begin(root: Hash, entry_count: u64) -> StreamMessage {
    StreamMessage::new(Body::SnapshotBegin(SnapshotBegin {
        root: root.0.to_vec().into(),
        entry_count,
    }))
}

fn stored_sorted(entries: &[Entry]) -> Vec<StoredEntry> {
    let mut v: Vec<StoredEntry> = entries.iter().cloned().map(StoredEntry::new).collect();
    v.sort_by_key(|s| s.key_hash);
    v
}

/// A well-formed uncompressed page of `entries` (already in key-hash order).
fn page(seq: u64, entries: &[StoredEntry], last: bool) -> SnapshotPage {
    SnapshotPage {
        seq,
        cursor: entries
            .last()
            .map(|s| s.key_hash.0.to_vec().into())
            .unwrap_or_default(),
        entries: entries.iter().map(|s| WireEntry::from(&s.entry)).collect(),
        last,
        ..SnapshotPage::default()
    }
}

/// The same page, compressed as an lz4 block of an `EntryPush`.
fn lz4_page(seq: u64, entries: &[StoredEntry], last: bool) -> SnapshotPage {
    let plain = page(seq, entries, last);
    let raw = EntryPush {
        entries: plain.entries,
    }
    .encode_to_vec();
    SnapshotPage {
        entries: vec![],
        raw_len: raw.len() as u32,
        compressed: lz4_flex::block::compress(&raw).into(),
        ..plain
    }
}

fn msg(page: SnapshotPage) -> StreamMessage {
    StreamMessage::new(Body::SnapshotPage(page))
}

/// An initiator that has sent its init and is waiting for pages.
fn opened(store: &MemoryStore, config: SnapshotConfig) -> SnapshotInitiator {
    let mut a = SnapshotInitiator::new(ctx(), config, root(store));
    let init = a.poll_transmit(store).expect("init").expect("init message");
    assert_eq!(init.kind(), "init");
    a
}

/// The resume fields of the init message `a` opens with.
fn resume_fields(a: &mut SnapshotInitiator, store: &MemoryStore) -> (Bytes, Bytes) {
    let init = a.poll_transmit(store).expect("init").expect("init message");
    let Some(Body::Init(InitPayload {
        kind: Some(Kind::Snapshot(init)),
        ..
    })) = init.body
    else {
        panic!("not a snapshot init");
    };
    (init.resume_root, init.resume_after)
}

/// Feeds a message and then sends whatever the initiator has (its acks).
fn feed(
    a: &mut SnapshotInitiator,
    store: &MemoryStore,
    m: StreamMessage,
) -> Result<(), SyncErrorKind> {
    a.handle(store, m)?;
    while a.poll_transmit(store)?.is_some() {}
    Ok(())
}

#[test]
fn a_forged_entry_fails_verification_and_leaves_the_store_unchanged() {
    let remote = stored_sorted(&sample(30, 20));
    let pinned = merkle::root_of(remote.iter().map(|s| &s.entry));
    let (local, _) = diverged(10, 0);
    for compression in [Compression::None, Compression::Lz4] {
        let sa = store_with(&local);
        let before = (root(&sa), sorted_entries(&sa));
        let mut forged = remote.clone();
        forged[17].entry.value = Bytes::from_static(b"forged");
        let mut a = opened(&sa, config(4, compression));
        feed(&mut a, &sa, begin(pinned, 30)).expect("begin");
        let encode = if compression == Compression::Lz4 {
            lz4_page
        } else {
            page
        };
        feed(&mut a, &sa, msg(encode(0, &forged[..20], false))).expect("page 0 is staged");
        let err = protocol_error(feed(&mut a, &sa, msg(encode(1, &forged[20..], true))));
        let ProtocolError::VerificationFailed { claimed, computed } = err else {
            panic!("expected a verification failure, got {err:?}");
        };
        assert_eq!(claimed, pinned.to_hex());
        assert_ne!(computed, claimed);
        assert_eq!((root(&sa), sorted_entries(&sa)), before);
        assert!(a.progress().is_empty(), "bad data is not kept for a resume");
    }
}

#[test]
fn a_wrong_pinned_root_is_rejected_and_the_store_is_unchanged() {
    let remote = stored_sorted(&sample(30, 20));
    let sa = MemoryStore::new();
    let mut a = opened(&sa, SnapshotConfig::default());
    feed(&mut a, &sa, begin(Hash([7; 32]), 30)).expect("begin");
    let err = protocol_error(feed(&mut a, &sa, msg(page(0, &remote, true))));
    assert!(
        matches!(err, ProtocolError::VerificationFailed { .. }),
        "{err:?}"
    );
    assert_eq!(root(&sa), Hash::ZERO);

    // A claimed count that the data does not have is refused too.
    let pinned = merkle::root_of(remote.iter().map(|s| &s.entry));
    let mut a = opened(&sa, SnapshotConfig::default());
    feed(&mut a, &sa, begin(pinned, 31)).expect("begin");
    assert_malformed(feed(&mut a, &sa, msg(page(0, &remote, true))));
    assert_eq!(root(&sa), Hash::ZERO);
}

#[test]
fn a_resumed_session_checks_the_pinned_root_and_continues_above_the_cursor() {
    let remote = stored_sorted(&sample(30, 20));
    let pinned = merkle::root_of(remote.iter().map(|s| &s.entry));
    let sa = MemoryStore::new();
    let progress = SnapshotProgress::new();
    let resume = SnapshotConfig {
        resume: Some(progress.clone()),
        ..SnapshotConfig::default()
    };
    let mut first = opened(&sa, resume.clone());
    feed(&mut first, &sa, begin(pinned, 30)).expect("begin");
    feed(&mut first, &sa, msg(page(0, &remote[..12], false))).expect("page");
    assert_eq!(
        (progress.pages_staged(), progress.entries_staged()),
        (1, 12)
    );

    // The resume names the pinned root and the last staged key hash.
    let mut second = SnapshotInitiator::new(ctx(), resume.clone(), Hash::ZERO);
    let (resume_root, resume_after) = resume_fields(&mut second, &sa);
    assert_eq!(resume_root.as_ref(), pinned.0.as_slice());
    assert_eq!(resume_after.as_ref(), remote[11].key_hash.0.as_slice());
    // Entries at or below the cursor are refused.
    assert_malformed(
        feed(&mut second, &sa, begin(pinned, 30))
            .and_then(|()| feed(&mut second, &sa, msg(page(0, &remote[11..], true)))),
    );
    let mut third = opened(&sa, resume.clone());
    feed(&mut third, &sa, begin(pinned, 30)).expect("begin");
    feed(&mut third, &sa, msg(page(0, &remote[12..], true))).expect("last page");
    let want: Vec<Entry> = remote.iter().map(|s| s.entry.clone()).collect();
    assert_eq!(root(&sa), pinned);
    assert_eq!(sa.entries(&ctx()), want);
    assert!(progress.is_empty());

    // A begin for another root than the one resumed is a moved state.
    let sa = MemoryStore::new();
    let mut first = opened(&sa, resume.clone());
    feed(&mut first, &sa, begin(pinned, 30)).expect("begin");
    feed(&mut first, &sa, msg(page(0, &remote[..12], false))).expect("page");
    let mut moved = opened(&sa, resume);
    let err = protocol_error(feed(&mut moved, &sa, begin(Hash([1; 32]), 30)));
    assert_eq!(
        err,
        ProtocolError::StateMoved {
            pinned: pinned.to_hex()
        }
    );
    assert!(progress.is_empty());
}

/// A store that takes one foreign write after `writes_after` range reads.
struct MovingStore {
    inner: MemoryStore,
    ranges: AtomicUsize,
    writes_after: usize,
}

impl Store for MovingStore {
    fn summary(&self, context: &ContextId) -> Result<TreeSummary, StoreError> {
        self.inner.summary(context)
    }
    fn node(&self, context: &ContextId, pos: NodePos) -> Result<Hash, StoreError> {
        self.inner.node(context, pos)
    }
    fn range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        if self.ranges.fetch_add(1, Ordering::SeqCst) == self.writes_after {
            let late = Entry::put("late", "write", Version::new(99, NodeId(9)));
            self.inner.apply(context, vec![late])?;
        }
        self.inner.range(context, low, high, limit)
    }
    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        self.inner.get(context, key_hash)
    }
    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        self.inner.apply(context, entries)
    }
    fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
        self.inner.contexts()
    }
}

#[tokio::test]
async fn responder_state_moving_mid_stream_is_a_typed_state_moved_at_the_initiator() {
    let b = sample(1_000, 50);
    let sb = MovingStore {
        inner: store_with(&b),
        ranges: AtomicUsize::new(0),
        writes_after: 6,
    };
    let pinned = root(&sb.inner);
    let (a, _) = diverged(40, 0);
    let sa = store_with(&a);
    let before = (root(&sa), sorted_entries(&sa));
    let progress = SnapshotProgress::new();
    let resume = SnapshotConfig {
        resume: Some(progress.clone()),
        ..SnapshotConfig::default()
    };
    let run = sync_framed(&sa, &sb, resume, 1024, None).await;
    let want = ProtocolError::StateMoved {
        pinned: pinned.to_hex(),
    };
    assert_eq!(session_error(run.responder), want);
    assert_eq!(session_error(run.initiator), want);
    assert!(run.pages > 0, "the state moved mid-stream");
    assert_eq!((root(&sa), sorted_entries(&sa)), before);
    assert!(progress.is_empty());
}

// ---------------------------------------------------------------------------
// Limits and order, enforced on receive
// ---------------------------------------------------------------------------

/// An initiator past a begin for `entries` (which need not be the real set).
fn receiving(
    store: &MemoryStore,
    config: SnapshotConfig,
    entries: &[StoredEntry],
) -> SnapshotInitiator {
    let mut a = opened(store, config);
    let pinned = merkle::root_of(entries.iter().map(|s| &s.entry));
    feed(&mut a, store, begin(pinned, entries.len() as u64)).expect("begin");
    a
}

fn big(key: &str, len: usize) -> Entry {
    Entry::put(key.to_owned(), vec![b'x'; len], Version::new(1, NodeId(1)))
}

#[test]
fn page_bytes_are_limited_but_one_large_entry_travels_alone() {
    let sa = MemoryStore::new();
    let two = stored_sorted(&[big("a", 600 * 1024), big("b", 600 * 1024)]);
    for encode in [page, lz4_page] {
        let lz4 = encode(0, &two, true).raw_len != 0;
        let compression = if lz4 {
            Compression::Lz4
        } else {
            Compression::None
        };
        let mut a = receiving(&sa, config(4, compression), &two);
        assert_limit(
            feed(&mut a, &sa, msg(encode(0, &two, true))),
            "snapshot page bytes",
        );

        let one = stored_sorted(&[big("huge", MAX_VALUE_BYTES)]);
        let mut a = receiving(&sa, config(4, compression), &one);
        feed(&mut a, &sa, msg(encode(0, &one, true))).expect("a single large entry fits");
    }
    assert_eq!(sa.entries(&ctx()).len(), 1);
}

#[test]
fn raw_len_is_checked_before_decompressing() {
    let sa = MemoryStore::new();
    let entries = stored_sorted(&sample(5, 10));
    let mut a = receiving(&sa, config(4, Compression::Lz4), &entries);
    // Garbage that would not decompress: the limit must fire first.
    let hostile = SnapshotPage {
        raw_len: (MAX_KEY_BYTES + MAX_VALUE_BYTES + 1024) as u32,
        compressed: Bytes::from_static(&[0xff; 64]),
        ..lz4_page(0, &entries, true)
    };
    assert_limit(feed(&mut a, &sa, msg(hostile)), "snapshot page raw bytes");

    let mut a = receiving(&sa, config(4, Compression::Lz4), &entries);
    let lying = SnapshotPage {
        raw_len: lz4_page(0, &entries, true).raw_len + 1,
        ..lz4_page(0, &entries, true)
    };
    assert_malformed(feed(&mut a, &sa, msg(lying)));
    let mut a = receiving(&sa, config(4, Compression::Lz4), &entries);
    let garbage = SnapshotPage {
        compressed: Bytes::from_static(&[0xff; 64]),
        ..lz4_page(0, &entries, true)
    };
    assert_malformed(feed(&mut a, &sa, msg(garbage)));
    assert_eq!(root(&sa), Hash::ZERO);
}

#[test]
fn pages_beyond_the_granted_window_are_refused() {
    let sa = MemoryStore::new();
    let entries = stored_sorted(&sample(8, 10));
    let mut a = receiving(&sa, config(2, Compression::None), &entries);
    // No ack is sent between these pages: the window stays at seq 0..2.
    a.handle(&sa, msg(page(0, &entries[0..1], false)))
        .expect("page 0");
    a.handle(&sa, msg(page(1, &entries[1..2], false)))
        .expect("page 1");
    assert_limit(
        a.handle(&sa, msg(page(2, &entries[2..3], false))),
        "snapshot pages in flight",
    );

    // Once the ack is out, the window moves.
    let mut a = receiving(&sa, config(2, Compression::None), &entries);
    a.handle(&sa, msg(page(0, &entries[0..1], false)))
        .expect("page 0");
    a.handle(&sa, msg(page(1, &entries[1..2], false)))
        .expect("page 1");
    let ack = a.poll_transmit(&sa).expect("poll").expect("an ack is due");
    assert_eq!(ack.body, Some(Body::SnapshotAck(SnapshotAck { seq: 1 })));
    a.handle(&sa, msg(page(2, &entries[2..3], false)))
        .expect("page 2 after the ack");
}

#[test]
fn acks_are_batched_by_half_the_window() {
    let sa = MemoryStore::new();
    let entries = stored_sorted(&sample(9, 10));
    let mut a = receiving(&sa, config(8, Compression::None), &entries);
    let mut acks = Vec::new();
    for (seq, e) in entries.chunks(1).enumerate() {
        let last = seq + 1 == entries.len();
        a.handle(&sa, msg(page(seq as u64, e, last))).expect("page");
        while let Some(m) = a.poll_transmit(&sa).expect("poll") {
            if let Some(Body::SnapshotAck(ack)) = m.body {
                acks.push(ack.seq);
            }
        }
    }
    assert_eq!(acks, vec![3, 7], "every 4 pages, never the last");
    assert_eq!(root(&sa), merkle::root_of(entries.iter().map(|s| &s.entry)));
}

#[test]
fn sequence_and_order_violations_are_malformed() {
    let sa = MemoryStore::new();
    let e = stored_sorted(&sample(6, 10));
    let cases: Vec<Vec<SnapshotPage>> = vec![
        // Out of sequence, then a repeated seq.
        vec![page(1, &e[..2], false)],
        vec![page(0, &e[..2], false), page(0, &e[2..4], false)],
        // Key hashes not increasing within a page, and not above the cursor.
        vec![page(0, &[e[1].clone(), e[0].clone()], false)],
        vec![page(0, &[e[0].clone(), e[0].clone()], false)],
        vec![page(0, &e[..3], false), page(1, &e[2..], true)],
        // Cursor naming another entry, an empty page before the last.
        vec![SnapshotPage {
            cursor: e[0].key_hash.0.to_vec().into(),
            ..page(0, &e[..2], false)
        }],
        vec![page(0, &[], false)],
        // Plain entries in a compressed session are checked in the next test.
    ];
    for pages in cases {
        let mut a = receiving(&sa, SnapshotConfig::default(), &e);
        let n = pages.len();
        for (i, p) in pages.into_iter().enumerate() {
            let result = feed(&mut a, &sa, msg(p));
            if i + 1 < n {
                result.expect("valid prefix");
            } else {
                assert_malformed(result);
            }
        }
    }
    assert_eq!(root(&sa), Hash::ZERO);
}

#[test]
fn messages_out_of_phase_are_unexpected() {
    let sa = MemoryStore::new();
    let e = stored_sorted(&sample(3, 10));
    let mut a = opened(&sa, SnapshotConfig::default());
    let err = protocol_error(a.handle(&sa, msg(page(0, &e, true))));
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
    let mut a = receiving(&sa, SnapshotConfig::default(), &e);
    let err = protocol_error(a.handle(&sa, begin(Hash::ZERO, 0)));
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
    let mut a = receiving(&sa, config(4, Compression::Lz4), &e);
    assert_malformed(a.handle(&sa, msg(page(0, &e, true))));
}

#[test]
fn staged_bytes_and_pages_per_session_are_capped() {
    let sa = MemoryStore::new();
    let e = stored_sorted(&sample(10, 40));
    let one_page: usize = e[..2].iter().map(|s| s.entry.encoded_len()).sum();
    let capped = SnapshotConfig {
        max_staged_bytes: one_page,
        ..SnapshotConfig::default()
    };
    let mut a = receiving(&sa, capped, &e);
    feed(&mut a, &sa, msg(page(0, &e[..2], false))).expect("within the cap");
    assert_limit(
        feed(&mut a, &sa, msg(page(1, &e[2..4], false))),
        "snapshot staged bytes",
    );
    assert_eq!(
        a.progress().pages_staged(),
        1,
        "the refused page is not staged"
    );

    let capped = SnapshotConfig {
        max_pages: 3,
        ..SnapshotConfig::default()
    };
    let mut a = receiving(&sa, capped, &e);
    for seq in 0..3 {
        let i = seq as usize;
        feed(&mut a, &sa, msg(page(seq, &e[i..=i], false))).expect("within the cap");
    }
    assert_limit(
        feed(&mut a, &sa, msg(page(3, &e[3..], true))),
        "snapshot pages per session",
    );
    assert_eq!(root(&sa), Hash::ZERO);
}

#[test]
fn entries_per_page_are_capped() {
    let sa = MemoryStore::new();
    let tiny: Vec<Entry> = (0..=MAX_ENTRIES_PER_BATCH)
        .map(|i| Entry::put(i.to_string(), "", Version::new(1, NodeId(1))))
        .collect();
    let e = stored_sorted(&tiny);
    let mut a = receiving(&sa, SnapshotConfig::default(), &e);
    assert_limit(
        feed(&mut a, &sa, msg(page(0, &e, true))),
        "entries per batch",
    );
}

#[test]
fn window_out_of_range_in_snapshot_init_is_refused() {
    let init = |window| SnapshotInit {
        root: vec![0; 32].into(),
        window,
        ..SnapshotInit::default()
    };
    let max = MAX_SNAPSHOT_PAGES_IN_FLIGHT as u32;
    assert!(matches!(
        SnapshotResponderInit::try_from(&init(0)),
        Err(ProtocolError::Malformed(_))
    ));
    assert!(matches!(
        SnapshotResponderInit::try_from(&init(max + 1)),
        Err(ProtocolError::LimitExceeded {
            what: "snapshot window",
            ..
        })
    ));
    for window in 1..=max {
        let parsed = SnapshotResponderInit::try_from(&init(window)).expect("in range");
        assert_eq!(parsed.window, window as usize);
    }
}

#[test]
fn the_responder_refuses_acks_for_unsent_pages_and_early_pushes() {
    let b = sample(200, 40);
    let sb = store_with(&b);
    let init = responder_init(&config(2, Compression::None));
    let new = || SnapshotResponder::new(ctx(), init, root(&sb)).with_page_bytes(512);
    let ack = |seq| StreamMessage::new(Body::SnapshotAck(SnapshotAck { seq }));

    let mut r = new();
    let sent: Vec<StreamMessage> =
        std::iter::from_fn(|| r.poll_transmit(&sb).expect("poll")).collect();
    assert_eq!(sent.len(), 3, "begin and a window of 2 pages");
    let err = protocol_error(r.handle(&sb, ack(2)));
    assert!(matches!(err, ProtocolError::Unsolicited(_)), "{err:?}");
    r.handle(&sb, ack(1)).expect("ack within what was sent");
    assert_malformed(r.handle(&sb, ack(0)));

    let mut r = new();
    while r.poll_transmit(&sb).expect("poll").is_some() {}
    let push = EntryPush {
        entries: vec![WireEntry::from(&b[0])],
    };
    let err = protocol_error(r.handle(&sb, StreamMessage::new(Body::EntryPush(push))));
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
    let finish = Finish {
        root: vec![0; 32].into(),
    };
    let err = protocol_error(r.handle(&sb, StreamMessage::new(Body::Finish(finish))));
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
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
