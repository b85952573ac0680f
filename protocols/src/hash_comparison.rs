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

use synctree_primitives::ProtocolError;
use synctree_primitives::wire::HashComparisonInit;

use crate::TreeResponderInit;
use crate::tree_initiator::Schedule;

/// The HashComparison protocol.
#[derive(Clone, Copy, Debug, Default)]
pub struct HashComparison;

/// What a HashComparison responder learns from the session's first message.
pub type HashComparisonResponderInit = TreeResponderInit;

impl TryFrom<&HashComparisonInit> for TreeResponderInit {
    type Error = ProtocolError;

    fn try_from(init: &HashComparisonInit) -> Result<Self, ProtocolError> {
        TreeResponderInit::from_root(&init.root)
    }
}

tree_executor!(HashComparison, HashComparisonInit, Schedule::Eager);

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::Hash;

    #[test]
    fn responder_init_requires_a_full_root() {
        let bad = HashComparisonInit {
            root: vec![0; 5].into(),
        };
        assert!(HashComparisonResponderInit::try_from(&bad).is_err());
        let good = HashComparisonInit {
            root: vec![3; 32].into(),
        };
        let init = HashComparisonResponderInit::try_from(&good).map(|i| i.initiator_root);
        assert_eq!(init, Ok(Hash([3; 32])));
    }
}
