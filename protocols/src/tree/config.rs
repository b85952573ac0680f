//! What the tree initiator is tuned by: the shared [`TreeConfig`] behind each tree
//! protocol's own config, the [`Schedule`] that tells the protocols apart, and the
//! defaults with their reasons.

use synctree_primitives::limits::{
    BATCH_BYTE_BUDGET, MAX_KEYS_PER_REQUEST, MAX_NODES_PER_REQUEST, MAX_UNANSWERED_REQUESTS,
    NODE_HASH_BYTES,
};
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::salt::SessionKey;

/// Requests awaiting answers at once by default: enough to keep a long round trip
/// busy, a fraction of what a responder admits ([`MAX_UNANSWERED_REQUESTS`]).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// Node items per HashComparison request by default: small enough that answers
/// start flowing while later requests are still built, large enough that a wide
/// level costs few frames.
pub const DEFAULT_NODES_PER_REQUEST: usize = 1024;

/// Node items per LevelWise request by default: every node of the widest internal
/// level ([`MAX_NODES_PER_REQUEST`]), so one level is one request.
pub const DEFAULT_LEVEL_WISE_NODES_PER_REQUEST: usize = MAX_NODES_PER_REQUEST;

/// Key-hash prefixes per entry request by default: half of
/// [`MAX_KEYS_PER_REQUEST`], so an answer rarely needs more than a few frames.
pub const DEFAULT_KEYS_PER_REQUEST: usize = 4096;

/// Byte budget of one push frame by default: the most a batch may carry
/// ([`BATCH_BYTE_BUDGET`]).
pub const DEFAULT_PUSH_BYTES: usize = BATCH_BYTE_BUDGET;

/// Estimated differences from which the descent goes deep
/// ([`TreeConfig::estimated_differences`]): one per level-3 node (4,096) on
/// average. Compare items for every level-3 node under a differing node cost
/// about 2.2 KB per level-2 node, which the one-level-at-a-time descent spends
/// too once nearly every level-3 node differs; below this they would cost more
/// bytes than the round trip they save is worth.
pub const DEEP_DESCENT_DIFFERENCES: u64 = 4_096;

/// Differing children (of 16) a node must have for the deep descent to skip the
/// levels below it: differences spread that widely put some in nearly every
/// level-3 node underneath, while a cluster (one differing child) would pay for
/// compare items of the 15 equal siblings' level-3 nodes. The same share as the
/// selection's `SPREAD_SUBTREES`.
pub const DEEP_DESCENT_SPREAD: usize = 12;

/// When node requests go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// As soon as differing nodes are known and a request slot is free (HashComparison).
    Eager,
    /// Every node of one step of the descent (two tree levels, or the leaf
    /// summaries) at a time, once the previous step is fully answered (LevelWise).
    LevelByLevel,
}

/// Initiator tunables shared by the tree protocols; each protocol's own config
/// ([`HashComparisonConfig`](crate::HashComparisonConfig),
/// [`LevelWiseConfig`](crate::LevelWiseConfig)) converts into it. The default is
/// HashComparison's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeConfig {
    /// Requests awaiting answers at once; at most [`MAX_UNANSWERED_REQUESTS`].
    pub max_in_flight: usize,
    /// Node positions plus compare items per request; at most [`MAX_NODES_PER_REQUEST`].
    pub nodes_per_request: usize,
    /// Key-hash prefixes per entry request; at most [`MAX_KEYS_PER_REQUEST`].
    pub keys_per_request: usize,
    /// Byte budget of one push frame; at most [`BATCH_BYTE_BUDGET`].
    pub push_bytes: usize,
    /// The responder's level-1 child hashes, truncated to [`NODE_HASH_BYTES`] as
    /// `NodeChildren` carries them, when the handshake already delivered them (the
    /// manager's `top_fingerprint`): the descent then starts one level down, which
    /// saves a round trip. A stale value only costs convergence of this session
    /// (the final roots tell), never correctness of what is applied.
    pub remote_top: Option<[[u8; NODE_HASH_BYTES]; FANOUT]>,
    /// The session's key of truncated node hashes (the manager derives it from the
    /// handshake's nonces; `remote_top` must be truncated under the same key). By
    /// default [`SessionKey::without_handshake`], which a responder opened without
    /// a handshake uses too.
    pub key: SessionKey,
    /// Differences the handshake estimated (`u64::MAX`: more than its probe tells
    /// apart), if any. From [`DEEP_DESCENT_DIFFERENCES`] on, a differing node above
    /// level 3 is not answered level by level: the initiator sends compare items
    /// for each of its level-3 descendants at once, whose answers are leaf
    /// summaries, which saves a round trip (3 with the handshake). `None`, the
    /// default, descends two levels per round trip. Only nodes with at least
    /// [`DEEP_DESCENT_SPREAD`] differing children go deep.
    pub estimated_differences: Option<u64>,
}

impl Default for TreeConfig {
    fn default() -> Self {
        TreeConfig {
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

impl TreeConfig {
    /// Every tunable brought inside the limits a responder enforces.
    pub(crate) fn clamped(self) -> Self {
        TreeConfig {
            max_in_flight: self.max_in_flight.clamp(1, MAX_UNANSWERED_REQUESTS),
            nodes_per_request: self.nodes_per_request.clamp(1, MAX_NODES_PER_REQUEST),
            keys_per_request: self.keys_per_request.clamp(1, MAX_KEYS_PER_REQUEST),
            push_bytes: self.push_bytes.clamp(1, BATCH_BYTE_BUDGET),
            remote_top: self.remote_top,
            key: self.key,
            estimated_differences: self.estimated_differences,
        }
    }

    /// Whether the descent sends compare items for whole level-3 layers.
    pub(crate) fn deep(&self) -> bool {
        self.estimated_differences
            .is_some_and(|d| d >= DEEP_DESCENT_DIFFERENCES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_sit_inside_the_limits() {
        let config = TreeConfig::default();
        assert_eq!(config.clone().clamped(), config);
    }
}
