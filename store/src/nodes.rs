//! [`Nodes`]: a sparse map of node hashes, stored as groups of 16 siblings.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{BuildHasherDefault, Hasher};

use synctree_primitives::merkle::{FANOUT, TreeNodes};
use synctree_primitives::{Hash, NodePos};

/// Node hashes of one context. Siblings are kept together, keyed by their
/// parent's position, so [`TreeNodes::children`] — what re-hashing and the
/// protocols read most — is one lookup instead of sixteen. A group whose 16
/// hashes are all zero is not stored; the root is kept on its own.
#[derive(Clone, Debug, Default)]
pub(crate) struct Nodes {
    root: Hash,
    groups: HashMap<u32, [Hash; FANOUT], BuildHasherDefault<PositionHasher>>,
}

impl Nodes {
    /// The group holding `pos` and its slot in it; `None` for the root.
    fn locate(pos: NodePos) -> Option<(u32, usize)> {
        let parent = pos.parent()?;
        Some((parent.raw(), pos.index() as usize % FANOUT))
    }
}

impl TreeNodes for Nodes {
    type Error = Infallible;

    fn node(&self, pos: NodePos) -> Result<Hash, Infallible> {
        Ok(match Self::locate(pos) {
            None => self.root,
            Some((group, slot)) => self.groups.get(&group).map_or(Hash::ZERO, |g| g[slot]),
        })
    }

    fn set_node(&mut self, pos: NodePos, hash: Hash) -> Result<(), Infallible> {
        let Some((group, slot)) = Self::locate(pos) else {
            self.root = hash;
            return Ok(());
        };
        if !hash.is_zero() {
            self.groups
                .entry(group)
                .or_insert_with(|| [Hash::ZERO; FANOUT])[slot] = hash;
        } else if let Some(siblings) = self.groups.get_mut(&group) {
            siblings[slot] = Hash::ZERO;
            if siblings.iter().all(Hash::is_zero) {
                self.groups.remove(&group);
            }
        }
        Ok(())
    }

    /// One lookup; all zeros for a leaf, which has no children.
    fn children(&self, pos: NodePos) -> Result<[Hash; FANOUT], Infallible> {
        Ok(self
            .groups
            .get(&pos.raw())
            .copied()
            .unwrap_or([Hash::ZERO; FANOUT]))
    }
}

/// Hashes node positions by Fibonacci multiplication: positions are small
/// integers bounded by the trie, not attacker-chosen keys, so SipHash's
/// flooding resistance buys nothing here and costs a lot.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PositionHasher(u64);

impl Hasher for PositionHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use synctree_primitives::merkle::{NodeMap, TREE_DEPTH, update_paths};

    use super::*;

    fn unwrap<T>(r: Result<T, Infallible>) -> T {
        match r {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    #[test]
    fn matches_the_reference_node_map() {
        let leaves: Vec<(u32, Hash)> = [0u32, 1, 15, 16, 4095, 40_000, 65_535]
            .iter()
            .map(|&i| (i, Hash([(i % 251) as u8 + 1; 32])))
            .collect();
        let (mut ours, mut reference) = (Nodes::default(), NodeMap::default());
        let root = unwrap(update_paths(&mut ours, leaves.clone()));
        assert_eq!(root, unwrap(update_paths(&mut reference, leaves)));
        for pos in [
            NodePos::ROOT,
            NodePos::new(1, 0),
            NodePos::new(3, 255),
            NodePos::new(TREE_DEPTH, 15),
        ] {
            assert_eq!(
                unwrap(ours.node(pos)),
                unwrap(reference.node(pos)),
                "{pos:?}"
            );
            if !pos.is_leaf() {
                assert_eq!(
                    unwrap(ours.children(pos)),
                    unwrap(reference.children(pos)),
                    "{pos:?}"
                );
            }
        }
    }

    #[test]
    fn zeroed_groups_are_dropped() {
        let mut nodes = Nodes::default();
        unwrap(update_paths(&mut nodes, [(7, Hash([1; 32]))]));
        assert_eq!(nodes.groups.len(), TREE_DEPTH as usize);
        let root = unwrap(update_paths(&mut nodes, [(7, Hash::ZERO)]));
        assert_eq!(root, Hash::ZERO);
        assert!(nodes.groups.is_empty(), "an empty tree stores nothing");
        assert_eq!(
            unwrap(nodes.children(NodePos::new(TREE_DEPTH, 7))),
            [Hash::ZERO; FANOUT]
        );
    }
}
