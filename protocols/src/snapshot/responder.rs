//! The snapshot responder: pins a read view of the context
//! ([`Store::read_view`]) and streams its entries in key-hash order as pages under
//! a window of unacknowledged pages, whatever is written meanwhile; then applies the
//! initiator's pushes and acknowledges the finish. A store without read views is
//! read live, with the root checked around each page
//! ([`ProtocolError::StateMoved`] once it moved).

use std::time::{Duration, Instant};

use synctree_primitives::WallClock;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    IDLE_TIMEOUT, MAX_SNAPSHOT_PAGE_BYTES, MAX_SNAPSHOT_VIEW_AGE, SNAPSHOT_APPLY_TIMEOUT,
};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{FinishAck, SnapshotAck, SnapshotBegin};
use synctree_primitives::{
    ContextId, Hash, ProtocolError, ProtocolKind, Role, Store, StreamMessage, SyncStats,
};

use super::config::SnapshotResponderInit;
use super::page::encode_page;
use super::reader::{PageReader, Source, View};
use crate::entries::PushBuffer;
use crate::machine::{Machine, unexpected};

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
    /// The read view the pages come from, while streaming; `None` on a store
    /// without views (read live, root checked around each page).
    view: Option<View>,
    /// When the view was taken: it is served at most [`MAX_SNAPSHOT_VIEW_AGE`].
    opened: Option<Instant>,
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
            view: None,
            opened: None,
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

    /// Whether the snapshot served so far still describes one state: always with a
    /// view; without one, while the live root is the pinned one.
    fn check_pinned<S: Store + ?Sized>(&self, store: &S) -> Result<(), SyncErrorKind> {
        if self.view.is_none() && store.summary(&self.context)?.root != self.pinned {
            return Err(ProtocolError::StateMoved {
                pinned: self.pinned.to_hex(),
            }
            .into());
        }
        Ok(())
    }

    /// Takes the read view and announces its root. A resumed session whose root
    /// is no longer the state (views do not outlive sessions) is served from the
    /// current state, still above `resume_after`: the initiator keeps what it
    /// applied (entries are merged, so applying them was right whatever follows)
    /// and learns from the new root that it cannot verify the whole.
    fn begin<S: Store + ?Sized>(
        &mut self,
        store: &S,
        now: Instant,
    ) -> Result<StreamMessage, SyncErrorKind> {
        self.view = store.read_view(&self.context)?.map(View);
        self.opened = Some(now);
        let summary = match &self.view {
            Some(view) => view.0.summary()?,
            None => store.summary(&self.context)?,
        };
        if let Some(resumed) = self.init.resume_root
            && resumed != summary.root
        {
            tracing::debug!(context = %self.context, resumed = %resumed, now = %summary.root, "resumed snapshot served from the current state");
        }
        self.pinned = summary.root;
        self.state = State::Streaming;
        Ok(StreamMessage::new(Body::SnapshotBegin(SnapshotBegin {
            root: summary.root.0.to_vec().into(),
            entry_count: summary.entry_count,
        })))
    }

    /// The next page, read while the root is the pinned one before and after.
    fn page<S: Store + ?Sized>(
        &mut self,
        store: &S,
        now: Instant,
    ) -> Result<StreamMessage, SyncErrorKind> {
        if self
            .opened
            .is_some_and(|at| now.saturating_duration_since(at) > MAX_SNAPSHOT_VIEW_AGE)
        {
            return Err(SyncErrorKind::Deadline(MAX_SNAPSHOT_VIEW_AGE));
        }
        self.check_pinned(store)?;
        let source = Source {
            store,
            context: &self.context,
            view: self.view.as_ref(),
        };
        let compression = self.init.compression;
        let (entries, last) = self.reader.page(&source, self.page_bytes, compression)?;
        self.check_pinned(store)?;
        self.stats.entries_pushed += entries.count as u64;
        self.stats.payload_bytes += entries.bytes.len() as u64;
        let page = encode_page(self.next_seq, entries, last, compression);
        self.next_seq += 1;
        if last {
            // Free the view (memory or pinned pages) as soon as it has been read.
            self.view = None;
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
            State::Pinning => self.begin(store, now).map(Some),
            State::Streaming if self.next_seq - self.acked < self.init.window as u64 => {
                self.page(store, now).map(Some)
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
