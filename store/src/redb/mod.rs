//! [`RedbStore`]: a persistent [`Store`] in one redb database file.

mod apply;
mod codec;
mod error;
mod gc;
mod guard;
mod read;
mod schema;
mod sketch;
mod tree;
mod view;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use ::redb::{Database, DatabaseError, ReadableDatabase, StorageError};
use synctree_primitives::limits::MAX_READ_VIEWS;
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::sketch::CodedSymbol;
use synctree_primitives::{
    ApplyReport, ContextId, ContextView, Entry, Hash, NodePos, PurgeRule, Store, StoreError,
    StoredEntry, TreeSummary, ViewPermits,
};

pub use error::RedbStoreError;

use error::{backend, redb_error};
use guard::Guard;
use read::Reader;

/// A persistent [`Store`]: entries, tombstones and the Merkle index of every
/// context in one redb database file.
///
/// Each [`Store::apply`] merges its batch and updates the index in **one**
/// redb write transaction, committed with redb's default immediate durability:
/// once `apply` returns, the batch survives a crash or `SIGKILL`, and a crash
/// at any instant leaves the file at the last committed batch, whose stored
/// root equals the root recomputed from its entries
/// ([`crate::recompute_root`]). A batch that fails (an invalid entry, a
/// corrupt record, an I/O error) leaves nothing behind.
///
/// Node hashes and each context's entry count and root are stored, so opening
/// a store reads a few keys and never rebuilds the tree. Each read runs in its
/// own read transaction: readers see whole batches and never wait for the
/// writer; writers wait for each other.
///
/// Bad files, a file already open in another process, and a file of another
/// format version are typed errors ([`StoreError::Backend`] with a
/// [`RedbStoreError`] source, or [`StoreError::Corrupt`]), never panics: see
/// [`RedbStore::open`]. Every stored record is decoded with its lengths
/// checked, and should redb itself panic on a damaged file (it trusts the
/// file and does not verify checksums on reads), the panic is contained and
/// reported as [`StoreError::Corrupt`]; the handle then refuses further
/// operations until the file is reopened.
///
/// ```
/// use synctree_primitives::{ContextId, Entry, NodeId, Store, Version};
/// use synctree_store::RedbStore;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let ctx = ContextId::new("users")?;
/// let root = {
///     let store = RedbStore::open_dir(dir.path())?;
///     store.apply(&ctx, vec![Entry::put("alice", "admin", Version::new(1, NodeId(1)))])?;
///     store.summary(&ctx)?.root
/// };
/// // Reopening reads the stored index back: same root, same entries.
/// let store = RedbStore::open_dir(dir.path())?;
/// assert_eq!(store.summary(&ctx)?.root, root);
/// assert_eq!(synctree_store::recompute_root(&store, &ctx)?, (root, 1));
/// # Ok(())
/// # }
/// ```
pub struct RedbStore {
    db: Database,
    guard: Arc<Guard>,
    views: ViewPermits,
}

impl RedbStore {
    /// The file name [`RedbStore::open_dir`] uses inside its directory.
    pub const FILE_NAME: &'static str = "synctree.redb";

    /// Opens the store in the database file at `path`, creating the file if it
    /// does not exist (its directory must).
    ///
    /// Reads only the format version: O(1), whatever the store holds (after a
    /// crash, redb first repairs its own allocator state, reading its page
    /// tree). Fails with [`StoreError::Backend`] whose source is a
    /// [`RedbStoreError`]: [`RedbStoreError::Open`] when redb cannot open the
    /// file (held by another process, not a redb file, an older redb format,
    /// I/O), [`RedbStoreError::UnsupportedFormat`] or
    /// [`RedbStoreError::NotAStore`] when it is not a store this build reads,
    /// [`RedbStoreError::EmptyFile`] when the file is there but empty;
    /// with [`StoreError::Corrupt`] when redb or the format check finds the
    /// file damaged.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        let path = path.as_ref();
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let path = path.to_owned();
            return Err(backend("open", RedbStoreError::EmptyFile { path }));
        }
        let db = guard::contain("open", path, || {
            let db = Database::create(path).map_err(|source| open_error(path, source))?;
            schema::prepare(&db, path).map_err(|e| with_path(path, e))?;
            Ok(db)
        })??;
        let guard = Arc::new(Guard::new(path));
        let views = ViewPermits::default();
        Ok(RedbStore { db, guard, views })
    }

    /// Opens the store in `dir`/[`RedbStore::FILE_NAME`], creating `dir` (and
    /// its parents) and the file if missing. Fails like [`RedbStore::open`],
    /// or with [`RedbStoreError::CreateDir`].
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| {
            let path = dir.to_owned();
            backend("open", RedbStoreError::CreateDir { path, source })
        })?;
        Self::open(dir.join(Self::FILE_NAME))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.guard.path()
    }

    /// Applies a batch in one write transaction, committed unless no entry
    /// changed anything. `before_commit` runs after every write of the batch,
    /// just before the commit; an error from it drops the transaction (tests
    /// use it to fail at the last moment).
    fn apply_with(
        &self,
        context: &ContextId,
        entries: Vec<Entry>,
        before_commit: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<ApplyReport, StoreError> {
        if entries.is_empty() {
            return Ok(ApplyReport::default());
        }
        let batch = apply::prepare(context, entries)?;
        self.guard.run("apply", || {
            let txn = self
                .db
                .begin_write()
                .map_err(redb_error("apply", Some(context)))?;
            let report = apply::write(&txn, context, &batch)?;
            before_commit()?;
            if report.changed == 0 {
                // Nothing won a merge: nothing to make durable, no fsync to pay.
                txn.abort().map_err(redb_error("apply", Some(context)))?;
            } else {
                txn.commit().map_err(redb_error("apply", Some(context)))?;
            }
            Ok(report)
        })
    }
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.guard.path())
            .finish()
    }
}

impl Store for RedbStore {
    /// Reads the context's metadata row only.
    fn summary(&self, context: &ContextId) -> Result<TreeSummary, StoreError> {
        self.guard.run("summary", || {
            Reader::begin(&self.db, context, "summary")?.summary()
        })
    }

    fn node(&self, context: &ContextId, pos: NodePos) -> Result<Hash, StoreError> {
        self.guard.run("node", || {
            Reader::begin(&self.db, context, "node")?.node(pos)
        })
    }

    /// One range scan over the 16 consecutive child keys. A leaf has no
    /// children: all zeros.
    fn children(&self, context: &ContextId, pos: NodePos) -> Result<[Hash; FANOUT], StoreError> {
        self.guard.run("children", || {
            Reader::begin(&self.db, context, "children")?.children(pos)
        })
    }

    fn range(
        &self,
        context: &ContextId,
        low: &Hash,
        high: &Hash,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        if low > high || limit == 0 {
            return Ok(Vec::new());
        }
        self.guard.run("range", || {
            Reader::begin(&self.db, context, "range")?.range(low, high, limit)
        })
    }

    fn get(&self, context: &ContextId, key_hash: &Hash) -> Result<Option<Entry>, StoreError> {
        self.guard.run("get", || {
            Reader::begin(&self.db, context, "get")?.get(key_hash)
        })
    }

    /// Validates every entry first ([`Entry::validate`]: an invalid one fails
    /// the batch with [`RedbStoreError::InvalidEntry`]), hashes the batch, then
    /// merges it in one write transaction. Duplicates count as in
    /// [`crate::MemoryStore`].
    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        self.apply_with(context, entries, || Ok(()))
    }

    fn contexts(&self) -> Result<Vec<ContextId>, StoreError> {
        self.guard.run("contexts", || read::contexts(&self.db))
    }

    /// One read of the meta table.
    fn gc_watermark(&self, context: &ContextId) -> Result<u64, StoreError> {
        self.guard.run("gc watermark", || {
            let txn = self
                .db
                .begin_read()
                .map_err(redb_error("gc watermark", Some(context)))?;
            let meta = txn
                .open_table(schema::META)
                .map_err(redb_error("gc watermark", Some(context)))?;
            gc::watermark(&meta, context, "gc watermark")
        })
    }

    /// One write transaction: the entries, their index and sketch, and the
    /// watermark commit together.
    fn purge(
        &self,
        context: &ContextId,
        key_hashes: &[Hash],
        rule: PurgeRule,
        watermark: u64,
    ) -> Result<u64, StoreError> {
        self.guard.run("purge", || {
            let txn = self
                .db
                .begin_write()
                .map_err(redb_error("purge", Some(context)))?;
            let removed = gc::purge(&txn, context, key_hashes, &rule, watermark)?;
            txn.commit().map_err(redb_error("purge", Some(context)))?;
            Ok(removed)
        })
    }

    /// Derived from the metadata row's entry count: no extra read.
    fn sketch_len(&self, context: &ContextId) -> Result<u32, StoreError> {
        self.guard.run("sketch", || {
            Reader::begin(&self.db, context, "sketch")?.sketch_len()
        })
    }

    /// One range scan over the chunks that hold the symbols.
    fn sketch(
        &self,
        context: &ContextId,
        start: u32,
        count: usize,
    ) -> Result<Vec<CodedSymbol>, StoreError> {
        self.guard.run("sketch", || {
            Reader::begin(&self.db, context, "sketch")?.sketch(start, count)
        })
    }

    /// One redb read transaction held for the view's life (MVCC: writers never
    /// disturb it); at most [`MAX_READ_VIEWS`] at once.
    fn read_view(&self, context: &ContextId) -> Result<Option<Box<dyn ContextView>>, StoreError> {
        let permit = self.views.acquire(MAX_READ_VIEWS)?;
        let guard = self.guard.clone();
        let view = self.guard.run("read view", || {
            view::RedbView::begin(&self.db, context, guard, permit)
        })?;
        Ok(Some(Box::new(view)))
    }

    /// Reads the record from the meta table (`sync_state/` + key).
    fn load_sync_state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard
            .run("load sync state", || view::load_sync_state(&self.db, key))
    }

    /// Writes the record in its own durable write transaction.
    fn save_sync_state(&self, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        self.guard.run("save sync state", || {
            view::save_sync_state(&self.db, key, value)
        })
    }
}

/// The store error for redb failing to open `path`.
fn open_error(path: &Path, source: DatabaseError) -> StoreError {
    match source {
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            StoreError::Corrupt(format!("{}: {detail}", path.display()))
        }
        source => {
            let path = path.to_owned();
            backend("open", RedbStoreError::Open { path, source })
        }
    }
}

/// Names the file in a corruption found while opening it.
fn with_path(path: &Path, err: StoreError) -> StoreError {
    match err {
        StoreError::Corrupt(detail) => StoreError::Corrupt(format!("{}: {detail}", path.display())),
        other => other,
    }
}
