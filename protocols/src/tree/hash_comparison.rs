//! HashComparison: Merkle descent that skips equal subtrees.
//!
//! Starting at the root, the initiator sends its own children of every node whose
//! hash differs and the responder answers with the next level below every child
//! that differs (two tree levels per round trip, 8-byte truncated node hashes),
//! many nodes per request and several requests in flight, eagerly as soon as work
//! is known; round trips grow with the tree depth rather than with the number of
//! differing nodes. At differing leaf buckets it compares entry summaries, pulls
//! what it lacks or holds older and pushes what the peer lacks or holds older, so
//! both replicas hold the merged set when the session ends. The wire flow is in
//! docs/PROTOCOL.md.

use async_trait::async_trait;
use synctree_primitives::limits::NODE_HASH_BYTES;
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::HashComparisonInit;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{
    ContextId, Hash, Identity, ProtocolKind, Store, SyncError, SyncProtocolExecutor, SyncStats,
    SyncTransport,
};

use super::config::{
    DEFAULT_KEYS_PER_REQUEST, DEFAULT_MAX_IN_FLIGHT, DEFAULT_NODES_PER_REQUEST, DEFAULT_PUSH_BYTES,
    Schedule, TreeConfig,
};
use super::init::TreeResponderInit;
use super::run::{TreeStart, run_tree_initiator, run_tree_responder};

/// The HashComparison protocol.
#[derive(Clone, Copy, Debug, Default)]
pub struct HashComparison;

/// What a HashComparison responder learns from the session's first message.
pub type HashComparisonResponderInit = TreeResponderInit;

/// HashComparison initiator tunables (each clamped to the limit a responder
/// enforces, as in [`TreeConfig`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashComparisonConfig {
    /// Requests awaiting answers at once; by default [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// Node positions plus compare items per request; by default
    /// [`DEFAULT_NODES_PER_REQUEST`].
    pub nodes_per_request: usize,
    /// Key-hash prefixes per entry request; by default [`DEFAULT_KEYS_PER_REQUEST`].
    pub keys_per_request: usize,
    /// Byte budget of one push frame; by default [`DEFAULT_PUSH_BYTES`].
    pub push_bytes: usize,
    /// The responder's level-1 child hashes from the handshake, if known: see
    /// [`TreeConfig::remote_top`].
    pub remote_top: Option<[[u8; NODE_HASH_BYTES]; FANOUT]>,
    /// The session's key of truncated node hashes: see [`TreeConfig::key`].
    pub key: SessionKey,
    /// Differences the handshake estimated: see
    /// [`TreeConfig::estimated_differences`].
    pub estimated_differences: Option<u64>,
}

impl Default for HashComparisonConfig {
    fn default() -> Self {
        HashComparisonConfig {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            nodes_per_request: DEFAULT_NODES_PER_REQUEST,
            keys_per_request: DEFAULT_KEYS_PER_REQUEST,
            push_bytes: DEFAULT_PUSH_BYTES,
            remote_top: None,
            key: SessionKey::default(),
            estimated_differences: None,
        }
    }
}

impl From<HashComparisonConfig> for TreeConfig {
    fn from(config: HashComparisonConfig) -> Self {
        TreeConfig {
            max_in_flight: config.max_in_flight,
            nodes_per_request: config.nodes_per_request,
            keys_per_request: config.keys_per_request,
            push_bytes: config.push_bytes,
            remote_top: config.remote_top,
            key: config.key,
            estimated_differences: config.estimated_differences,
        }
    }
}

/// The init payload of a HashComparison session.
fn opening(root: Hash) -> Kind {
    Kind::HashComparison(HashComparisonInit {
        root: root.0.to_vec().into(),
    })
}

#[async_trait]
impl SyncProtocolExecutor for HashComparison {
    type Config = HashComparisonConfig;
    type ResponderInit = HashComparisonResponderInit;
    type Stats = SyncStats;

    const KIND: ProtocolKind = ProtocolKind::HashComparison;

    async fn run_initiator<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        config: HashComparisonConfig,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        let start = TreeStart {
            protocol: Self::KIND,
            schedule: Schedule::Eager,
            config: config.into(),
            opening,
        };
        run_tree_initiator(transport, store, context, identity, start).await
    }

    async fn run_responder<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        init: HashComparisonResponderInit,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        tracing::debug!(initiator_root = %init.initiator_root, "{} requested", Self::KIND.name());
        let keyed = (Self::KIND, init.key);
        run_tree_responder(transport, store, context, identity, keyed).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_shared_tree_defaults() {
        let config = TreeConfig::from(HashComparisonConfig::default());
        assert_eq!(config, TreeConfig::default());
    }
}
