//! [`FramedTransport`]: a [`SyncTransport`] over any byte stream.

use std::io;

use async_trait::async_trait;
use synctree_primitives::{StreamMessage, SyncTransport, TransportError, TransportStats};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::OUTBOX_HIGH_WATER;
use crate::codec::{FrameDecoder, length_delimited};
use crate::receiver::Receiver;
use crate::sender::Sender;
#[cfg(doc)]
use synctree_primitives::limits::MAX_FRAME_BYTES;

/// Length-delimited protobuf frames over any `AsyncRead + AsyncWrite` stream.
///
/// `send` only queues (see [`OUTBOX_HIGH_WATER`]); the queue is written while the
/// caller waits in `recv` or `close`, so callers must eventually do one of the two.
/// All methods are cancel-safe: dropping a `send`, `recv` or `close` future loses no
/// frame and leaves no frame half-read.
#[derive(Debug)]
pub struct FramedTransport<S> {
    sender: Sender<WriteHalf<S>>,
    receiver: Receiver<ReadHalf<S>>,
    peer: String,
}

impl<S> FramedTransport<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    /// Frames `stream`; `peer` labels the other end in logs and errors.
    pub fn new(stream: S, peer: impl Into<String>) -> Self {
        let (read, write) = tokio::io::split(stream);
        FramedTransport {
            sender: Sender::new(FramedWrite::new(write, length_delimited())),
            receiver: Receiver::new(FramedRead::new(read, FrameDecoder::new())),
            peer: peer.into(),
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
    /// queued. Fails with [`TransportError::FrameTooLarge`] (queuing nothing) when
    /// the encoded message exceeds [`MAX_FRAME_BYTES`], and with
    /// [`TransportError::Closed`] after [`SyncTransport::close`]. Cancelling a waiting
    /// `send` does not unqueue its message.
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.sender.queue(message)?;
        if self.sender.queued() > OUTBOX_HIGH_WATER {
            self.drain_while_reading(OUTBOX_HIGH_WATER).await?;
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

    /// Writes the whole outbox (reading meanwhile), then shuts down the write half.
    /// Receiving keeps working. Closing twice is a no-op.
    async fn close(&mut self) -> Result<(), TransportError> {
        if !self.sender.begin_close()? {
            return Ok(());
        }
        self.drain_while_reading(0).await?;
        self.sender.shutdown().await
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
