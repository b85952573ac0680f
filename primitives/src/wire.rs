//! The protobuf messages (generated from `proto/synctree.proto`) and helpers.

#![allow(missing_docs, unreachable_pub)]
include!(concat!(env!("OUT_DIR"), "/synctree.v1.rs"));

use crate::limits::MAX_ABORT_MESSAGE_BYTES;

mod snapshot_page;
pub use snapshot_page::SnapshotPage;

/// Wire protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

impl StreamMessage {
    /// Wraps a message body.
    pub fn new(body: stream_message::Body) -> Self {
        StreamMessage { body: Some(body) }
    }

    /// Short name of the body, for errors and logs.
    pub fn kind(&self) -> &'static str {
        use stream_message::Body;
        match &self.body {
            None => "empty message",
            Some(Body::Init(_)) => "init",
            Some(Body::Handshake(_)) => "handshake",
            Some(Body::NodeRequest(_)) => "node request",
            Some(Body::NodeResponse(_)) => "node response",
            Some(Body::EntryRequest(_)) => "entry request",
            Some(Body::EntryBatch(_)) => "entry batch",
            Some(Body::EntryPush(_)) => "entry push",
            Some(Body::Finish(_)) => "finish",
            Some(Body::FinishAck(_)) => "finish ack",
            Some(Body::SnapshotBegin(_)) => "snapshot begin",
            Some(Body::SnapshotPage(_)) => "snapshot page",
            Some(Body::SnapshotAck(_)) => "snapshot ack",
            Some(Body::ContextList(_)) => "context list",
            Some(Body::SketchWindow(_)) => "sketch window",
            Some(Body::SketchMore(_)) => "sketch more",
            Some(Body::SketchEnd(_)) => "sketch end",
            Some(Body::Abort(_)) => "abort",
        }
    }

    /// An abort frame for `err`.
    pub fn abort(code: AbortCode, message: &str) -> Self {
        let mut message = message.to_owned();
        truncate_utf8(&mut message, MAX_ABORT_MESSAGE_BYTES);
        StreamMessage::new(stream_message::Body::Abort(Abort {
            code: code as i32,
            message,
        }))
    }
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
/// Makes text a peer sent safe to put in a log line, an error message or a
/// terminal: control characters (newlines, escape sequences) and the invisible
/// format characters that reorder or hide text (bidi overrides, zero-width marks)
/// become `\u{..}` escapes, and a backslash is doubled so an escape cannot be
/// forged. Printable text, any script, passes unchanged.
pub fn escape_untrusted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if is_unsafe_to_print(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// Control characters, and format characters that change how text around them
/// is shown.
fn is_unsafe_to_print(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

pub(crate) fn truncate_utf8(text: &mut String, max: usize) {
    if text.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
    }
}

impl ProtocolKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::Unspecified => "none",
            ProtocolKind::HashComparison => "hash-comparison",
            ProtocolKind::LevelWise => "level-wise",
            ProtocolKind::Snapshot => "snapshot",
            ProtocolKind::Sketch => "sketch",
        }
    }
}

/// Hand-written protobuf encoding of entries, for writers that hold borrowed
/// bytes (a store's lent entries) and must not build a [`WireEntry`] to encode
/// one: the bytes are exactly what prost writes for the same `WireEntry`.
pub mod entry_codec {
    use prost::bytes::BufMut;
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

    /// Tag of `SnapshotPage.entries`.
    pub const SNAPSHOT_PAGE_ENTRIES_TAG: u32 = 3;
    /// Tag of `EntryPush.entries`.
    pub const ENTRY_PUSH_ENTRIES_TAG: u32 = 1;

    /// The fields of one `WireEntry`, borrowed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct EntryFields<'a> {
        /// The key.
        pub key: &'a [u8],
        /// The value (empty for tombstones).
        pub value: &'a [u8],
        /// The version's clock.
        pub hlc: u64,
        /// The version's writer.
        pub node: u64,
        /// Deleted.
        pub tombstone: bool,
    }

    /// Bytes of a length-delimited field of `len` bytes with a one-byte tag;
    /// proto3 skips empty ones.
    fn bytes_field_len(len: usize) -> usize {
        if len == 0 {
            0
        } else {
            1 + encoded_len_varint(len as u64) + len
        }
    }

    /// Bytes of a varint field with a one-byte tag; proto3 skips zeros.
    fn varint_field_len(value: u64) -> usize {
        if value == 0 {
            0
        } else {
            1 + encoded_len_varint(value)
        }
    }

    impl EntryFields<'_> {
        /// Length of the encoded `WireEntry` message (without its own tag and
        /// length prefix), computed without encoding it.
        pub fn body_len(&self) -> usize {
            bytes_field_len(self.key.len())
                + bytes_field_len(self.value.len())
                + varint_field_len(self.hlc)
                + varint_field_len(self.node)
                + if self.tombstone { 2 } else { 0 }
        }

        /// Bytes the entry takes as a field of a message with a one-byte tag
        /// (every entries field has one): tag, length prefix and body.
        pub fn field_len(&self) -> usize {
            let body = self.body_len();
            1 + encoded_len_varint(body as u64) + body
        }

        /// Appends the entry as field `tag` (a `WireEntry` message) to `buf`.
        pub fn encode_field(&self, tag: u32, buf: &mut impl BufMut) {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(self.body_len() as u64, buf);
            put_bytes(1, self.key, buf);
            put_bytes(2, self.value, buf);
            put_varint(3, self.hlc, buf);
            put_varint(4, self.node, buf);
            if self.tombstone {
                put_varint(5, 1, buf);
            }
        }
    }

    fn put_bytes(tag: u32, bytes: &[u8], buf: &mut impl BufMut) {
        if !bytes.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(bytes.len() as u64, buf);
            buf.put_slice(bytes);
        }
    }

    fn put_varint(tag: u32, value: u64, buf: &mut impl BufMut) {
        if value != 0 {
            encode_key(tag, WireType::Varint, buf);
            encode_varint(value, buf);
        }
    }

    #[cfg(test)]
    mod tests {
        use prost::Message;

        use super::*;
        use crate::wire::{EntryPush, WireEntry};

        #[test]
        fn hand_encoding_matches_prost_byte_for_byte() {
            let cases = [
                (&b""[..], &b""[..], 0, 0, false),
                (b"k", b"", 1, 0, true),
                (b"key", &[7u8; 300][..], u64::MAX, 9, false),
                (&[1u8; 200][..], b"v", 1 << 40, u64::MAX, false),
            ];
            for (key, value, hlc, node, tombstone) in cases {
                let fields = EntryFields {
                    key,
                    value,
                    hlc,
                    node,
                    tombstone,
                };
                let wire = WireEntry {
                    key: key.to_vec().into(),
                    value: value.to_vec().into(),
                    hlc,
                    node,
                    tombstone,
                };
                let push = EntryPush {
                    entries: vec![wire.clone()],
                };
                let mut mine = Vec::new();
                fields.encode_field(ENTRY_PUSH_ENTRIES_TAG, &mut mine);
                assert_eq!(mine, push.encode_to_vec());
                assert_eq!(fields.body_len(), wire.encoded_len());
                assert_eq!(fields.field_len(), mine.len());
            }
        }
    }
}
