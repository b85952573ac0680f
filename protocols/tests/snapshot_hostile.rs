//! Snapshot under hostile input: forged entries, wrong pinned roots, moving state,
//! and every limit enforced on receive, each refused with a typed error before the
//! store changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{ctx, diverged, sorted_entries, store_with};
use synctree_primitives::limits::{
    MAX_ENTRIES_PER_BATCH, MAX_KEY_BYTES, MAX_SNAPSHOT_PAGES_IN_FLIGHT, MAX_VALUE_BYTES,
};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    Compression, EntryPush, Finish, SnapshotAck, SnapshotInit, SnapshotPage, WireEntry,
};
use synctree_primitives::{
    Entry, Hash, NodeId, ProtocolError, Store, StoreError, StoredEntry, StreamMessage, Version,
    merkle,
};
use synctree_protocols::{
    Machine, SnapshotConfig, SnapshotInitiator, SnapshotProgress, SnapshotResponder,
    SnapshotResponderInit,
};
use synctree_store::MemoryStore;
use synctree_test_support::{StoreHook, StoreOp, StoreTap};

use common::snapshot::*;

#[test]
fn a_forged_entry_fails_verification_typed_and_the_store_holds_only_valid_merged_writes() {
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
        // Pages were applied as they came: each entry is a valid write of the peer,
        // merged, so the store is consistent (its root is its entries' root).
        let forged: Vec<Entry> = forged.into_iter().map(|s| s.entry).collect();
        let want = common::merged(&before.1, &forged);
        assert_eq!(sorted_entries(&sa), want);
        assert_eq!(root(&sa), merkle::root_of(&want));
        assert!(a.progress().is_empty(), "bad data is not kept for a resume");
    }
}

#[test]
fn a_wrong_pinned_root_is_rejected_and_the_store_keeps_the_valid_entries() {
    let remote = stored_sorted(&sample(30, 20));
    let sa = MemoryStore::new();
    let mut a = opened(&sa, SnapshotConfig::default());
    feed(&mut a, &sa, begin(Hash([7; 32]), 30)).expect("begin");
    let err = protocol_error(feed(&mut a, &sa, msg(page(0, &remote, true))));
    assert!(
        matches!(err, ProtocolError::VerificationFailed { .. }),
        "{err:?}"
    );
    let want: Vec<Entry> = remote.iter().map(|s| s.entry.clone()).collect();
    assert_eq!(sa.entries(&ctx()), want);

    // A claimed count that the data does not have is refused too.
    let pinned = merkle::root_of(remote.iter().map(|s| &s.entry));
    let mut a = opened(&sa, SnapshotConfig::default());
    feed(&mut a, &sa, begin(pinned, 31)).expect("begin");
    assert_malformed(feed(&mut a, &sa, msg(page(0, &remote, true))));
    assert_eq!(sa.entries(&ctx()), want);
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

    // A begin for another root than the one resumed rebases: the cursor and the
    // applied entries stay, the rest arrives under the new root, unverifiable.
    let sa = MemoryStore::new();
    let mut first = opened(&sa, resume.clone());
    feed(&mut first, &sa, begin(pinned, 30)).expect("begin");
    feed(&mut first, &sa, msg(page(0, &remote[..12], false))).expect("page");
    let mut moved = opened(&sa, resume);
    feed(&mut moved, &sa, begin(Hash([1; 32]), 30)).expect("rebased begin");
    assert!(progress.is_rebased() && progress.pages_staged() == 1);
    feed(&mut moved, &sa, msg(page(0, &remote[12..], true))).expect("last page");
    assert!(progress.is_empty());
    assert_eq!(sa.entries(&ctx()), want);
}

/// A [`StoreTap`] hook that makes one foreign write after `writes_after` range reads.
struct MovesAfter {
    ranges: AtomicUsize,
    writes_after: usize,
}

impl StoreHook<MemoryStore> for MovesAfter {
    /// A store without read views: the responder reads live and checks its root.
    fn views(&self) -> bool {
        false
    }

    fn before(&self, inner: &MemoryStore, op: StoreOp<'_>) -> Result<(), StoreError> {
        if op == StoreOp::Range && self.ranges.fetch_add(1, Ordering::SeqCst) == self.writes_after {
            let late = Entry::put("late", "write", Version::new(99, NodeId(9)));
            inner.apply(&ctx(), vec![late])?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn responder_state_moving_mid_stream_is_a_typed_state_moved_at_the_initiator() {
    let b = sample(1_000, 50);
    let moves = MovesAfter {
        ranges: AtomicUsize::new(0),
        writes_after: 6,
    };
    let sb = StoreTap::new(store_with(&b), moves);
    let pinned = root(sb.inner());
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
    let (_, before) = before;
    let now = sorted_entries(&sa);
    assert!(
        before.iter().all(|e| now.contains(e)),
        "no local entry lost"
    );
    assert!(
        now.iter().all(|e| before.contains(e) || b.contains(e)),
        "only the peer's entries added"
    );
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
    a.handle(
        &sa,
        crate::common::now(),
        msg(page(0, &entries[0..1], false)),
    )
    .expect("page 0");
    a.handle(
        &sa,
        crate::common::now(),
        msg(page(1, &entries[1..2], false)),
    )
    .expect("page 1");
    assert_limit(
        a.handle(
            &sa,
            crate::common::now(),
            msg(page(2, &entries[2..3], false)),
        ),
        "snapshot pages in flight",
    );

    // Once the ack is out, the window moves.
    let mut a = receiving(&sa, config(2, Compression::None), &entries);
    a.handle(
        &sa,
        crate::common::now(),
        msg(page(0, &entries[0..1], false)),
    )
    .expect("page 0");
    a.handle(
        &sa,
        crate::common::now(),
        msg(page(1, &entries[1..2], false)),
    )
    .expect("page 1");
    let ack = a
        .poll_transmit(&sa, crate::common::now())
        .expect("poll")
        .expect("an ack is due");
    assert_eq!(ack.body, Some(Body::SnapshotAck(SnapshotAck { seq: 1 })));
    a.handle(
        &sa,
        crate::common::now(),
        msg(page(2, &entries[2..3], false)),
    )
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
        a.handle(&sa, crate::common::now(), msg(page(seq as u64, e, last)))
            .expect("page");
        while let Some(m) = a.poll_transmit(&sa, crate::common::now()).expect("poll") {
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
    let all: Vec<Entry> = e.iter().map(|s| s.entry.clone()).collect();
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
    // Only pages that passed every check were applied.
    assert!(sa.entries(&ctx()).iter().all(|x| all.contains(x)));
}

#[test]
fn messages_out_of_phase_are_unexpected() {
    let sa = MemoryStore::new();
    let e = stored_sorted(&sample(3, 10));
    let mut a = opened(&sa, SnapshotConfig::default());
    let err = protocol_error(a.handle(&sa, crate::common::now(), msg(page(0, &e, true))));
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
    let mut a = receiving(&sa, SnapshotConfig::default(), &e);
    let err = protocol_error(a.handle(&sa, crate::common::now(), begin(Hash::ZERO, 0)));
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
    let mut a = receiving(&sa, config(4, Compression::Lz4), &e);
    assert_malformed(a.handle(&sa, crate::common::now(), msg(page(0, &e, true))));
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
    assert_eq!(
        sa.entries(&ctx()),
        sorted(&e[..3]),
        "pages within the caps only"
    );
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
        std::iter::from_fn(|| r.poll_transmit(&sb, crate::common::now()).expect("poll")).collect();
    assert_eq!(sent.len(), 3, "begin and a window of 2 pages");
    let err = protocol_error(r.handle(&sb, crate::common::now(), ack(2)));
    assert!(matches!(err, ProtocolError::Unsolicited(_)), "{err:?}");
    r.handle(&sb, crate::common::now(), ack(1))
        .expect("ack within what was sent");
    assert_malformed(r.handle(&sb, crate::common::now(), ack(0)));

    let mut r = new();
    while r
        .poll_transmit(&sb, crate::common::now())
        .expect("poll")
        .is_some()
    {}
    let push = EntryPush {
        entries: vec![WireEntry::from(&b[0])],
    };
    let err = protocol_error(r.handle(
        &sb,
        crate::common::now(),
        StreamMessage::new(Body::EntryPush(push)),
    ));
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
    let finish = Finish {
        root: vec![0; 32].into(),
    };
    let err = protocol_error(r.handle(
        &sb,
        crate::common::now(),
        StreamMessage::new(Body::Finish(finish)),
    ));
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
}

fn sorted(stored: &[StoredEntry]) -> Vec<Entry> {
    stored.iter().map(|s| s.entry.clone()).collect()
}
