//! [`FramedTransport`]: a [`SyncTransport`] over any byte stream.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use synctree_primitives::{StreamMessage, SyncTransport, TransportError, TransportStats};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::budget::BufferBudget;
use crate::codec::{FrameDecoder, length_delimited};
use crate::receiver::Receiver;
use crate::sender::Sender;
use crate::{DEFAULT_SEND_TIMEOUT, OUTBOX_HIGH_WATER};
use synctree_primitives::limits::MAX_FRAME_BYTES;

/// Length-delimited protobuf frames over any `AsyncRead + AsyncWrite` stream.
///
/// `send` only queues (see [`OUTBOX_HIGH_WATER`]); the queue is written while the
/// caller waits in `recv` or `close`, so callers must eventually do one of the two.
/// All methods are cancel-safe: dropping a `send`, `recv` or `close` future loses no
/// frame and leaves no frame half-read. A `send` or `close` that waits longer than
/// the send timeout for the peer to take bytes fails with
/// [`TransportError::Timeout`], and every later `send` and `close` fails at once.
#[derive(Debug)]
pub struct FramedTransport<S> {
    sender: Sender<WriteHalf<S>>,
    receiver: Receiver<ReadHalf<S>>,
    peer: String,
    send_timeout: Duration,
}

impl<S> FramedTransport<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    /// Frames `stream`; `peer` labels the other end in logs and errors. Needs a tokio
    /// runtime with the time driver (the send timeout).
    pub fn new(stream: S, peer: impl Into<String>) -> Self {
        let (read, write) = tokio::io::split(stream);
        FramedTransport {
            sender: Sender::new(FramedWrite::new(write, length_delimited())),
            receiver: Receiver::new(FramedRead::new(read, FrameDecoder::new())),
            peer: peer.into(),
            send_timeout: DEFAULT_SEND_TIMEOUT,
        }
    }

    /// Charges what this transport buffers to `budget`, shared with other
    /// transports: while the budget is spent, nobody reads ahead and every `send`
    /// waits until its own outbox is empty, so the transports together hold at most
    /// the budget plus one frame each.
    pub fn with_budget(mut self, budget: Arc<BufferBudget>) -> Self {
        self.sender.rebind(Arc::clone(&budget));
        self.receiver.rebind(budget);
        self
    }

    /// Sets how long a `send` or `close` may wait for the peer to take bytes
    /// (default [`DEFAULT_SEND_TIMEOUT`]).
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Bytes buffered now (outbox plus inbox), and the most each held at once
    /// (outbox, inbox); at most [`MAX_BUFFERED_PER_TRANSPORT`](crate::MAX_BUFFERED_PER_TRANSPORT).
    pub fn buffered(&self) -> (usize, usize, usize) {
        let (inbox, inbox_peak) = self.receiver.inbox();
        (self.sender.queued() + inbox, self.sender.peak(), inbox_peak)
    }

    /// Waits until the peer's first frame (or the end of the stream) has arrived,
    /// refusing a first frame declared longer than `max_bytes`; the frame (or the
    /// error) is what the next `recv` returns. Used before a connection gets a
    /// session slot, so a connection that has sent nothing costs no slot.
    pub async fn wait_first_frame(&mut self, max_bytes: usize) {
        self.receiver.set_max_frame(max_bytes);
        while !self.receiver.has_next() {
            self.receiver.fill().await;
        }
        self.receiver.set_max_frame(MAX_FRAME_BYTES);
    }

    /// [`Self::drain_while_reading`] under the send timeout; on expiry the
    /// transport gives up writing.
    async fn drain_in_time(&mut self, limit: usize) -> Result<(), TransportError> {
        let timeout = self.send_timeout;
        match tokio::time::timeout(timeout, self.drain_while_reading(limit)).await {
            Ok(drained) => drained,
            Err(_) => {
                self.sender.time_out();
                Err(TransportError::Timeout(timeout))
            }
        }
    }

    /// Writes until at most `limit` bytes stay queued (`0`: everything, flushed),
    /// reading incoming frames into the inbox meanwhile so that two peers writing
    /// to each other at once cannot deadlock.
    async fn drain_while_reading(&mut self, limit: usize) -> Result<(), TransportError> {
        let Self {
            sender, receiver, ..
        } = self;
        loop {
            tokio::select! {
                drained = sender.drain(limit) => return drained.map_err(|e| sender.fail(e)),
                () = receiver.fill(), if receiver.has_room() => {}
            }
        }
    }
}

impl FramedTransport<TcpStream> {
    /// Frames a TCP connection, labelled with the peer's address. Turns off Nagle's
    /// algorithm: frames are already coalesced in the writer, and small requests
    /// must not wait for the previous one's acknowledgement.
    pub fn tcp(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?.to_string();
        Ok(Self::new(stream, peer))
    }
}

impl FramedTransport<DuplexStream> {
    /// Two connected in-memory transports, labelled `memory-a` and `memory-b`, each
    /// direction buffering `buffer_bytes` (at least 1) in the pipe.
    pub fn memory_pair(buffer_bytes: usize) -> (Self, Self) {
        let (a, b) = tokio::io::duplex(buffer_bytes.max(1));
        (Self::new(a, "memory-a"), Self::new(b, "memory-b"))
    }
}

#[async_trait]
impl<S> SyncTransport for FramedTransport<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    /// Queues `message`; waits only while more than [`OUTBOX_HIGH_WATER`] bytes are
    /// queued (or, while the shared [`BufferBudget`] is spent, until the outbox is
    /// empty), for at most the send timeout. Fails with
    /// [`TransportError::FrameTooLarge`] (queuing nothing) when the encoded message
    /// exceeds [`MAX_FRAME_BYTES`], with [`TransportError::Closed`] after
    /// [`SyncTransport::close`], and with [`TransportError::Timeout`] when the peer
    /// took too little for too long. Cancelling a waiting `send` does not unqueue
    /// its message.
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.sender.queue(message)?;
        let limit = if self.sender.budget_spent() {
            0
        } else {
            OUTBOX_HIGH_WATER
        };
        if self.sender.queued() > limit {
            self.drain_in_time(limit).await?;
        }
        Ok(())
    }

    /// Returns a buffered message if there is one; otherwise flushes the outbox while
    /// reading the next frame. A write failure met here does not hide what the peer
    /// sent: it is reported by the next `send` or `close`.
    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
        let Self {
            sender, receiver, ..
        } = self;
        loop {
            if let Some(result) = receiver.take() {
                return result;
            }
            tokio::select! {
                flushed = sender.drain(0), if sender.needs_flush() => {
                    if let Err(e) = flushed {
                        sender.defer(e);
                    }
                }
                () = receiver.fill() => {}
            }
        }
    }

    /// Writes the whole outbox (reading meanwhile), then shuts down the write half,
    /// within the send timeout. Receiving keeps working. Closing twice is a no-op.
    async fn close(&mut self) -> Result<(), TransportError> {
        if !self.sender.begin_close()? {
            return Ok(());
        }
        self.drain_in_time(0).await?;
        let timeout = self.send_timeout;
        match tokio::time::timeout(timeout, self.sender.shutdown()).await {
            Ok(shut) => shut,
            Err(_) => {
                self.sender.time_out();
                Err(TransportError::Timeout(timeout))
            }
        }
    }

    fn stats(&self) -> TransportStats {
        let (messages_sent, bytes_sent) = self.sender.counters();
        let (messages_received, bytes_received) = self.receiver.counters();
        TransportStats {
            messages_sent,
            messages_received,
            bytes_sent,
            bytes_received,
        }
    }

    fn peer(&self) -> &str {
        &self.peer
    }
}
