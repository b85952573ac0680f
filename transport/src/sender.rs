//! The sending half: an outbox of encoded frames and the codec's writer.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::sink::Sink;
use prost::Message;
use synctree_primitives::limits::MAX_FRAME_BYTES;
use synctree_primitives::{StreamMessage, TransportError};
use tokio::io::AsyncWrite;
use tokio_util::codec::{FramedWrite, LengthDelimitedCodec};

use crate::LENGTH_PREFIX_BYTES;
use crate::budget::{BufferBudget, Charge};
use std::sync::Arc;

/// Whether the sending side still takes messages.
#[derive(Debug)]
enum WriteState {
    Open,
    /// `close` started: no new messages, the outbox is still being written.
    Closing,
    /// The write half is shut down.
    Closed,
    /// Writing failed; the error is reported once by the next `send` or `close`.
    Failed(Option<io::Error>),
}

/// Queues frames and hands them to the writer only when it is ready for them, so a
/// cancelled flush never loses a frame.
#[derive(Debug)]
pub(crate) struct Sender<W> {
    frames: FramedWrite<W, LengthDelimitedCodec>,
    outbox: VecDeque<Bytes>,
    /// Bytes in `outbox`, length prefixes included, charged to the node's budget.
    queued: Charge,
    /// Frames were handed to the writer since its last completed flush.
    dirty: bool,
    state: WriteState,
    messages: u64,
    bytes: u64,
}

impl<W: AsyncWrite + Unpin> Sender<W> {
    pub(crate) fn new(frames: FramedWrite<W, LengthDelimitedCodec>) -> Self {
        Sender {
            frames,
            outbox: VecDeque::new(),
            queued: Charge::new(BufferBudget::unlimited()),
            dirty: false,
            state: WriteState::Open,
            messages: 0,
            bytes: 0,
        }
    }

    /// Encodes `message` onto the outbox. Nothing is queued when it is too large.
    pub(crate) fn queue(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.ensure_open()?;
        let len = message.encoded_len();
        if len > MAX_FRAME_BYTES {
            return Err(TransportError::FrameTooLarge {
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        self.outbox.push_back(Bytes::from(message.encode_to_vec()));
        self.queued.add(len + LENGTH_PREFIX_BYTES);
        Ok(())
    }

    /// Bytes waiting in the outbox, length prefixes included.
    pub(crate) fn queued(&self) -> usize {
        self.queued.bytes()
    }

    /// Most bytes the outbox held at once.
    pub(crate) fn peak(&self) -> usize {
        self.queued.peak()
    }

    /// Whether the shared budget is spent.
    pub(crate) fn budget_spent(&self) -> bool {
        self.queued.budget().over()
    }

    /// Charges the outbox to `budget` from now on.
    pub(crate) fn rebind(&mut self, budget: Arc<BufferBudget>) {
        self.queued.rebind(budget);
    }

    /// Gives up writing: the peer took nothing for too long. Later sends fail.
    pub(crate) fn time_out(&mut self) {
        self.abandon(Some(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer took no bytes within the send timeout",
        )));
    }

    /// Whether a flush would make progress: frames are queued or not yet flushed.
    pub(crate) fn needs_flush(&self) -> bool {
        match self.state {
            WriteState::Open | WriteState::Closing => !self.outbox.is_empty() || self.dirty,
            WriteState::Closed | WriteState::Failed(_) => false,
        }
    }

    /// Writes until at most `limit` bytes remain queued; once the outbox is empty it
    /// also flushes the writer. Cancel-safe: a frame leaves the outbox only when the
    /// writer has accepted it.
    pub(crate) async fn drain(&mut self, limit: usize) -> io::Result<()> {
        poll_fn(|cx| self.poll_drain(cx, limit)).await
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>, limit: usize) -> Poll<io::Result<()>> {
        while self.queued.bytes() > limit {
            ready!(Sink::<Bytes>::poll_ready(Pin::new(&mut self.frames), cx))?;
            self.hand_over_front()?;
        }
        if self.outbox.is_empty() && self.dirty {
            ready!(Sink::<Bytes>::poll_flush(Pin::new(&mut self.frames), cx))?;
            self.dirty = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Moves the oldest frame into the writer; only call after `poll_ready` said Ready.
    fn hand_over_front(&mut self) -> io::Result<()> {
        let Some(frame) = self.outbox.pop_front() else {
            return Ok(());
        };
        let wire_len = frame.len() + LENGTH_PREFIX_BYTES;
        self.queued.sub(wire_len);
        Pin::new(&mut self.frames).start_send(frame)?;
        self.dirty = true;
        self.messages += 1;
        self.bytes += wire_len as u64;
        Ok(())
    }

    /// Refuses new messages from now on; `Ok(false)` when already shut down.
    pub(crate) fn begin_close(&mut self) -> Result<bool, TransportError> {
        match self.state {
            WriteState::Closed => Ok(false),
            WriteState::Failed(_) => Err(self.take_failure()),
            WriteState::Open | WriteState::Closing => {
                self.state = WriteState::Closing;
                Ok(true)
            }
        }
    }

    /// Flushes and shuts down the write half (call after the outbox drained).
    pub(crate) async fn shutdown(&mut self) -> Result<(), TransportError> {
        match poll_fn(|cx| Sink::<Bytes>::poll_close(Pin::new(&mut self.frames), cx)).await {
            Ok(()) => {
                self.state = WriteState::Closed;
                self.dirty = false;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Records a write failure to report now: later sends fail too.
    pub(crate) fn fail(&mut self, error: io::Error) -> TransportError {
        self.abandon(None);
        TransportError::Io(error)
    }

    /// Records a write failure to report from the next `send` or `close` (used by
    /// `recv`, which keeps delivering what the peer sent).
    pub(crate) fn defer(&mut self, error: io::Error) {
        self.abandon(Some(error));
    }

    fn abandon(&mut self, error: Option<io::Error>) {
        self.outbox.clear();
        let held = self.queued.bytes();
        self.queued.sub(held);
        self.dirty = false;
        self.state = WriteState::Failed(error);
    }

    fn ensure_open(&mut self) -> Result<(), TransportError> {
        match self.state {
            WriteState::Open => Ok(()),
            WriteState::Closing | WriteState::Closed => Err(TransportError::Closed),
            WriteState::Failed(_) => Err(self.take_failure()),
        }
    }

    /// The stored write error the first time, a generic one afterwards.
    fn take_failure(&mut self) -> TransportError {
        let stored = match &mut self.state {
            WriteState::Failed(error) => error.take(),
            _ => None,
        };
        TransportError::Io(stored.unwrap_or_else(|| io::Error::other("an earlier write failed")))
    }

    /// Messages and bytes handed to the writer, length prefixes included.
    pub(crate) fn counters(&self) -> (u64, u64) {
        (self.messages, self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::length_delimited;
    use synctree_primitives::wire::{Finish, stream_message::Body};

    #[tokio::test]
    async fn queued_bytes_count_prefixes_and_move_to_the_counters_once_written()
    -> Result<(), TransportError> {
        let mut sender = Sender::new(FramedWrite::new(tokio::io::sink(), length_delimited()));
        let finish = StreamMessage::new(Body::Finish(Finish {
            root: vec![1; 32].into(),
        }));
        sender.queue(&finish)?;
        sender.queue(&StreamMessage::default())?; // a zero-length frame still counts
        let expected = finish.encoded_len() + 2 * LENGTH_PREFIX_BYTES;
        assert_eq!((sender.queued(), sender.counters()), (expected, (0, 0)));
        assert!(sender.needs_flush());

        sender.drain(0).await?;
        assert_eq!((sender.queued(), sender.needs_flush()), (0, false));
        assert_eq!(sender.counters(), (2, expected as u64));

        assert!(sender.begin_close()?);
        assert!(matches!(sender.queue(&finish), Err(TransportError::Closed)));
        Ok(())
    }
}
