//! Errors of the manager: a stream it refused, or a session that failed.

use synctree_primitives::{ProtocolError, StoreError, SyncError, TransportError};

/// Why the manager could not serve or open a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The peer's first message was refused (unknown, wrong version, wrong context…).
    /// The peer was sent an abort frame; the store was not touched.
    #[error("refused stream from {peer}")]
    Rejected {
        /// The peer.
        peer: String,
        /// What was wrong.
        #[source]
        source: ProtocolError,
    },
    /// The stream failed before a protocol took over.
    #[error("stream with {peer} failed during {phase}")]
    Transport {
        /// The peer.
        peer: String,
        /// Handshake or dispatch.
        phase: &'static str,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The local store failed before a protocol took over.
    #[error("store failed during {phase} with {peer}")]
    Store {
        /// The peer.
        peer: String,
        /// Handshake or dispatch.
        phase: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A protocol session failed.
    #[error(transparent)]
    Session(#[from] SyncError),
}

impl ManagerError {
    /// The protocol error at the root of this failure, if there is one.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        match self {
            ManagerError::Rejected { source, .. } => Some(source),
            ManagerError::Session(e) => e.protocol_error(),
            _ => None,
        }
    }
}
