//! LevelWise: one batched round trip per pair of tree levels.
//!
//! The initiator compares every differing node of a level at once (two levels per
//! round trip, like [`crate::HashComparison`]), split over several `NodeRequest`
//! frames only when the level has more nodes than one request may carry, and waits
//! until the whole step is answered before sending the next. Round trips are
//! therefore half the tree depth plus a constant (leaf summaries,
//! entry pulls, finish) whatever the number of differences, and each message is as
//! large as the level needs. Leaf buckets are reconciled exactly as in
//! [`crate::HashComparison`]: pulls and pushes, so both replicas converge in one
//! session. The wire flow is in docs/PROTOCOL.md.

use synctree_primitives::ProtocolError;
use synctree_primitives::limits::MAX_NODES_PER_REQUEST;
use synctree_primitives::wire::LevelWiseInit;

use crate::TreeResponderInit;
use crate::tree_initiator::{Schedule, TreeConfig};

/// The LevelWise protocol.
#[derive(Clone, Copy, Debug, Default)]
pub struct LevelWise;

/// What a LevelWise responder learns from the session's first message.
pub type LevelWiseResponderInit = TreeResponderInit;

impl TryFrom<&LevelWiseInit> for TreeResponderInit {
    type Error = ProtocolError;

    fn try_from(init: &LevelWiseInit) -> Result<Self, ProtocolError> {
        TreeResponderInit::from_root(&init.root)
    }
}

impl TreeConfig {
    /// Defaults for LevelWise: a whole level (up to [`MAX_NODES_PER_REQUEST`] nodes,
    /// every node of the widest internal level) in one request.
    pub fn level_wise() -> Self {
        TreeConfig {
            nodes_per_request: MAX_NODES_PER_REQUEST,
            ..TreeConfig::default()
        }
    }
}

tree_executor!(LevelWise, LevelWiseInit, Schedule::LevelByLevel);

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::Hash;

    #[test]
    fn responder_init_requires_a_full_root() {
        let bad = LevelWiseInit {
            root: vec![0; 31].into(),
        };
        assert!(TreeResponderInit::try_from(&bad).is_err());
        let good = LevelWiseInit {
            root: vec![9; 32].into(),
        };
        let init = TreeResponderInit::try_from(&good).map(|i| i.initiator_root);
        assert_eq!(init, Ok(Hash([9; 32])));
    }

    #[test]
    fn level_wise_defaults_fit_a_whole_level_in_one_request() {
        let config = TreeConfig::level_wise();
        assert_eq!(config.nodes_per_request, MAX_NODES_PER_REQUEST);
        assert_eq!(config.max_in_flight, TreeConfig::default().max_in_flight);
    }
}
