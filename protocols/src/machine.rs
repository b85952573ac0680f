//! The shape every protocol state machine has, and the one async driver for it.
//!
//! A machine never touches the network or the clock: messages come in through
//! [`Machine::handle`], messages go out through [`Machine::poll_transmit`]. The
//! store is passed in because it is synchronous and local. [`drive`] is the only
//! place that awaits: it moves messages between a machine and a [`SyncTransport`],
//! enforces the idle timeout and the session deadline, and reports failures to the
//! peer with an abort frame.

use std::time::Duration;
use synctree_primitives::error::{SyncErrorKind, error_chain};
use synctree_primitives::limits::{IDLE_TIMEOUT, SESSION_DEADLINE};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{
    ProtocolError, SessionInfo, Store, StreamMessage, SyncError, SyncTransport, TransportStats,
};

use tokio::time::Instant;

/// A protocol endpoint as a state machine: message in → messages out.
pub trait Machine<S: Store + ?Sized> {
    /// Feeds one message from the peer.
    fn handle(&mut self, store: &S, message: StreamMessage) -> Result<(), SyncErrorKind>;

    /// The next message to send, built on demand so output stays bounded.
    fn poll_transmit(&mut self, store: &S) -> Result<Option<StreamMessage>, SyncErrorKind>;

    /// True once the session is complete and nothing is left to send.
    fn is_done(&self) -> bool;

    /// What the machine is doing, for error context.
    fn phase(&self) -> &'static str;

    /// Longest wait for the peer's next message in the current phase:
    /// [`IDLE_TIMEOUT`] unless the peer has long local work to do first.
    fn idle_timeout(&self) -> Duration {
        IDLE_TIMEOUT
    }
}

/// Runs `machine` over `transport` until it is done, then closes the transport.
/// Needs a tokio runtime with the time driver enabled (for the idle timeout and the
/// session deadline).
///
/// On failure the peer gets an abort frame (when the error is one it should hear
/// about) and the error carries the session's peer, context, protocol and phase.
/// Returns what the transport moved during the session.
pub async fn drive<T, S, M>(
    transport: &mut T,
    store: &S,
    machine: &mut M,
    info: &SessionInfo,
) -> Result<TransportStats, SyncError>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
    M: Machine<S> + Send,
{
    let before = transport.stats();
    let result = run(transport, store, machine).await;
    if let Err(kind) = &result {
        tracing::debug!(peer = %info.peer, context = %info.context, error = %kind, "session failed");
        if let Some(code) = kind.abort_code() {
            // Best effort: the peer may already be gone.
            let _ = transport
                .send(&StreamMessage::abort(code, &error_chain(kind)))
                .await;
        }
    }
    let closed = transport.close().await;
    match (result, closed) {
        (Err(kind), _) => Err(info.error(machine.phase(), kind)),
        (Ok(()), Err(e)) => Err(info.error("close", e)),
        (Ok(()), Ok(())) => Ok(transport.stats().since(&before)),
    }
}

async fn run<T, S, M>(transport: &mut T, store: &S, machine: &mut M) -> Result<(), SyncErrorKind>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
    M: Machine<S> + Send,
{
    let deadline = Instant::now() + SESSION_DEADLINE;
    loop {
        while let Some(message) = machine.poll_transmit(store)? {
            transport.send(&message).await?;
        }
        if machine.is_done() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SyncErrorKind::Deadline(SESSION_DEADLINE));
        }
        let message = transport
            .recv_timeout(left.min(machine.idle_timeout()))
            .await?;
        match message {
            None => return Err(ProtocolError::PeerClosed(machine.phase()).into()),
            Some(StreamMessage {
                body: Some(Body::Abort(abort)),
            }) => {
                return Err(abort.into_error().into());
            }
            Some(message) => machine.handle(store, message)?,
        }
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
