//! Snapshot under writes and across restarts, on both stores: the responder serves
//! one read view while it keeps taking writes, a tree session then brings what was
//! written meanwhile, the initiator holds no staged entries, and a snapshot cut
//! before a restart resumes from the progress saved in the store, re-sending at
//! most one page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::ctx;
use common::snapshot::{Cut, sample};
use synctree_primitives::wire::InitPayload;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{
    Entry, Identity, NodeId, Store, StreamMessage, SyncError, SyncProtocolExecutor, SyncStats,
    SyncTransport, TransportError, Version,
};
use synctree_protocols::{
    HashComparison, HashComparisonConfig, HashComparisonResponderInit, Snapshot, SnapshotConfig,
    SnapshotProgress, SnapshotResponderInit,
};
use synctree_store::{MemoryStore, RedbStore};
use synctree_test_support::{Tap, TransportHook};
use synctree_transport::FramedTransport;

/// Key the tests save the initiator's progress under.
const KEY: &str = "snapshot/test/peer";

/// A [`Tap`] hook on the initiator's end: one foreign write on the responder's
/// store for every page that arrives, and a cut after `cut_after` frames.
struct WritesPerPage<S> {
    responder: Arc<S>,
    written: u64,
    cut: Cut,
}

impl<S: Store> TransportHook for WritesPerPage<S> {
    fn before_recv(&mut self) -> Result<(), TransportError> {
        self.cut.before_recv()
    }

    fn after_recv(&mut self, message: Option<&StreamMessage>) {
        self.cut.after_recv(message);
        if message.is_some_and(|m| m.kind() == "snapshot page") {
            self.written += 1;
            let late = Entry::put(
                format!("late-{}", self.written),
                "written during the stream",
                Version::new(1_000 + self.written, NodeId(9)),
            );
            self.responder
                .apply(&ctx(), vec![late])
                .expect("foreign write");
        }
    }
}

/// Reads the init frame and runs the responder it names on `store`.
async fn respond<T: SyncTransport, S: Store>(
    transport: &mut T,
    store: &S,
) -> Result<SyncStats, SyncError> {
    let id = Identity::new(NodeId(2));
    let first = transport.recv().await.expect("recv").expect("init frame");
    let Some(Body::Init(InitPayload {
        kind: Some(kind), ..
    })) = first.body
    else {
        panic!("first frame is not an init payload");
    };
    match kind {
        Kind::Snapshot(init) => {
            let init = SnapshotResponderInit::try_from(&init).expect("init");
            Snapshot::run_responder(transport, store, &ctx(), &id, init).await
        }
        Kind::HashComparison(init) => {
            let init = HashComparisonResponderInit::try_from(&init).expect("init");
            HashComparison::run_responder(transport, store, &ctx(), &id, init).await
        }
        other => panic!("unexpected init {other:?}"),
    }
}

/// What one snapshot session did: the initiator's result and the pages it got.
struct Run {
    initiator: Result<SyncStats, SyncError>,
    pages: usize,
    written: u64,
}

/// One snapshot session from `responder` into `initiator`, writing to the
/// responder on every page, cut after `cut_after` frames.
async fn snapshot<A: Store, B: Store>(
    initiator: &A,
    responder: &Arc<B>,
    config: SnapshotConfig,
    cut_after: Option<usize>,
) -> Run {
    let (ta, mut tb) = FramedTransport::memory_pair(64 * 1024);
    let hook = WritesPerPage {
        responder: responder.clone(),
        written: 0,
        cut: Cut {
            cut_after,
            frames: 0,
            pages: 0,
        },
    };
    let mut ta = Tap::new(ta, hook);
    let id = Identity::new(NodeId(1));
    let context = ctx();
    let run = Snapshot::run_initiator(&mut ta, initiator, &context, &id, config);
    let (result, _) = tokio::join!(run, respond(&mut tb, &**responder));
    Run {
        initiator: result,
        pages: ta.hook.cut.pages,
        written: ta.hook.written,
    }
}

/// The catch-up: one HashComparison session, after which both hold the merge.
async fn catch_up<A: Store, B: Store>(initiator: &A, responder: &B) -> SyncStats {
    let (mut ta, mut tb) = FramedTransport::memory_pair(64 * 1024);
    let id = Identity::new(NodeId(1));
    let (config, context) = (HashComparisonConfig::default(), ctx());
    let run = HashComparison::run_initiator(&mut ta, initiator, &context, &id, config);
    let (a, b) = tokio::join!(run, respond(&mut tb, responder));
    b.expect("tree responder");
    a.expect("tree initiator")
}

fn entries(store: &impl Store) -> Vec<Entry> {
    store
        .range(
            &ctx(),
            &synctree_primitives::Hash::ZERO,
            &synctree_primitives::Hash::MAX,
            usize::MAX,
        )
        .expect("range")
        .into_iter()
        .map(|s| s.entry)
        .collect()
}

fn small_pages() -> SnapshotConfig {
    // The responder below builds full pages: 1,500 entries of ~1.1 KiB make 2 pages;
    // the window of 1 makes the responder wait for each ack, so writes land between
    // pages.
    SnapshotConfig {
        window: 1,
        ..SnapshotConfig::default()
    }
}

async fn completes_while_the_responder_writes<A: Store, B: Store>(sa: &A, sb: Arc<B>) {
    let pinned = sb.summary(&ctx()).expect("summary").root;
    let run = snapshot(sa, &sb, small_pages(), None).await;
    let stats = run
        .initiator
        .expect("the snapshot completes although the responder writes");
    assert!(run.written >= 2, "{} writes during the stream", run.written);
    assert_eq!(
        sa.summary(&ctx()).expect("summary").root,
        pinned,
        "the pinned state, verified"
    );
    assert_ne!(stats.remote_root, pinned, "the responder moved meanwhile");
    catch_up(sa, &*sb).await;
    assert_eq!(entries(sa), entries(&*sb), "the catch-up brings the writes");
    assert_eq!(
        sa.summary(&ctx()).expect("summary").root,
        sb.summary(&ctx()).expect("summary").root
    );
}

fn big_sample(n: usize) -> Vec<Entry> {
    sample(n, 1_100)
}

#[tokio::test]
async fn a_snapshot_completes_while_the_responder_writes_memory() {
    let sb = Arc::new(MemoryStore::new());
    sb.apply(&ctx(), big_sample(2_000)).expect("apply");
    completes_while_the_responder_writes(&MemoryStore::new(), sb).await;
}

#[tokio::test]
async fn a_snapshot_completes_while_the_responder_writes_redb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = Arc::new(RedbStore::open_dir(dir.path().join("b")).expect("open"));
    sb.apply(&ctx(), big_sample(2_000)).expect("apply");
    let sa = RedbStore::open_dir(dir.path().join("a")).expect("open");
    completes_while_the_responder_writes(&sa, sb).await;
}

#[tokio::test]
async fn the_initiator_stages_no_entries_its_progress_stays_a_few_kib() {
    let sb = Arc::new(MemoryStore::new());
    sb.apply(&ctx(), big_sample(3_000)).expect("apply");
    let sa = MemoryStore::new();
    let progress = SnapshotProgress::new();
    let config = SnapshotConfig {
        resume: Some(progress.clone()),
        ..small_pages()
    };
    // Cut after the begin and two pages: what arrived is in the store, and the
    // progress is the cursor, counts and root builder only.
    let run = snapshot(&sa, &sb, config, Some(3)).await;
    assert!(run.initiator.is_err() && run.pages == 2);
    assert_eq!(entries(&sa).len(), progress.entries_staged());
    assert!(progress.entries_staged() > 1_000);
    let saved = progress.encode().len();
    assert!(saved < 4 * 1024, "progress of {saved} bytes");
}

/// Cuts a snapshot into a RedbStore after `cut` frames, "restarts" (drops the
/// handle and the store, reopens the file, loads the saved progress), resumes, and
/// returns the pages of both sessions.
async fn cut_restart_resume(cut: usize) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = Arc::new(MemoryStore::new());
    sb.apply(&ctx(), sample(1_200, 3_500)).expect("apply");
    let frozen = Arc::new(MemoryStore::new());
    frozen.apply(&ctx(), sample(1_200, 3_500)).expect("apply");
    let total = {
        let fresh = MemoryStore::new();
        let run = snapshot(&fresh, &frozen, small_pages(), None).await;
        run.initiator.expect("uninterrupted");
        run.pages
    };
    let persist = || SnapshotConfig {
        persist_key: Some(KEY.to_owned()),
        ..small_pages()
    };
    let first = {
        let sa = RedbStore::open_dir(dir.path()).expect("open");
        let run = snapshot(&sa, &sb, persist(), Some(cut)).await;
        assert!(run.initiator.is_err());
        run.pages
    };
    let sa = RedbStore::open_dir(dir.path()).expect("reopen");
    let saved = sa.load_sync_state(KEY).expect("load");
    let progress = match saved {
        Some(bytes) => SnapshotProgress::decode(&bytes).expect("decode"),
        None => SnapshotProgress::new(),
    };
    let config = SnapshotConfig {
        resume: Some(progress.clone()),
        ..persist()
    };
    let run = snapshot(&sa, &sb, config, None).await;
    run.initiator.expect("resumed after the restart");
    assert!(progress.is_empty());
    assert_eq!(
        sa.load_sync_state(KEY).expect("load"),
        None,
        "removed once done"
    );
    catch_up(&sa, &*sb).await;
    assert_eq!(entries(&sa), entries(&*sb));
    (first, run.pages, total)
}

#[tokio::test]
async fn a_snapshot_cut_before_a_restart_resumes_re_sending_at_most_one_page() {
    for cut in [2, 3] {
        let (first, second, total) = cut_restart_resume(cut).await;
        assert!(
            first > 0 && first < total,
            "cut at {cut}: {first} of {total}"
        );
        assert!(
            first + second <= total + 1,
            "cut at {cut}: {first} + {second} pages, {total} in one go"
        );
    }
}

#[test]
fn a_responder_serves_one_view_at_most_max_snapshot_view_age_and_views_are_bounded() {
    use synctree_primitives::error::SyncErrorKind;
    use synctree_primitives::limits::{MAX_READ_VIEWS, MAX_SNAPSHOT_VIEW_AGE};
    use synctree_primitives::wire::{AbortCode, SnapshotAck};
    use synctree_protocols::{Machine, SnapshotResponder};

    let sb = MemoryStore::new();
    sb.apply(&ctx(), big_sample(2_000)).expect("apply");
    let init = common::snapshot::responder_init(&small_pages());
    let root = sb.summary(&ctx()).expect("summary").root;
    let t0 = common::now();
    let mut r = SnapshotResponder::new(ctx(), init, root);
    let begin = r.poll_transmit(&sb, t0).expect("begin").expect("begin");
    assert_eq!(begin.kind(), "snapshot begin");
    let page = r.poll_transmit(&sb, t0).expect("page").expect("page");
    assert_eq!(page.kind(), "snapshot page");
    let ack = StreamMessage::new(Body::SnapshotAck(SnapshotAck { seq: 0 }));
    r.handle(&sb, t0, ack).expect("ack");
    let late = t0 + MAX_SNAPSHOT_VIEW_AGE + std::time::Duration::from_secs(1);
    let expired = r.poll_transmit(&sb, late);
    assert!(
        matches!(expired, Err(SyncErrorKind::Deadline(_))),
        "{expired:?}"
    );
    assert_eq!(expired.unwrap_err().abort_code(), Some(AbortCode::Timeout));
    drop(r);

    // Every view taken: a new snapshot session is refused BUSY.
    let held: Vec<_> = (0..MAX_READ_VIEWS)
        .map(|_| sb.read_view(&ctx()).expect("view"))
        .collect();
    let mut r = SnapshotResponder::new(ctx(), init, root);
    let busy = r.poll_transmit(&sb, t0);
    assert_eq!(busy.unwrap_err().abort_code(), Some(AbortCode::Busy));
    drop(held);
    let mut r = SnapshotResponder::new(ctx(), init, root);
    assert!(r.poll_transmit(&sb, t0).expect("begin").is_some());
}

/// A [`synctree_test_support::StoreHook`] failing the `n`th apply (counting from 0).
struct FailApply {
    n: usize,
    applies: std::sync::atomic::AtomicUsize,
}

impl synctree_test_support::StoreHook<MemoryStore> for FailApply {
    fn before(
        &self,
        _inner: &MemoryStore,
        op: synctree_test_support::StoreOp<'_>,
    ) -> Result<(), synctree_primitives::StoreError> {
        if matches!(op, synctree_test_support::StoreOp::Apply(_))
            && self
                .applies
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                == self.n
        {
            return Err(synctree_primitives::StoreError::Fault { op: "apply" });
        }
        Ok(())
    }
}

#[test]
fn a_page_the_store_failed_to_apply_is_not_counted_as_received() {
    use synctree_primitives::merkle;
    use synctree_protocols::{Machine, SnapshotInitiator};

    let remote = common::snapshot::stored_sorted(&sample(30, 20));
    let pinned = merkle::root_of(remote.iter().map(|s| &s.entry));
    let store = synctree_test_support::StoreTap::new(
        MemoryStore::new(),
        FailApply {
            n: 1,
            applies: Default::default(),
        },
    );
    let progress = SnapshotProgress::new();
    let config = SnapshotConfig {
        resume: Some(progress.clone()),
        ..SnapshotConfig::default()
    };
    let now = common::now();
    let mut a = SnapshotInitiator::new(ctx(), config.clone(), synctree_primitives::Hash::ZERO);
    a.poll_transmit(&store, now).expect("init");
    let page = |seq, entries: &[synctree_primitives::StoredEntry], last| {
        StreamMessage::new(Body::SnapshotPage(common::snapshot::page(
            seq, entries, last,
        )))
    };
    a.handle(&store, now, common::snapshot::begin(pinned, 30))
        .expect("begin");
    a.handle(&store, now, page(0, &remote[..10], false))
        .expect("page 0");
    assert!(
        a.handle(&store, now, page(1, &remote[10..20], false))
            .is_err(),
        "apply fails"
    );
    assert_eq!(
        progress.entries_staged(),
        10,
        "the failed page is not recorded"
    );
    // The resume asks again from above the first page, and the snapshot verifies.
    let mut b = SnapshotInitiator::new(ctx(), config, synctree_primitives::Hash::ZERO);
    b.poll_transmit(&store, now).expect("init");
    b.handle(&store, now, common::snapshot::begin(pinned, 30))
        .expect("begin");
    b.handle(&store, now, page(0, &remote[10..], true))
        .expect("the rest verifies");
    assert_eq!(store.inner().summary(&ctx()).expect("summary").root, pinned);
}
