//! [`Nodes`]: a sparse map of node hashes, stored as groups of 16 siblings.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use synctree_primitives::merkle::{FANOUT, InternalMidstates};
use synctree_primitives::{Hash, NodePos};

/// Node hashes of one context, from the root down to the level the caller
/// writes (the memory store keeps leaf hashes with their buckets, in
/// [`super::leaves::Leaves`], and writes level 3 here). Siblings are kept
/// together, keyed by their parent's position, so [`Nodes::children`] — what
/// re-hashing and the protocols read most — is one lookup instead of sixteen.
/// A group whose 16 hashes are all zero is not stored; the root is kept on its
/// own.
#[derive(Clone, Debug, Default)]
pub(crate) struct Nodes {
    root: Hash,
    /// Shared with read views of the context: a write copies only the groups it
    /// changes while a view holds them.
    groups: HashMap<u32, Arc<Group>, BuildHasherDefault<PositionHasher>>,
}

/// The 16 children of one internal node, and that node's hash kept resumable:
/// a change to child `c` re-hashes only the input blocks from `c` on.
#[derive(Clone, Debug, Default)]
struct Group {
    children: [Hash; FANOUT],
    parent: InternalMidstates,
}

impl Nodes {
    /// Hash of the node at `pos`.
    pub(crate) fn node(&self, pos: NodePos) -> Hash {
        let Some(parent) = pos.parent() else {
            return self.root;
        };
        let slot = pos.index() as usize % FANOUT;
        self.groups
            .get(&parent.raw())
            .map_or(Hash::ZERO, |g| g.children[slot])
    }

    /// The 16 child hashes of `pos`; all zeros for a leaf, which has no children.
    pub(crate) fn children(&self, pos: NodePos) -> [Hash; FANOUT] {
        self.groups
            .get(&pos.raw())
            .map_or([Hash::ZERO; FANOUT], |g| g.children)
    }

    /// Writes the new hashes of changed nodes of `level`, `(index in the
    /// level, hash)` in increasing order, and re-hashes every ancestor once, a
    /// level at a time. Returns the root.
    pub(crate) fn update(&mut self, level: u8, changed: Vec<(u32, Hash)>) -> Hash {
        debug_assert!(changed.windows(2).all(|w| w[0].0 < w[1].0));
        let mut changed = changed;
        let mut parents = Vec::with_capacity(changed.len());
        for level in (1..=level).rev() {
            for run in changed.chunk_by(|a, b| a.0 / FANOUT as u32 == b.0 / FANOUT as u32) {
                let index = run[0].0 / FANOUT as u32;
                let parent = NodePos::new(level - 1, index);
                parents.push((index, self.set_children(parent, run)));
            }
            std::mem::swap(&mut changed, &mut parents);
            parents.clear();
        }
        self.root = changed.first().map_or(self.root, |&(_, root)| root);
        self.root
    }

    /// Writes `run`, changed children of `parent` as `(index in their level,
    /// hash)` in increasing order; returns the parent's new hash.
    fn set_children(&mut self, parent: NodePos, run: &[(u32, Hash)]) -> Hash {
        let group = Arc::make_mut(self.groups.entry(parent.raw()).or_default());
        for &(index, hash) in run {
            group.children[index as usize % FANOUT] = hash;
        }
        let unchanged = run[0].0 as usize % FANOUT;
        let hash = group.parent.hash(&group.children, unchanged);
        if hash.is_zero() {
            self.groups.remove(&parent.raw());
        }
        hash
    }
}

/// Hashes node positions by Fibonacci multiplication: positions are small
/// integers bounded by the trie, not attacker-chosen keys, so SipHash's
/// flooding resistance buys nothing here and costs a lot.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PositionHasher(u64);

/// Bits the hash state rotates by before each word is mixed in (FxHash's choice).
const MIX_ROTATION: u32 = 5;
/// Odd multiplier that spreads each word over the state: 2^64 / φ (Fibonacci hashing).
const MIX_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

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
        self.0 = (self.0.rotate_left(MIX_ROTATION) ^ n).wrapping_mul(MIX_MULTIPLIER);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use synctree_primitives::merkle::{NodeMap, TREE_DEPTH, TreeNodes, update_paths};

    use super::*;

    fn reference(leaves: &[(u32, Hash)], map: &mut NodeMap) -> Hash {
        match update_paths(map, leaves.iter().copied()) {
            Ok(root) => root,
            Err(never) => match never {},
        }
    }

    fn unwrap<T>(r: Result<T, std::convert::Infallible>) -> T {
        match r {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    #[test]
    fn matches_the_reference_node_map() {
        let (mut ours, mut map) = (Nodes::default(), NodeMap::default());
        let rounds: [&[u32]; 3] = [
            &[0, 1, 15, 16, 4095, 40_000, 65_535],
            &[1, 2, 17, 40_001, 65_535],
            &[0, 15, 4094, 4095],
        ];
        for (round, leaves) in rounds.iter().enumerate() {
            let leaves: Vec<(u32, Hash)> = leaves
                .iter()
                .map(|&i| (i, Hash([(i % 251) as u8 + round as u8 + 1; Hash::LEN])))
                .collect();
            let root = ours.update(TREE_DEPTH, leaves.clone());
            assert_eq!(root, reference(&leaves, &mut map));
            assert_eq!(ours.node(NodePos::ROOT), root);
            let leaf_positions = leaves
                .iter()
                .map(|&(i, _)| NodePos::new(TREE_DEPTH, i).raw());
            for pos in (0..4369)
                .chain(leaf_positions)
                .map(|raw| NodePos::from_wire(raw).expect("in the trie"))
            {
                assert_eq!(ours.node(pos), unwrap(map.node(pos)), "{pos:?}");
                if !pos.is_leaf() {
                    assert_eq!(ours.children(pos), unwrap(map.children(pos)), "{pos:?}");
                }
            }
        }
    }

    #[test]
    fn zeroed_groups_are_dropped() {
        let mut nodes = Nodes::default();
        nodes.update(TREE_DEPTH, vec![(7, Hash([1; Hash::LEN]))]);
        assert_eq!(nodes.groups.len(), TREE_DEPTH as usize);
        let root = nodes.update(TREE_DEPTH, vec![(7, Hash::ZERO)]);
        assert_eq!(root, Hash::ZERO);
        assert!(nodes.groups.is_empty(), "an empty tree stores nothing");
        assert_eq!(
            nodes.children(NodePos::new(TREE_DEPTH, 7)),
            [Hash::ZERO; FANOUT]
        );
    }
}
