//! The Merkle index in the node table: reads for both transaction kinds, and
//! [`TxnNodes`], the [`TreeNodes`] that [`merkle::update_paths`](synctree_primitives::merkle::update_paths) writes through
//! inside a batch's write transaction.
//!
//! The root lives in the context's metadata, not in the node table; every other
//! non-zero node is one row, and the 16 children of a node are 16 consecutive
//! keys, read with one range scan.

use ::redb::{ReadableTable, Table};
use synctree_primitives::merkle::{FANOUT, TreeNodes};
use synctree_primitives::{ContextId, Hash, NodePos, StoreError};

use super::codec::{self, ContextMeta, Malformed};
use super::error::redb_error;

/// A table of byte strings, opened by either kind of transaction.
pub(super) trait BytesTable: ReadableTable<&'static [u8], &'static [u8]> {}
impl<T: ReadableTable<&'static [u8], &'static [u8]>> BytesTable for T {}

/// Reads node hashes of one context.
pub(super) struct NodeReader<'a, T> {
    /// The node table.
    pub(super) table: &'a T,
    /// The context, for error messages.
    pub(super) context: &'a ContextId,
    /// Its metadata (id and root).
    pub(super) meta: ContextMeta,
    /// The operation, for error messages.
    pub(super) op: &'static str,
}

impl<T: BytesTable> NodeReader<'_, T> {
    /// Hash of the node at `pos`.
    pub(super) fn node(&self, pos: NodePos) -> Result<Hash, StoreError> {
        if pos == NodePos::ROOT {
            return Ok(self.meta.root);
        }
        let key = codec::node_key(self.meta.num, pos);
        let guard = self.table.get(&key[..]).map_err(self.redb())?;
        match guard {
            Some(v) => codec::decode_node(v.value()).map_err(|m| self.corrupt(m)),
            None => Ok(Hash::ZERO),
        }
    }

    /// The 16 children of `pos` in one range scan; all zeros for a leaf.
    pub(super) fn children(&self, pos: NodePos) -> Result<[Hash; FANOUT], StoreError> {
        let mut out = [Hash::ZERO; FANOUT];
        if pos.is_leaf() {
            return Ok(out);
        }
        let first = codec::node_key(self.meta.num, pos.child(0));
        let last = codec::node_key(self.meta.num, pos.child(FANOUT - 1));
        let base = pos.child(0).raw();
        let rows = self
            .table
            .range(&first[..]..=&last[..])
            .map_err(self.redb())?;
        for row in rows {
            let (key, value) = row.map_err(self.redb())?;
            let child =
                codec::decode_node_key(self.meta.num, key.value()).map_err(|m| self.corrupt(m))?;
            // The scan's bounds keep the child within the 16 slots.
            let slot = child.raw().wrapping_sub(base) as usize;
            let hash = codec::decode_node(value.value()).map_err(|m| self.corrupt(m))?;
            if let Some(s) = out.get_mut(slot) {
                *s = hash;
            }
        }
        Ok(out)
    }

    fn redb<E: Into<::redb::Error>>(&self) -> impl FnOnce(E) -> StoreError {
        redb_error(self.op, Some(self.context))
    }

    fn corrupt(&self, m: Malformed) -> StoreError {
        m.in_context(self.context)
    }
}

/// The node hashes of one context inside a write transaction; what
/// [`merkle::update_paths`](synctree_primitives::merkle::update_paths) reads
/// and writes. Zero hashes are deleted, so only non-empty nodes are stored.
pub(super) struct TxnNodes<'t, 'txn> {
    /// The node table of the batch's transaction.
    pub(super) table: &'t mut Table<'txn, &'static [u8], &'static [u8]>,
    /// The context.
    pub(super) context: &'t ContextId,
    /// Its metadata; `root` is updated in place.
    pub(super) meta: ContextMeta,
}

impl<'txn> TxnNodes<'_, 'txn> {
    fn reader(&self) -> NodeReader<'_, Table<'txn, &'static [u8], &'static [u8]>> {
        NodeReader {
            table: self.table,
            context: self.context,
            meta: self.meta,
            op: "apply",
        }
    }
}

impl TreeNodes for TxnNodes<'_, '_> {
    type Error = StoreError;

    fn node(&self, pos: NodePos) -> Result<Hash, StoreError> {
        self.reader().node(pos)
    }

    fn set_node(&mut self, pos: NodePos, hash: Hash) -> Result<(), StoreError> {
        if pos == NodePos::ROOT {
            self.meta.root = hash;
            return Ok(());
        }
        let key = codec::node_key(self.meta.num, pos);
        let result = if hash.is_zero() {
            self.table.remove(&key[..]).map(drop)
        } else {
            self.table.insert(&key[..], &hash.0[..]).map(drop)
        };
        result.map_err(redb_error("apply", Some(self.context)))
    }

    fn children(&self, pos: NodePos) -> Result<[Hash; FANOUT], StoreError> {
        self.reader().children(pos)
    }
}
