//! The read path: each [`Store`](synctree_primitives::Store) read runs in its
//! own redb read transaction, so it sees one committed state, never half a batch,
//! and never waits for a writer.

use std::borrow::Borrow;

use ::redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable};
use synctree_primitives::merkle::{FANOUT, TREE_DEPTH};
use synctree_primitives::{ContextId, Entry, Hash, NodePos, StoreError, StoredEntry, TreeSummary};

use super::codec::{self, ContextMeta, Malformed};
use super::error::redb_error;
use super::schema::{CONTEXTS, ENTRIES, NODES, SKETCH};
use super::sketch;
use super::tree::NodeReader;
use synctree_primitives::sketch::CodedSymbol;

type BytesTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A read transaction (owned, or borrowed from a read view) on behalf of one
/// operation on one context.
pub(super) struct Reader<'c, T = ReadTransaction> {
    txn: T,
    context: &'c ContextId,
    op: &'static str,
}

impl<'c, 't> Reader<'c, &'t ReadTransaction> {
    /// Reads for `op` on `context` inside a transaction someone else holds.
    pub(super) fn over(txn: &'t ReadTransaction, context: &'c ContextId, op: &'static str) -> Self {
        Reader { txn, context, op }
    }
}

impl<'c> Reader<'c> {
    /// Begins a read transaction for `op` on `context`.
    pub(super) fn begin(
        db: &Database,
        context: &'c ContextId,
        op: &'static str,
    ) -> Result<Self, StoreError> {
        let txn = db.begin_read().map_err(redb_error(op, Some(context)))?;
        Ok(Reader { txn, context, op })
    }
}

impl<X: Borrow<ReadTransaction>> Reader<'_, X> {
    /// The context's metadata; `None` when it was never written.
    pub(super) fn meta(&self) -> Result<Option<ContextMeta>, StoreError> {
        let table = self.table(CONTEXTS)?;
        let guard = table
            .get(codec::context_key(self.context))
            .map_err(self.redb())?;
        let meta = guard.map(|v| ContextMeta::decode(v.value()));
        meta.transpose().map_err(|m| self.corrupt(m))
    }

    /// Root, entry count and depth (all from the metadata row).
    pub(super) fn summary(&self) -> Result<TreeSummary, StoreError> {
        let meta = self.meta()?.unwrap_or(ContextMeta::empty(0));
        Ok(TreeSummary {
            root: meta.root,
            entry_count: meta.entry_count,
            depth: TREE_DEPTH,
        })
    }

    /// Hash of the node at `pos`.
    pub(super) fn node(&self, pos: NodePos) -> Result<Hash, StoreError> {
        match self.meta()? {
            Some(meta) => self.nodes(meta, |nodes| nodes.node(pos)),
            None => Ok(Hash::ZERO),
        }
    }

    /// The children of `pos`, in one scan.
    pub(super) fn children(&self, pos: NodePos) -> Result<[Hash; FANOUT], StoreError> {
        match self.meta()? {
            Some(meta) => self.nodes(meta, |nodes| nodes.children(pos)),
            None => Ok([Hash::ZERO; FANOUT]),
        }
    }

    /// Up to `limit` entries with key hash in `low..=high`, in key-hash order:
    /// one range scan of the context's slice of the entry table.
    pub(super) fn range(
        &self,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let Some(meta) = self.meta()? else {
            return Ok(Vec::new());
        };
        let (low, high) = (
            codec::entry_key(meta.num, low),
            codec::entry_key(meta.num, high),
        );
        let table = self.table(ENTRIES)?;
        let rows = table.range(&low[..]..=&high[..]).map_err(self.redb())?;
        let mut out = Vec::new();
        for row in rows.take(limit) {
            let (key, value) = row.map_err(self.redb())?;
            let key_hash = codec::decode_entry_key(meta.num, key.value());
            out.push(self.stored(key_hash, value.value())?);
        }
        Ok(out)
    }

    /// Symbols maintained for the context.
    pub(super) fn sketch_len(&self) -> Result<u32, StoreError> {
        let count = self.meta()?.map_or(0, |m| m.entry_count);
        Ok(sketch::len_for(count))
    }

    /// Maintained symbols `start..start + count`.
    pub(super) fn sketch(&self, start: u32, count: usize) -> Result<Vec<CodedSymbol>, StoreError> {
        let Some(meta) = self.meta()? else {
            let len = sketch::len_for(0);
            let end = (u64::from(start) + count as u64).min(u64::from(len));
            return Ok(vec![
                CodedSymbol::EMPTY;
                end.saturating_sub(u64::from(start)) as usize
            ]);
        };
        let table = self.table(SKETCH)?;
        let len = sketch::len_for(meta.entry_count);
        sketch::read(&table, self.context, meta.num, len, (start, count))
    }

    /// The entry stored under `key_hash`.
    pub(super) fn get(&self, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        let Some(meta) = self.meta()? else {
            return Ok(None);
        };
        let table = self.table(ENTRIES)?;
        let key = codec::entry_key(meta.num, key_hash);
        let Some(value) = table.get(&key[..]).map_err(self.redb())? else {
            return Ok(None);
        };
        let stored = self.stored(Ok(*key_hash), value.value())?;
        Ok(Some(stored.entry))
    }

    /// Decodes one entry row.
    fn stored(
        &self,
        key_hash: Result<Hash, Malformed>,
        value: &[u8],
    ) -> Result<StoredEntry, StoreError> {
        let decoded = key_hash.and_then(|key_hash| {
            let (digest, entry) = codec::decode_entry(value)?;
            Ok(StoredEntry {
                key_hash,
                digest,
                entry,
            })
        });
        decoded.map_err(|m| self.corrupt(m))
    }

    /// Runs `f` on the node table of the context described by `meta`.
    fn nodes<T>(
        &self,
        meta: ContextMeta,
        f: impl FnOnce(&NodeReader<'_, BytesTable>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let table = self.table(NODES)?;
        f(&NodeReader {
            table: &table,
            context: self.context,
            meta,
            op: self.op,
        })
    }

    fn table(&self, def: super::schema::Bytes) -> Result<BytesTable, StoreError> {
        self.txn.borrow().open_table(def).map_err(self.redb())
    }

    fn redb<E: Into<::redb::Error>>(&self) -> impl FnOnce(E) -> StoreError {
        redb_error(self.op, Some(self.context))
    }

    fn corrupt(&self, m: Malformed) -> StoreError {
        m.in_context(self.context)
    }
}

/// Every context holding at least one entry, sorted by name (the table's key
/// order: names are compared as bytes, as `ContextId` compares them).
pub(super) fn contexts(db: &Database) -> Result<Vec<ContextId>, StoreError> {
    let txn = db.begin_read().map_err(redb_error("contexts", None))?;
    let table = txn
        .open_table(CONTEXTS)
        .map_err(redb_error("contexts", None))?;
    let mut out = Vec::new();
    for row in table.iter().map_err(redb_error("contexts", None))? {
        let (key, value) = row.map_err(redb_error("contexts", None))?;
        let context = codec::decode_context_name(key.value())?;
        let meta = ContextMeta::decode(value.value()).map_err(|m| m.in_context(&context))?;
        if meta.entry_count > 0 {
            out.push(context);
        }
    }
    Ok(out)
}
