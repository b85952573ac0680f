//! [`Bucket`]: the entries of one leaf bucket, in key-hash order.

use std::cmp::Ordering;

use synctree_primitives::sketch::SketchItem;
use synctree_primitives::store::EntryRef;
use synctree_primitives::{Entry, Hash, PurgeRule, StoredEntry, merkle};

use super::slots::{self, Slot};

/// Entries up to which a bucket is searched linearly: a bucket of a store of
/// 10^6 entries holds about 15.
const LINEAR_SEARCH_MAX: usize = 32;

/// The entries of one leaf bucket, sorted by key hash, in two exact-size
/// allocations: fixed-size [`Slot`]s (key hash, digest, version, lengths) and
/// the entries' key and value bytes one after another in slot order. No
/// allocation per entry and no spare capacity: a write rebuilds the two
/// (a bucket of a store of 10^6 entries holds about 15 entries, 3 KiB).
#[derive(Clone, Debug, Default)]
pub(crate) struct Bucket {
    slots: Box<[Slot]>,
    bytes: Box<[u8]>,
}

/// Entries to merge into one bucket, in key-hash order, and their key and
/// value bytes (so the rebuilt bucket is allocated once, at its size).
pub(crate) struct Run<'a> {
    /// The entries.
    pub(crate) entries: std::iter::Take<&'a mut std::vec::IntoIter<StoredEntry>>,
    /// Key and value bytes of all of them.
    pub(crate) bytes: usize,
}

impl<'a> Run<'a> {
    /// The next `len` entries of `entries`.
    pub(crate) fn take(entries: &'a mut std::vec::IntoIter<StoredEntry>, len: usize) -> Self {
        let held = entries.as_slice().iter().take(len);
        let bytes = held.map(|s| s.entry.key.len() + s.entry.value.len()).sum();
        Run {
            entries: entries.by_ref().take(len),
            bytes,
        }
    }
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
        self.slots.is_empty()
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The entry stored under `key_hash`, copied out.
    pub(crate) fn get(&self, key_hash: &Hash) -> Option<Entry> {
        let i = self.find(key_hash).ok()?;
        self.lend(i).map(|e| e.to_entry())
    }

    /// True when an entry is stored under `key_hash`.
    pub(crate) fn contains(&self, key_hash: &Hash) -> bool {
        self.find(key_hash).is_ok()
    }

    /// Merges `run`, entries of this bucket in key-hash order (entries of one
    /// key in batch order), each against the state the ones before it left;
    /// `merged` sees what each did, and `toggles` gets the sketch items each
    /// change XORs (the new item, and the replaced one). Returns the bucket's new
    /// leaf hash if any entry changed it.
    ///
    /// One pass over the bucket and the run builds the new slots and bytes, so
    /// a batch that crowds one bucket costs the bucket's size plus the run's,
    /// not their product.
    pub(crate) fn merge(
        &mut self,
        run: Run<'_>,
        toggles: &mut Vec<SketchItem>,
        mut merged: impl FnMut(Merged),
    ) -> Option<Hash> {
        if run.entries.len() == 1 {
            let mut entries = run.entries;
            let stored = entries.next()?;
            return match self.replace_in_place(stored, toggles) {
                Ok(outcome) => {
                    merged(outcome);
                    (outcome != Merged::Kept).then(|| self.hash())
                }
                Err(stored) => {
                    let bytes = stored.entry.key.len() + stored.entry.value.len();
                    self.rebuild(std::iter::once(stored), bytes, toggles, merged)
                }
            };
        }
        self.rebuild(run.entries, run.bytes, toggles, merged)
    }

    /// Merges `stored` into the entry it replaces without reallocating, when
    /// one is held under its key: kept, or overwritten in place when the new
    /// key and value take exactly the held bytes (an overwrite with a value of
    /// the same size). Otherwise hands `stored` back.
    fn replace_in_place(
        &mut self,
        stored: StoredEntry,
        toggles: &mut Vec<SketchItem>,
    ) -> Result<Merged, StoredEntry> {
        let Ok(i) = self.find(&stored.key_hash) else {
            return Err(stored);
        };
        let from = slots::offset(&self.slots, i);
        let Some(slot) = self.slots.get_mut(i) else {
            return Err(stored);
        };
        let Some(bytes) = self.bytes.get_mut(from..from + slot.len()) else {
            return Err(stored);
        };
        let new = Slot::of(&stored);
        if !slots::wins(&stored.entry, &slot.lend(bytes)) {
            return Ok(Merged::Kept);
        }
        if slot.len() != new.len() {
            return Err(stored);
        }
        toggles.extend([
            SketchItem::new(&slot.key_hash, &slot.digest),
            SketchItem::of(&stored),
        ]);
        let (key, value) = bytes.split_at_mut(stored.entry.key.len());
        key.copy_from_slice(&stored.entry.key);
        value.copy_from_slice(&stored.entry.value);
        *slot = new;
        Ok(Merged::Replaced)
    }

    /// [`Bucket::merge`] into a new allocation.
    fn rebuild(
        &mut self,
        run: impl ExactSizeIterator<Item = StoredEntry>,
        run_bytes: usize,
        toggles: &mut Vec<SketchItem>,
        mut merged: impl FnMut(Merged),
    ) -> Option<Hash> {
        let (slots, bytes) = (self.slots.len() + run.len(), self.bytes.len() + run_bytes);
        let mut out = Builder::with_capacity(slots, bytes);
        // Old entries are copied in runs between the batch's keys, slots and
        // bytes each with one copy.
        let (mut next, mut at) = (0, 0);
        let mut changed = false;
        for stored in run {
            let (from, from_at) = (next, at);
            while let Some(slot) = self
                .slots
                .get(next)
                .filter(|s| compare(&s.key_hash, &stored.key_hash) != Ordering::Greater)
            {
                at += slot.len();
                next += 1;
            }
            out.extend(&self.slots[from..next], self.bytes.get(from_at..at));
            let outcome = out.merge_last(stored, toggles);
            changed |= outcome != Merged::Kept;
            merged(outcome);
        }
        out.extend(&self.slots[next..], self.bytes.get(at..));
        if !changed {
            return None;
        }
        *self = out.finish();
        Some(self.hash())
    }

    /// The entries whose key hash lies in `low..=high`, in key-hash order.
    pub(crate) fn range<'a>(
        &'a self,
        low: &Hash,
        high: &Hash,
    ) -> impl Iterator<Item = EntryRef<'a>> + 'a {
        let start = self.slots.partition_point(|s| s.key_hash < *low);
        let end = self
            .slots
            .partition_point(|s| s.key_hash <= *high)
            .max(start);
        let from = slots::offset(&self.slots, start);
        slots::lend_all(
            &self.slots[start..end],
            self.bytes.get(from..).unwrap_or_default(),
        )
    }

    /// Every entry, in key-hash order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> {
        slots::lend_all(&self.slots, &self.bytes)
    }

    /// The sketch item of every entry, in key-hash order.
    pub(crate) fn items(&self) -> impl Iterator<Item = SketchItem> + '_ {
        self.slots
            .iter()
            .map(|s| SketchItem::new(&s.key_hash, &s.digest))
    }

    /// Removes the entry under `key_hash` if `rule` removes it; returns it.
    pub(crate) fn purge(&mut self, key_hash: &Hash, rule: &PurgeRule) -> Option<StoredEntry> {
        let i = self.find(key_hash).ok()?;
        let gone = self.lend(i)?.to_stored();
        if !rule.removes(&gone.entry) {
            return None;
        }
        let mut out = Builder::with_capacity(self.slots.len(), self.bytes.len());
        let kept = self.iter().filter(|e| e.key_hash != key_hash);
        kept.for_each(|e| out.push_ref(&e));
        *self = out.finish();
        Some(gone)
    }

    /// The bucket's leaf hash.
    pub(crate) fn hash(&self) -> Hash {
        merkle::leaf_hash(self.slots.iter().map(|s| &s.digest))
    }

    /// The entry in slot `i`.
    fn lend(&self, i: usize) -> Option<EntryRef<'_>> {
        let slot = self.slots.get(i)?;
        let from = slots::offset(&self.slots, i);
        let bytes = self.bytes.get(from..from + slot.len())?;
        Some(slot.lend(bytes))
    }

    /// Position of `key_hash`, or where it would be inserted. Small buckets
    /// (all but crafted ones) are scanned in order, which the prefetcher
    /// follows, rather than probed at random.
    fn find(&self, key_hash: &Hash) -> Result<usize, usize> {
        if self.slots.len() > LINEAR_SEARCH_MAX {
            return self
                .slots
                .binary_search_by(|s| compare(&s.key_hash, key_hash));
        }
        let i = self
            .slots
            .iter()
            .position(|s| compare(&s.key_hash, key_hash) != Ordering::Less)
            .unwrap_or(self.slots.len());
        match self.slots.get(i) {
            Some(s) if s.key_hash == *key_hash => Ok(i),
            _ => Err(i),
        }
    }
}

/// A bucket being rebuilt: slots and bytes appended in key-hash order.
struct Builder {
    slots: Vec<Slot>,
    bytes: Vec<u8>,
}

impl Builder {
    fn with_capacity(slots: usize, bytes: usize) -> Self {
        Builder {
            slots: Vec::with_capacity(slots),
            bytes: Vec::with_capacity(bytes),
        }
    }

    /// Appends held entries: their slots and their bytes.
    fn extend(&mut self, slots: &[Slot], bytes: Option<&[u8]>) {
        self.slots.extend_from_slice(slots);
        self.bytes.extend_from_slice(bytes.unwrap_or_default());
    }

    /// Appends a held entry.
    fn push_ref(&mut self, e: &EntryRef<'_>) {
        self.slots.push(Slot {
            key_hash: *e.key_hash,
            digest: *e.digest,
            version: e.version,
            key_len: e.key.len() as u32,
            value_len: e.value.len() as u32,
            tombstone: e.tombstone,
        });
        self.bytes.extend_from_slice(e.key);
        self.bytes.extend_from_slice(e.value);
    }

    /// Appends `stored` ([`super::batch::Batch`] checked that it fits a slot).
    fn push(&mut self, stored: &StoredEntry) {
        self.slots.push(Slot::of(stored));
        self.bytes.extend_from_slice(&stored.entry.key);
        self.bytes.extend_from_slice(&stored.entry.value);
    }

    /// Merges `stored` against the last entry when it has the same key (the
    /// held entry, or an earlier one of the run), else appends it.
    fn merge_last(&mut self, stored: StoredEntry, toggles: &mut Vec<SketchItem>) -> Merged {
        let Some(last) = self.slots.last().filter(|s| s.key_hash == stored.key_hash) else {
            toggles.push(SketchItem::of(&stored));
            self.push(&stored);
            return Merged::Inserted;
        };
        let from = self.bytes.len() - last.len();
        let held = last.lend(&self.bytes[from..]);
        if !slots::wins(&stored.entry, &held) {
            return Merged::Kept;
        }
        toggles.extend([
            SketchItem::new(held.key_hash, held.digest),
            SketchItem::of(&stored),
        ]);
        self.slots.pop();
        self.bytes.truncate(from);
        self.push(&stored);
        Merged::Replaced
    }

    /// The bucket, in exact-size allocations.
    fn finish(self) -> Bucket {
        Bucket {
            slots: self.slots.into_boxed_slice(),
            bytes: self.bytes.into_boxed_slice(),
        }
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
        let run_len = run.len();
        let mut out = Vec::new();
        let (mut entries, len) = (run.into_iter(), run_len);
        let hash = bucket.merge(Run::take(&mut entries, len), &mut Vec::new(), |m| {
            out.push(m)
        });
        let want = merkle::leaf_hash(bucket.slots.iter().map(|s| &s.digest));
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
        let all: Vec<StoredEntry> = bucket
            .range(&Hash::ZERO, &Hash::MAX)
            .map(|e| e.to_stored())
            .collect();
        assert!(all.windows(2).all(|w| w[0].key_hash < w[1].key_hash));
        assert!(all.iter().all(|s| *s == StoredEntry::new(s.entry.clone())));
        assert_eq!(
            bucket.get(&stored("a", 2).key_hash),
            Some(stored("a", 2).entry)
        );
        assert_eq!(bucket.iter().count(), 3);
        let (a, b) = (stored("a", 2).key_hash, stored("b", 1).key_hash);
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        assert_eq!(bucket.range(&low, &high).count(), 2);
        assert!(bucket.contains(&a) && !bucket.contains(&stored("z", 1).key_hash));
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
        assert_eq!(at_once.slots, one_by_one.slots);
        assert_eq!(at_once.bytes, one_by_one.bytes);
    }
}
