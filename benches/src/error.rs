//! What can go wrong while benchmarking.

use synctree_manager::ManagerError;
use synctree_primitives::{ProtocolError, StoreError, SyncError, TransportError};

/// A failed benchmark step. Slowness is never an error; these are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A store refused an operation.
    #[error("store failed")]
    Store(#[from] StoreError),
    /// A protocol session failed.
    #[error("session failed")]
    Sync(#[from] SyncError),
    /// The manager failed (auto sessions).
    #[error("manager failed")]
    Manager(#[from] ManagerError),
    /// The transport failed outside a session.
    #[error("transport failed")]
    Transport(#[from] TransportError),
    /// A responder got a first message it cannot serve.
    #[error("bad first message")]
    Protocol(#[from] ProtocolError),
    /// Sockets or threads.
    #[error("i/o failed")]
    Io(#[from] std::io::Error),
    /// The negentropy reference failed.
    #[error("negentropy failed: {0}")]
    Negentropy(String),
    /// A session ended without both replicas holding the merged set.
    #[error("{what} did not converge: {detail}")]
    NotConverged {
        /// Which run.
        what: String,
        /// What differed.
        detail: String,
    },
}

/// `error` and every `source` below it, joined by `: `.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}
