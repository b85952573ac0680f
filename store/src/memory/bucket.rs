//! [`Bucket`]: the entries of one leaf bucket, in key-hash order.

use std::cmp::Ordering;

use synctree_primitives::sketch::SketchItem;
use synctree_primitives::{Entry, Hash, PurgeRule, StoredEntry, merkle};

/// Entries up to which a bucket is searched linearly: a bucket of a store of
/// 10^6 entries holds about 15.
const LINEAR_SEARCH_MAX: usize = 32;

/// The entries of one leaf bucket with their key hashes and digests, sorted by
/// key hash, in one allocation: a write to a bucket reads and shifts one run of
/// memory, where parallel columns would each cost a cache miss of their own.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bucket {
    entries: Vec<StoredEntry>,
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
    /// True when the bucket holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry stored under `key_hash`.
    pub(crate) fn get(&self, key_hash: &Hash) -> Option<&Entry> {
        self.find(key_hash).ok().map(|i| &self.entries[i].entry)
    }

    /// Merges `run`, entries of this bucket in key-hash order (entries of one
    /// key in batch order), each against the state the ones before it left;
    /// `merged` sees what each did, and `toggles` gets the sketch items each
    /// change XORs (the new item, and the replaced one). Returns the bucket's new
    /// leaf hash if any entry changed it.
    ///
    /// A lone entry is merged in place; a longer run in one pass over the
    /// bucket, so a batch that crowds one bucket costs the bucket's size plus
    /// the run's, not their product.
    pub(crate) fn merge(
        &mut self,
        run: impl ExactSizeIterator<Item = StoredEntry>,
        toggles: &mut Vec<SketchItem>,
        mut merged: impl FnMut(Merged),
    ) -> Option<Hash> {
        let mut changed = false;
        let mut tally = |m| {
            changed |= m != Merged::Kept;
            merged(m);
        };
        if run.len() == 1 {
            run.for_each(|stored| tally(self.merge_one(stored, toggles)));
        } else {
            self.merge_sorted(run, toggles, &mut tally);
        }
        changed.then(|| merkle::leaf_hash(self.entries.iter().map(|e| &e.digest)))
    }

    /// Merges one entry with the one held under the same key, if any.
    fn merge_one(&mut self, stored: StoredEntry, toggles: &mut Vec<SketchItem>) -> Merged {
        match self.find(&stored.key_hash) {
            Ok(i) => replace(&mut self.entries[i], stored, toggles),
            Err(i) => {
                toggles.push(SketchItem::of(&stored));
                self.entries.insert(i, stored);
                Merged::Inserted
            }
        }
    }

    /// Merges a run in key-hash order into a new entry list, walking both once.
    fn merge_sorted(
        &mut self,
        run: impl Iterator<Item = StoredEntry>,
        toggles: &mut Vec<SketchItem>,
        merged: &mut impl FnMut(Merged),
    ) {
        let (lower, _) = run.size_hint();
        let mut out = Vec::with_capacity(self.entries.len() + lower);
        let mut old = std::mem::take(&mut self.entries).into_iter().peekable();
        for stored in run {
            let before = |e: &StoredEntry| compare(&e.key_hash, &stored.key_hash) == Ordering::Less;
            out.extend(std::iter::from_fn(|| old.next_if(before)));
            out.extend(old.next_if(|e| e.key_hash == stored.key_hash));
            merged(match out.last_mut() {
                Some(last) if last.key_hash == stored.key_hash => replace(last, stored, toggles),
                _ => {
                    toggles.push(SketchItem::of(&stored));
                    out.push(stored);
                    Merged::Inserted
                }
            });
        }
        out.extend(old);
        self.entries = out;
    }

    /// The entries whose key hash lies in `low..=high`, in key-hash order.
    pub(crate) fn range(&self, low: &Hash, high: &Hash) -> &[StoredEntry] {
        let start = self.entries.partition_point(|e| e.key_hash < *low);
        let end = self.entries.partition_point(|e| e.key_hash <= *high);
        &self.entries[start..end.max(start)]
    }

    /// Every stored entry, in key-hash order.
    pub(crate) fn stored(&self) -> impl Iterator<Item = &StoredEntry> {
        self.entries.iter()
    }

    /// Every entry, in key-hash order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().map(|e| &e.entry)
    }

    /// Removes the entry under `key_hash` if `rule` removes it; returns it.
    pub(crate) fn purge(&mut self, key_hash: &Hash, rule: &PurgeRule) -> Option<StoredEntry> {
        let i = self.find(key_hash).ok()?;
        rule.removes(&self.entries[i].entry)
            .then(|| self.entries.remove(i))
    }

    /// The bucket's leaf hash.
    pub(crate) fn hash(&self) -> Hash {
        merkle::leaf_hash(self.entries.iter().map(|e| &e.digest))
    }

    /// Position of `key_hash`, or where it would be inserted. Small buckets
    /// (all but crafted ones) are scanned in order, which the prefetcher
    /// follows, rather than probed at random.
    fn find(&self, key_hash: &Hash) -> Result<usize, usize> {
        if self.entries.len() > LINEAR_SEARCH_MAX {
            return self
                .entries
                .binary_search_by(|e| compare(&e.key_hash, key_hash));
        }
        let i = self
            .entries
            .iter()
            .position(|e| compare(&e.key_hash, key_hash) != Ordering::Less)
            .unwrap_or(self.entries.len());
        match self.entries.get(i) {
            Some(e) if e.key_hash == *key_hash => Ok(i),
            _ => Err(i),
        }
    }
}

/// Replaces `held` by `stored` when `stored` wins the merge.
fn replace(held: &mut StoredEntry, stored: StoredEntry, toggles: &mut Vec<SketchItem>) -> Merged {
    if stored.entry.supersedes(&held.entry) {
        toggles.extend([SketchItem::of(held), SketchItem::of(&stored)]);
        *held = stored;
        Merged::Replaced
    } else {
        Merged::Kept
    }
}

/// Byte order of two hashes, word by word: keys in one bucket share their first
/// two bytes, so the first word almost always decides, without a `memcmp` call.
pub(crate) fn compare(a: &Hash, b: &Hash) -> Ordering {
    sort_key(a).cmp(&sort_key(b))
}

/// Bytes of one word of a [`SortKey`].
const WORD_BYTES: usize = size_of::<u64>();
/// Words of a [`SortKey`]: a whole hash.
const SORT_WORDS: usize = Hash::LEN / WORD_BYTES;

/// A hash as big-endian words, which order as its bytes do.
pub(crate) type SortKey = [u64; SORT_WORDS];

/// `hash` as [`SORT_WORDS`] big-endian words, which order as its bytes do.
pub(crate) fn sort_key(hash: &Hash) -> SortKey {
    let mut words = [0u64; SORT_WORDS];
    for (word, chunk) in words.iter_mut().zip(hash.0.chunks_exact(WORD_BYTES)) {
        let mut bytes = [0u8; WORD_BYTES];
        bytes.copy_from_slice(chunk);
        *word = u64::from_be_bytes(bytes);
    }
    words
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use synctree_primitives::{NodeId, Version};

    use super::*;

    fn stored(key: &str, hlc: u64) -> StoredEntry {
        StoredEntry::new(Entry::put(
            key.to_owned(),
            "v",
            Version::new(hlc, NodeId(1)),
        ))
    }

    /// Merges `run` (sorted here, stably) and lists what each entry did,
    /// checking the bucket's hash.
    fn merge(bucket: &mut Bucket, mut run: Vec<StoredEntry>) -> Vec<Merged> {
        run.sort_by(|a, b| compare(&a.key_hash, &b.key_hash));
        let mut out = Vec::new();
        let hash = bucket.merge(run.into_iter(), &mut Vec::new(), |m| out.push(m));
        let want = merkle::leaf_hash(bucket.entries.iter().map(|e| &e.digest));
        assert_eq!(hash.is_some(), out.iter().any(|&m| m != Merged::Kept));
        assert!(
            hash.is_none_or(|h| h == want),
            "the resumed hash is the leaf hash"
        );
        out
    }

    #[test]
    fn compare_agrees_with_byte_order() {
        let mut samples = vec![Hash::ZERO, Hash::MAX];
        for i in 0..Hash::LEN {
            let mut h = Hash([0x80; Hash::LEN]);
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
    fn lone_entries_keep_the_bucket_sorted() {
        let mut bucket = Bucket::default();
        for key in ["b", "a", "c"] {
            assert_eq!(merge(&mut bucket, vec![stored(key, 1)]), [Merged::Inserted]);
        }
        assert_eq!(merge(&mut bucket, vec![stored("a", 2)]), [Merged::Replaced]);
        assert_eq!(merge(&mut bucket, vec![stored("a", 1)]), [Merged::Kept]);
        let all = bucket.range(&Hash::ZERO, &Hash::MAX);
        assert!(all.windows(2).all(|w| w[0].key_hash < w[1].key_hash));
        assert!(all.iter().all(|s| *s == StoredEntry::new(s.entry.clone())));
        assert_eq!(
            bucket.get(&stored("a", 2).key_hash),
            Some(&stored("a", 2).entry)
        );
        assert_eq!(bucket.entries().count(), 3);
    }

    #[test]
    fn a_run_merges_like_lone_entries_in_batch_order() {
        let keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6"];
        let base: Vec<StoredEntry> = keys.iter().step_by(2).map(|k| stored(k, 5)).collect();
        let run: Vec<StoredEntry> = [
            ("k1", 1),
            ("k0", 9),
            ("k1", 3),
            ("k0", 2),
            ("k6", 5),
            ("k5", 1),
            ("k1", 2),
        ]
        .iter()
        .map(|&(k, hlc)| stored(k, hlc))
        .collect();
        let (mut one_by_one, mut at_once) = (Bucket::default(), Bucket::default());
        merge(&mut one_by_one, base.clone());
        merge(&mut at_once, base);
        // Stable sorting keeps the entries of one key in batch order, so their
        // outcomes are those of merging one at a time in that order.
        let mut sorted = run.clone();
        sorted.sort_by(|a, b| compare(&a.key_hash, &b.key_hash));
        let want: Vec<Merged> = sorted
            .iter()
            .map(|e| merge(&mut one_by_one, vec![e.clone()])[0])
            .collect();
        assert_eq!(merge(&mut at_once, run), want);
        assert_eq!(at_once.entries, one_by_one.entries);
    }
}
