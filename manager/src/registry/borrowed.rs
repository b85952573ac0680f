//! [`Borrowed`]: a sized `SyncTransport` over a borrowed one, so a manager generic
//! over `T: SyncTransport + ?Sized` can hand registered protocols a
//! `&mut dyn SyncTransport`.

use std::time::Duration;

use async_trait::async_trait;
use synctree_primitives::{StreamMessage, SyncTransport, TransportError, TransportStats};

/// Forwards every call to the transport it borrows.
pub(crate) struct Borrowed<'a, T: ?Sized>(pub(crate) &'a mut T);

#[async_trait]
impl<T: SyncTransport + ?Sized> SyncTransport for Borrowed<'_, T> {
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.0.send(message).await
    }

    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
        self.0.recv().await
    }

    async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StreamMessage>, TransportError> {
        self.0.recv_timeout(timeout).await
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.0.close().await
    }

    fn stats(&self) -> TransportStats {
        self.0.stats()
    }

    fn peer(&self) -> &str {
        self.0.peer()
    }
}
