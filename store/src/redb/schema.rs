//! The tables of a [`super::RedbStore`] file, and the format check at open.
//!
//! ```text
//!  table               key                            value
//!  synctree.meta       b"format_version"              u32: FORMAT_VERSION
//!                      b"next_context"                u64: next context id
//!  synctree.contexts   context name (UTF-8)           id u64 ‖ entry count u64 ‖ root [32]
//!  synctree.entries    id u64 ‖ key hash [32]         digest [32] ‖ hlc u64 ‖ node u64 ‖
//!                                                     flags u8 ‖ key len u32 ‖ key ‖ value
//!  synctree.nodes      id u64 ‖ position u32          hash [32], non-zero nodes below the root
//!  synctree.sketch     id u64 ‖ chunk u32             64 coded symbols × 24 bytes
//! ```
//!
//! Integers are big-endian (see [`super::codec`]). Every key and value is a
//! plain byte string to redb, so redb never interprets what it stores and every
//! decode happens here, with its lengths checked.

use std::path::Path;

use ::redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableError,
    TableHandle, WriteTransaction,
};
use synctree_primitives::StoreError;

use super::codec::{self, ContextNum, Malformed};
use super::error::{RedbStoreError, backend, redb_error};

/// A table of byte strings.
pub(super) type Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Format version and counters.
pub(super) const META: Bytes = TableDefinition::new("synctree.meta");
/// Per-context metadata: id, entry count and root.
pub(super) const CONTEXTS: Bytes = TableDefinition::new("synctree.contexts");
/// Every entry of every context, by `(context id, key hash)`.
pub(super) const ENTRIES: Bytes = TableDefinition::new("synctree.entries");
/// Non-zero node hashes below the root, by `(context id, position)`.
pub(super) const NODES: Bytes = TableDefinition::new("synctree.nodes");
/// Maintained sketch symbols, by `(context id, chunk)` ([`super::sketch`]).
pub(super) const SKETCH: Bytes = TableDefinition::new("synctree.sketch");

/// The layout this build reads and writes. Bump it with any change to the
/// tables or their encodings; a file of another version is refused at open.
/// Version 2 added the sketch table.
pub(super) const FORMAT_VERSION: u32 = 2;

/// Key of the [`FORMAT_VERSION`] record in the meta table.
const FORMAT_KEY: &[u8] = b"format_version";
/// Key of the next free context number in the meta table.
const NEXT_CONTEXT_KEY: &[u8] = b"next_context";

/// Checks that `db` is a synctree store of [`FORMAT_VERSION`], or initializes
/// it when it holds no table at all. Reads a few keys: never the entries.
pub(super) fn prepare(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db.begin_read().map_err(open_error)?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => return initialize_if_empty(db, txn, path),
        Err(e) => return Err(open_error(e)),
    };
    let found = codec::decode_u32("format version", &required(&meta, FORMAT_KEY, "open")?)?;
    if found != FORMAT_VERSION {
        let (path, supported) = (path.to_owned(), FORMAT_VERSION);
        let error = RedbStoreError::UnsupportedFormat {
            path,
            found,
            supported,
        };
        return Err(backend("open", error));
    }
    for table in [CONTEXTS, ENTRIES, NODES, SKETCH] {
        txn.open_table(table).map_err(open_error)?;
    }
    Ok(())
}

/// Initializes a database without tables (a new file); refuses one that has
/// other tables, leaving it untouched.
fn initialize_if_empty(db: &Database, txn: ReadTransaction, path: &Path) -> Result<(), StoreError> {
    let tables: Vec<String> = txn
        .list_tables()
        .map_err(open_error)?
        .map(|t| t.name().to_owned())
        .collect();
    drop(txn);
    if !tables.is_empty() {
        let path = path.to_owned();
        return Err(backend("open", RedbStoreError::NotAStore { path, tables }));
    }
    let txn = db.begin_write().map_err(open_error)?;
    {
        let mut meta = txn.open_table(META).map_err(open_error)?;
        meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes()[..])
            .map_err(open_error)?;
        meta.insert(NEXT_CONTEXT_KEY, &0u64.to_be_bytes()[..])
            .map_err(open_error)?;
        for table in [CONTEXTS, ENTRIES, NODES, SKETCH] {
            txn.open_table(table).map_err(open_error)?;
        }
    }
    txn.commit().map_err(open_error)
}

/// Takes the next context id, inside the batch's write transaction.
pub(super) fn allocate_context(txn: &WriteTransaction) -> Result<ContextNum, StoreError> {
    let mut meta = txn.open_table(META).map_err(redb_error("apply", None))?;
    let next = codec::decode_u64(
        "next context id",
        &required(&meta, NEXT_CONTEXT_KEY, "apply")?,
    )?;
    let after = next
        .checked_add(1)
        .ok_or_else(|| Malformed::new("next context id", "exhausted"))?;
    meta.insert(NEXT_CONTEXT_KEY, &after.to_be_bytes()[..])
        .map_err(redb_error("apply", None))?;
    Ok(next)
}

/// The value under `key` of the meta table, where every store has one.
fn required(
    meta: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &'static [u8],
    op: &'static str,
) -> Result<Vec<u8>, StoreError> {
    let value = meta.get(key).map_err(redb_error(op, None))?;
    let missing = || {
        Malformed::new(
            "metadata",
            format!("no {:?} key", String::from_utf8_lossy(key)),
        )
    };
    Ok(value.ok_or_else(missing)?.value().to_vec())
}

/// Maps a redb error met while opening the store.
fn open_error<E: Into<::redb::Error>>(e: E) -> StoreError {
    redb_error("open", None)(e)
}
