//! A transport wrapper that counts messages and bytes per message kind, both
//! directions, to show where a session's bytes go (`matrix --breakdown`).

use std::collections::BTreeMap;

use prost::Message;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{StreamMessage, TransportError};
use synctree_test_support::{Tap, TransportHook};
use synctree_transport::LENGTH_PREFIX_BYTES;

/// Messages and framed bytes of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindTally {
    /// Messages.
    pub messages: u64,
    /// Bytes, length prefixes included.
    pub bytes: u64,
}

/// A [`Tap`] hook that tallies everything crossing a transport by message kind.
#[derive(Debug, Default)]
pub struct Tally {
    kinds: BTreeMap<&'static str, KindTally>,
}

impl Tally {
    /// Wraps `inner` in a tap that counts what crosses it.
    pub fn wrap<T>(inner: T) -> Tap<T, Tally> {
        Tap::new(inner, Tally::default())
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

impl TransportHook for Tally {
    fn before_send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.count(message);
        Ok(())
    }

    fn after_recv(&mut self, message: Option<&StreamMessage>) {
        if let Some(m) = message {
            self.count(m);
        }
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
        Some(Body::ContextList(_)) => "context_list",
        Some(Body::SketchWindow(_)) => "sketch_window",
        Some(Body::SketchMore(_)) => "sketch_more",
        Some(Body::SketchEnd(_)) => "sketch_end",
        Some(Body::Abort(_)) => "abort",
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
    use synctree_primitives::SyncTransport;
    use synctree_primitives::wire::Finish;
    use synctree_transport::FramedTransport;

    #[tokio::test]
    async fn tallies_match_the_transport_counters() {
        let (a, mut b) = FramedTransport::memory_pair(1 << 16);
        let mut a = Tally::wrap(a);
        let finish = StreamMessage::new(Body::Finish(Finish {
            root: vec![0; 32].into(),
        }));
        a.send(&finish).await.unwrap();
        a.close().await.unwrap();
        assert_eq!(b.recv().await.unwrap(), Some(finish));
        let t = a.hook.kinds()["finish"];
        assert_eq!((t.messages, t.bytes), (1, a.stats().bytes_sent));
        assert!(describe(a.hook.kinds()).starts_with("finish 1×"));
    }
}
