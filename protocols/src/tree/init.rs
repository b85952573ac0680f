//! What a tree-protocol responder learns from the session's first message.

use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::{HashComparisonInit, LevelWiseInit};
use synctree_primitives::{Hash, ProtocolError};

/// What a tree-protocol responder learns from the session's first message, and
/// the session key of truncated hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeResponderInit {
    /// The initiator's root when it opened the session.
    pub initiator_root: Hash,
    /// The session's key of truncated node hashes: from the init alone
    /// [`SessionKey::without_handshake`]; the manager replaces it with the key of
    /// the handshake on the same stream ([`TreeResponderInit::with_key`]).
    pub key: SessionKey,
}

impl TreeResponderInit {
    /// Checks the root field of an init payload.
    fn from_root(root: &[u8]) -> Result<Self, ProtocolError> {
        Ok(TreeResponderInit {
            initiator_root: Hash::from_wire(root, "root")?,
            key: SessionKey::without_handshake(),
        })
    }

    /// The same init, keyed by the handshake that preceded it.
    pub fn with_key(self, key: SessionKey) -> Self {
        TreeResponderInit { key, ..self }
    }
}

impl TryFrom<&HashComparisonInit> for TreeResponderInit {
    type Error = ProtocolError;

    fn try_from(init: &HashComparisonInit) -> Result<Self, ProtocolError> {
        TreeResponderInit::from_root(&init.root)
    }
}

impl TryFrom<&LevelWiseInit> for TreeResponderInit {
    type Error = ProtocolError;

    fn try_from(init: &LevelWiseInit) -> Result<Self, ProtocolError> {
        TreeResponderInit::from_root(&init.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_comparison_init_requires_a_full_root() {
        let bad = HashComparisonInit {
            root: vec![0; 5].into(),
        };
        assert!(TreeResponderInit::try_from(&bad).is_err());
        let good = HashComparisonInit {
            root: vec![3; Hash::LEN].into(),
        };
        let init = TreeResponderInit::try_from(&good).map(|i| i.initiator_root);
        assert_eq!(init, Ok(Hash([3; Hash::LEN])));
    }

    #[test]
    fn level_wise_init_requires_a_full_root() {
        let bad = LevelWiseInit {
            root: vec![0; Hash::LEN - 1].into(),
        };
        assert!(TreeResponderInit::try_from(&bad).is_err());
        let good = LevelWiseInit {
            root: vec![9; Hash::LEN].into(),
        };
        let init = TreeResponderInit::try_from(&good).map(|i| i.initiator_root);
        assert_eq!(init, Ok(Hash([9; Hash::LEN])));
    }
}
