//! [`Bucket`]: the entries of one leaf bucket, in key-hash order.

use std::cmp::Ordering;

use synctree_primitives::{Entry, Hash, StoredEntry, merkle};

/// The entries of one leaf bucket, sorted by key hash, kept as three parallel
/// columns: a lookup binary-searches only the contiguous key hashes, and
/// re-hashing the bucket reads only the contiguous digests. Both stay in a few
/// cache lines where an array of whole entries would spread them over many.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bucket {
    key_hashes: Vec<Hash>,
    digests: Vec<Hash>,
    entries: Vec<Entry>,
}

/// What merging one entry into a bucket did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merged {
    /// The key was new.
    Inserted,
    /// The entry won the merge against the stored one.
    Replaced,
    /// The stored entry won, or was the same.
    Kept,
}

impl Bucket {
    /// The entry stored under `key_hash`.
    pub(crate) fn get(&self, key_hash: &Hash) -> Option<&Entry> {
        self.find(key_hash).ok().map(|i| &self.entries[i])
    }

    /// Merges `stored` with the entry held under the same key, if any.
    pub(crate) fn merge(&mut self, stored: StoredEntry) -> Merged {
        match self.find(&stored.key_hash) {
            Ok(i) if stored.entry.supersedes(&self.entries[i]) => {
                self.digests[i] = stored.digest;
                self.entries[i] = stored.entry;
                Merged::Replaced
            }
            Ok(_) => Merged::Kept,
            Err(i) => {
                self.key_hashes.insert(i, stored.key_hash);
                self.digests.insert(i, stored.digest);
                self.entries.insert(i, stored.entry);
                Merged::Inserted
            }
        }
    }

    /// The leaf hash of this bucket.
    pub(crate) fn hash(&self) -> Hash {
        merkle::leaf_hash(self.digests.iter())
    }

    /// The entries whose key hash lies in `low..=high`, in key-hash order.
    pub(crate) fn range<'a>(
        &'a self,
        low: &Hash,
        high: &Hash,
    ) -> impl Iterator<Item = StoredEntry> + 'a {
        let start = self.key_hashes.partition_point(|h| h < low);
        let end = self.key_hashes.partition_point(|h| h <= high).max(start);
        (start..end).map(|i| StoredEntry {
            key_hash: self.key_hashes[i],
            digest: self.digests[i],
            entry: self.entries[i].clone(),
        })
    }

    /// Every entry, in key-hash order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Position of `key_hash`, or where it would be inserted.
    fn find(&self, key_hash: &Hash) -> Result<usize, usize> {
        self.key_hashes.binary_search_by(|h| compare(h, key_hash))
    }
}

/// Byte order of two hashes, word by word: keys in one bucket share their first
/// two bytes, so the first word almost always decides, without a `memcmp` call.
fn compare(a: &Hash, b: &Hash) -> Ordering {
    let words = |h: &Hash| {
        let mut w = [0u64; 4];
        for (word, chunk) in w.iter_mut().zip(h.0.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *word = u64::from_be_bytes(bytes);
        }
        w
    };
    words(a).cmp(&words(b))
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use synctree_primitives::{NodeId, Version};

    use super::*;

    #[test]
    fn compare_agrees_with_byte_order() {
        let mut samples = vec![Hash::ZERO, Hash([0xff; 32])];
        for i in 0..32 {
            let mut h = Hash([0x80; 32]);
            h.0[i] = 0x7f;
            samples.push(h);
        }
        for a in &samples {
            for b in &samples {
                assert_eq!(compare(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn merge_keeps_columns_sorted_and_aligned() {
        let mut bucket = Bucket::default();
        let v = |hlc| Version::new(hlc, NodeId(1));
        let entries = [
            Entry::put("b", "1", v(1)),
            Entry::put("a", "1", v(1)),
            Entry::put("c", "1", v(1)),
        ];
        for e in &entries {
            assert_eq!(bucket.merge(StoredEntry::new(e.clone())), Merged::Inserted);
        }
        let newer = Entry::put("a", "2", v(2));
        assert_eq!(
            bucket.merge(StoredEntry::new(newer.clone())),
            Merged::Replaced
        );
        assert_eq!(
            bucket.merge(StoredEntry::new(entries[1].clone())),
            Merged::Kept
        );
        let stored: Vec<StoredEntry> = bucket.range(&Hash::ZERO, &Hash([0xff; 32])).collect();
        assert!(stored.windows(2).all(|w| w[0].key_hash < w[1].key_hash));
        assert!(
            stored
                .iter()
                .all(|s| *s == StoredEntry::new(s.entry.clone()))
        );
        assert_eq!(bucket.get(&newer.key_hash()), Some(&newer));
        assert_eq!(bucket.entries().len(), 3);
    }
}
