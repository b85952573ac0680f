//! Read views and sync-state records of a [`super::RedbStore`].
//!
//! A [`RedbView`] holds one redb read transaction for its whole life: redb's
//! MVCC gives it the committed state of the moment it began, whatever is written
//! after, at the cost of the pages that state needs staying allocated until the
//! view is dropped (hence [`MAX_READ_VIEWS`](synctree_primitives::limits::MAX_READ_VIEWS)).
//!
//! Sync-state records live in the meta table under `sync_state/` + key, so the
//! file format does not change: older files simply hold none.

use std::sync::Arc;

use ::redb::{Database, ReadTransaction, ReadableDatabase};
use synctree_primitives::{
    ContextId, ContextView, Entry, Hash, NodePos, StoreError, StoredEntry, TreeSummary, ViewPermit,
};

use super::error::redb_error;
use super::guard::Guard;
use super::read::Reader;
use super::schema::META;

/// Prefix of sync-state keys in the meta table.
const SYNC_STATE_PREFIX: &[u8] = b"sync_state/";

/// One context as of one committed state, held by a read transaction.
pub(super) struct RedbView {
    txn: ReadTransaction,
    context: ContextId,
    guard: Arc<Guard>,
    _permit: ViewPermit,
}

impl RedbView {
    /// Begins the view's read transaction.
    pub(super) fn begin(
        db: &Database,
        context: &ContextId,
        guard: Arc<Guard>,
        permit: ViewPermit,
    ) -> Result<Self, StoreError> {
        let txn = db
            .begin_read()
            .map_err(redb_error("read view", Some(context)))?;
        Ok(RedbView {
            txn,
            context: context.clone(),
            guard,
            _permit: permit,
        })
    }

    fn reader(&self, op: &'static str) -> Reader<'_, &ReadTransaction> {
        Reader::over(&self.txn, &self.context, op)
    }
}

impl ContextView for RedbView {
    fn summary(&self) -> Result<TreeSummary, StoreError> {
        self.guard
            .run("view summary", || self.reader("view summary").summary())
    }

    fn node(&self, pos: NodePos) -> Result<Hash, StoreError> {
        self.guard
            .run("view node", || self.reader("view node").node(pos))
    }

    fn range(&self, low: &Hash, high: &Hash, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        if low > high || limit == 0 {
            return Ok(Vec::new());
        }
        self.guard.run("view range", || {
            self.reader("view range").range(low, high, limit)
        })
    }

    fn get(&self, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        self.guard
            .run("view get", || self.reader("view get").get(key_hash))
    }
}

fn sync_key(key: &str) -> Vec<u8> {
    [SYNC_STATE_PREFIX, key.as_bytes()].concat()
}

/// The sync-state record under `key`.
pub(super) fn load_sync_state(db: &Database, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let op = "load sync state";
    let txn = db.begin_read().map_err(redb_error(op, None))?;
    let table = txn.open_table(META).map_err(redb_error(op, None))?;
    let value = table
        .get(sync_key(key).as_slice())
        .map_err(redb_error(op, None))?;
    Ok(value.map(|v| v.value().to_vec()))
}

/// Writes (or removes) the sync-state record under `key` in one durable write
/// transaction.
pub(super) fn save_sync_state(
    db: &Database,
    key: &str,
    value: Option<&[u8]>,
) -> Result<(), StoreError> {
    let op = "save sync state";
    let txn = db.begin_write().map_err(redb_error(op, None))?;
    {
        let mut table = txn.open_table(META).map_err(redb_error(op, None))?;
        let key = sync_key(key);
        match value {
            Some(value) => drop(
                table
                    .insert(key.as_slice(), value)
                    .map_err(redb_error(op, None))?,
            ),
            None => drop(table.remove(key.as_slice()).map_err(redb_error(op, None))?),
        }
    }
    txn.commit().map_err(redb_error(op, None))
}
