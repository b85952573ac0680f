//! The in-memory pipe between a session's [`SimStream`] and the pump that owns the
//! network stream.
//!
//! The pipe never touches tokio's cooperative budget and accepts a session's
//! writes without yielding until [`PIPE_CAPACITY`] is queued, so how many bytes
//! the pump finds in it depends only on what the session did, not on the order in
//! which the session's `select!` happened to poll its branches.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::SimFault;

/// Bytes a session may queue for the network before its writes wait: a socket's
/// send buffer. Large enough that a session's burst of requests is handed over
/// whole; small enough that a stalled connection holds little.
pub const PIPE_CAPACITY: usize = 256 * 1024;

/// Bytes the pump delivers to a session before it stops reading the network: a
/// socket's receive buffer.
pub const PIPE_INBOUND_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Default)]
struct State {
    /// Written by the session, not yet taken by the pump.
    outbound: BytesMut,
    /// Delivered by the pump, not yet read by the session.
    inbound: BytesMut,
    /// The session shut its write side down.
    write_shutdown: bool,
    /// The peer closed its side: reads end after `inbound`.
    eof: bool,
    /// The connection failed: reads fail after `inbound`, writes fail at once.
    failure: Option<(io::ErrorKind, SimFault)>,
    /// The session dropped its end.
    dropped: bool,
    session_reader: Option<Waker>,
    session_writer: Option<Waker>,
    pump: Option<Waker>,
}

impl State {
    fn wake_pump(&mut self) {
        if let Some(waker) = self.pump.take() {
            waker.wake();
        }
    }

    fn wake_session(&mut self) {
        for waker in [self.session_reader.take(), self.session_writer.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }

    fn failure(&self) -> Option<io::Error> {
        self.failure
            .as_ref()
            .map(|(kind, fault)| io::Error::new(*kind, fault.clone()))
    }
}

/// What the pump may send next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outbound {
    /// Bytes the session wrote.
    Data(Bytes),
    /// Everything was taken and the session shut its write side down.
    Shutdown,
    /// Everything was taken and the session dropped its end.
    Dropped,
    /// Nothing yet.
    Nothing,
}

/// The shared state; one [`SimStream`] and one pump hold it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pipe(Arc<Mutex<State>>);

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock short of a bug; the state is whole.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session's end.
    pub(crate) fn session_end(&self) -> SimStream {
        SimStream { pipe: self.clone() }
    }

    /// Takes up to `max` bytes the session wrote.
    pub(crate) fn take_outbound(&self, max: usize) -> Outbound {
        let mut state = self.lock();
        if !state.outbound.is_empty() && max > 0 {
            let n = state.outbound.len().min(max);
            let data = state.outbound.split_to(n).freeze();
            if let Some(waker) = state.session_writer.take() {
                waker.wake();
            }
            return Outbound::Data(data);
        }
        match (
            state.outbound.is_empty(),
            state.dropped,
            state.write_shutdown,
        ) {
            (true, true, _) => Outbound::Dropped,
            (true, false, true) => Outbound::Shutdown,
            _ => Outbound::Nothing,
        }
    }

    /// Whether the session wrote anything the pump has not taken.
    pub(crate) fn has_outbound(&self) -> bool {
        !self.lock().outbound.is_empty()
    }

    /// Room for inbound bytes.
    pub(crate) fn inbound_room(&self) -> usize {
        PIPE_INBOUND_CAPACITY.saturating_sub(self.lock().inbound.len())
    }

    /// Hands bytes from the network to the session.
    pub(crate) fn deliver(&self, data: &[u8]) {
        let mut state = self.lock();
        state.inbound.extend_from_slice(data);
        if let Some(waker) = state.session_reader.take() {
            waker.wake();
        }
    }

    /// The peer closed its side cleanly.
    pub(crate) fn set_eof(&self) {
        let mut state = self.lock();
        state.eof = true;
        state.wake_session();
    }

    /// The connection failed: the session's writes fail from now on, its reads
    /// once it has read what was delivered.
    pub(crate) fn fail(&self, kind: io::ErrorKind, fault: SimFault) {
        let mut state = self.lock();
        state.failure.get_or_insert((kind, fault));
        state.outbound.clear();
        state.wake_session();
    }

    /// Whether the session dropped its end.
    pub(crate) fn is_dropped(&self) -> bool {
        self.lock().dropped
    }

    /// Registers the pump's waker for any change the session makes.
    pub(crate) fn register_pump(&self, cx: &mut Context<'_>) {
        self.lock().pump = Some(cx.waker().clone());
    }
}

/// The session's end of a simulated connection: what [`crate::FramedTransport`]
/// reads and writes inside a [`SimTransport`](crate::sim::SimTransport).
#[derive(Debug)]
pub struct SimStream {
    pipe: Pipe,
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.pipe.lock();
        if !state.inbound.is_empty() {
            let n = state.inbound.len().min(buf.remaining());
            buf.put_slice(&state.inbound[..n]);
            state.inbound.advance(n);
            state.wake_pump();
            return Poll::Ready(Ok(()));
        }
        if let Some(error) = state.failure() {
            return Poll::Ready(Err(error));
        }
        if state.eof {
            return Poll::Ready(Ok(()));
        }
        state.session_reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.pipe.lock();
        if let Some(error) = state.failure() {
            return Poll::Ready(Err(error));
        }
        if state.write_shutdown {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = PIPE_CAPACITY.saturating_sub(state.outbound.len());
        if room == 0 {
            state.session_writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        state.outbound.extend_from_slice(&data[..n]);
        state.wake_pump();
        Poll::Ready(Ok(n))
    }

    /// Bytes are handed to the pump as they are written: nothing to flush, as with
    /// a kernel socket.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.pipe.lock().failure() {
            Some(error) => Poll::Ready(Err(error)),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Records the shutdown; the pump sends it after the queued bytes.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.pipe.lock();
        if let Some(error) = state.failure() {
            return Poll::Ready(Err(error));
        }
        state.write_shutdown = true;
        state.wake_pump();
        Poll::Ready(Ok(()))
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        let mut state = self.pipe.lock();
        state.dropped = true;
        state.inbound.clear();
        state.wake_pump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn take(pipe: &Pipe, max: usize) -> Outbound {
        pipe.take_outbound(max)
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_then_end_with_eof_or_the_failure() {
        let pipe = Pipe::default();
        let mut session = pipe.session_end();
        session.write_all(b"hello").await.unwrap();
        assert_eq!(take(&pipe, 3), Outbound::Data(Bytes::from_static(b"hel")));
        assert_eq!(take(&pipe, 9), Outbound::Data(Bytes::from_static(b"lo")));
        assert_eq!(take(&pipe, 9), Outbound::Nothing);

        pipe.deliver(b"abc");
        pipe.fail(
            io::ErrorKind::ConnectionReset,
            SimFault::Cut { after_bytes: 8 },
        );
        let mut buf = [0u8; 8];
        assert!(matches!(session.read(&mut buf).await, Ok(3)));
        let error = session.read(&mut buf).await.err();
        assert_eq!(
            error.map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionReset)
        );
        assert!(session.write(b"x").await.is_err());

        drop(session);
        assert_eq!(take(&pipe, 9), Outbound::Dropped);
    }
}
