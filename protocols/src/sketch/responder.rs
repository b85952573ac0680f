//! The sketch responder: streams its maintained symbols in windows, as many as
//! the initiator asked for, until a `SketchEnd`; then serves entry requests,
//! pushes, node requests (the fallback) and the finish as a tree responder does.

use std::time::Instant;

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{SKETCH_MAX_SYMBOLS, SKETCH_SYMBOLS_PER_WINDOW};
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::SketchWindow;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{
    ContextId, Hash, ProtocolError, ProtocolKind, Store, StreamMessage, SyncStats, WallClock,
};

use crate::machine::{Machine, unexpected};
use crate::tree::TreeResponder;

/// Sketch responder state machine.
#[derive(Debug)]
pub struct SketchResponder {
    context: ContextId,
    /// Symbols the store maintained when the session opened.
    len: u32,
    /// Symbols sent so far.
    sent: u32,
    /// Symbols asked for so far.
    credit: u32,
    /// Whether the sketch phase is over.
    ended: bool,
    /// An early finish, held until the tree responder has answered everything.
    finish: Option<StreamMessage>,
    tree: TreeResponder,
}

impl SketchResponder {
    /// A responder for `context` asked for `want` symbols first.
    pub fn new(context: ContextId, root_before: Hash, len: u32, want: u32) -> Self {
        let tree = TreeResponder::new(context.clone(), ProtocolKind::Sketch, root_before);
        SketchResponder {
            context,
            len,
            sent: 0,
            credit: want.min(SKETCH_MAX_SYMBOLS),
            ended: false,
            finish: None,
            tree,
        }
    }

    /// Keys the fallback's truncated node hashes ([`TreeResponder::with_key`]).
    pub fn with_key(mut self, key: SessionKey) -> Self {
        self.tree = self.tree.with_key(key);
        self
    }

    /// Checks received versions against `clock` ([`TreeResponder::with_clock`]).
    pub fn with_clock(mut self, clock: WallClock) -> Self {
        self.tree = self.tree.with_clock(clock);
        self
    }

    /// Consumes the machine, returning its stats.
    pub fn into_stats(self) -> SyncStats {
        self.tree.into_stats()
    }

    fn on_sketch_message(&mut self, message: StreamMessage) -> Result<(), SyncErrorKind> {
        match message.body {
            Some(Body::SketchMore(more)) => {
                let credit = u64::from(self.credit) + u64::from(more.want);
                let limit = SKETCH_MAX_SYMBOLS as usize;
                ProtocolError::check_limit("sketch symbols", limit, credit as usize)?;
                self.credit = credit as u32;
                Ok(())
            }
            Some(Body::SketchEnd(_)) => {
                self.ended = true;
                Ok(())
            }
            body => Err(unexpected("sketch more or end", &StreamMessage { body })),
        }
    }

    /// The next window; an empty one tells the initiator the prefix ends here.
    fn window<S: Store + ?Sized>(&mut self, store: &S) -> Result<StreamMessage, SyncErrorKind> {
        let start = self.sent;
        let room = self.credit.min(self.len).saturating_sub(start) as usize;
        let symbols = store.sketch(&self.context, start, room.min(SKETCH_SYMBOLS_PER_WINDOW))?;
        // Nothing more to give: the rest of the credit is void.
        if symbols.is_empty() {
            self.credit = self.sent;
        }
        self.sent += symbols.len() as u32;
        let bytes: Vec<u8> = symbols.iter().flat_map(|s| s.to_bytes()).collect();
        Ok(StreamMessage::new(Body::SketchWindow(SketchWindow {
            start,
            symbols: bytes.into(),
        })))
    }
}

impl<S: Store + ?Sized> Machine<S> for SketchResponder {
    fn handle(
        &mut self,
        store: &S,
        now: Instant,
        message: StreamMessage,
    ) -> Result<(), SyncErrorKind> {
        if !self.ended {
            return self.on_sketch_message(message);
        }
        let is_finish = matches!(message.body, Some(Body::Finish(_)));
        if is_finish && self.tree.is_answering() && self.finish.is_none() {
            self.finish = Some(message);
            return Ok(());
        }
        if self.finish.is_some() {
            return Err(ProtocolError::Malformed("a message after the finish").into());
        }
        self.tree.handle(store, now, message)
    }

    fn poll_transmit(
        &mut self,
        store: &S,
        now: Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        if !self.ended {
            return match self.sent < self.credit {
                true => self.window(store).map(Some),
                false => Ok(None),
            };
        }
        if let Some(message) = self.tree.poll_transmit(store, now)? {
            return Ok(Some(message));
        }
        match self.finish.take() {
            Some(finish) => {
                self.tree.handle(store, now, finish)?;
                self.tree.poll_transmit(store, now)
            }
            None => Ok(None),
        }
    }

    fn is_done(&self) -> bool {
        Machine::<S>::is_done(&self.tree)
    }

    fn phase(&self) -> &'static str {
        match self.ended {
            false => "streaming sketch",
            true => Machine::<S>::phase(&self.tree),
        }
    }
}
