//! The Merkle index: a fixed-shape trie over SHA-256(key).
//!
//! ```text
//!  level 0              root                      position 0
//!  level 1      c0 c1 … c15                       positions 1..=16
//!  level 2      16² nodes                         positions 17..=272
//!  level 3      16³ nodes                         positions 273..=4368
//!  level 4      16⁴ leaf buckets (entries)        positions 4369..=69904
//! ```
//!
//! Each level consumes 4 bits of the key hash, so a key's bucket is the first 16
//! bits of its hash. The shape never depends on the data or on write order, so the
//! same set of entries gives the same root everywhere (history independence), and
//! nodes are addressed by *position*, never by hash: a root that moves during a
//! session does not break lookups. Empty subtrees hash to all zeros and are not
//! stored. Writes re-hash only the paths above the buckets they touch.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use sha2::digest::Output;
use sha2::digest::core_api::{Block, Buffer, CoreProxy, FixedOutputCore, UpdateCore};
use sha2::{Digest, Sha256};

use crate::entry::Entry;
use crate::ids::Hash;

/// Children per internal node.
pub const FANOUT: usize = 16;
/// Key-hash bits consumed per level.
pub const BITS_PER_LEVEL: u32 = 4;
/// Level of the leaf buckets (the root is level 0).
pub const TREE_DEPTH: u8 = 4;
/// Number of leaf buckets.
pub const LEAF_COUNT: u32 = 1 << (BITS_PER_LEVEL * TREE_DEPTH as u32);
/// Number of node positions in the whole trie.
pub const NODE_COUNT: u32 = level_offset(TREE_DEPTH + 1);

/// Leading key-hash bytes that pick a leaf bucket: [`TREE_DEPTH`] levels of
/// [`BITS_PER_LEVEL`] bits, read as a big-endian `u16`.
pub const LEAF_PREFIX_BYTES: usize = (BITS_PER_LEVEL * TREE_DEPTH as u32 / u8::BITS) as usize;
const _: () = assert!(LEAF_PREFIX_BYTES == size_of::<u16>());

/// Bytes of a domain tag ([`LEAF_TAG`], [`INTERNAL_TAG`]) at the start of a hash input.
const TAG_BYTES: usize = size_of::<u8>();

/// Domain tag of leaf hashes.
pub const LEAF_TAG: u8 = 0x01;
/// Domain tag of internal node hashes.
pub const INTERNAL_TAG: u8 = 0x02;

/// First breadth-first position of `level`: (16^level − 1) / 15.
const fn level_offset(level: u8) -> u32 {
    ((1u32 << (BITS_PER_LEVEL * level as u32)) - 1) / (FANOUT as u32 - 1)
}

/// A node of the trie, by breadth-first position (root = 0).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodePos(u32);

impl NodePos {
    /// The root.
    pub const ROOT: NodePos = NodePos(0);

    /// Parses a position received from a peer; `None` when out of the trie.
    pub fn from_wire(raw: u32) -> Option<Self> {
        (raw < NODE_COUNT).then_some(NodePos(raw))
    }

    /// The node at `index` within `level`.
    pub fn new(level: u8, index: u32) -> Self {
        debug_assert!(level <= TREE_DEPTH && index < 1 << (BITS_PER_LEVEL * level as u32));
        NodePos(level_offset(level) + index)
    }

    /// The leaf bucket holding `key_hash`.
    pub fn leaf_of(key_hash: &Hash) -> Self {
        NodePos::new(TREE_DEPTH, leaf_index(key_hash))
    }

    /// Raw breadth-first position, as sent on the wire.
    pub fn raw(self) -> u32 {
        self.0
    }

    /// Depth of this node (root = 0).
    pub fn level(self) -> u8 {
        (1..=TREE_DEPTH)
            .rev()
            .find(|&l| self.0 >= level_offset(l))
            .unwrap_or(0)
    }

    /// Index of this node within its level.
    pub fn index(self) -> u32 {
        self.0 - level_offset(self.level())
    }

    /// True for leaf buckets.
    pub fn is_leaf(self) -> bool {
        self.0 >= level_offset(TREE_DEPTH)
    }

    /// Child `c` (0..16) of an internal node.
    pub fn child(self, c: usize) -> NodePos {
        NodePos::new(self.level() + 1, self.index() * FANOUT as u32 + c as u32)
    }

    /// Parent of a non-root node.
    pub fn parent(self) -> Option<NodePos> {
        let level = self.level();
        (level > 0).then(|| NodePos::new(level - 1, self.index() / FANOUT as u32))
    }

    /// Range of leaf indexes under this node.
    pub fn leaf_range(self) -> std::ops::Range<u32> {
        let span = 1u32 << (BITS_PER_LEVEL * u32::from(TREE_DEPTH - self.level()));
        let start = self.index() * span;
        start..start + span
    }

    /// Inclusive range of key hashes under this node.
    pub fn key_hash_range(self) -> (Hash, Hash) {
        let leaves = self.leaf_range();
        let (mut low, mut high) = (Hash::ZERO.0, Hash::MAX.0);
        low[..LEAF_PREFIX_BYTES].copy_from_slice(&(leaves.start as u16).to_be_bytes());
        high[..LEAF_PREFIX_BYTES].copy_from_slice(&((leaves.end - 1) as u16).to_be_bytes());
        (Hash(low), Hash(high))
    }

    /// True when `key_hash` lies under this node.
    pub fn contains(self, key_hash: &Hash) -> bool {
        self.leaf_range().contains(&leaf_index(key_hash))
    }
}

/// Index of the leaf bucket holding `key_hash`: its first [`LEAF_PREFIX_BYTES`].
pub fn leaf_index(key_hash: &Hash) -> u32 {
    let mut prefix = [0u8; LEAF_PREFIX_BYTES];
    prefix.copy_from_slice(&key_hash.0[..LEAF_PREFIX_BYTES]);
    u32::from(u16::from_be_bytes(prefix))
}

/// Hash of a leaf bucket from its entry digests, in key-hash order.
pub fn leaf_hash<'a>(digests: impl ExactSizeIterator<Item = &'a Hash>) -> Hash {
    if digests.len() == 0 {
        return Hash::ZERO;
    }
    let mut h = Sha256::new();
    h.update([LEAF_TAG]);
    h.update((digests.len() as u32).to_be_bytes());
    for d in digests {
        h.update(d.0);
    }
    Hash(h.finalize().into())
}

/// Hash of an internal node from its 16 child hashes.
pub fn internal_hash(children: &[Hash; FANOUT]) -> Hash {
    if children.iter().all(Hash::is_zero) {
        return Hash::ZERO;
    }
    let mut h = Sha256::new();
    h.update([INTERNAL_TAG]);
    for c in children {
        h.update(c.0);
    }
    Hash(h.finalize().into())
}

/// Bytes in one SHA-256 block.
const BLOCK_BYTES: usize = 64;

/// Block-level SHA-256: the state after whole 64-byte blocks, with no buffer.
/// Cloning one (40 bytes) saves a point a hash can resume from.
type Core = <Sha256 as CoreProxy>::Core;

/// Bytes hashed for an internal node: its tag and 16 child hashes.
const INTERNAL_INPUT_BYTES: usize = TAG_BYTES + FANOUT * Hash::LEN;
/// Whole blocks in that input; one byte of it is left over.
const INTERNAL_BLOCKS: usize = INTERNAL_INPUT_BYTES / BLOCK_BYTES;

/// [`internal_hash`] of one node, recomputed after its children change without
/// re-reading the unchanged ones before them.
///
/// It keeps the SHA-256 state at each 64-byte block boundary of the last input
/// (280 bytes) and resumes from the last boundary before the first changed
/// child: changing child `c` re-hashes `9 − c / 2` of the input's 9 blocks. The
/// result is always that of [`internal_hash`].
#[derive(Clone)]
pub struct InternalMidstates {
    /// `states[k - 1]`: the state after the first `k` blocks of the last input.
    /// The state after the last whole block is never a resume point.
    states: [Core; INTERNAL_BLOCKS - 1],
    /// How many of `states` belong to the last input.
    valid: usize,
}

impl Default for InternalMidstates {
    fn default() -> Self {
        InternalMidstates {
            states: std::array::from_fn(|_| Core::default()),
            valid: 0,
        }
    }
}

impl fmt::Debug for InternalMidstates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalMidstates")
            .field("valid", &self.valid)
            .finish_non_exhaustive()
    }
}

impl InternalMidstates {
    /// [`internal_hash`]`(children)`, given that the first `unchanged` children
    /// are those of the last call (pass 0 when unsure: a wrong count gives a
    /// wrong hash).
    pub fn hash(&mut self, children: &[Hash; FANOUT], unchanged: usize) -> Hash {
        if children.iter().all(Hash::is_zero) {
            self.valid = 0;
            return Hash::ZERO;
        }
        let mut input = [0u8; INTERNAL_INPUT_BYTES];
        input[0] = INTERNAL_TAG;
        for (bytes, child) in input[TAG_BYTES..].chunks_exact_mut(Hash::LEN).zip(children) {
            bytes.copy_from_slice(&child.0);
        }
        // Child `c` starts in block (tag + c hashes) / block size.
        let first = ((TAG_BYTES + Hash::LEN * unchanged.min(FANOUT)) / BLOCK_BYTES).min(self.valid);
        let mut core = match first.checked_sub(1) {
            Some(k) => self.states[k].clone(),
            None => Core::default(),
        };
        let (blocks, tail) = input.split_at(INTERNAL_BLOCKS * BLOCK_BYTES);
        for (k, block) in blocks.chunks_exact(BLOCK_BYTES).enumerate().skip(first) {
            core.update_blocks(std::slice::from_ref(Block::<Core>::from_slice(block)));
            if let Some(state) = self.states.get_mut(k) {
                state.clone_from(&core);
            }
        }
        self.valid = self.states.len();
        let mut buffer = Buffer::<Core>::new(tail);
        let mut out = Output::<Core>::default();
        core.finalize_fixed_core(&mut buffer, &mut out);
        Hash(out.into())
    }
}

/// Where a backend keeps node hashes. Absent nodes read as [`Hash::ZERO`];
/// writing [`Hash::ZERO`] may delete the node.
pub trait TreeNodes {
    /// The backend's error.
    type Error;
    /// Hash of the node at `pos`.
    fn node(&self, pos: NodePos) -> Result<Hash, Self::Error>;
    /// Stores the hash of the node at `pos`.
    fn set_node(&mut self, pos: NodePos, hash: Hash) -> Result<(), Self::Error>;

    /// The 16 child hashes of an internal node.
    fn children(&self, pos: NodePos) -> Result<[Hash; FANOUT], Self::Error> {
        let mut out = [Hash::ZERO; FANOUT];
        for (c, slot) in out.iter_mut().enumerate() {
            *slot = self.node(pos.child(c))?;
        }
        Ok(out)
    }
}

/// Writes new leaf hashes and re-hashes every ancestor once, bottom-up:
/// O(changed leaves × depth) hashing, never a rebuild. Returns the new root.
pub fn update_paths<T: TreeNodes>(
    nodes: &mut T,
    leaves: impl IntoIterator<Item = (u32, Hash)>,
) -> Result<Hash, T::Error> {
    let mut dirty = Vec::new();
    for (index, hash) in leaves {
        let pos = NodePos::new(TREE_DEPTH, index);
        nodes.set_node(pos, hash)?;
        dirty.extend(pos.parent());
    }
    // One level at a time, in position order, each node once.
    while !dirty.is_empty() {
        dirty.sort_unstable();
        dirty.dedup();
        let mut next = Vec::with_capacity(dirty.len());
        for &pos in &dirty {
            let hash = internal_hash(&nodes.children(pos)?);
            nodes.set_node(pos, hash)?;
            next.extend(pos.parent());
        }
        dirty = next;
    }
    nodes.node(NodePos::ROOT)
}

/// A sparse in-memory node map: the reference implementation of [`TreeNodes`].
#[derive(Clone, Debug, Default)]
pub struct NodeMap(HashMap<NodePos, Hash>);

impl TreeNodes for NodeMap {
    type Error = std::convert::Infallible;

    fn node(&self, pos: NodePos) -> Result<Hash, Self::Error> {
        Ok(self.0.get(&pos).copied().unwrap_or(Hash::ZERO))
    }

    fn set_node(&mut self, pos: NodePos, hash: Hash) -> Result<(), Self::Error> {
        if hash.is_zero() {
            self.0.remove(&pos);
        } else {
            self.0.insert(pos, hash);
        }
        Ok(())
    }
}

/// Recomputes the root of a set of entries from scratch; several entries for one key
/// are merged first. Used to verify stores and snapshots; stores themselves update
/// incrementally.
pub fn root_of<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Hash {
    let mut winners: BTreeMap<Hash, &Entry> = BTreeMap::new();
    for e in entries {
        let slot = winners.entry(e.key_hash()).or_insert(e);
        if e.supersedes(slot) {
            *slot = e;
        }
    }
    let mut buckets: BTreeMap<u32, BTreeMap<Hash, Hash>> = BTreeMap::new();
    for (kh, e) in winners {
        buckets
            .entry(leaf_index(&kh))
            .or_default()
            .insert(kh, e.digest());
    }
    let leaves = buckets.into_iter().map(|(i, b)| (i, leaf_hash(b.values())));
    let mut map = NodeMap::default();
    match update_paths(&mut map, leaves) {
        Ok(root) => root,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Rounds of edits `(slot or position, value)`; value 0 writes a zero hash
    /// (internal) or removes (leaf), and few distinct values make some edits
    /// write what is already there.
    fn arb_rounds() -> impl Strategy<Value = Vec<Vec<(usize, u8)>>> {
        let edit = (0usize..64, 0u8..6);
        prop::collection::vec(prop::collection::vec(edit, 1..4), 1..40)
    }

    proptest! {
        #[test]
        fn internal_midstates_match_internal_hash(rounds in arb_rounds()) {
            let (mut children, mut node) = ([Hash::ZERO; FANOUT], InternalMidstates::default());
            for round in rounds {
                let mut unchanged = FANOUT;
                for (slot, value) in round {
                    let slot = slot % FANOUT;
                    children[slot] = Hash([value; Hash::LEN]);
                    unchanged = unchanged.min(slot);
                }
                prop_assert_eq!(node.hash(&children, unchanged), internal_hash(&children));
            }
        }
    }

    #[test]
    fn positions_round_trip_through_level_and_index() {
        assert_eq!(NODE_COUNT, 69_905);
        for raw in [0, 1, 16, 17, 272, 273, 4368, 4369, NODE_COUNT - 1] {
            let pos = NodePos(raw);
            assert_eq!(NodePos::new(pos.level(), pos.index()), pos);
        }
        assert_eq!(NodePos::from_wire(NODE_COUNT), None);
        assert_eq!(
            NodePos::ROOT.child(15).child(15).child(15).child(15).raw(),
            NODE_COUNT - 1
        );
    }

    #[test]
    fn parents_and_children_agree() {
        let pos = NodePos::new(2, 77);
        for c in 0..FANOUT {
            assert_eq!(pos.child(c).parent(), Some(pos));
        }
        assert_eq!(NodePos::ROOT.parent(), None);
    }

    #[test]
    fn key_hash_ranges_cover_exactly_the_subtree() {
        let pos = NodePos::new(2, 0xab);
        let (low, high) = pos.key_hash_range();
        assert_eq!(&low.0[..2], &[0xab, 0x00]);
        assert_eq!(&high.0[..2], &[0xab, 0xff]);
        assert!(pos.contains(&low) && pos.contains(&high));
        let mut outside = high;
        outside.0[1] = 0;
        outside.0[0] = 0xac;
        assert!(!pos.contains(&outside));
    }

    #[test]
    fn empty_trees_hash_to_zero() {
        assert_eq!(root_of(std::iter::empty()), Hash::ZERO);
        assert_eq!(internal_hash(&[Hash::ZERO; FANOUT]), Hash::ZERO);
    }
}
