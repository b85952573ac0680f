//! [`RegisteredProtocol`], the object-safe face of a protocol, and what the
//! manager hands it: [`SessionScope`], [`InitiatorPlan`]; [`HandlerError`] back.

use std::fmt;

use async_trait::async_trait;
use synctree_primitives::limits::NODE_HASH_BYTES;
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{
    ContextId, Identity, ProtocolError, ProtocolKind, Store, SyncError, SyncStats, SyncTransport,
};

use crate::handshake::PeerSummary;
use crate::selection::Selection;

/// What every session of a manager shares: the store, the context and who we are.
#[derive(Clone, Copy)]
pub struct SessionScope<'a> {
    /// The store the session reads and merges into.
    pub store: &'a dyn Store,
    /// The context synced.
    pub context: &'a ContextId,
    /// This node.
    pub identity: &'a Identity,
    /// The session key of truncated node hashes: derived from the handshake on
    /// this stream, or [`SessionKey::without_handshake`] when the stream opened
    /// directly with a protocol's init.
    pub key: &'a SessionKey,
}

impl fmt::Debug for SessionScope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionScope")
            .field("context", self.context)
            .field("identity", self.identity)
            .finish_non_exhaustive()
    }
}

/// What an initiator's config is built from: the selection, the peer's handshake
/// and the session key both handshakes' nonces give.
#[derive(Clone, Copy, Debug)]
pub struct InitiatorPlan<'a> {
    /// The protocol picked, why, and the page encoding agreed on.
    pub selection: &'a Selection,
    /// The peer's handshake.
    pub remote: &'a PeerSummary,
    /// The session key of truncated node hashes (the peer's top fingerprint is
    /// truncated under it).
    pub key: &'a SessionKey,
    /// A stale node's adoption of the peer's state below this GC watermark
    /// (Snapshot only; [`crate::gc`]).
    pub adopt_below: Option<u64>,
}

impl InitiatorPlan<'_> {
    /// The peer's top fingerprint: the first level of a tree protocol's descent.
    pub fn remote_top(&self) -> Option<[[u8; NODE_HASH_BYTES]; FANOUT]> {
        self.remote.top_fingerprint.map(|top| top.0)
    }
}

/// Why a registered protocol did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandlerError {
    /// The stream is refused before the protocol starts (a bad init): the manager
    /// sends the peer an abort and leaves the store untouched.
    Refused(ProtocolError),
    /// The session ran and failed.
    Session(SyncError),
}

impl From<SyncError> for HandlerError {
    fn from(e: SyncError) -> Self {
        HandlerError::Session(e)
    }
}

/// A protocol the manager can answer and open sessions of. Object safe: a
/// [`ProtocolRegistry`](crate::ProtocolRegistry) holds them as `Box<dyn RegisteredProtocol>`.
#[async_trait]
pub trait RegisteredProtocol: Send + Sync + fmt::Debug {
    /// The protocol's wire identifier (advertised in the handshake).
    fn kind(&self) -> ProtocolKind;

    /// Whether a stream whose init carries `init` is this protocol's.
    fn accepts(&self, init: &Kind) -> bool;

    /// Answers a stream whose init (`init`, accepted by [`Self::accepts`]) was read:
    /// converts it to the executor's responder init and runs the responder.
    async fn respond(
        &self,
        scope: SessionScope<'_>,
        transport: &mut dyn SyncTransport,
        init: Kind,
    ) -> Result<SyncStats, HandlerError>;

    /// Runs the initiator after the handshake picked this protocol, with a config
    /// built from `plan`.
    async fn initiate(
        &self,
        scope: SessionScope<'_>,
        transport: &mut dyn SyncTransport,
        plan: InitiatorPlan<'_>,
    ) -> Result<SyncStats, HandlerError>;

    /// Whether this protocol holds an interrupted transfer from `peer` on
    /// `context` that its next session would resume (in memory, or saved in
    /// `store`): selection then picks it (docs/PROTOCOL.md, row 1b). The default
    /// keeps nothing across sessions.
    fn resumable(&self, store: &dyn Store, peer: &str, context: &ContextId) -> bool {
        let _ = (store, peer, context);
        false
    }
}
