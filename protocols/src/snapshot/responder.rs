//! The snapshot responder: pins its current root, streams its entries in key-hash
//! order as pages under a window of unacknowledged pages, fails with
//! [`ProtocolError::StateMoved`] as soon as its root leaves the pinned one, then
//! applies the initiator's pushes and acknowledges the finish.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use synctree_primitives::WallClock;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    IDLE_TIMEOUT, MAX_ENTRIES_PER_BATCH, MAX_SNAPSHOT_PAGE_BYTES, SNAPSHOT_APPLY_TIMEOUT,
};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{FinishAck, SnapshotAck, SnapshotBegin};
use synctree_primitives::{
    ContextId, Hash, ProtocolError, ProtocolKind, Role, Store, StoreError, StoredEntry,
    StreamMessage, SyncStats,
};

use super::config::SnapshotResponderInit;
use super::page::encode_page;
use crate::entries::{PushBuffer, successor};
use crate::machine::{Machine, unexpected};

/// Fewest entries per store read: reads aim at one page's worth of entries, and
/// even a page of large entries is read in a few calls.
const MIN_SCAN: usize = 16;
/// Most entries per store read: bounds the entries held ahead of the pages built.
const MAX_SCAN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pinning,
    Streaming,
    Serving,
    Acknowledging,
    Done,
}

/// Responder state machine of the Snapshot protocol.
#[derive(Debug)]
pub struct SnapshotResponder {
    context: ContextId,
    init: SnapshotResponderInit,
    page_bytes: usize,
    state: State,
    pinned: Hash,
    reader: PageReader,
    /// Sequence number of the next page.
    next_seq: u64,
    /// Pages the initiator acknowledged.
    acked: u64,
    pushes: PushBuffer,
    stats: SyncStats,
}

impl SnapshotResponder {
    /// A responder for `context`, after the session's init message was read.
    pub fn new(context: ContextId, init: SnapshotResponderInit, root_before: Hash) -> Self {
        SnapshotResponder {
            context,
            reader: PageReader::new(init.resume_after),
            init,
            page_bytes: MAX_SNAPSHOT_PAGE_BYTES,
            state: State::Pinning,
            pinned: Hash::ZERO,
            next_seq: 0,
            acked: 0,
            pushes: PushBuffer::default(),
            stats: SyncStats::new(ProtocolKind::Snapshot, Role::Responder, root_before),
        }
    }

    /// Checks received versions against `clock` instead of the system clock
    /// (deterministic tests and simulations).
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.pushes.set_clock(clock);
        self
    }

    /// Builds pages of at most `bytes` of entries (clamped to
    /// `1..=MAX_SNAPSHOT_PAGE_BYTES`) instead of full pages: small pages for tests
    /// and benches.
    pub fn with_page_bytes(mut self, bytes: usize) -> Self {
        self.page_bytes = bytes.clamp(1, MAX_SNAPSHOT_PAGE_BYTES);
        self
    }

    /// What the session did so far.
    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    /// Consumes the machine, returning its stats.
    pub fn into_stats(self) -> SyncStats {
        self.stats
    }

    fn check_pinned<S: Store + ?Sized>(&self, store: &S) -> Result<(), SyncErrorKind> {
        if store.summary(&self.context)?.root != self.pinned {
            return Err(ProtocolError::StateMoved {
                pinned: self.pinned.to_hex(),
            }
            .into());
        }
        Ok(())
    }

    fn begin<S: Store + ?Sized>(&mut self, store: &S) -> Result<StreamMessage, SyncErrorKind> {
        let summary = store.summary(&self.context)?;
        if let Some(resumed) = self.init.resume_root
            && resumed != summary.root
        {
            return Err(ProtocolError::StateMoved {
                pinned: resumed.to_hex(),
            }
            .into());
        }
        self.pinned = summary.root;
        self.state = State::Streaming;
        Ok(StreamMessage::new(Body::SnapshotBegin(SnapshotBegin {
            root: summary.root.0.to_vec().into(),
            entry_count: summary.entry_count,
        })))
    }

    /// The next page, read while the root is the pinned one before and after.
    fn page<S: Store + ?Sized>(&mut self, store: &S) -> Result<StreamMessage, SyncErrorKind> {
        self.check_pinned(store)?;
        let (entries, last) = self.reader.page(store, &self.context, self.page_bytes)?;
        self.check_pinned(store)?;
        for stored in &entries {
            self.stats.record_sent(&stored.entry);
        }
        let page = encode_page(self.next_seq, &entries, last, self.init.compression);
        self.next_seq += 1;
        if last {
            self.state = State::Serving;
        }
        Ok(StreamMessage::new(Body::SnapshotPage(page)))
    }

    fn on_ack(&mut self, ack: SnapshotAck) -> Result<(), ProtocolError> {
        if ack.seq >= self.next_seq {
            return Err(ProtocolError::Unsolicited("ack for a page not sent"));
        }
        if ack.seq < self.acked {
            return Err(ProtocolError::Malformed("snapshot acks out of order"));
        }
        self.acked = ack.seq + 1;
        Ok(())
    }
}

impl<S: Store + ?Sized> Machine<S> for SnapshotResponder {
    fn handle(
        &mut self,
        store: &S,
        now: Instant,
        message: StreamMessage,
    ) -> Result<(), SyncErrorKind> {
        match (self.state, message.body) {
            (State::Streaming | State::Serving, Some(Body::SnapshotAck(ack))) => {
                Ok(self.on_ack(ack)?)
            }
            (State::Serving, Some(Body::EntryPush(push))) => {
                let (context, stats) = (&self.context, &mut self.stats);
                self.pushes.receive(store, context, stats, push, now)
            }
            (State::Serving, Some(Body::Finish(finish))) => {
                self.stats.remote_root = Hash::from_wire(&finish.root, "root")?;
                self.pushes.flush(store, &self.context, &mut self.stats)?;
                self.state = State::Acknowledging;
                Ok(())
            }
            (State::Streaming, body) => Err(unexpected("snapshot ack", &StreamMessage { body })),
            (_, body) => Err(unexpected(
                "snapshot ack, push or finish",
                &StreamMessage { body },
            )),
        }
    }

    fn poll_transmit(
        &mut self,
        store: &S,
        now: Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        self.pushes
            .flush_due(store, &self.context, &mut self.stats, now)?;
        match self.state {
            State::Pinning => self.begin(store).map(Some),
            State::Streaming if self.next_seq - self.acked < self.init.window as u64 => {
                self.page(store).map(Some)
            }
            State::Acknowledging => {
                let root = store.summary(&self.context)?.root;
                self.stats.local_root = root;
                self.state = State::Done;
                Ok(Some(StreamMessage::new(Body::FinishAck(FinishAck {
                    root: root.0.to_vec().into(),
                }))))
            }
            State::Streaming | State::Serving | State::Done => Ok(None),
        }
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// After the last page the initiator verifies and applies the whole snapshot
    /// before it sends anything: allow it [`SNAPSHOT_APPLY_TIMEOUT`].
    fn idle_timeout(&self) -> Duration {
        match self.state {
            State::Serving => SNAPSHOT_APPLY_TIMEOUT,
            _ => IDLE_TIMEOUT,
        }
    }

    fn phase(&self) -> &'static str {
        match self.state {
            State::Pinning => "pinning",
            State::Streaming => "streaming snapshot pages",
            State::Serving => "applying pushes",
            State::Acknowledging | State::Done => "finishing",
        }
    }
}

/// Reads the context in key-hash order a bounded chunk at a time, keeping at most
/// one chunk ahead of the pages built from it.
#[derive(Debug)]
struct PageReader {
    /// Key hash to read from next; `None` once the store is exhausted.
    next: Option<Hash>,
    ahead: VecDeque<StoredEntry>,
    chunk: usize,
}

impl PageReader {
    /// A reader starting above `after` (from the first key hash when `None`).
    fn new(after: Option<Hash>) -> Self {
        PageReader {
            next: after.map_or(Some(Hash::ZERO), |h| successor(&h)),
            ahead: VecDeque::new(),
            chunk: MIN_SCAN,
        }
    }

    /// Entries for one page of at most `budget` bytes (an entry larger than the
    /// budget goes alone), and whether the page is the last.
    fn page<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        budget: usize,
    ) -> Result<(Vec<StoredEntry>, bool), StoreError> {
        let mut page = Vec::new();
        let mut bytes = 0;
        loop {
            if self.ahead.is_empty() {
                self.refill(store, context, budget)?;
            }
            let Some(next) = self.ahead.front() else {
                return Ok((page, true));
            };
            let len = next.entry.encoded_len();
            let full = bytes + len > budget || page.len() >= MAX_ENTRIES_PER_BATCH;
            if full && !page.is_empty() {
                return Ok((page, false));
            }
            bytes += len;
            page.extend(self.ahead.pop_front());
        }
    }

    fn refill<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        budget: usize,
    ) -> Result<(), StoreError> {
        let Some(low) = self.next else {
            return Ok(());
        };
        let chunk = store.range(context, &low, &Hash::MAX, self.chunk)?;
        self.next = match chunk.last() {
            Some(last) if chunk.len() == self.chunk => successor(&last.key_hash),
            _ => None,
        };
        if !chunk.is_empty() {
            let bytes: usize = chunk.iter().map(|s| s.entry.encoded_len()).sum();
            let average = (bytes / chunk.len()).max(1);
            self.chunk = (budget / average).clamp(MIN_SCAN, MAX_SCAN);
        }
        self.ahead.extend(chunk);
        Ok(())
    }
}
