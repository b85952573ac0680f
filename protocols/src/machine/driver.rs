//! The one async driver: moves messages between a [`Machine`] and a
//! [`SyncTransport`], with the clock read here and nowhere else.

use std::time::{Duration, Instant};

use synctree_primitives::error::{SyncErrorKind, error_chain};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{
    ProtocolError, SessionInfo, Store, StreamMessage, SyncError, SyncTransport, TransportError,
    TransportStats,
};

use super::endpoint::Machine;
use super::timers::Timers;

/// Runs `machine` over `transport` until it is done, then closes the transport.
/// Needs a tokio runtime with the time driver enabled (for the idle timeout and the
/// session deadline, which [`Timers`] computes from tokio's clock, so a paused test
/// clock works).
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

/// Tokio's clock as a std [`Instant`]: follows a paused test clock.
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn run<T, S, M>(transport: &mut T, store: &S, machine: &mut M) -> Result<(), SyncErrorKind>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
    M: Machine<S> + Send,
{
    let mut timers = Timers::new(clock());
    loop {
        while let Some(message) = machine.poll_transmit(store, clock())? {
            transport.send(&message).await?;
        }
        if machine.is_done() {
            return Ok(());
        }
        let wait = timers.wait(clock(), machine.idle_timeout())?;
        // A wait kept armed across no-progress messages may already be over; a
        // zero-length `recv_timeout` would still return a message that is ready.
        timers.handle_timeout(clock())?;
        match receive(transport, &mut timers, wait, |m| machine.is_progress(m)).await? {
            None => return Err(ProtocolError::PeerClosed(machine.phase()).into()),
            Some(StreamMessage {
                body: Some(Body::Abort(abort)),
            }) => return Err(abort.into_error().into()),
            Some(message) => machine.handle(store, clock(), message)?,
        }
    }
}

/// The peer's next message within `wait`; the timers decide whether a silent peer
/// has outlasted them (the transport's timeout error is theirs). Only a message
/// that `is_progress` resets the idle timer.
async fn receive<T: SyncTransport + ?Sized>(
    transport: &mut T,
    timers: &mut Timers,
    wait: Duration,
    is_progress: impl Fn(&StreamMessage) -> bool,
) -> Result<Option<StreamMessage>, SyncErrorKind> {
    match transport.recv_timeout(wait).await {
        Err(TransportError::Timeout(waited)) => {
            timers.handle_timeout(clock())?;
            Err(TransportError::Timeout(waited).into())
        }
        Ok(Some(message)) if !is_progress(&message) => {
            timers.on_idle_message();
            Ok(Some(message))
        }
        received => {
            timers.on_message();
            Ok(received?)
        }
    }
}
