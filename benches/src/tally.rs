//! A transport wrapper that counts messages and bytes per message kind, both
//! directions, to show where a session's bytes go (`matrix --breakdown`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use prost::Message;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{StreamMessage, SyncTransport, TransportError, TransportStats};
use synctree_transport::LENGTH_PREFIX_BYTES;

/// Messages and framed bytes of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindTally {
    /// Messages.
    pub messages: u64,
    /// Bytes, length prefixes included.
    pub bytes: u64,
}

/// Wraps a transport and tallies everything that crosses it by message kind.
#[derive(Debug)]
pub struct Tally<T> {
    inner: T,
    kinds: BTreeMap<&'static str, KindTally>,
}

impl<T> Tally<T> {
    /// Counts what crosses `inner`.
    pub fn new(inner: T) -> Self {
        Tally {
            inner,
            kinds: BTreeMap::new(),
        }
    }

    /// The tally so far, by kind name (`node_response`, `entry_batch`, …).
    pub fn kinds(&self) -> &BTreeMap<&'static str, KindTally> {
        &self.kinds
    }

    fn count(&mut self, message: &StreamMessage) {
        let slot = self.kinds.entry(kind(message)).or_default();
        slot.messages += 1;
        slot.bytes += (message.encoded_len() + LENGTH_PREFIX_BYTES) as u64;
    }
}

/// The wire name of a message's body.
pub fn kind(message: &StreamMessage) -> &'static str {
    match &message.body {
        None => "empty",
        Some(Body::Init(_)) => "init",
        Some(Body::Handshake(_)) => "handshake",
        Some(Body::NodeRequest(_)) => "node_request",
        Some(Body::NodeResponse(_)) => "node_response",
        Some(Body::EntryRequest(_)) => "entry_request",
        Some(Body::EntryBatch(_)) => "entry_batch",
        Some(Body::EntryPush(_)) => "entry_push",
        Some(Body::Finish(_)) => "finish",
        Some(Body::FinishAck(_)) => "finish_ack",
        Some(Body::SnapshotBegin(_)) => "snapshot_begin",
        Some(Body::SnapshotPage(_)) => "snapshot_page",
        Some(Body::SnapshotAck(_)) => "snapshot_ack",
        Some(Body::Abort(_)) => "abort",
    }
}

#[async_trait]
impl<T: SyncTransport> SyncTransport for Tally<T> {
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.count(message);
        self.inner.send(message).await
    }

    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
        let message = self.inner.recv().await?;
        if let Some(m) = &message {
            self.count(m);
        }
        Ok(message)
    }

    async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StreamMessage>, TransportError> {
        let message = self.inner.recv_timeout(timeout).await?;
        if let Some(m) = &message {
            self.count(m);
        }
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

/// `kind: messages × bytes` pairs, largest bytes first.
pub fn describe(kinds: &BTreeMap<&'static str, KindTally>) -> String {
    let mut list: Vec<(&&str, &KindTally)> = kinds.iter().collect();
    list.sort_by_key(|(_, t)| std::cmp::Reverse(t.bytes));
    let parts: Vec<String> = list
        .iter()
        .map(|(k, t)| format!("{k} {}×{}B", t.messages, t.bytes))
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::wire::Finish;
    use synctree_transport::FramedTransport;

    #[tokio::test]
    async fn tallies_match_the_transport_counters() {
        let (a, mut b) = FramedTransport::memory_pair(1 << 16);
        let mut a = Tally::new(a);
        let finish = StreamMessage::new(Body::Finish(Finish {
            root: vec![0; 32].into(),
        }));
        a.send(&finish).await.unwrap();
        a.close().await.unwrap();
        assert_eq!(b.recv().await.unwrap(), Some(finish));
        let t = a.kinds()["finish"];
        assert_eq!((t.messages, t.bytes), (1, a.stats().bytes_sent));
        assert!(describe(a.kinds()).starts_with("finish 1×"));
    }
}
