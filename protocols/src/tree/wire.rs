//! Encoding and checked decoding of the tree messages shared by the tree protocols.

use bytes::{Bytes, BytesMut};
use synctree_primitives::limits::{MAX_ENTRIES_PER_PREFIX, NODE_HASH_BYTES};
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::{EntrySummary, LeafSummary, NodeChildren};
use synctree_primitives::{EntryRef, Hash, NodeId, NodePos, ProtocolError, Version};

/// An entry of a peer's leaf bucket, as summarized on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RemoteSummary {
    pub(crate) prefix: KeyPrefix,
    pub(crate) version: Version,
    pub(crate) check: u32,
}

/// The first `len` bytes of a key hash: how leaf summaries and prefix pulls name
/// entries. Prefixes of one length order like the key hashes they start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct KeyPrefix {
    len: u8,
    bytes: [u8; Hash::LEN],
}

impl KeyPrefix {
    /// The first `len` (at most [`Hash::LEN`]) bytes of `hash`.
    pub(crate) fn of(hash: &Hash, len: usize) -> Self {
        let len = len.min(Hash::LEN);
        let mut bytes = [0; Hash::LEN];
        bytes[..len].copy_from_slice(&hash.0[..len]);
        KeyPrefix {
            len: len as u8,
            bytes,
        }
    }

    /// A prefix received from a peer, which must be exactly `len` bytes long.
    pub(crate) fn from_wire(
        raw: &[u8],
        len: usize,
        field: &'static str,
    ) -> Result<Self, ProtocolError> {
        if raw.len() != len || len > Hash::LEN {
            return Err(ProtocolError::BadLength {
                field,
                expected: len,
                got: raw.len(),
            });
        }
        let mut bytes = [0; Hash::LEN];
        bytes[..len].copy_from_slice(raw);
        Ok(KeyPrefix {
            len: len as u8,
            bytes,
        })
    }

    /// The prefix bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// True when `hash` starts with this prefix.
    #[cfg(test)]
    pub(crate) fn matches(&self, hash: &Hash) -> bool {
        hash.0.starts_with(self.as_slice())
    }

    /// The smallest and largest key hash starting with this prefix.
    pub(crate) fn range(&self) -> (Hash, Hash) {
        let mut high = self.bytes;
        high[usize::from(self.len)..].fill(u8::MAX);
        (Hash(self.bytes), Hash(high))
    }
}

/// Bytes of an entry digest a leaf summary carries as its check value (a `u32`).
const CHECK_BYTES: usize = size_of::<u32>();

/// The first [`CHECK_BYTES`] bytes of an entry digest: tells equal versions with
/// different contents apart.
pub(crate) fn check_of(digest: &Hash) -> u32 {
    let mut check = [0; CHECK_BYTES];
    check.copy_from_slice(&digest.0[..CHECK_BYTES]);
    u32::from_be_bytes(check)
}

/// A child hash as `NodeChildren` carries it: its salted truncation to
/// [`NODE_HASH_BYTES`] bytes under the session's [`SessionKey`]. All zero for an
/// empty child. Comparisons of children use this form on both sides.
pub(crate) use synctree_primitives::salt::ShortHash;

/// The truncated hash of an empty child.
pub(crate) const EMPTY: ShortHash = [0; NODE_HASH_BYTES];

/// The 16 children of an internal node, truncated.
pub(crate) type ShortChildren = [ShortHash; FANOUT];

/// The truncated form of every child under `key`.
pub(crate) fn short_children(key: &SessionKey, children: &[Hash; FANOUT]) -> ShortChildren {
    children.map(|h| key.truncate(&h))
}

/// True when no child is present.
pub(crate) fn is_empty(children: &ShortChildren) -> bool {
    children.iter().all(|h| *h == EMPTY)
}

/// Children of `pos`, sending only the non-empty ones, each truncated under `key`.
pub(crate) fn encode_children(
    key: &SessionKey,
    pos: NodePos,
    children: &[Hash; FANOUT],
) -> NodeChildren {
    let mut present = 0u32;
    let mut hashes = Vec::with_capacity(FANOUT * NODE_HASH_BYTES);
    for (c, h) in children.iter().enumerate() {
        if !h.is_zero() {
            present |= 1 << c;
            hashes.extend_from_slice(&key.truncate(h));
        }
    }
    NodeChildren {
        position: pos.raw(),
        present,
        hashes: hashes.into(),
    }
}

/// Checks and expands a peer's [`NodeChildren`]: an internal position, no bitmap
/// bits past the fanout, [`NODE_HASH_BYTES`] per present child, none of them zero.
pub(crate) fn decode_children(
    msg: &NodeChildren,
) -> Result<(NodePos, ShortChildren), ProtocolError> {
    let pos = internal_position(msg.position)?;
    if msg.present >> FANOUT != 0 {
        return Err(ProtocolError::Malformed(
            "child bitmap has bits past the fanout",
        ));
    }
    let expected = msg.present.count_ones() as usize * NODE_HASH_BYTES;
    if msg.hashes.len() != expected {
        return Err(ProtocolError::BadLength {
            field: "hashes",
            expected,
            got: msg.hashes.len(),
        });
    }
    let mut out = [EMPTY; FANOUT];
    let mut chunks = msg.hashes.chunks_exact(NODE_HASH_BYTES);
    for (c, slot) in out.iter_mut().enumerate() {
        if msg.present & (1 << c) != 0 {
            let chunk = chunks
                .next()
                .ok_or(ProtocolError::Malformed("missing child hash"))?;
            slot.copy_from_slice(chunk);
            if *slot == EMPTY {
                return Err(ProtocolError::Malformed(
                    "present child with the empty hash",
                ));
            }
        }
    }
    Ok((pos, out))
}

/// A leaf bucket's summary built from entries lent one at a time, naming each
/// entry by its first `prefix_len` key-hash bytes
/// ([`KEY_PREFIX_BYTES`](synctree_primitives::limits::KEY_PREFIX_BYTES) on the
/// wire; tests pass less to force collisions). Entries sharing a prefix are sent as
/// they are, one summary each; the receiver reconciles such a group as a whole.
/// Every prefix is a slice of one buffer, so a summary costs a few allocations,
/// not one per entry.
#[derive(Debug)]
pub(crate) struct LeafEncoder {
    prefix_len: usize,
    prefixes: BytesMut,
    entries: Vec<EntrySummary>,
}

impl LeafEncoder {
    /// An empty summary with room for about `expected` entries.
    pub(crate) fn new(prefix_len: usize, expected: usize) -> Self {
        let prefix_len = prefix_len.min(Hash::LEN);
        LeafEncoder {
            prefix_len,
            prefixes: BytesMut::with_capacity(expected * prefix_len),
            entries: Vec::with_capacity(expected),
        }
    }

    /// Adds the next entry (in key-hash order).
    pub(crate) fn add(&mut self, entry: EntryRef<'_>) {
        self.prefixes
            .extend_from_slice(&entry.key_hash.0[..self.prefix_len]);
        self.entries.push(EntrySummary {
            key_prefix: Bytes::new(),
            hlc: entry.version.hlc,
            node: entry.version.node.0,
            check: check_of(entry.digest),
        });
    }

    /// The summary of leaf `pos`, `partial` when more parts follow.
    pub(crate) fn finish(mut self, pos: NodePos, partial: bool) -> LeafSummary {
        let prefixes = self.prefixes.freeze();
        let len = self.prefix_len;
        for (i, summary) in self.entries.iter_mut().enumerate() {
            summary.key_prefix = prefixes.slice(i * len..(i + 1) * len);
        }
        LeafSummary {
            position: pos.raw(),
            entries: self.entries,
            partial,
        }
    }
}

/// Checks a peer's [`LeafSummary`]: a leaf position, prefixes of exactly
/// `prefix_len` bytes inside that leaf, in non-decreasing order (equal neighbours are
/// a prefix collision; [`check_prefix_runs`] bounds them once the leaf is whole).
pub(crate) fn decode_leaf(
    msg: &LeafSummary,
    prefix_len: usize,
) -> Result<(NodePos, Vec<RemoteSummary>), ProtocolError> {
    let pos = NodePos::from_wire(msg.position).filter(|p| p.is_leaf());
    let pos = pos.ok_or(ProtocolError::BadPosition(msg.position))?;
    let mut out: Vec<RemoteSummary> = Vec::with_capacity(msg.entries.len());
    for e in &msg.entries {
        let prefix = KeyPrefix::from_wire(&e.key_prefix, prefix_len, "key_prefix")?;
        let (low, high) = prefix.range();
        if !pos.contains(&low) || !pos.contains(&high) {
            return Err(ProtocolError::Malformed(
                "leaf summary entry outside its leaf",
            ));
        }
        if out.last().is_some_and(|prev| prev.prefix > prefix) {
            return Err(ProtocolError::Malformed(
                "leaf summary not in key-hash order",
            ));
        }
        let version = Version::new(e.hlc, NodeId(e.node));
        out.push(RemoteSummary {
            prefix,
            version,
            check: e.check,
        });
    }
    Ok((pos, out))
}

/// Refuses a whole leaf summary in which more than [`MAX_ENTRIES_PER_PREFIX`]
/// entries share one prefix: a responder would refuse to answer that prefix anyway.
pub(crate) fn check_prefix_runs(summary: &[RemoteSummary]) -> Result<(), ProtocolError> {
    for run in summary.chunk_by(|a, b| a.prefix == b.prefix) {
        ProtocolError::check_limit("entries per key prefix", MAX_ENTRIES_PER_PREFIX, run.len())?;
    }
    Ok(())
}

/// A position received from a peer that must name an internal node.
pub(crate) fn internal_position(raw: u32) -> Result<NodePos, ProtocolError> {
    NodePos::from_wire(raw)
        .filter(|p| !p.is_leaf())
        .ok_or(ProtocolError::BadPosition(raw))
}

/// A position received from a peer that must exist.
pub(crate) fn any_position(raw: u32) -> Result<NodePos, ProtocolError> {
    NodePos::from_wire(raw).ok_or(ProtocolError::BadPosition(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_round_trip_truncated_and_sparse() {
        let mut children = [Hash::ZERO; FANOUT];
        children[3] = Hash([7; 32]);
        children[15] = Hash([9; 32]);
        let key = SessionKey::default();
        let msg = encode_children(&key, NodePos::new(1, 2), &children);
        assert_eq!(msg.present, 1 << 3 | 1 << 15);
        assert_eq!(msg.hashes.len(), 2 * NODE_HASH_BYTES);
        let decoded = decode_children(&msg);
        assert_eq!(
            decoded,
            Ok((NodePos::new(1, 2), short_children(&key, &children)))
        );
        assert!(decoded.is_ok_and(|(_, c)| !is_empty(&c) && c[0] == [0; NODE_HASH_BYTES]));
    }

    /// Two different hashes sharing their first 8 bytes (what a crafted collision
    /// of the old, unkeyed truncation looks like) no longer compare equal, under any
    /// session key, and the pair that collides under one key is apart under another.
    #[test]
    fn hashes_colliding_on_the_plain_prefix_differ_under_a_session_key() {
        use synctree_primitives::salt::SessionNonce;
        let (mut a, mut b) = (Hash([5; 32]), Hash([5; 32]));
        a.0[NODE_HASH_BYTES] = 1;
        b.0[31] = 2;
        assert_eq!(a.0[..NODE_HASH_BYTES], b.0[..NODE_HASH_BYTES]);
        let mut children_a = [Hash::ZERO; FANOUT];
        let mut children_b = [Hash::ZERO; FANOUT];
        (children_a[4], children_b[4]) = (a, b);
        for n in 0..8u8 {
            let key = SessionKey::derive(&SessionNonce([n; 16]), &SessionNonce([!n; 16]));
            assert_ne!(key.truncate(&a), key.truncate(&b));
            let (ours, theirs) = (
                encode_children(&key, NodePos::ROOT, &children_a),
                encode_children(&key, NodePos::ROOT, &children_b),
            );
            assert_eq!(ours.present, theirs.present);
            assert_ne!(ours.hashes, theirs.hashes, "key {n}");
        }
        let colliding = SessionKey::dangerous_colliding();
        assert_eq!(colliding.truncate(&a), colliding.truncate(&b));
    }

    #[test]
    fn an_empty_node_encodes_as_an_empty_bitmap() {
        let msg = encode_children(&SessionKey::default(), NodePos::ROOT, &[Hash::ZERO; FANOUT]);
        assert_eq!((msg.present, msg.hashes.len()), (0, 0));
        assert!(decode_children(&msg).is_ok_and(|(_, c)| is_empty(&c)));
    }

    #[test]
    fn malformed_children_are_rejected() {
        let good = encode_children(
            &SessionKey::default(),
            NodePos::ROOT,
            &[Hash([1; 32]); FANOUT],
        );
        let mut cut = good.clone();
        cut.hashes = Bytes::from(vec![1; NODE_HASH_BYTES * 16 - 1]);
        assert!(matches!(
            decode_children(&cut),
            Err(ProtocolError::BadLength { .. })
        ));
        let mut full = good.clone();
        full.hashes = Bytes::from(vec![1; 32 * 16]);
        assert!(matches!(
            decode_children(&full),
            Err(ProtocolError::BadLength { .. })
        ));
        let mut wide = good.clone();
        wide.present |= 1 << 16;
        assert!(matches!(
            decode_children(&wide),
            Err(ProtocolError::Malformed(_))
        ));
        let mut zero = good.clone();
        zero.hashes =
            Bytes::from([vec![0; NODE_HASH_BYTES], vec![1; NODE_HASH_BYTES * 15]].concat());
        assert!(matches!(
            decode_children(&zero),
            Err(ProtocolError::Malformed(_))
        ));
        let mut leaf = good;
        leaf.position = NodePos::new(4, 0).raw();
        assert_eq!(
            decode_children(&leaf),
            Err(ProtocolError::BadPosition(leaf.position))
        );
    }

    #[test]
    fn leaf_summaries_must_be_sorted_and_inside_their_leaf() {
        let pos = NodePos::new(4, 0x0102);
        let summary = |first: u8, second: u8| EntrySummary {
            key_prefix: Bytes::from([[1, 2, first, second].as_slice(), &[0; 4]].concat()),
            ..EntrySummary::default()
        };
        let leaf = |entries| LeafSummary {
            position: pos.raw(),
            entries,
            partial: false,
        };
        let ok = leaf(vec![summary(0, 1), summary(0, 2)]);
        assert_eq!(decode_leaf(&ok, 8).map(|(_, v)| v.len()), Ok(2));
        let collided = leaf(vec![summary(0, 1), summary(0, 1)]);
        assert_eq!(decode_leaf(&collided, 8).map(|(_, v)| v.len()), Ok(2));
        let unsorted = leaf(vec![summary(0, 2), summary(0, 1)]);
        assert!(decode_leaf(&unsorted, 8).is_err());
        let outside = LeafSummary {
            position: NodePos::new(4, 7).raw(),
            ..ok.clone()
        };
        assert!(decode_leaf(&outside, 8).is_err());
        for len in [0, 2, 7, 9, 32] {
            assert!(matches!(
                decode_leaf(&ok, len),
                Err(ProtocolError::BadLength { .. })
            ));
        }
    }

    #[test]
    fn a_short_prefix_still_fixes_the_bucket_and_runs_are_bounded() {
        let pos = NodePos::new(4, 0x0102);
        let summary = |bytes: &[u8]| EntrySummary {
            key_prefix: Bytes::copy_from_slice(bytes),
            ..EntrySummary::default()
        };
        let two = LeafSummary {
            position: pos.raw(),
            entries: vec![summary(&[1, 2]); MAX_ENTRIES_PER_PREFIX + 1],
            partial: false,
        };
        let decoded = decode_leaf(&two, 2).map(|(_, v)| v).unwrap_or_default();
        assert_eq!(decoded.len(), MAX_ENTRIES_PER_PREFIX + 1);
        assert!(check_prefix_runs(&decoded[1..]).is_ok());
        assert!(matches!(
            check_prefix_runs(&decoded),
            Err(ProtocolError::LimitExceeded { .. })
        ));
        let wide = LeafSummary {
            entries: vec![summary(&[1])],
            ..two
        };
        assert!(decode_leaf(&wide, 1).is_err(), "one byte spans 256 buckets");
    }

    #[test]
    fn prefixes_match_their_range() {
        let mut h = Hash([0x5a; 32]);
        let p = KeyPrefix::of(&h, 3);
        assert_eq!(p.as_slice(), &[0x5a; 3]);
        let (low, high) = p.range();
        assert!(low <= h && h <= high && p.matches(&low) && p.matches(&high));
        h.0[2] = 0x5b;
        assert!(!p.matches(&h) && h > high);
        assert_eq!(KeyPrefix::from_wire(&[0x5a; 3], 3, "p"), Ok(p));
    }
}
