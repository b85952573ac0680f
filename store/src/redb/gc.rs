//! Tombstone GC on a [`super::RedbStore`]: the watermark record and
//! [`purge`], which removes entries inside one write transaction with their
//! index and sketch.
//!
//! The watermark of a context lives in the meta table under `gc_watermark/` +
//! the context name (absent reads as 0), so stores written before GC existed
//! open unchanged.

use ::redb::{ReadableTable, Table, WriteTransaction};
use synctree_primitives::merkle;
use synctree_primitives::sketch::SketchItem;
use synctree_primitives::{ContextId, Hash, PurgeRule, StoreError};

use super::apply::bucket_digests;
use super::codec::{self, ContextMeta};
use super::error::redb_error;
use super::schema::{CONTEXTS, ENTRIES, META, NODES, SKETCH};
use super::sketch::{self, CHUNK_SYMBOLS, ChunkDelta};
use super::tree::TxnNodes;

/// Prefix of the watermark records in the meta table.
const WATERMARK_PREFIX: &[u8] = b"gc_watermark/";

fn watermark_key(context: &ContextId) -> Vec<u8> {
    [WATERMARK_PREFIX, codec::context_key(context)].concat()
}

/// The context's watermark as `table` (the meta table) holds it.
pub(super) fn watermark(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    context: &ContextId,
    op: &'static str,
) -> Result<u64, StoreError> {
    let held = table
        .get(&watermark_key(context)[..])
        .map_err(redb_error(op, Some(context)))?;
    match held {
        Some(v) => Ok(codec::decode_u64("gc watermark", v.value())?),
        None => Ok(0),
    }
}

/// Removes the entries under `key_hashes` that `rule` removes and raises the
/// watermark, inside `txn`; returns how many entries went.
pub(super) fn purge(
    txn: &WriteTransaction,
    context: &ContextId,
    key_hashes: &[Hash],
    rule: &PurgeRule,
    watermark_at_least: u64,
) -> Result<u64, StoreError> {
    raise_watermark(txn, context, watermark_at_least)?;
    let mut contexts = txn
        .open_table(CONTEXTS)
        .map_err(redb_error("purge", Some(context)))?;
    let held = contexts
        .get(codec::context_key(context))
        .map_err(redb_error("purge", Some(context)))?;
    let Some(meta) = held.map(|v| ContextMeta::decode(v.value())) else {
        return Ok(0);
    };
    let mut meta = meta.map_err(|m| m.in_context(context))?;
    let mut sorted = key_hashes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut entries = txn
        .open_table(ENTRIES)
        .map_err(redb_error("purge", Some(context)))?;
    let toggles = remove_entries(&mut entries, context, meta.num, &sorted, rule)?;
    if toggles.is_empty() {
        return Ok(0);
    }
    let mut leaves = Vec::new();
    for run in sorted.chunk_by(|a, b| merkle::leaf_index(a) == merkle::leaf_index(b)) {
        let leaf = merkle::leaf_index(&run[0]);
        let digests = bucket_digests(&entries, context, meta.num, leaf)?;
        let hash = merkle::leaf_hash(digests.iter().map(|(_, d)| d));
        leaves.push((leaf, hash));
    }
    let count_before = meta.entry_count;
    meta.entry_count -= toggles.len() as u64;
    remove_from_sketch(txn, context, (count_before, meta), &toggles)?;
    let mut table = txn
        .open_table(NODES)
        .map_err(redb_error("purge", Some(context)))?;
    let mut nodes = TxnNodes {
        table: &mut table,
        context,
        meta,
    };
    merkle::update_paths(&mut nodes, leaves)?;
    contexts
        .insert(codec::context_key(context), &nodes.meta.encode()[..])
        .map_err(redb_error("purge", Some(context)))?;
    Ok(toggles.len() as u64)
}

fn raise_watermark(txn: &WriteTransaction, context: &ContextId, to: u64) -> Result<(), StoreError> {
    let mut meta = txn
        .open_table(META)
        .map_err(redb_error("purge", Some(context)))?;
    if watermark(&meta, context, "purge")? >= to {
        return Ok(());
    }
    meta.insert(&watermark_key(context)[..], &to.to_be_bytes()[..])
        .map_err(redb_error("purge", Some(context)))?;
    Ok(())
}

/// Removes the rows `rule` removes among `sorted`; returns the sketch items of
/// what went.
fn remove_entries(
    entries: &mut Table<'_, &'static [u8], &'static [u8]>,
    context: &ContextId,
    num: codec::ContextNum,
    sorted: &[Hash],
    rule: &PurgeRule,
) -> Result<Vec<SketchItem>, StoreError> {
    let mut gone = Vec::new();
    for key_hash in sorted {
        let key = codec::entry_key(num, key_hash);
        let decoded = match entries
            .get(&key[..])
            .map_err(redb_error("purge", Some(context)))?
        {
            Some(v) => Some(codec::decode_entry(v.value()).map_err(|m| m.in_context(context))?),
            None => None,
        };
        let Some((digest, entry)) = decoded else {
            continue;
        };
        if rule.removes(&entry) {
            entries
                .remove(&key[..])
                .map_err(redb_error("purge", Some(context)))?;
            gone.push(SketchItem::new(key_hash, &digest));
        }
    }
    Ok(gone)
}

/// XORs the removed items out of the maintained symbols; when the sketch's
/// length shrinks with the count, drops the chunks past the new length (a
/// later growth recomputes them from every entry, and expects them absent).
fn remove_from_sketch(
    txn: &WriteTransaction,
    context: &ContextId,
    (count_before, meta): (u64, ContextMeta),
    toggles: &[SketchItem],
) -> Result<(), StoreError> {
    let mut table = txn
        .open_table(SKETCH)
        .map_err(redb_error("purge", Some(context)))?;
    let (old, new) = (
        sketch::len_for(count_before),
        sketch::len_for(meta.entry_count),
    );
    let mut delta = ChunkDelta::new(0, new);
    for item in toggles {
        delta.toggle(item, 0, new);
    }
    delta.write(&mut table, context, meta.num)?;
    for chunk in new.div_ceil(CHUNK_SYMBOLS)..old.div_ceil(CHUNK_SYMBOLS) {
        let key = sketch::chunk_key(meta.num, chunk);
        table
            .remove(&key[..])
            .map_err(redb_error("purge", Some(context)))?;
    }
    Ok(())
}
