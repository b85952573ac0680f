//! Helpers shared by the transport tests: sample messages, hand-built frames and a
//! hang guard.

#![allow(dead_code)] // each test binary uses a subset

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use synctree_primitives::wire::{
    AbortCode, EntryBatch, EntryPush, Finish, HashComparisonInit, InitPayload, LeafSummary,
    NodeChildren, NodeRequest, NodeResponse, WireEntry, init_payload::Kind, stream_message::Body,
};
use synctree_primitives::{StreamMessage, SyncTransport, TransportError};
use synctree_transport::{FramedTransport, LENGTH_PREFIX_BYTES};
use tokio::io::DuplexStream;

/// What every test returns, so that `?` replaces `unwrap`.
pub(crate) type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Generous bound on any one test step: a hang guard, not a timing assertion.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(120);

/// Runs `step`, failing instead of hanging forever if it never completes.
pub(crate) async fn guard<F: Future>(step: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(HANG_GUARD, step).await
}

/// One message of most kinds, including an empty one (a zero-length frame).
pub(crate) fn samples() -> Vec<StreamMessage> {
    let root = Bytes::from(vec![7u8; 32]);
    vec![
        StreamMessage::new(Body::Init(InitPayload {
            protocol_version: 1,
            context_id: "demo".into(),
            kind: Some(Kind::HashComparison(HashComparisonInit {
                root: root.clone(),
            })),
        })),
        StreamMessage::new(Body::NodeRequest(NodeRequest {
            request_id: 1,
            positions: vec![0, 1, 17, 4095],
            ..Default::default()
        })),
        StreamMessage::default(),
        StreamMessage::new(Body::NodeResponse(NodeResponse {
            request_id: 1,
            children: vec![NodeChildren {
                position: 0,
                present: 0b101,
                hashes: vec![3u8; 64].into(),
            }],
            leaves: vec![LeafSummary {
                position: 9,
                ..Default::default()
            }],
            last: true,
        })),
        StreamMessage::new(Body::EntryBatch(EntryBatch {
            request_id: 2,
            entries: vec![entry(b"key", &[0x5a; 300], 1), entry(b"gone", b"", 2)],
            last: false,
        })),
        StreamMessage::abort(AbortCode::Busy, "try again later"),
        StreamMessage::new(Body::Finish(Finish { root })),
    ]
}

/// A wire entry with the given key, value and clock.
pub(crate) fn entry(key: &[u8], value: &[u8], hlc: u64) -> WireEntry {
    WireEntry {
        key: Bytes::copy_from_slice(key),
        value: Bytes::copy_from_slice(value),
        hlc,
        node: 42,
        tombstone: value.is_empty(),
    }
}

/// An `EntryPush` of one entry whose value is `value_bytes` long; `tag` is its clock.
pub(crate) fn push(value_bytes: usize, tag: u64) -> StreamMessage {
    let value = vec![(tag % 251) as u8; value_bytes];
    StreamMessage::new(Body::EntryPush(EntryPush {
        entries: vec![entry(b"big", &value, tag)],
    }))
}

/// The clock of the first entry of an `EntryPush`, i.e. the `tag` given to [`push`].
pub(crate) fn tag_of(message: &StreamMessage) -> Option<u64> {
    match &message.body {
        Some(Body::EntryPush(p)) => p.entries.first().map(|e| e.hlc),
        _ => None,
    }
}

/// A push whose encoding is exactly `len` bytes, if one exists near that size.
pub(crate) fn push_of_encoded_len(len: usize) -> Option<StreamMessage> {
    let overhead = push(0, 1).encoded_len();
    let start = len.saturating_sub(overhead + 64);
    (start..=len)
        .map(|value_bytes| push(value_bytes, 1))
        .find(|m| m.encoded_len() == len)
}

/// The frames a correct sender writes for `messages`, built by hand.
pub(crate) fn frame_bytes(messages: &[StreamMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        let body = message.encode_to_vec();
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// Bytes on the wire for `messages`: each encoding plus its length prefix.
pub(crate) fn wire_len(messages: &[StreamMessage]) -> u64 {
    messages
        .iter()
        .map(|m| (m.encoded_len() + LENGTH_PREFIX_BYTES) as u64)
        .sum()
}

/// A transport whose peer is a raw pipe the test writes bytes into.
pub(crate) fn raw_pair(buffer_bytes: usize) -> (FramedTransport<DuplexStream>, DuplexStream) {
    let (ours, raw) = tokio::io::duplex(buffer_bytes);
    (FramedTransport::new(ours, "raw-peer"), raw)
}

/// Receives until the peer closes.
pub(crate) async fn recv_all<T: SyncTransport>(
    t: &mut T,
) -> Result<Vec<StreamMessage>, TransportError> {
    let mut got = Vec::new();
    while let Some(message) = t.recv().await? {
        got.push(message);
    }
    Ok(got)
}

/// Receives `n` messages; the peer closing early is an error.
pub(crate) async fn recv_n<T: SyncTransport>(
    t: &mut T,
    n: usize,
) -> Result<Vec<StreamMessage>, String> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match t.recv().await {
            Ok(Some(message)) => got.push(message),
            Ok(None) => return Err(format!("peer closed after {} of {n} messages", got.len())),
            Err(e) => return Err(format!("recv failed after {} messages: {e:?}", got.len())),
        }
    }
    Ok(got)
}

/// Every message `t` can return without more bytes arriving: polls `recv` until it
/// would wait, then cancels it (which must keep any partial frame buffered).
pub(crate) async fn recv_ready<T: SyncTransport>(
    t: &mut T,
) -> Result<Vec<StreamMessage>, TransportError> {
    let mut got = Vec::new();
    loop {
        tokio::select! {
            biased;
            received = t.recv() => match received? {
                Some(message) => got.push(message),
                None => return Ok(got),
            },
            () = tokio::task::yield_now() => return Ok(got),
        }
    }
}
