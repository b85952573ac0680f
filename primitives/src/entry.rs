//! The entry model and the merge rule.
//!
//! An entry is `(key, value, version, tombstone)`. Replicas merge with
//! last-writer-wins on the version `(hlc, node)`; the rare tie of two different
//! contents under one version is broken by `(tombstone, value)`, so merge is the
//! maximum under a total order: commutative, associative and idempotent.

use std::cmp::Ordering;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::ProtocolError;
use crate::ids::{Hash, NodeId};
use crate::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::wire::WireEntry;
use crate::wire::entry_codec::EntryFields;

/// Domain tag of entry digests (see docs/PROTOCOL.md).
pub const ENTRY_TAG: u8 = 0x00;

/// When and by whom an entry was written: ordered by clock, then node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Version {
    /// Hybrid logical clock value (see [`crate::Hlc`]).
    pub hlc: u64,
    /// The writer.
    pub node: NodeId,
}

impl Version {
    /// A version written by `node` at clock `hlc`.
    pub fn new(hlc: u64, node: NodeId) -> Self {
        Version { hlc, node }
    }
}

/// One versioned key-value pair; deletions are entries with `tombstone` set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// The key, at most [`MAX_KEY_BYTES`].
    pub key: Bytes,
    /// The value, at most [`MAX_VALUE_BYTES`]; empty for tombstones.
    pub value: Bytes,
    /// The write that produced this entry.
    pub version: Version,
    /// True when the key was deleted.
    pub tombstone: bool,
}

impl Entry {
    /// A live entry.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>, version: Version) -> Self {
        Entry {
            key: key.into(),
            value: value.into(),
            version,
            tombstone: false,
        }
    }

    /// A tombstone for `key`.
    pub fn delete(key: impl Into<Bytes>, version: Version) -> Self {
        Entry {
            key: key.into(),
            value: Bytes::new(),
            version,
            tombstone: true,
        }
    }

    /// SHA-256 of the key: the entry's address in the Merkle trie.
    pub fn key_hash(&self) -> Hash {
        key_hash(&self.key)
    }

    /// Domain-separated digest over the canonical encoding of the whole entry.
    pub fn digest(&self) -> Hash {
        let mut h = Sha256::new();
        h.update([ENTRY_TAG]);
        h.update((self.key.len() as u32).to_be_bytes());
        h.update(&self.key);
        h.update((self.value.len() as u32).to_be_bytes());
        h.update(&self.value);
        h.update(self.version.hlc.to_be_bytes());
        h.update(self.version.node.0.to_be_bytes());
        h.update([u8::from(self.tombstone)]);
        Hash(h.finalize().into())
    }

    /// The total order merge picks the maximum of.
    pub fn merge_cmp(&self, other: &Entry) -> Ordering {
        self.version
            .cmp(&other.version)
            .then(self.tombstone.cmp(&other.tombstone))
            .then_with(|| self.value.cmp(&other.value))
    }

    /// True when `self` wins the merge against `other` (and differs from it).
    pub fn supersedes(&self, other: &Entry) -> bool {
        self.merge_cmp(other) == Ordering::Greater
    }

    /// Bytes this entry takes inside a message (field tag, length prefix and body):
    /// what batching budgets count.
    /// Computed from the lengths alone: no message is built.
    pub fn encoded_len(&self) -> usize {
        self.fields().field_len()
    }

    /// The entry's wire fields, borrowed (for [`EntryFields::encode_field`]).
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            key: &self.key,
            value: &self.value,
            hlc: self.version.hlc,
            node: self.version.node.0,
            tombstone: self.tombstone,
        }
    }

    /// Checks the limits on an entry received from a peer.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.key.len() > MAX_KEY_BYTES {
            return Err(ProtocolError::too_many(
                "key bytes",
                MAX_KEY_BYTES,
                self.key.len(),
            ));
        }
        if self.value.len() > MAX_VALUE_BYTES {
            return Err(ProtocolError::too_many(
                "value bytes",
                MAX_VALUE_BYTES,
                self.value.len(),
            ));
        }
        if self.tombstone && !self.value.is_empty() {
            return Err(ProtocolError::Malformed("tombstone with a value"));
        }
        Ok(())
    }
}

/// The merge rule: keep whichever entry wins [`Entry::merge_cmp`].
pub fn merge(a: Entry, b: Entry) -> Entry {
    if b.supersedes(&a) { b } else { a }
}

/// SHA-256 of a key.
pub fn key_hash(key: &[u8]) -> Hash {
    Hash(Sha256::digest(key).into())
}

impl From<&Entry> for WireEntry {
    fn from(e: &Entry) -> Self {
        WireEntry {
            key: e.key.clone(),
            value: e.value.clone(),
            hlc: e.version.hlc,
            node: e.version.node.0,
            tombstone: e.tombstone,
        }
    }
}

impl TryFrom<WireEntry> for Entry {
    type Error = ProtocolError;

    fn try_from(w: WireEntry) -> Result<Self, ProtocolError> {
        let entry = Entry {
            key: w.key,
            value: w.value,
            version: Version::new(w.hlc, NodeId(w.node)),
            tombstone: w.tombstone,
        };
        entry.validate()?;
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            0u64..4,
            0u64..3,
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..3),
        )
            .prop_map(|(hlc, node, tombstone, value)| Entry {
                key: Bytes::from_static(b"k"),
                value: if tombstone {
                    Bytes::new()
                } else {
                    Bytes::from(value)
                },
                version: Version::new(hlc, NodeId(node)),
                tombstone,
            })
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in arb_entry(), b in arb_entry()) {
            prop_assert_eq!(merge(a.clone(), b.clone()), merge(b, a));
        }

        #[test]
        fn merge_is_associative(a in arb_entry(), b in arb_entry(), c in arb_entry()) {
            let left = merge(merge(a.clone(), b.clone()), c.clone());
            let right = merge(a, merge(b, c));
            prop_assert_eq!(left, right);
        }

        #[test]
        fn merge_is_idempotent(a in arb_entry(), b in arb_entry()) {
            prop_assert_eq!(merge(a.clone(), a.clone()), a.clone());
            let once = merge(a.clone(), b.clone());
            prop_assert_eq!(merge(once.clone(), b), once);
        }
    }

    #[test]
    fn newer_version_wins_and_ties_break_deterministically() {
        let old = Entry::put("k", "new-looking", Version::new(1, NodeId(9)));
        let new = Entry::put("k", "a", Version::new(2, NodeId(1)));
        assert_eq!(merge(old.clone(), new.clone()), new);
        let tomb = Entry::delete("k", Version::new(2, NodeId(1)));
        assert_eq!(
            merge(new.clone(), tomb.clone()),
            tomb,
            "tombstone wins a tie"
        );
    }

    #[test]
    fn encoded_len_is_the_length_prost_writes() {
        let v = Version::new(1 << 50, NodeId(3));
        for entry in [
            Entry::put("k", "v".repeat(300), v),
            Entry::put(vec![9u8; 128], "", Version::default()),
            Entry::delete("gone", v),
        ] {
            let body = prost::Message::encoded_len(&WireEntry::from(&entry));
            let framed = 1 + prost::encoding::encoded_len_varint(body as u64) + body;
            assert_eq!(entry.encoded_len(), framed, "{entry:?}");
        }
    }

    #[test]
    fn digest_covers_every_field() {
        let base = Entry::put("k", "v", Version::new(1, NodeId(1)));
        let variants = [
            Entry::put("k2", "v", base.version),
            Entry::put("k", "v2", base.version),
            Entry::put("k", "v", Version::new(2, NodeId(1))),
            Entry::put("k", "v", Version::new(1, NodeId(2))),
            Entry::delete("k", base.version),
        ];
        for v in variants {
            assert_ne!(v.digest(), base.digest(), "{v:?}");
        }
    }

    #[test]
    fn validation_rejects_oversized_and_inconsistent_entries() {
        let v = Version::default();
        assert!(
            Entry::put(vec![0u8; MAX_KEY_BYTES + 1], "", v)
                .validate()
                .is_err()
        );
        assert!(
            Entry::put("k", vec![0u8; MAX_VALUE_BYTES + 1], v)
                .validate()
                .is_err()
        );
        let mut tomb = Entry::delete("k", v);
        tomb.value = Bytes::from_static(b"x");
        assert!(tomb.validate().is_err());
    }
}
