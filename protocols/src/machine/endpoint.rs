//! The [`Machine`] trait: a protocol endpoint as message in → messages out.

use std::time::{Duration, Instant};

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::IDLE_TIMEOUT;
use synctree_primitives::{ProtocolError, Store, StreamMessage};

use super::timers::makes_progress;

/// A protocol endpoint as a state machine: message in → messages out.
///
/// `now` is the caller's clock (the driver's, or a simulator's virtual one); a
/// machine never reads a clock itself. The timeouts that bound waiting for the peer
/// live in [`Timers`](super::Timers), which asks the machine only for its
/// [`Machine::idle_timeout`].
pub trait Machine<S: Store + ?Sized> {
    /// Feeds one message from the peer, received at `now`.
    fn handle(
        &mut self,
        store: &S,
        now: Instant,
        message: StreamMessage,
    ) -> Result<(), SyncErrorKind>;

    /// The next message to send at `now`, built on demand so output stays bounded.
    fn poll_transmit(
        &mut self,
        store: &S,
        now: Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind>;

    /// True once the session is complete and nothing is left to send.
    fn is_done(&self) -> bool;

    /// What the machine is doing, for error context.
    fn phase(&self) -> &'static str;

    /// Longest wait for the peer's next message in the current phase:
    /// [`IDLE_TIMEOUT`] unless the peer has long local work to do first.
    fn idle_timeout(&self) -> Duration {
        IDLE_TIMEOUT
    }

    /// Whether `message`, just received, resets the idle timer: by default
    /// [`makes_progress`] (an empty `EntryPush` does not). A machine that can tell
    /// a repeated no-op from progress says so here.
    fn is_progress(&self, message: &StreamMessage) -> bool {
        makes_progress(message)
    }
}

/// Shorthand for the error of a message the current phase does not allow.
pub(crate) fn unexpected(expected: &'static str, got: &StreamMessage) -> SyncErrorKind {
    ProtocolError::Unexpected {
        expected,
        got: got.kind(),
    }
    .into()
}
