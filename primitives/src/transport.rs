//! The transport trait: whole messages in, whole messages out.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::TransportError;
use crate::wire::StreamMessage;

/// Messages and bytes a transport has moved (bytes include framing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Bytes sent, length prefixes included.
    pub bytes_sent: u64,
    /// Bytes received, length prefixes included.
    pub bytes_received: u64,
}

impl TransportStats {
    /// What moved since `earlier`.
    pub fn since(&self, earlier: &TransportStats) -> TransportStats {
        TransportStats {
            messages_sent: self.messages_sent.saturating_sub(earlier.messages_sent),
            messages_received: self
                .messages_received
                .saturating_sub(earlier.messages_received),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
        }
    }
}

/// A bidirectional stream of [`StreamMessage`]s. Protocols run over this trait only,
/// so the same code runs over TCP, in-memory pipes and simulated networks.
#[async_trait]
pub trait SyncTransport: Send {
    /// Queues `message` for the peer. May return before the bytes leave; the
    /// transport keeps flushing while the caller waits in [`SyncTransport::recv`].
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError>;

    /// The next message, or `None` once the peer closed the stream cleanly.
    /// Must be cancel-safe: [`SyncTransport::recv_timeout`] drops it on timeout, and
    /// no message may be lost when that happens.
    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError>;

    /// [`SyncTransport::recv`], failing with [`TransportError::Timeout`] after `timeout`.
    async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StreamMessage>, TransportError> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(timeout)),
        }
    }

    /// Flushes what is queued and closes the sending side. A caller's last `send`
    /// reaches the peer only once it calls `recv` or `close` afterwards.
    async fn close(&mut self) -> Result<(), TransportError>;

    /// Counters since the transport was created.
    fn stats(&self) -> TransportStats;

    /// The peer's address or label, for logs and errors.
    fn peer(&self) -> &str;
}

/// Implements [`SyncTransport`] for a pointer to a transport by forwarding.
macro_rules! forward_transport {
    ($(#[$doc:meta])* $pointer:ty) => {
        $(#[$doc])*
        #[async_trait]
        impl<T: SyncTransport + ?Sized> SyncTransport for $pointer {
            async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
                (**self).send(message).await
            }

            async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
                (**self).recv().await
            }

            async fn recv_timeout(
                &mut self,
                timeout: Duration,
            ) -> Result<Option<StreamMessage>, TransportError> {
                (**self).recv_timeout(timeout).await
            }

            async fn close(&mut self) -> Result<(), TransportError> {
                (**self).close().await
            }

            fn stats(&self) -> TransportStats {
                (**self).stats()
            }

            fn peer(&self) -> &str {
                (**self).peer()
            }
        }
    };
}

forward_transport!(
    /// A borrowed transport is a transport: code generic over `T: SyncTransport + ?Sized`
    /// can hand `&mut &mut T` on as a `&mut dyn SyncTransport`.
    &mut T
);
forward_transport!(
    /// A boxed transport is a transport: a connector that picks TLS, QUIC or plain
    /// TCP per peer returns `Box<dyn SyncTransport>`.
    Box<T>
);
