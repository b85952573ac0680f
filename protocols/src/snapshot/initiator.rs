//! The snapshot initiator: receives the responder's pinned set page by page,
//! applies each page as it arrives (bounded memory) while a streaming builder
//! hashes it, verifies the whole against the pinned root after the last page, then
//! pushes what the responder lacks and finishes. Progress is saved through
//! [`Store::save_sync_state`] after every page when the config names a key.

use std::time::Instant;

use synctree_primitives::WallClock;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{Finish, SnapshotAck, SnapshotBegin, SnapshotInit, SnapshotPage};
use synctree_primitives::{
    ContextId, Hash, ProtocolError, ProtocolKind, Role, Store, StreamMessage, SyncStats,
};

use super::adopt;
use super::config::SnapshotConfig;
use super::digester::Digester;
use super::page::{Page, decode_page};
use super::push::{Pushes, plan_page_pushes, push_frame};
use super::staging::{PageMark, Pinned, SnapshotProgress, Verified};
use crate::entries::apply_received_stored;
use crate::executor::init_message;
use crate::machine::{Machine, unexpected};

/// Acks per window: the initiator acks every half window, so the responder still
/// has half a window to send while the ack travels.
const ACKS_PER_WINDOW: u64 = 2;

/// Rounds every session takes besides the acks it waits for: opening the stream
/// and finishing.
const FIXED_ROUNDS: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Opening,
    Beginning,
    Receiving,
    Pushing,
    Finishing,
    Done,
}

/// Initiator state machine of the Snapshot protocol.
///
/// Acknowledgements are cumulative: after staging a page that is not the last, it
/// sends `SnapshotAck{seq}` once `max(1, window / 2)` pages have arrived since its
/// previous ack, so the responder never waits on a full window. A page whose `seq`
/// is not below `acked + window` (where `acked` counts the pages covered by acks
/// already sent) exceeds the window it granted.
#[derive(Debug)]
pub struct SnapshotInitiator {
    context: ContextId,
    config: SnapshotConfig,
    progress: SnapshotProgress,
    init: Option<StreamMessage>,
    state: State,
    /// Sequence number of the next page.
    next_seq: u64,
    /// Pages covered by the acks sent so far.
    acked: u64,
    ack_due: Option<u64>,
    /// Computes the digests of received entries on the second core.
    digester: Digester,
    pushes: Pushes,
    clock: WallClock,
    stats: SyncStats,
}

impl SnapshotInitiator {
    /// An initiator for `context` whose local root is `root_before`. It resumes the
    /// snapshot staged in `config.resume` when that handle holds one for `context`
    /// (a handle staged for another context is cleared), and stages into a fresh
    /// handle when `config.resume` is `None`.
    pub fn new(context: ContextId, config: SnapshotConfig, root_before: Hash) -> Self {
        let config = config.clamped();
        let progress = config.resume.clone().unwrap_or_default();
        let init = init_message(
            &context,
            opening_kind(&context, &config, &progress, root_before),
        );
        SnapshotInitiator {
            context,
            config,
            progress,
            init: Some(init),
            state: State::Opening,
            next_seq: 0,
            acked: 0,
            ack_due: None,
            digester: Digester::default(),
            pushes: Pushes::default(),
            clock: WallClock::System,
            stats: SyncStats::new(ProtocolKind::Snapshot, Role::Initiator, root_before),
        }
    }

    /// Checks received versions against `clock` instead of the system clock
    /// (deterministic tests and simulations).
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// The handle this session stages into.
    pub fn progress(&self) -> &SnapshotProgress {
        &self.progress
    }

    /// What the session did so far.
    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    /// Consumes the machine, returning its stats.
    pub fn into_stats(self) -> SyncStats {
        self.stats
    }

    fn window(&self) -> u64 {
        self.config.window as u64
    }

    fn on_begin(&mut self, begin: SnapshotBegin) -> Result<(), ProtocolError> {
        let pinned = Pinned {
            root: Hash::from_wire(&begin.root, "root")?,
            entry_count: begin.entry_count,
        };
        let mut staging = self.progress.lock();
        match staging.pinned {
            Some(resumed) if resumed.root != pinned.root => {
                tracing::debug!(context = %self.context, resumed = %resumed.root, now = %pinned.root, "resumed snapshot rebased on the responder's current state");
                staging.rebase(pinned);
            }
            Some(resumed) if resumed != pinned => {
                return Err(ProtocolError::Malformed(
                    "snapshot begin changed the entry count of its root",
                ));
            }
            Some(_) => {}
            None => staging.pin(self.context.clone(), pinned),
        }
        self.state = State::Receiving;
        Ok(())
    }

    fn on_page<S: Store + ?Sized>(
        &mut self,
        store: &S,
        msg: SnapshotPage,
    ) -> Result<(), SyncErrorKind> {
        let seq = msg.seq;
        if seq != self.next_seq {
            return Err(ProtocolError::Malformed("snapshot page out of sequence").into());
        }
        let in_flight = usize::try_from(seq + 1 - self.acked).unwrap_or(usize::MAX);
        ProtocolError::check_limit("snapshot pages in flight", self.config.window, in_flight)?;
        let pages = usize::try_from(seq + 1).unwrap_or(usize::MAX);
        ProtocolError::check_limit("snapshot pages per session", self.config.max_pages, pages)?;
        let page = decode_page(msg, self.config.compression)?;
        let (last, count, bytes) = (page.last, page.entries.len(), page.bytes);
        let low = {
            let staging = self.progress.lock();
            staging.check(&page, self.config.max_staged_bytes)?;
            staging.next_low()
        };
        let mark = self.apply_page(store, low, page)?;
        self.progress.lock().record(&mark);
        self.stats.entries_pulled += count as u64;
        self.stats.payload_bytes += bytes as u64;
        self.next_seq += 1;
        if last {
            return self.complete(store);
        }
        self.save(store)?;
        if self.next_seq - self.acked >= self.ack_every() {
            self.ack_due = Some(seq);
        }
        Ok(())
    }

    /// Plans the merge-mode pushes of the page's key range (from `low` up to its
    /// cursor, or to the end for the last page), then applies the page: its
    /// entries are valid entries of the peer, merged like any other write. The
    /// page goes in chunks whose digests the [`Digester`] computes while the
    /// chunk before is applied; returns what the staging records of it.
    fn apply_page<S: Store + ?Sized>(
        &mut self,
        store: &S,
        low: Option<Hash>,
        page: Page,
    ) -> Result<PageMark, SyncErrorKind> {
        let high = match page.entries.last() {
            Some(last) if !page.last => last.key_hash,
            _ => Hash::MAX,
        };
        if let Some(low) = low {
            let mut pushes = std::mem::take(&mut self.progress.lock().pushes);
            let earlier = pushes.len();
            let planned = plan_page_pushes(
                store,
                &self.context,
                (low, high),
                &page.entries,
                &mut pushes,
            );
            let adopted = match self.config.adopt_below {
                Some(below) => {
                    let this_page = (earlier, &page.entries[..]);
                    adopt::forget_unlisted(store, &self.context, below, this_page, &mut pushes)
                }
                None => Ok(0),
            };
            self.progress.lock().pushes = pushes;
            planned?;
            self.stats.entries_adopted_away += adopted?;
        }
        let mut mark = PageMark::new(page.entries.len(), page.bytes);
        let chunks = self.digester.submit(page.entries);
        for _ in 0..chunks {
            let stored = self.digester.next()?;
            mark.extend(&stored);
            let (context, clock, stats) = (&self.context, &self.clock, &mut self.stats);
            apply_received_stored(store, context, clock, stats, stored)?;
        }
        Ok(mark)
    }

    /// Saves the progress under the configured key (removes it once empty).
    fn save<S: Store + ?Sized>(&self, store: &S) -> Result<(), SyncErrorKind> {
        let Some(key) = &self.config.persist_key else {
            return Ok(());
        };
        let bytes = self.progress.encode();
        let value = (!bytes.is_empty()).then_some(bytes.as_slice());
        Ok(store.save_sync_state(key, value)?)
    }

    fn ack_every(&self) -> u64 {
        (self.window() / ACKS_PER_WINDOW).max(1)
    }

    /// Verifies the snapshot after its last page. Every page is already applied:
    /// a root that does not verify is [`ProtocolError::VerificationFailed`], and
    /// what was applied stays (valid entries of the peer under the merge rule, so
    /// the store is consistent; a tree session converges the rest).
    fn complete<S: Store + ?Sized>(&mut self, store: &S) -> Result<(), SyncErrorKind> {
        let verified = self.progress.lock().verify();
        if verified.is_err() {
            self.save(store)?;
        }
        if verified? == Verified::Unverifiable {
            tracing::debug!(context = %self.context, "rebased snapshot complete; not verifiable as a whole");
        }
        if let Some(below) = self.config.adopt_below {
            adopt::raise_watermark(store, &self.context, below)?;
        }
        let pushes = std::mem::take(&mut self.progress.lock().pushes);
        self.pushes = Pushes(pushes);
        self.progress.clear();
        self.save(store)?;
        self.state = State::Pushing;
        Ok(())
    }

    fn finish<S: Store + ?Sized>(&mut self, store: &S) -> Result<StreamMessage, SyncErrorKind> {
        self.state = State::Finishing;
        // One round opens the stream, one more per ack the window forced the
        // responder to wait for when latency dominates, and one finishes.
        let gated = self.next_seq.saturating_sub(self.window());
        let acks = gated.div_ceil(self.ack_every());
        self.stats.rounds = u32::try_from(acks + FIXED_ROUNDS).unwrap_or(u32::MAX);
        let root = store.summary(&self.context)?.root;
        Ok(StreamMessage::new(Body::Finish(Finish {
            root: root.0.to_vec().into(),
        })))
    }
}

/// The init payload: a resume of what `progress` staged for `context`, or a fresh
/// start (clearing a handle staged for another context).
fn opening_kind(
    context: &ContextId,
    config: &SnapshotConfig,
    progress: &SnapshotProgress,
    root: Hash,
) -> Kind {
    let mut staging = progress.lock();
    if staging.context.as_ref().is_some_and(|c| c != context) {
        *staging = Default::default();
    }
    let bytes = |h: Option<Hash>| h.map(|h| h.0.to_vec().into()).unwrap_or_default();
    Kind::Snapshot(SnapshotInit {
        root: root.0.to_vec().into(),
        resume_root: bytes(staging.pinned.map(|p| p.root)),
        resume_after: bytes(staging.pinned.and(staging.cursor)),
        window: u32::try_from(config.window).unwrap_or(u32::MAX),
        compression: config.compression as i32,
    })
}

impl<S: Store + ?Sized> Machine<S> for SnapshotInitiator {
    fn handle(
        &mut self,
        store: &S,
        _now: Instant,
        message: StreamMessage,
    ) -> Result<(), SyncErrorKind> {
        match (self.state, message.body) {
            (State::Beginning, Some(Body::SnapshotBegin(begin))) => Ok(self.on_begin(begin)?),
            (State::Receiving, Some(Body::SnapshotPage(page))) => self.on_page(store, page),
            (State::Finishing, Some(Body::FinishAck(ack))) => {
                self.stats.remote_root = Hash::from_wire(&ack.root, "root")?;
                self.stats.local_root = store.summary(&self.context)?.root;
                self.state = State::Done;
                Ok(())
            }
            (state, body) => Err(unexpected(expected(state), &StreamMessage { body })),
        }
    }

    fn poll_transmit(
        &mut self,
        store: &S,
        _now: Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        match self.state {
            State::Opening => {
                self.state = State::Beginning;
                Ok(self.init.take())
            }
            State::Receiving => Ok(self.ack_due.take().map(|seq| {
                self.acked = seq + 1;
                StreamMessage::new(Body::SnapshotAck(SnapshotAck { seq }))
            })),
            State::Pushing => {
                let budget = self.config.push_bytes;
                let frame = push_frame(
                    store,
                    &self.context,
                    &mut self.pushes,
                    budget,
                    &mut self.stats,
                )?;
                match frame {
                    Some(push) => Ok(Some(StreamMessage::new(Body::EntryPush(push)))),
                    None => self.finish(store).map(Some),
                }
            }
            State::Beginning | State::Finishing | State::Done => Ok(None),
        }
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn phase(&self) -> &'static str {
        match self.state {
            State::Opening => "opening",
            State::Beginning => "snapshot begin",
            State::Receiving => "receiving snapshot pages",
            State::Pushing => "pushing local entries",
            State::Finishing => "finish ack",
            State::Done => "done",
        }
    }
}

fn expected(state: State) -> &'static str {
    match state {
        State::Beginning => "snapshot begin",
        State::Receiving => "snapshot page",
        State::Finishing => "finish ack",
        State::Opening | State::Pushing | State::Done => "nothing",
    }
}
