//! LevelWise: one batched round trip per pair of tree levels.
//!
//! The initiator compares every differing node of a level at once (two levels per
//! round trip, like [`HashComparison`](super::hash_comparison::HashComparison)),
//! split over several `NodeRequest` frames only when the level has more nodes than
//! one request may carry, and waits until the whole step is answered before sending
//! the next. Round trips are therefore half the tree depth plus a constant (leaf
//! summaries, entry pulls, finish) whatever the number of differences, and each
//! message is as large as the level needs. Leaf buckets are reconciled exactly as
//! in HashComparison: pulls and pushes, so both replicas converge in one session.
//! The wire flow is in docs/PROTOCOL.md.

use async_trait::async_trait;
use synctree_primitives::limits::NODE_HASH_BYTES;
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::LevelWiseInit;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{
    ContextId, Hash, Identity, ProtocolKind, Store, SyncError, SyncProtocolExecutor, SyncStats,
    SyncTransport,
};

use super::config::{
    DEFAULT_KEYS_PER_REQUEST, DEFAULT_LEVEL_WISE_NODES_PER_REQUEST, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PUSH_BYTES, Schedule, TreeConfig,
};
use super::init::TreeResponderInit;
use super::run::{TreeStart, run_tree_initiator, run_tree_responder};

/// The LevelWise protocol.
#[derive(Clone, Copy, Debug, Default)]
pub struct LevelWise;

/// What a LevelWise responder learns from the session's first message.
pub type LevelWiseResponderInit = TreeResponderInit;

/// LevelWise initiator tunables (each clamped to the limit a responder enforces,
/// as in [`TreeConfig`]). The default fits a whole level in one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelWiseConfig {
    /// Requests awaiting answers at once; by default [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// Node positions plus compare items per request; by default
    /// [`DEFAULT_LEVEL_WISE_NODES_PER_REQUEST`], every node of the widest level.
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

impl Default for LevelWiseConfig {
    fn default() -> Self {
        LevelWiseConfig {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            nodes_per_request: DEFAULT_LEVEL_WISE_NODES_PER_REQUEST,
            keys_per_request: DEFAULT_KEYS_PER_REQUEST,
            push_bytes: DEFAULT_PUSH_BYTES,
            remote_top: None,
            key: SessionKey::default(),
            estimated_differences: None,
        }
    }
}

impl From<LevelWiseConfig> for TreeConfig {
    fn from(config: LevelWiseConfig) -> Self {
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

/// The init payload of a LevelWise session.
fn opening(root: Hash) -> Kind {
    Kind::LevelWise(LevelWiseInit {
        root: root.0.to_vec().into(),
    })
}

#[async_trait]
impl SyncProtocolExecutor for LevelWise {
    type Config = LevelWiseConfig;
    type ResponderInit = LevelWiseResponderInit;
    type Stats = SyncStats;

    const KIND: ProtocolKind = ProtocolKind::LevelWise;

    async fn run_initiator<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        config: LevelWiseConfig,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        let start = TreeStart {
            protocol: Self::KIND,
            schedule: Schedule::LevelByLevel,
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
        init: LevelWiseResponderInit,
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
    use synctree_primitives::limits::MAX_NODES_PER_REQUEST;

    use super::*;

    #[test]
    fn level_wise_defaults_fit_a_whole_level_in_one_request() {
        let config = TreeConfig::from(LevelWiseConfig::default());
        assert_eq!(config.nodes_per_request, MAX_NODES_PER_REQUEST);
        assert_eq!(config.max_in_flight, TreeConfig::default().max_in_flight);
    }
}
