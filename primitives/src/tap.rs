//! [`Tap`]: the one delegating [`SyncTransport`]: a transport that forwards to
//! another and calls a [`TransportHook`] around every send and receive. A node
//! uses it to watch a session's progress; tests use it to count, cut and trigger.

use std::time::Duration;

use async_trait::async_trait;

use crate::{StreamMessage, SyncTransport, TransportError, TransportStats};

/// What a [`Tap`] does around the transport it wraps. Every method has a
/// pass-through default, so a hook implements only what it watches.
pub trait TransportHook: Send {
    /// Before a message is sent; an error fails the send without sending.
    fn before_send(&mut self, _message: &StreamMessage) -> Result<(), TransportError> {
        Ok(())
    }

    /// Before a receive is attempted; an error fails it without reading.
    fn before_recv(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    /// After a receive returned a message (`None`: the peer closed).
    fn after_recv(&mut self, _message: Option<&StreamMessage>) {}
}

/// A transport that forwards to `inner` and calls `hook` around every send and
/// receive: counting, cutting a connection after N frames, triggering a write
/// mid-session.
#[derive(Debug)]
pub struct Tap<T, H> {
    /// The wrapped transport.
    pub inner: T,
    /// What runs around each call.
    pub hook: H,
}

impl<T, H> Tap<T, H> {
    /// Wraps `inner` with `hook`.
    pub fn new(inner: T, hook: H) -> Self {
        Tap { inner, hook }
    }
}

#[async_trait]
impl<T: SyncTransport, H: TransportHook> SyncTransport for Tap<T, H> {
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.hook.before_send(message)?;
        self.inner.send(message).await
    }

    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
        self.hook.before_recv()?;
        let message = self.inner.recv().await?;
        self.hook.after_recv(message.as_ref());
        Ok(message)
    }

    /// Forwards the timeout to `inner`, so its own timer (real or simulated) runs.
    async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StreamMessage>, TransportError> {
        self.hook.before_recv()?;
        let message = self.inner.recv_timeout(timeout).await?;
        self.hook.after_recv(message.as_ref());
        Ok(message)
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.inner.close().await
    }

    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }

    fn peer(&self) -> &str {
        self.inner.peer()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::Finish;
    use crate::wire::stream_message::Body;
    use std::collections::VecDeque;

    /// Sends into its own receive queue.
    #[derive(Default)]
    struct Loopback(VecDeque<StreamMessage>);

    #[async_trait]
    impl SyncTransport for Loopback {
        async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
            self.0.push_back(message.clone());
            Ok(())
        }
        async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
            Ok(self.0.pop_front())
        }
        async fn close(&mut self) -> Result<(), TransportError> {
            Ok(())
        }
        fn stats(&self) -> TransportStats {
            TransportStats::default()
        }
        fn peer(&self) -> &str {
            "loopback"
        }
    }

    /// Fails sends after `sends_left`, counts what it receives.
    struct CutAfter {
        sends_left: usize,
        received: usize,
    }

    impl TransportHook for CutAfter {
        fn before_send(&mut self, _: &StreamMessage) -> Result<(), TransportError> {
            self.sends_left = self
                .sends_left
                .checked_sub(1)
                .ok_or(TransportError::Closed)?;
            Ok(())
        }
        fn after_recv(&mut self, message: Option<&StreamMessage>) {
            self.received += usize::from(message.is_some());
        }
    }

    fn finish() -> StreamMessage {
        StreamMessage::new(Body::Finish(Finish {
            root: vec![0; 32].into(),
        }))
    }

    #[tokio::test]
    async fn hooks_see_every_call_and_can_fail_a_send() {
        let hook = CutAfter {
            sends_left: 1,
            received: 0,
        };
        let mut tap = Tap::new(Loopback::default(), hook);
        tap.send(&finish()).await.unwrap();
        assert!(matches!(
            tap.send(&finish()).await,
            Err(TransportError::Closed)
        ));
        assert_eq!(tap.inner.0.len(), 1, "the failed send sent nothing");
        assert_eq!(
            tap.recv_timeout(Duration::from_secs(1)).await.unwrap(),
            Some(finish())
        );
        assert_eq!(tap.recv().await.unwrap(), None);
        assert_eq!((tap.hook.received, tap.peer()), (1, "loopback"));
    }
}
