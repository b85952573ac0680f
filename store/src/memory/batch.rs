//! [`Batch`]: entries hashed and sorted, ready to merge into a context.

use synctree_primitives::{Entry, StoredEntry, merkle};

use super::bucket::{SortKey, sort_key};

/// A batch of entries with their key hashes and digests, sorted by key hash,
/// entries of one key in batch order. Built before the write lock is taken, so
/// the lock is held only for the merge itself.
#[derive(Debug)]
pub(crate) struct Batch {
    entries: Vec<StoredEntry>,
    /// The buckets the batch touches, in order: `(leaf index, entries)`.
    runs: Vec<(u32, usize)>,
}

impl Batch {
    /// Hashes and sorts `entries`. Hashes them in arrival order, reading each
    /// entry's memory front to back; then sorts small `(key hash, position)`
    /// pairs rather than whole entries, and moves each entry once.
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        Self::from_stored(entries.into_iter().map(StoredEntry::new).collect())
    }

    /// Sorts entries whose hashes the caller computed.
    pub(crate) fn from_stored(entries: Vec<StoredEntry>) -> Self {
        let mut order: Vec<(SortKey, usize)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (sort_key(&e.key_hash), i))
            .collect();
        order.sort_unstable();
        let mut slots: Vec<Option<StoredEntry>> = entries.into_iter().map(Some).collect();
        let entries: Vec<StoredEntry> =
            order.iter().filter_map(|&(_, i)| slots[i].take()).collect();
        let runs = runs_of(&entries);
        Batch { entries, runs }
    }

    /// Drops the entries `refused` names; returns how many.
    pub(crate) fn refuse(&mut self, mut refused: impl FnMut(&StoredEntry) -> bool) -> u64 {
        let before = self.entries.len();
        self.entries.retain(|e| !refused(e));
        let dropped = before - self.entries.len();
        if dropped > 0 {
            self.runs = runs_of(&self.entries);
        }
        dropped as u64
    }

    /// True when some entry's clock is below `hlc`.
    pub(crate) fn any_below(&self, hlc: u64) -> bool {
        self.entries.iter().any(|e| e.entry.version.hlc < hlc)
    }

    /// The buckets the batch touches, in leaf order, as `(leaf index, how many
    /// entries)`; and the entries, in key-hash order.
    pub(crate) fn into_parts(self) -> (Vec<(u32, usize)>, std::vec::IntoIter<StoredEntry>) {
        (self.runs, self.entries.into_iter())
    }
}

/// The runs of entries (sorted by key hash) that share a leaf bucket.
fn runs_of(entries: &[StoredEntry]) -> Vec<(u32, usize)> {
    let leaf = |e: &StoredEntry| merkle::leaf_index(&e.key_hash);
    let runs = entries.chunk_by(|a, b| leaf(a) == leaf(b));
    runs.map(|run| (leaf(&run[0]), run.len())).collect()
}
