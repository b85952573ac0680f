//! Typed errors. Every way a peer's message can be wrong is a [`ProtocolError`]
//! variant with a wire [`AbortCode`]; sessions fail with a [`SyncError`] that says
//! which peer, context, protocol and phase.

use std::time::Duration;

use crate::ids::{ContextId, IdError};
use crate::limits::MAX_ABORT_MESSAGE_BYTES;
use crate::wire::{Abort, AbortCode, escape_untrusted, truncate_utf8};

/// A peer broke the protocol (or we refused what it asked).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A field or message could not be interpreted.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A fixed-size field had the wrong length.
    #[error("field `{field}` has {got} bytes, expected {expected}")]
    BadLength {
        /// Field name.
        field: &'static str,
        /// Required length.
        expected: usize,
        /// Received length.
        got: usize,
    },
    /// A count or size went over a named limit.
    #[error("{what}: {got} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The limit (see [`crate::limits`]).
        limit: usize,
        /// What the peer sent.
        got: usize,
    },
    /// A message arrived that the current phase does not allow.
    #[error("unexpected {got} while waiting for {expected}")]
    Unexpected {
        /// What the phase allows.
        expected: &'static str,
        /// What arrived.
        got: &'static str,
    },
    /// The first message of a session was not a known `InitPayload`.
    #[error("first message is not a known init payload ({0})")]
    UnknownInit(&'static str),
    /// The peer speaks another wire version.
    #[error("unsupported protocol version {got} (this node speaks {supported})")]
    UnsupportedVersion {
        /// Version the peer sent.
        got: u32,
        /// Version this node speaks.
        supported: u32,
    },
    /// A context name was empty, too long or not printable.
    #[error("invalid context id ({len} bytes)")]
    InvalidContext {
        /// Length of the rejected name.
        len: usize,
    },
    /// The responder does not serve this context.
    #[error("unknown context `{0}`")]
    UnknownContext(String),
    /// No protocol both sides support, or one this node does not run.
    #[error("unsupported protocol: {0}")]
    UnsupportedProtocol(String),
    /// A tree position outside the trie, or of the wrong kind.
    #[error("bad tree position {0}")]
    BadPosition(u32),
    /// The peer sent data nobody asked for.
    #[error("unsolicited {0}")]
    Unsolicited(&'static str),
    /// A request named the same item twice (asking twice is how one small request
    /// would make the responder send the same data many times).
    #[error("duplicate {0} in one request")]
    Duplicate(&'static str),
    /// The peer closed the stream in the middle of a session.
    #[error("peer closed the stream while waiting for {0}")]
    PeerClosed(&'static str),
    /// The node refuses the session for now (a per-peer bound is reached); the
    /// peer may retry later.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// A snapshot's pinned version is no longer what the responder holds.
    #[error("state moved: pinned root {pinned} is no longer current")]
    StateMoved {
        /// The root the session pinned (hex).
        pinned: String,
    },
    /// Received data does not hash to the root the peer claimed.
    #[error("verification failed: peer claimed root {claimed}, data hashes to {computed}")]
    VerificationFailed {
        /// The root the peer claimed (hex).
        claimed: String,
        /// The root recomputed from what arrived (hex).
        computed: String,
    },
    /// The peer ended the session with an abort frame.
    #[error("peer aborted ({code:?}): {message}")]
    Aborted {
        /// The peer's reason code.
        code: AbortCode,
        /// The peer's explanation, truncated to the abort message limit.
        message: String,
    },
}

impl ProtocolError {
    /// Shorthand for [`ProtocolError::LimitExceeded`].
    pub fn too_many(what: &'static str, limit: usize, got: usize) -> Self {
        ProtocolError::LimitExceeded { what, limit, got }
    }

    /// Fails with [`ProtocolError::LimitExceeded`] when `got > limit`.
    pub fn check_limit(what: &'static str, limit: usize, got: usize) -> Result<(), Self> {
        if got > limit {
            Err(Self::too_many(what, limit, got))
        } else {
            Ok(())
        }
    }

    /// The abort code that tells the peer about this error.
    pub fn abort_code(&self) -> AbortCode {
        match self {
            ProtocolError::Malformed(_) | ProtocolError::BadLength { .. } => AbortCode::Malformed,
            ProtocolError::BadPosition(_) | ProtocolError::Duplicate(_) => AbortCode::Malformed,
            ProtocolError::LimitExceeded { .. } => AbortCode::LimitExceeded,
            ProtocolError::Unexpected { .. } | ProtocolError::Unsolicited(_) => {
                AbortCode::UnexpectedMessage
            }
            ProtocolError::UnknownInit(_) => AbortCode::UnknownInit,
            ProtocolError::UnsupportedVersion { .. } => AbortCode::UnsupportedVersion,
            ProtocolError::InvalidContext { .. } => AbortCode::InvalidContext,
            ProtocolError::UnknownContext(_) => AbortCode::UnknownContext,
            ProtocolError::UnsupportedProtocol(_) => AbortCode::UnsupportedProtocol,
            ProtocolError::StateMoved { .. } => AbortCode::StateMoved,
            ProtocolError::Busy(_) => AbortCode::Busy,
            ProtocolError::VerificationFailed { .. } => AbortCode::VerificationFailed,
            ProtocolError::PeerClosed(_) | ProtocolError::Aborted { .. } => AbortCode::Unspecified,
        }
    }
}

impl From<IdError> for ProtocolError {
    /// The same message and abort code as before ids had their own error.
    fn from(err: IdError) -> Self {
        match err {
            IdError::BadLength {
                field,
                expected,
                got,
            } => ProtocolError::BadLength {
                field,
                expected,
                got,
            },
            IdError::InvalidContext { len } => ProtocolError::InvalidContext { len },
        }
    }
}

impl Abort {
    /// Converts a received abort into the error it reports.
    pub fn into_error(self) -> ProtocolError {
        let mut message = self.message;
        truncate_utf8(&mut message, MAX_ABORT_MESSAGE_BYTES);
        let message = escape_untrusted(&message);
        let code = AbortCode::try_from(self.code).unwrap_or(AbortCode::Unspecified);
        ProtocolError::Aborted { code, message }
    }
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend (disk, database) failed.
    #[error("store backend failed during {op}")]
    Backend {
        /// The operation.
        op: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data does not decode or does not match its index.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The session's peer may not write this context (a read-only view of the
    /// store refused the batch before touching anything).
    #[error("writes to context `{context}` are not allowed for this peer")]
    WriteDenied {
        /// The context the batch was for.
        context: String,
    },
    /// Every read view the store may hand out at once is open
    /// ([`crate::limits::MAX_READ_VIEWS`]); try again later.
    #[error("all {limit} read views are open")]
    ViewsExhausted {
        /// The limit.
        limit: usize,
    },
    /// An injected fault (tests and fault-injection wrappers).
    #[error("injected fault during {op}")]
    Fault {
        /// The operation that was failed.
        op: &'static str,
    },
}

/// Moving frames failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The byte stream failed.
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    /// A frame's declared length is over the limit (rejected before allocation).
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Declared or encoded length (0 when the codec did not say).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream's first bytes are another protocol's greeting (HTTP, TLS, SSH,
    /// text), read as a length over the limit: the peer is not a synctree node
    /// (or speaks TLS where plain TCP was expected, or the other way round).
    #[error(
        "not a synctree node (got {looks_like}?): its first bytes declare a frame of {len} bytes"
    )]
    ForeignProtocol {
        /// What the bytes look like.
        looks_like: &'static str,
        /// The length they declare.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A whole frame did not decode as a `StreamMessage`.
    #[error("frame does not decode")]
    Decode(#[from] prost::DecodeError),
    /// Nothing arrived in time.
    #[error("no message within {0:?}")]
    Timeout(Duration),
    /// The transport was closed locally.
    #[error("transport is closed")]
    Closed,
}

/// What went wrong in a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncErrorKind {
    /// The transport failed.
    #[error("transport")]
    Transport(#[from] TransportError),
    /// The local store failed.
    #[error("store")]
    Store(#[from] StoreError),
    /// The peer broke the protocol, or aborted.
    #[error("protocol")]
    Protocol(#[from] ProtocolError),
    /// The session ran past its deadline.
    #[error("session deadline of {0:?} passed")]
    Deadline(Duration),
}

impl From<IdError> for SyncErrorKind {
    /// A bad id from a peer is a protocol error, so `?` works on id parsing in
    /// session code.
    fn from(err: IdError) -> Self {
        SyncErrorKind::Protocol(err.into())
    }
}

impl SyncErrorKind {
    /// The abort code to send the peer, if this error should be reported to it.
    pub fn abort_code(&self) -> Option<AbortCode> {
        match self {
            SyncErrorKind::Protocol(ProtocolError::Aborted { .. }) => None,
            SyncErrorKind::Protocol(ProtocolError::PeerClosed(_)) => None,
            SyncErrorKind::Protocol(e) => Some(e.abort_code()),
            SyncErrorKind::Store(StoreError::WriteDenied { .. }) => Some(AbortCode::WriteDenied),
            SyncErrorKind::Store(StoreError::ViewsExhausted { .. }) => Some(AbortCode::Busy),
            SyncErrorKind::Store(_) => Some(AbortCode::StoreFailure),
            SyncErrorKind::Deadline(_) => Some(AbortCode::Timeout),
            SyncErrorKind::Transport(TransportError::Timeout(_)) => Some(AbortCode::Timeout),
            SyncErrorKind::Transport(
                TransportError::FrameTooLarge { .. } | TransportError::ForeignProtocol { .. },
            ) => Some(AbortCode::LimitExceeded),
            SyncErrorKind::Transport(TransportError::Decode(_)) => Some(AbortCode::Malformed),
            SyncErrorKind::Transport(_) => None,
        }
    }
}

/// A failed session, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
#[error("{protocol} session with {peer} on context `{context}` failed ({role}, {phase})")]
pub struct SyncError {
    /// The peer's address or label.
    pub peer: String,
    /// The context being synced.
    pub context: ContextId,
    /// The protocol's name.
    pub protocol: &'static str,
    /// `initiator` or `responder`.
    pub role: &'static str,
    /// The phase the session was in.
    pub phase: &'static str,
    /// What went wrong.
    #[source]
    pub kind: SyncErrorKind,
}

impl SyncError {
    /// The innermost protocol error, if the session failed because of one.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        match &self.kind {
            SyncErrorKind::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// Renders an error and its chain of sources on one line: `a: b: c`.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{StreamMessage, stream_message};

    #[test]
    fn abort_messages_are_truncated_on_a_char_boundary() {
        let long = "é".repeat(MAX_ABORT_MESSAGE_BYTES);
        let Some(stream_message::Body::Abort(a)) =
            StreamMessage::abort(AbortCode::Busy, &long).body
        else {
            panic!("not an abort");
        };
        assert!(a.message.len() <= MAX_ABORT_MESSAGE_BYTES);
        assert!(matches!(
            a.into_error(),
            ProtocolError::Aborted {
                code: AbortCode::Busy,
                ..
            }
        ));
    }

    #[test]
    fn a_peers_abort_message_cannot_forge_log_lines_or_terminal_escapes() {
        let forged = "x\nFORGED-LINE 2026-12-01T00:00:00Z INFO synctree: admin login ok\n\x1b[31m\u{202e}\\u{a}";
        let abort = Abort {
            code: AbortCode::StoreFailure as i32,
            message: forged.into(),
        };
        let ProtocolError::Aborted { message, .. } = abort.into_error() else {
            panic!("not an abort");
        };
        assert!(
            !message.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{message}"
        );
        assert_eq!(
            message,
            "x\\u{a}FORGED-LINE 2026-12-01T00:00:00Z INFO synctree: admin login ok\\u{a}\\u{1b}[31m\\u{202e}\\\\u{a}"
        );
        let shown = SyncError {
            peer: "p".into(),
            context: crate::ContextId::new("c").unwrap(),
            protocol: "hash-comparison",
            role: "initiator",
            phase: "comparing",
            kind: ProtocolError::Aborted {
                code: AbortCode::StoreFailure,
                message,
            }
            .into(),
        };
        assert_eq!(
            error_chain(&shown).lines().count(),
            1,
            "one line, whatever the peer sent"
        );
        assert_eq!(crate::wire::escape_untrusted("ünïcode ok"), "ünïcode ok");
    }

    #[test]
    fn id_errors_keep_their_protocol_message_and_code() {
        let err = ProtocolError::from(IdError::InvalidContext { len: 0 });
        assert_eq!(err, ProtocolError::InvalidContext { len: 0 });
        assert_eq!(err.abort_code(), AbortCode::InvalidContext);
        let bad = crate::ids::Hash::from_wire(&[1], "root").map_err(ProtocolError::from);
        assert_eq!(bad.map_err(|e| e.abort_code()), Err(AbortCode::Malformed));
    }
}
