//! Helpers shared by the snapshot tests: stores, sessions over the pair stepper
//! and a framed transport that cuts, and hand-built pages.

#![allow(dead_code, unused_imports, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{assert_converged, ctx, diverged, sorted_entries, store_with};
use async_trait::async_trait;
use bytes::Bytes;
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
use synctree_test_support::{Tap, TransportHook};
use synctree_transport::FramedTransport;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `n` live entries and a few tombstones, with `value_len`-byte values.
pub fn sample(n: usize, value_len: usize) -> Vec<Entry> {
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

pub fn root(store: &impl Store) -> Hash {
    store.summary(&ctx()).expect("summary").root
}

pub fn config(window: usize, compression: Compression) -> SnapshotConfig {
    SnapshotConfig {
        window,
        compression,
        ..SnapshotConfig::default()
    }
}

pub fn responder_init(config: &SnapshotConfig) -> SnapshotResponderInit {
    SnapshotResponderInit {
        initiator_root: Hash::ZERO,
        window: config.window,
        compression: config.compression,
        resume_root: None,
        resume_after: None,
    }
}

/// Runs a fresh snapshot session with the no-I/O pair stepper.
pub fn sync_pair(
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

pub fn protocol_error(result: Result<(), SyncErrorKind>) -> ProtocolError {
    match result {
        Err(SyncErrorKind::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

pub fn assert_limit(result: Result<(), SyncErrorKind>, what: &str) {
    match protocol_error(result) {
        ProtocolError::LimitExceeded { what: w, .. } => assert_eq!(w, what),
        other => panic!("expected limit `{what}`, got {other:?}"),
    }
}

pub fn assert_malformed(result: Result<(), SyncErrorKind>) {
    let err = protocol_error(result);
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
}

pub fn session_error(result: Result<SyncStats, SyncError>) -> ProtocolError {
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

/// A [`Tap`] hook: counts the snapshot pages received, and fails every receive
/// after `cut_after` frames as if the connection dropped.
pub struct Cut {
    pub cut_after: Option<usize>,
    pub frames: usize,
    pub pages: usize,
}

impl Cut {
    fn new(cut_after: Option<usize>) -> Self {
        Cut {
            cut_after,
            frames: 0,
            pages: 0,
        }
    }
}

impl TransportHook for Cut {
    fn before_recv(&mut self) -> Result<(), TransportError> {
        if self.cut_after.is_some_and(|k| self.frames >= k) {
            let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
            return Err(TransportError::Io(cut));
        }
        Ok(())
    }

    fn after_recv(&mut self, message: Option<&StreamMessage>) {
        self.frames += 1;
        if message.is_some_and(|m| m.kind() == "snapshot page") {
            self.pages += 1;
        }
    }
}

/// Reads the init message as the manager would, then serves it with pages of at
/// most `page_bytes`.
pub async fn serve<T, S>(
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
pub struct Framed {
    pub initiator: Result<SyncStats, SyncError>,
    pub responder: Result<SyncStats, SyncError>,
    pub pages: usize,
}

pub async fn sync_framed<S: Store>(
    sa: &MemoryStore,
    sb: &S,
    config: SnapshotConfig,
    page_bytes: usize,
    cut_after: Option<usize>,
) -> Framed {
    let (ta, mut tb) = FramedTransport::memory_pair(64 * 1024);
    let mut ta = Tap::new(ta, Cut::new(cut_after));
    let id = Identity::new(NodeId(1));
    let context = ctx();
    let initiator = Snapshot::run_initiator(&mut ta, sa, &context, &id, config);
    let (initiator, responder) = tokio::join!(initiator, serve(&mut tb, sb, page_bytes));
    Framed {
        initiator,
        responder,
        pages: ta.hook.pages,
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------------------
// Verification and moving state
// ---------------------------------------------------------------------------

pub fn begin(root: Hash, entry_count: u64) -> StreamMessage {
    StreamMessage::new(Body::SnapshotBegin(SnapshotBegin {
        root: root.0.to_vec().into(),
        entry_count,
    }))
}

pub fn stored_sorted(entries: &[Entry]) -> Vec<StoredEntry> {
    let mut v: Vec<StoredEntry> = entries.iter().cloned().map(StoredEntry::new).collect();
    v.sort_by_key(|s| s.key_hash);
    v
}

/// A well-formed uncompressed page of `entries` (already in key-hash order).
pub fn page(seq: u64, entries: &[StoredEntry], last: bool) -> SnapshotPage {
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
pub fn lz4_page(seq: u64, entries: &[StoredEntry], last: bool) -> SnapshotPage {
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

pub fn msg(page: SnapshotPage) -> StreamMessage {
    StreamMessage::new(Body::SnapshotPage(page))
}

/// An initiator that has sent its init and is waiting for pages.
pub fn opened(store: &MemoryStore, config: SnapshotConfig) -> SnapshotInitiator {
    let mut a = SnapshotInitiator::new(ctx(), config, root(store));
    let init = a
        .poll_transmit(store, crate::common::now())
        .expect("init")
        .expect("init message");
    assert_eq!(init.kind(), "init");
    a
}

/// The resume fields of the init message `a` opens with.
pub fn resume_fields(a: &mut SnapshotInitiator, store: &MemoryStore) -> (Bytes, Bytes) {
    let init = a
        .poll_transmit(store, crate::common::now())
        .expect("init")
        .expect("init message");
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
pub fn feed(
    a: &mut SnapshotInitiator,
    store: &MemoryStore,
    m: StreamMessage,
) -> Result<(), SyncErrorKind> {
    a.handle(store, crate::common::now(), m)?;
    while a.poll_transmit(store, crate::common::now())?.is_some() {}
    Ok(())
}
