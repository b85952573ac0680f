//! The sketch initiator: asks for symbols, subtracts its own from each window and
//! peels; once decoded, sends in one flight the pulls (key-hash prefixes of the
//! items only the responder holds), the pushes (the entries of the items only it
//! holds) and the finish. When the maintained prefix runs out first, it falls
//! over to HashComparison in the same session ([`TreeInitiator`]), whose first
//! frame is the `SketchEnd` that tells the responder so.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    KEY_PREFIX_BYTES, MAX_ENTRIES_PER_PREFIX, MAX_KEYS_PER_REQUEST, SKETCH_MAX_DECODED,
    SKETCH_SYMBOLS_PER_WINDOW,
};
use synctree_primitives::riblt::Decoder;
use synctree_primitives::sketch::{CodedSymbol, SYMBOL_BYTES, SketchItem};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    EntryBatch, EntryPush, EntryRequest, Finish, SketchEnd, SketchMore, SketchWindow,
};
use synctree_primitives::{
    ContextId, Entry, Hash, ProtocolError, ProtocolKind, Role, Store, StreamMessage, SyncStats,
    WallClock,
};

use super::config::SketchConfig;
use crate::entries::{EntryBatcher, EntrySource, apply_received, decode_entries};
use crate::machine::{Machine, unexpected};
use crate::tree::wire::KeyPrefix;
use crate::tree::{Schedule, TreeInitiator};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Opening,
    Streaming,
    Reconciling,
    Done,
}

/// Entries to push, in the order found.
#[derive(Debug, Default)]
struct Pushes(VecDeque<Entry>);

impl<S: Store + ?Sized> EntrySource<S> for Pushes {
    fn feed(
        &mut self,
        _: &S,
        _: &ContextId,
        batch: &mut EntryBatcher<'_>,
    ) -> Result<bool, SyncErrorKind> {
        match self.0.pop_front() {
            Some(entry) => {
                batch.push(&entry);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Sketch initiator state machine.
#[derive(Debug)]
pub struct SketchInitiator {
    context: ContextId,
    config: SketchConfig,
    init: Option<StreamMessage>,
    state: State,
    decoder: Decoder,
    /// Symbols both sides maintain, as far as known.
    usable: u32,
    asked: u32,
    received: u32,
    /// Round trips of the sketch phase so far.
    rounds: u32,
    /// Frames to send, in order.
    out: VecDeque<Body>,
    pushes: Pushes,
    /// Entries received for each prefix pulled, by request.
    pulled: HashMap<u32, HashMap<KeyPrefix, usize>>,
    finish_sent: bool,
    fallback: Option<TreeInitiator>,
    clock: WallClock,
    stats: SyncStats,
}

impl SketchInitiator {
    /// An initiator that opens with `init` (a `SketchInit` asking for
    /// `config.want` symbols) with `local_len` symbols maintained locally.
    pub fn new(
        context: ContextId,
        config: SketchConfig,
        init: StreamMessage,
        root_before: Hash,
        local_len: u32,
    ) -> Self {
        let usable = match config.remote_len {
            0 => local_len,
            remote => remote.min(local_len),
        };
        SketchInitiator {
            context,
            asked: config.want.min(usable),
            config,
            init: Some(init),
            state: State::Opening,
            decoder: Decoder::new(SKETCH_MAX_DECODED),
            usable,
            received: 0,
            rounds: 0,
            out: VecDeque::new(),
            pushes: Pushes::default(),
            pulled: HashMap::new(),
            finish_sent: false,
            fallback: None,
            clock: WallClock::System,
            stats: SyncStats::new(ProtocolKind::Sketch, Role::Initiator, root_before),
        }
    }

    /// The symbols the init asks for: `config.want` within what both sides keep.
    pub fn first_want(&self) -> u32 {
        self.asked
    }

    /// Replaces the init frame (built once [`Self::first_want`] is known).
    pub fn with_init(mut self, init: StreamMessage) -> Self {
        self.init = Some(init);
        self
    }

    /// Checks received versions against `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// Whether the session fell over to the tree protocol.
    pub fn fell_back(&self) -> bool {
        self.fallback.is_some()
    }

    /// Consumes the machine, returning its stats (the fallback's, with the sketch
    /// phase's round trips added, when it fell over).
    pub fn into_stats(self) -> SyncStats {
        match self.fallback {
            Some(tree) => {
                let mut stats = tree.into_stats();
                stats.rounds += self.rounds;
                stats
            }
            None => self.stats,
        }
    }

    fn on_window<S: Store + ?Sized>(
        &mut self,
        store: &S,
        window: SketchWindow,
    ) -> Result<(), SyncErrorKind> {
        let symbols = parse_window(&window, self.received, self.asked)?;
        let start = self.received;
        self.received += symbols.len() as u32;
        if self.state != State::Streaming {
            return Ok(()); // Already decoded: what was in flight.
        }
        if symbols.is_empty() {
            // The responder's prefix ends here.
            self.usable = self.received;
            self.asked = self.received;
            return self.after_window(store);
        }
        let local = store.sketch(&self.context, start, symbols.len())?;
        for (remote, local) in symbols.iter().zip(&local) {
            let mut diff = *remote;
            diff.xor(local);
            if self.decoder.add(diff).is_err() {
                self.rounds += 1;
                return self.fall_over(); // Garbage, or a crafted set: the tree decides.
            }
            if self.decoder.is_decoded() {
                return self.reconcile(store);
            }
        }
        if local.len() < symbols.len() {
            self.usable = start + local.len() as u32;
        }
        self.after_window(store)
    }

    /// Not decoded after a window: asks for more, or falls over.
    fn after_window<S: Store + ?Sized>(&mut self, _store: &S) -> Result<(), SyncErrorKind> {
        if self.received < self.asked {
            return Ok(());
        }
        self.rounds += 1;
        if self.asked >= self.usable {
            return self.fall_over();
        }
        let more = self.asked.max(1).min(self.usable - self.asked);
        self.asked += more;
        self.out
            .push_back(Body::SketchMore(SketchMore { want: more }));
        Ok(())
    }

    /// Decoded: plans the pulls and pushes, then the finish, all in one flight.
    fn reconcile<S: Store + ?Sized>(&mut self, store: &S) -> Result<(), SyncErrorKind> {
        self.state = State::Reconciling;
        // The window round that decoded, and the reconciling flight.
        self.rounds += 2;
        let mut pulls = Vec::new();
        let mut seen = HashSet::new();
        for item in self.decoder.items() {
            let prefix = KeyPrefix::of(&item_hash(item), KEY_PREFIX_BYTES);
            let (low, high) = prefix.range();
            let held = store.range(&self.context, &low, &high, MAX_ENTRIES_PER_PREFIX + 1)?;
            match held.into_iter().find(|e| item.names(e)) {
                Some(stored) => self.pushes.0.push_back(stored.entry),
                None if seen.insert(prefix) => pulls.push(prefix),
                None => {}
            }
        }
        self.out
            .push_back(Body::SketchEnd(SketchEnd { decoded: true }));
        for chunk in pulls.chunks(MAX_KEYS_PER_REQUEST) {
            let request_id = self.pulled.len() as u32;
            self.pulled
                .insert(request_id, chunk.iter().map(|p| (*p, 0)).collect());
            self.out.push_back(Body::EntryRequest(EntryRequest {
                request_id,
                key_hashes: vec![],
                subtrees: vec![],
                key_prefixes: chunk.iter().map(|p| p.as_slice().to_vec().into()).collect(),
            }));
        }
        Ok(())
    }

    fn fall_over(&mut self) -> Result<(), SyncErrorKind> {
        self.out.clear();
        let end = StreamMessage::new(Body::SketchEnd(SketchEnd { decoded: false }));
        let tree = TreeInitiator::new(
            self.context.clone(),
            ProtocolKind::Sketch,
            Schedule::Eager,
            self.config.fallback.clone().into(),
            end,
            self.stats.root_before,
        );
        self.fallback = Some(tree.with_clock(self.clock));
        Ok(())
    }

    fn on_entry_batch<S: Store + ?Sized>(
        &mut self,
        store: &S,
        batch: EntryBatch,
    ) -> Result<(), SyncErrorKind> {
        let entries = decode_entries(batch.entries)?;
        let asked = self
            .pulled
            .get_mut(&batch.request_id)
            .ok_or(ProtocolError::Unsolicited("answer to an unknown request"))?;
        for entry in &entries {
            let prefix = KeyPrefix::of(&entry.key_hash(), KEY_PREFIX_BYTES);
            let received = asked
                .get_mut(&prefix)
                .ok_or(ProtocolError::Unsolicited("entry that was not asked for"))?;
            *received += 1;
            ProtocolError::check_limit(
                "entries per key prefix",
                MAX_ENTRIES_PER_PREFIX,
                *received,
            )?;
        }
        self.stats.record_received(&entries);
        apply_received(store, &self.context, &self.clock, &mut self.stats, entries)?;
        if batch.last {
            self.pulled.remove(&batch.request_id);
        }
        Ok(())
    }

    /// The next frame while reconciling: the queued control frames, then the
    /// pushes, then the finish.
    fn next_reconciling<S: Store + ?Sized>(
        &mut self,
        store: &S,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        if let Some(body) = self.out.pop_front() {
            return Ok(Some(StreamMessage::new(body)));
        }
        let batch = EntryBatcher::new(self.config.push_bytes, &mut self.stats);
        let entries = batch.fill(store, &self.context, &mut self.pushes)?;
        if !entries.is_empty() {
            return Ok(Some(StreamMessage::new(Body::EntryPush(EntryPush {
                entries,
            }))));
        }
        if !self.finish_sent {
            self.finish_sent = true;
            self.stats.rounds = self.rounds;
            let root = store.summary(&self.context)?.root;
            return Ok(Some(StreamMessage::new(Body::Finish(Finish {
                root: root.0.to_vec().into(),
            }))));
        }
        Ok(None)
    }
}

/// A key hash that starts with the item's key-hash prefix (the rest zero).
fn item_hash(item: &SketchItem) -> Hash {
    let mut hash = Hash::ZERO;
    hash.0[..KEY_PREFIX_BYTES].copy_from_slice(&item.key_prefix());
    hash
}

/// Checks a window against what was asked for and decodes its symbols.
fn parse_window(
    window: &SketchWindow,
    received: u32,
    asked: u32,
) -> Result<Vec<CodedSymbol>, ProtocolError> {
    if window.start != received {
        return Err(ProtocolError::Malformed("sketch window out of order"));
    }
    if !window.symbols.len().is_multiple_of(SYMBOL_BYTES) {
        return Err(ProtocolError::Malformed(
            "sketch window of a partial symbol",
        ));
    }
    let count = window.symbols.len() / SYMBOL_BYTES;
    ProtocolError::check_limit("symbols per window", SKETCH_SYMBOLS_PER_WINDOW, count)?;
    let room = asked.saturating_sub(received) as usize;
    ProtocolError::check_limit("sketch symbols beyond the request", room, count)?;
    let symbols = window.symbols.chunks_exact(SYMBOL_BYTES);
    Ok(symbols.filter_map(CodedSymbol::from_bytes).collect())
}

impl<S: Store + ?Sized> Machine<S> for SketchInitiator {
    fn handle(
        &mut self,
        store: &S,
        now: Instant,
        message: StreamMessage,
    ) -> Result<(), SyncErrorKind> {
        if let Some(tree) = self.fallback.as_mut() {
            if let Some(Body::SketchWindow(window)) = &message.body {
                // What was in flight when the decoder gave up.
                let symbols = parse_window(window, self.received, self.asked)?;
                self.received += symbols.len() as u32;
                return Ok(());
            }
            return tree.handle(store, now, message);
        }
        match (self.state, message.body) {
            (State::Streaming | State::Reconciling, Some(Body::SketchWindow(window))) => {
                self.on_window(store, window)
            }
            (State::Reconciling, Some(Body::EntryBatch(batch))) => {
                self.on_entry_batch(store, batch)
            }
            (State::Reconciling, Some(Body::FinishAck(ack))) if self.finish_sent => {
                if !self.pulled.is_empty() {
                    return Err(ProtocolError::Malformed("finish ack before every answer").into());
                }
                self.stats.remote_root = Hash::from_wire(&ack.root, "root")?;
                self.stats.local_root = store.summary(&self.context)?.root;
                self.state = State::Done;
                Ok(())
            }
            (_, body) => Err(unexpected(
                "sketch window, entry batch or finish ack",
                &StreamMessage { body },
            )),
        }
    }

    fn poll_transmit(
        &mut self,
        store: &S,
        now: Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        if let Some(tree) = self.fallback.as_mut() {
            return tree.poll_transmit(store, now);
        }
        match self.state {
            State::Opening => {
                self.state = State::Streaming;
                if self.asked == 0 {
                    self.fall_over()?;
                }
                Ok(self.init.take())
            }
            State::Streaming => Ok(self.out.pop_front().map(StreamMessage::new)),
            State::Reconciling => self.next_reconciling(store),
            State::Done => Ok(None),
        }
    }

    fn is_done(&self) -> bool {
        match &self.fallback {
            Some(tree) => Machine::<S>::is_done(tree),
            None => self.state == State::Done,
        }
    }

    fn phase(&self) -> &'static str {
        if let Some(tree) = &self.fallback {
            return Machine::<S>::phase(tree);
        }
        match self.state {
            State::Opening => "opening",
            State::Streaming => "decoding sketch",
            State::Reconciling => "reconciling decoded differences",
            State::Done => "done",
        }
    }
}
