//! The compact form of a bucket's entries: fixed-size [`Slot`]s (hashes,
//! version, lengths inline) beside one run of bytes holding each entry's key
//! then value, in slot order; lent out as [`EntryRef`]s.

use std::cmp::Ordering;

use synctree_primitives::store::EntryRef;
use synctree_primitives::{Entry, Hash, StoredEntry, Version};

/// One entry of a bucket without its bytes: 96 bytes, hashes inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// SHA-256 of the key.
    pub(crate) key_hash: Hash,
    /// [`Entry::digest`].
    pub(crate) digest: Hash,
    /// The write that produced the entry.
    pub(crate) version: Version,
    /// Key bytes at the front of the entry's bytes.
    pub(crate) key_len: u32,
    /// Value bytes after the key.
    pub(crate) value_len: u32,
    /// True when the key was deleted.
    pub(crate) tombstone: bool,
}

impl Slot {
    /// The slot of `stored`, whose key and value are no longer than `u32::MAX`
    /// bytes ([`fits`]).
    pub(crate) fn of(stored: &StoredEntry) -> Self {
        let len = |b: &[u8]| u32::try_from(b.len()).unwrap_or(u32::MAX);
        Slot {
            key_hash: stored.key_hash,
            digest: stored.digest,
            version: stored.entry.version,
            key_len: len(&stored.entry.key),
            value_len: len(&stored.entry.value),
            tombstone: stored.entry.tombstone,
        }
    }

    /// Bytes the entry takes in the byte run.
    pub(crate) fn len(&self) -> usize {
        self.key_len as usize + self.value_len as usize
    }

    /// Lends the entry, whose bytes are `bytes` (exactly [`Slot::len`] long).
    pub(crate) fn lend<'a>(&'a self, bytes: &'a [u8]) -> EntryRef<'a> {
        let (key, value) = bytes.split_at(bytes.len().min(self.key_len as usize));
        EntryRef {
            key_hash: &self.key_hash,
            digest: &self.digest,
            key,
            value,
            version: self.version,
            tombstone: self.tombstone,
        }
    }
}

/// True when `entry`'s key and value lengths fit a [`Slot`]: anything a
/// process can hold short of 4 GiB keys or values (the wire allows 4 KiB and
/// 2 MiB).
pub(crate) fn fits(entry: &Entry) -> bool {
    u32::try_from(entry.key.len()).is_ok() && u32::try_from(entry.value.len()).is_ok()
}

/// The entries of `slots`, whose bytes follow one another in `bytes`, in order.
pub(crate) fn lend_all<'a>(
    slots: &'a [Slot],
    bytes: &'a [u8],
) -> impl Iterator<Item = EntryRef<'a>> + 'a {
    let mut rest = bytes;
    slots.iter().map_while(move |slot| {
        let (mine, after) = rest.split_at_checked(slot.len())?;
        rest = after;
        Some(slot.lend(mine))
    })
}

/// Byte offset of the entry in slot `i` (the lengths of those before it).
pub(crate) fn offset(slots: &[Slot], i: usize) -> usize {
    slots[..i.min(slots.len())].iter().map(Slot::len).sum()
}

/// True when `candidate` wins the merge against `held`: exactly
/// [`Entry::supersedes`] (version, then tombstone, then value), read from the
/// compact form without building an [`Entry`].
pub(crate) fn wins(candidate: &Entry, held: &EntryRef<'_>) -> bool {
    let order = candidate
        .version
        .cmp(&held.version)
        .then(candidate.tombstone.cmp(&held.tombstone))
        .then_with(|| candidate.value[..].cmp(held.value));
    order == Ordering::Greater
}

#[cfg(test)]
mod tests {
    use synctree_primitives::NodeId;

    use super::*;

    #[test]
    fn wins_agrees_with_supersedes() {
        let v = |hlc, node| Version::new(hlc, NodeId(node));
        let entries = [
            Entry::put("k", "a", v(1, 1)),
            Entry::put("k", "b", v(1, 1)),
            Entry::put("k", "a", v(1, 2)),
            Entry::put("k", "a", v(2, 1)),
            Entry::delete("k", v(1, 1)),
            Entry::delete("k", v(2, 1)),
            Entry::put("k", "", v(1, 1)),
        ];
        for a in &entries {
            for b in &entries {
                let held = StoredEntry::new(b.clone());
                let slot = Slot::of(&held);
                let bytes = [&held.entry.key[..], &held.entry.value[..]].concat();
                assert_eq!(
                    wins(a, &slot.lend(&bytes)),
                    a.supersedes(b),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn entries_are_lent_back_as_stored() {
        let stored: Vec<StoredEntry> = [("a", "1"), ("bb", ""), ("", "ccc")]
            .iter()
            .map(|&(k, v)| StoredEntry::new(Entry::put(k, v, Version::new(3, NodeId(1)))))
            .collect();
        let slots: Vec<Slot> = stored.iter().map(Slot::of).collect();
        let bytes: Vec<u8> = stored
            .iter()
            .flat_map(|s| [s.entry.key.to_vec(), s.entry.value.to_vec()].concat())
            .collect();
        let lent: Vec<StoredEntry> = lend_all(&slots, &bytes).map(|e| e.to_stored()).collect();
        assert_eq!(lent, stored);
        assert_eq!(offset(&slots, 2), 4, "\"a1\" and \"bb\" before it");
        assert_eq!(size_of::<Slot>(), 96);
    }
}
