//! The write path: a batch is validated and hashed outside any transaction,
//! then merged, bucket by bucket, and its index updated inside one redb write
//! transaction, which the caller commits or drops.

use ::redb::{ReadableTable, Table, WriteTransaction};
use synctree_primitives::merkle::{self, TREE_DEPTH};
use synctree_primitives::sketch::SketchItem;
use synctree_primitives::{ApplyReport, ContextId, Entry, Hash, NodePos, StoreError, StoredEntry};

use super::codec::{self, ContextMeta, ContextNum, Malformed};
use super::error::{RedbStoreError, backend, redb_error};
use super::gc;
use super::schema::{self, CONTEXTS, ENTRIES, META, NODES, SKETCH};
use super::sketch::{self, ChunkDelta};
use super::tree::TxnNodes;

/// Validates `entries` and hashes them, then sorts them by key hash; the sort
/// is stable, so the entries of one key stay in batch order. Runs before the
/// write transaction, so writers wait only for the merge itself.
pub(super) fn prepare(
    context: &ContextId,
    entries: Vec<Entry>,
) -> Result<Vec<StoredEntry>, StoreError> {
    let invalid = entries
        .iter()
        .find_map(|e| e.validate().err().map(|source| (e.key_hash(), source)));
    if let Some((key_hash, source)) = invalid {
        let context = context.clone();
        let error = RedbStoreError::InvalidEntry {
            context,
            key_hash,
            source,
        };
        return Err(backend("apply", error));
    }
    let mut batch: Vec<StoredEntry> = entries.into_iter().map(StoredEntry::new).collect();
    batch.sort_by_key(|e| e.key_hash);
    Ok(batch)
}

/// Merges `batch` (from [`prepare`]) into `context` inside `txn`: entries
/// bucket by bucket, then every changed leaf and its ancestors once, through
/// [`merkle::update_paths`], then the context's metadata. Each entry is
/// counted once, against the state the entries before it left.
pub(super) fn write(
    txn: &WriteTransaction,
    context: &ContextId,
    batch: &[StoredEntry],
) -> Result<ApplyReport, StoreError> {
    let mut contexts = txn.open_table(CONTEXTS).map_err(apply_error(context))?;
    let name = codec::context_key(context);
    let held = contexts
        .get(name)
        .map_err(apply_error(context))?
        .map(|v| ContextMeta::decode(v.value()));
    let meta = match held {
        Some(meta) => meta.map_err(|m| m.in_context(context))?,
        None => ContextMeta::empty(schema::allocate_context(txn)?),
    };

    let count_before = meta.entry_count;
    let watermark = {
        let meta_table = txn.open_table(META).map_err(apply_error(context))?;
        gc::watermark(&meta_table, context, "apply")?
    };
    let mut entries = txn.open_table(ENTRIES).map_err(apply_error(context))?;
    let mut merger = Merger {
        table: &mut entries,
        context,
        meta,
        watermark,
        report: ApplyReport::default(),
        toggles: Vec::new(),
    };
    let mut leaves = Vec::new();
    for group in batch.chunk_by(|a, b| same_leaf(&a.key_hash, &b.key_hash)) {
        if let Some(changed) = merger.merge_bucket(group)? {
            leaves.push(changed);
        }
    }
    let (meta, report, toggles) = (merger.meta, merger.report, merger.toggles);
    update_sketch(txn, context, &entries, (count_before, meta), &toggles)?;

    let mut table = txn.open_table(NODES).map_err(apply_error(context))?;
    let mut nodes = TxnNodes {
        table: &mut table,
        context,
        meta,
    };
    merkle::update_paths(&mut nodes, leaves)?;
    contexts
        .insert(name, &nodes.meta.encode()[..])
        .map_err(apply_error(context))?;
    Ok(report)
}

/// XORs the batch's changed items into the context's sketch, then grows it to
/// the length the new entry count calls for (the new tail from every entry).
fn update_sketch(
    txn: &WriteTransaction,
    context: &ContextId,
    entries: &Table<'_, &'static [u8], &'static [u8]>,
    (count_before, meta): (u64, ContextMeta),
    toggles: &[SketchItem],
) -> Result<(), StoreError> {
    let mut table = txn.open_table(SKETCH).map_err(apply_error(context))?;
    let (old, new) = (
        sketch::len_for(count_before),
        sketch::len_for(meta.entry_count),
    );
    let mut delta = ChunkDelta::new(0, old);
    for item in toggles {
        delta.toggle(item, 0, old);
    }
    delta.write(&mut table, context, meta.num)?;
    if new <= old {
        return Ok(());
    }
    let (low, high) = (
        codec::entry_key(meta.num, &Hash::ZERO),
        codec::entry_key(meta.num, &Hash::MAX),
    );
    let mut items = Vec::with_capacity(meta.entry_count as usize);
    for row in entries
        .range(&low[..]..=&high[..])
        .map_err(apply_error(context))?
    {
        let (key, value) = row.map_err(apply_error(context))?;
        let decoded = codec::decode_entry_key(meta.num, key.value())
            .and_then(|kh| Ok(SketchItem::new(&kh, &codec::entry_digest(value.value())?)));
        items.push(decoded.map_err(|m| m.in_context(context))?);
    }
    sketch::tail(items.into_iter(), old, new).write(&mut table, context, meta.num)
}

/// Key hashes and digests of bucket `leaf` of context `num`, in key-hash
/// order: one range scan that decodes only the digest of each value.
pub(super) fn bucket_digests(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    context: &ContextId,
    num: ContextNum,
    leaf: u32,
) -> Result<Vec<(Hash, Hash)>, StoreError> {
    let (low, high) = NodePos::new(TREE_DEPTH, leaf).key_hash_range();
    let (low, high) = (codec::entry_key(num, &low), codec::entry_key(num, &high));
    let mut bucket = Vec::new();
    let rows = table
        .range(&low[..]..=&high[..])
        .map_err(apply_error(context))?;
    for row in rows {
        let (key, value) = row.map_err(apply_error(context))?;
        let decoded = codec::decode_entry_key(num, key.value())
            .and_then(|kh| Ok((kh, codec::entry_digest(value.value())?)));
        bucket.push(decoded.map_err(|m| m.in_context(context))?);
    }
    Ok(bucket)
}

/// Maps a redb error met while applying a batch to `context`.
fn apply_error<E: Into<::redb::Error>>(context: &ContextId) -> impl FnOnce(E) -> StoreError {
    redb_error("apply", Some(context))
}

fn same_leaf(a: &Hash, b: &Hash) -> bool {
    merkle::leaf_index(a) == merkle::leaf_index(b)
}

/// Merges the groups of one batch into the entry table.
struct Merger<'t, 'txn> {
    table: &'t mut Table<'txn, &'static [u8], &'static [u8]>,
    context: &'t ContextId,
    /// Updated as entries are inserted.
    meta: ContextMeta,
    /// The context's GC watermark: older entries for absent keys are refused.
    watermark: u64,
    report: ApplyReport,
    /// The sketch items the merged entries XOR (new ones, and those they replace).
    toggles: Vec<SketchItem>,
}

impl Merger<'_, '_> {
    /// Merges a group of entries that all belong to one leaf bucket, sorted by
    /// key hash; returns the leaf and its new hash if the bucket changed.
    fn merge_bucket(&mut self, group: &[StoredEntry]) -> Result<Option<(u32, Hash)>, StoreError> {
        let Some(first) = group.first() else {
            return Ok(None);
        };
        let leaf = merkle::leaf_index(&first.key_hash);
        let mut bucket = self.read_bucket(leaf)?;
        let mut changed = false;
        for run in group.chunk_by(|a, b| a.key_hash == b.key_hash) {
            let key_hash = run[0].key_hash;
            let slot = bucket.binary_search_by(|(k, _)| k.cmp(&key_hash));
            let held = match slot {
                Ok(_) => Some(self.read_entry(&key_hash)?),
                Err(_) => None,
            };
            let Some(winner) = self.merge_run(held.as_ref(), run) else {
                continue;
            };
            self.write_entry(winner)?;
            self.toggles.push(SketchItem::of(winner));
            match slot {
                Ok(i) => {
                    self.toggles.push(SketchItem::new(&key_hash, &bucket[i].1));
                    bucket[i].1 = winner.digest;
                }
                Err(i) => {
                    bucket.insert(i, (key_hash, winner.digest));
                    self.meta.entry_count += 1;
                }
            }
            changed = true;
        }
        let hash = || merkle::leaf_hash(bucket.iter().map(|(_, digest)| digest));
        Ok(changed.then(|| (leaf, hash())))
    }

    /// Merges the entries of one key, in batch order, against the held entry;
    /// counts each. Returns the winner when it is not the held entry.
    fn merge_run<'b>(
        &mut self,
        held: Option<&Entry>,
        run: &'b [StoredEntry],
    ) -> Option<&'b StoredEntry> {
        let mut winner: Option<&StoredEntry> = None;
        for candidate in run {
            let current = winner.map(|w| &w.entry).or(held);
            if current.is_none() && candidate.entry.version.hlc < self.watermark {
                self.report.refused += 1;
                continue;
            }
            if current.is_none_or(|c| candidate.entry.supersedes(c)) {
                self.report.changed += 1;
                winner = Some(candidate);
            } else {
                self.report.unchanged += 1;
            }
        }
        winner
    }

    fn read_bucket(&self, leaf: u32) -> Result<Vec<(Hash, Hash)>, StoreError> {
        bucket_digests(self.table, self.context, self.meta.num, leaf)
    }

    /// The entry held under `key_hash`, which the bucket scan saw.
    fn read_entry(&self, key_hash: &Hash) -> Result<Entry, StoreError> {
        let key = codec::entry_key(self.meta.num, key_hash);
        let guard = self.table.get(&key[..]).map_err(self.redb())?;
        let value = guard.ok_or_else(|| {
            let reason = format!("{key_hash} vanished inside a transaction");
            self.corrupt(Malformed::new("entry", reason))
        })?;
        let (_, entry) = codec::decode_entry(value.value()).map_err(|m| self.corrupt(m))?;
        Ok(entry)
    }

    fn write_entry(&mut self, winner: &StoredEntry) -> Result<(), StoreError> {
        let key = codec::entry_key(self.meta.num, &winner.key_hash);
        let value =
            codec::encode_entry(&winner.digest, &winner.entry).map_err(|m| self.corrupt(m))?;
        let result = self.table.insert(&key[..], &value[..]).map(drop);
        result.map_err(self.redb())
    }

    fn redb<E: Into<::redb::Error>>(&self) -> impl FnOnce(E) -> StoreError {
        apply_error(self.context)
    }

    fn corrupt(&self, m: Malformed) -> StoreError {
        m.in_context(self.context)
    }
}
