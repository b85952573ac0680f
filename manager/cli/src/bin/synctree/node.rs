//! A node's store directory: the database, the node id, and a store wrapper that
//! logs every committed batch.
//!
//! ```text
//!  DIR/
//!    synctree.redb   every context's entries and Merkle index (RedbStore)
//!    node-id         16 hex digits and a newline: this node's writer id (in versions)
//!    node.key        Ed25519 PKCS#8, mode 0600: this node's identity (`synctree id`)
//!    peers           who may connect to `serve`, and their access (peers.rs)
//! ```

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, NodeId, PurgeRule, Store, StoreError, StoredEntry,
};

use crate::error::CliError;

/// The database file inside a store directory.
pub(crate) const DB_FILE: &str = synctree_store::RedbStore::FILE_NAME;
/// The file holding the node id inside a store directory.
pub(crate) const NODE_ID_FILE: &str = "node-id";
/// Name of the store directory under the per-user data directory.
const DEFAULT_DIR_NAME: &str = "synctree";

/// The persistent store behind every node.
pub(crate) type Backend = synctree_store::RedbStore;

/// Opens (creating if needed) the database of the store directory `dir`.
fn open_backend(dir: &Path) -> Result<Backend, StoreError> {
    synctree_store::RedbStore::open_dir(dir)
}

/// Whether a command may create a store that does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Open {
    /// Create the directory and database when missing (commands that write).
    Create,
    /// Fail when there is no database yet (commands that only read).
    Existing,
}

/// An open store directory.
#[derive(Debug)]
pub(crate) struct Node {
    dir: PathBuf,
    store: Arc<Logged<Backend>>,
}

impl Node {
    /// Opens the store in `dir` as `how` allows.
    pub(crate) fn open(dir: &Path, how: Open) -> Result<Self, CliError> {
        if dir.exists() && !dir.is_dir() {
            return Err(CliError::NotADirectory(dir.to_owned()));
        }
        if how == Open::Existing && !dir.join(DB_FILE).is_file() {
            return Err(CliError::NoStore(dir.to_owned()));
        }
        fs::create_dir_all(dir).map_err(CliError::file(dir))?;
        let backend =
            open_backend(dir).map_err(|source| match synctree_store::RedbStoreError::is_locked(
                &source,
            ) {
                true => CliError::InUse(dir.to_owned()),
                false => CliError::Open {
                    path: dir.to_owned(),
                    source,
                },
            })?;
        tracing::debug!(dir = %dir.display(), "store open");
        Ok(Node {
            dir: dir.to_owned(),
            store: Arc::new(Logged { inner: backend }),
        })
    }

    /// The store directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<Logged<Backend>> {
        &self.store
    }

    /// This node's id, read from `DIR/node-id`, or generated at random and saved
    /// there on first use.
    pub(crate) fn node_id(&self) -> Result<NodeId, CliError> {
        let path = self.dir.join(NODE_ID_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => parse_node_id(&text).ok_or(CliError::BadNodeId(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = random_node_id();
                save_node_id(&self.dir, id)?;
                tracing::info!(node = %id, "new node id");
                Ok(id)
            }
            Err(e) => Err(CliError::file(path)(e)),
        }
    }

    /// Closes the store; if a task still holds it (a session aborted after the
    /// drain grace period), it closes when that task is dropped.
    pub(crate) fn close(self) {
        let dir = self.dir.display();
        match Arc::try_unwrap(self.store) {
            Ok(store) => {
                drop(store);
                tracing::debug!(%dir, "store closed");
            }
            Err(_) => tracing::warn!(%dir, "store still in use; it closes on exit"),
        }
    }
}

/// The store directory: `--store DIR`, or `synctree` under the per-user data
/// directory.
pub(crate) fn store_dir(arg: Option<PathBuf>) -> Result<PathBuf, CliError> {
    match arg {
        Some(dir) => Ok(dir),
        None => dirs::data_dir()
            .map(|d| d.join(DEFAULT_DIR_NAME))
            .ok_or(CliError::NoDataDir),
    }
}

/// Parses the contents of a `node-id` file: 16 hex digits, a non-zero id, and an
/// optional trailing newline.
fn parse_node_id(text: &str) -> Option<NodeId> {
    let digits = text.strip_suffix('\n').unwrap_or(text);
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = u64::from_str_radix(digits, 16).ok()?;
    (id != 0).then_some(NodeId(id))
}

/// A fresh node id from the standard library's randomly keyed hasher, mixed
/// with the time and the process id. Never zero.
fn random_node_id() -> NodeId {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    NodeId(hasher.finish().max(1))
}

/// Writes `DIR/node-id` atomically: a temporary file, synced, then renamed.
fn save_node_id(dir: &Path, id: NodeId) -> Result<(), CliError> {
    let tmp = dir.join(format!("{NODE_ID_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        writeln!(file, "{id}")?;
        file.sync_all()
    };
    write().map_err(CliError::file(&tmp))?;
    let path = dir.join(NODE_ID_FILE);
    fs::rename(&tmp, &path).map_err(CliError::file(&path))?;
    // Make the rename itself durable; a failure here only risks a new id later.
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(error = %e, "could not sync the store directory");
    }
    Ok(())
}

/// Runs blocking store work (a durable commit) so the runtime's other tasks keep
/// running: on a multi-threaded runtime this worker first hands its queued tasks
/// to another thread, so one peer's commits never stall another peer's handshake.
fn off_the_async_workers<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// A store that logs every committed batch at debug level
/// (`RUST_LOG=synctree=debug`): which entries are durable, for operators and
/// for the crash tests; and commits off the async workers.
#[derive(Debug)]
pub(crate) struct Logged<S> {
    inner: S,
}

impl<S: Store> Store for Logged<S> {
    synctree_primitives::forward_store_reads!(inner);

    /// Applies the batch, then logs its size and its first and last keys.
    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        let count = entries.len();
        let first = entries.first().map(|e| e.key.clone()).unwrap_or_default();
        let last = entries.last().map(|e| e.key.clone()).unwrap_or_default();
        let report = off_the_async_workers(|| self.inner.apply(context, entries))?;
        tracing::debug!(
            %context, entries = count, changed = report.changed, unchanged = report.unchanged,
            first = %first.escape_ascii(), last = %last.escape_ascii(), "batch committed"
        );
        Ok(report)
    }

    /// Applies the pre-hashed batch off the async workers, then logs its size.
    fn apply_stored(
        &self,
        context: &ContextId,
        entries: Vec<StoredEntry>,
    ) -> Result<ApplyReport, StoreError> {
        let count = entries.len();
        let report = off_the_async_workers(|| self.inner.apply_stored(context, entries))?;
        tracing::debug!(%context, entries = count, changed = report.changed, "batch committed");
        Ok(report)
    }

    /// Purges off the async workers, then logs how many entries went.
    fn purge(
        &self,
        context: &ContextId,
        key_hashes: &[Hash],
        rule: PurgeRule,
        watermark: u64,
    ) -> Result<u64, StoreError> {
        let removed =
            off_the_async_workers(|| self.inner.purge(context, key_hashes, rule, watermark))?;
        tracing::debug!(%context, removed, watermark, "purge committed");
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_parse_only_when_well_formed() {
        assert_eq!(parse_node_id("00000000000000ab\n"), Some(NodeId(0xab)));
        assert_eq!(parse_node_id("00000000000000AB"), Some(NodeId(0xab)));
        for bad in [
            "",
            "0000000000000000\n",
            "abc\n",
            "00000000000000ab\n\n",
            "+000000000000000",
        ] {
            assert_eq!(parse_node_id(bad), None, "{bad:?}");
        }
        assert_ne!(random_node_id(), NodeId(0));
    }
}
