//! The protobuf messages (generated from `proto/synctree.proto`) and helpers.

#![allow(missing_docs, unreachable_pub)]
include!(concat!(env!("OUT_DIR"), "/synctree.v1.rs"));

use crate::limits::MAX_ABORT_MESSAGE_BYTES;

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
