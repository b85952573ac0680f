//! [`RedbStoreError`]: what goes wrong in [`super::RedbStore`], as the typed
//! source of a [`StoreError::Backend`]; and the mapping of redb's errors.
//!
//! Corruption that redb reports ([`::redb::Error::Corrupted`]) and records that
//! do not decode become [`StoreError::Corrupt`]; everything else is a
//! [`StoreError::Backend`] whose source is a [`RedbStoreError`], which keeps
//! redb's own error (such as [`::redb::DatabaseError::DatabaseAlreadyOpen`]) as
//! its source in turn.

use std::path::PathBuf;

use synctree_primitives::{ContextId, Hash, ProtocolError, StoreError};

/// Why the redb backend failed: the source of the [`StoreError::Backend`] that
/// [`super::RedbStore`] returns. Find it with `downcast_ref` on the source.
///
/// redb is a public dependency through this type: some variants hold redb's own
/// errors (such as [`::redb::DatabaseError`]) as fields, so matching on them
/// ties a caller to this crate's redb version, and a redb major version bump is
/// a breaking change of `synctree-store` (only with its `redb` feature).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedbStoreError {
    /// redb could not open or create the file: it is open in another process
    /// ([`::redb::DatabaseError::DatabaseAlreadyOpen`]), it is not a redb
    /// database, it was written by an older redb
    /// ([`::redb::DatabaseError::UpgradeRequired`]), or I/O failed.
    #[error("cannot open the redb database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: ::redb::DatabaseError,
    },
    /// The directory given to [`super::RedbStore::open_dir`] could not be created.
    #[error("cannot create the store directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },
    /// The file is a synctree store of a format this build does not read.
    #[error(
        "{} holds store format version {found}, this build reads version {supported}",
        path.display()
    )]
    UnsupportedFormat {
        /// The database file.
        path: PathBuf,
        /// The version the file declares.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The database file exists but is empty (a truncated copy, a failed
    /// restore): it is refused rather than replaced by a new, empty store.
    #[error("{} is an empty file, not a store; move it away to start a new store", path.display())]
    EmptyFile {
        /// The database file.
        path: PathBuf,
    },
    /// The file is a redb database with other tables, not a synctree store;
    /// it was left untouched.
    #[error("{} is a redb database but not a synctree store (tables: {tables:?})", path.display())]
    NotAStore {
        /// The database file.
        path: PathBuf,
        /// The tables it holds.
        tables: Vec<String>,
    },
    /// An entry of a batch breaks the entry limits ([`synctree_primitives::Entry::validate`]);
    /// nothing of the batch was applied.
    #[error("entry {key_hash} of a batch for context `{context}` is invalid")]
    InvalidEntry {
        /// The context the batch was for.
        context: ContextId,
        /// The entry's key hash.
        key_hash: Hash,
        /// The limit it breaks.
        #[source]
        source: ProtocolError,
    },
    /// A redb operation failed.
    #[error("redb failed{}", on_context(.context.as_ref()))]
    Redb {
        /// The context being read or written, if the operation had one.
        context: Option<ContextId>,
        /// What redb reported.
        #[source]
        source: ::redb::Error,
    },
}

impl RedbStoreError {
    /// True when `error` says the database file is open in another process (redb
    /// locks it for the lifetime of a [`super::RedbStore`]).
    pub fn is_locked(error: &StoreError) -> bool {
        let StoreError::Backend { source, .. } = error else {
            return false;
        };
        matches!(
            source.downcast_ref::<RedbStoreError>(),
            Some(RedbStoreError::Open {
                source: ::redb::DatabaseError::DatabaseAlreadyOpen,
                ..
            })
        )
    }
}

/// ` on context `name``, or nothing.
fn on_context(context: Option<&ContextId>) -> String {
    context.map_or_else(String::new, |c| format!(" on context `{c}`"))
}

/// Maps a redb error met during `op` (on `context`, if any) to a store error.
pub(super) fn redb_error<E: Into<::redb::Error>>(
    op: &'static str,
    context: Option<&ContextId>,
) -> impl FnOnce(E) -> StoreError {
    move |err| match err.into() {
        ::redb::Error::Corrupted(detail) => StoreError::Corrupt(format!(
            "redb reports corruption during {op}{}: {detail}",
            on_context(context)
        )),
        source => StoreError::Backend {
            op,
            source: Box::new(RedbStoreError::Redb {
                context: context.cloned(),
                source,
            }),
        },
    }
}

/// A [`StoreError::Backend`] for `op` with `source`.
pub(super) fn backend(op: &'static str, source: RedbStoreError) -> StoreError {
    StoreError::Backend {
        op,
        source: Box::new(source),
    }
}
