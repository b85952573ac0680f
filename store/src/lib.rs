//! Store backends for synctree.
//!
//! ```text
//!   apply(ctx, batch)                       reads: summary, node, children,
//!     │ hash keys and digests, sort by             range, get, contexts
//!     │ key hash (no lock)                            │ (shared lock)
//!     ▼                                               │
//!   ┌──────────────────────── MemoryStore ────────────▼─────────────────┐
//!   │ RwLock<HashMap<ContextId, ContextState>>                          │
//!   │   leaves: BTreeMap<level-3 index, Leaves> key-hash order overall  │
//!   │     Leaves: 16 buckets │ their leaf hashes │ level-3 midstates    │
//!   │     Bucket: (key hash, digest, entry)s, sorted by key hash        │
//!   │   nodes:  levels 0–3, 16 siblings per group, with the parent's    │
//!   │           SHA-256 midstates                                       │
//!   └───────────────────────────────────────────────────────────────────┘
//!   under the write lock: merge bucket by bucket (Entry::supersedes)
//!     → re-hash each changed bucket once → each changed ancestor once,
//!       resuming after its unchanged children (merkle::InternalMidstates)
//!
//!   apply(ctx, batch)                       reads: one redb read transaction
//!     │ validate, hash, sort by key hash           each (a committed state)
//!     ▼                                               │
//!   ┌──────────────────────── RedbStore ──────────────▼─────────────────┐
//!   │ one redb file, byte-string tables (see redb/schema.rs):           │
//!   │   contexts: name → id, entry count, root                          │
//!   │   entries:  (id, key hash) → digest, version, flags, key, value   │
//!   │   nodes:    (id, position) → hash, non-zero nodes below the root  │
//!   └───────────────────────────────────────────────────────────────────┘
//!   in one write transaction: per touched bucket, one range scan
//!     → merge → re-hash once → merkle::update_paths once → commit
//! ```
//!
//! [`MemoryStore`] keeps every context in memory and its Merkle index current on
//! every write, re-hashing only the paths above the buckets a batch touched.
//! Writes to one key within a batch merge in batch order, and each entry is
//! counted in the [`ApplyReport`](synctree_primitives::ApplyReport) once, against
//! the state the entries before it left: a key written twice in one batch may
//! count as changed twice.
//!
//! `RedbStore` (feature `redb`) keeps the same state in a redb database file:
//! each batch is merged and its index updated in one write transaction with
//! immediate durability, so a committed batch survives a crash and a crash never
//! leaves a root that disagrees with the entries. Opening a store reads its
//! stored index; it never rebuilds it. [`recompute_root`] recomputes a root from
//! a context's entries alone, on any store, to check an index.
//!
//! With the `conformance` feature, the `conformance` module exposes the suite every
//! backend must pass. (Fault injection for any store is `FaultyStore` in the
//! unpublished `synctree-test-support` crate.)
//!
//! # Features
//!
//! - `redb` (off by default): builds `RedbStore` and `RedbStoreError`, and with
//!   them the `redb` dependency. Without it this crate compiles no redb at all.
//!   With it, redb is a **public** dependency: `RedbStoreError` carries redb's
//!   own error types as its sources, so a redb major version bump is a breaking
//!   change of this crate. Crates that use `RedbStore` enable it:
//!   `synctree-store = { workspace = true, features = ["redb"] }`.
//! - `conformance` (off by default): exports `conformance`, the backend suite.
//!
//! # Layout
//!
//! ```text
//!   lib.rs          this overview and the exports
//!   memory/         MemoryStore
//!     mod.rs          the Store impl and its one reader-writer lock
//!     context.rs      one context: its entries and Merkle index, apply
//!     leaves.rs       the 16 leaf buckets under one level-3 node, their hashes
//!     bucket.rs       one leaf bucket's entries in key-hash order, the merge
//!     nodes.rs        node hashes of levels 0–3, 16 siblings per group
//!     batch.rs        a batch hashed and sorted before the write lock
//!   redb/           RedbStore and RedbStoreError (feature `redb`)
//!     mod.rs          the Store impl, open
//!     schema.rs       the tables and the format check at open
//!     codec.rs        byte layouts of every key and value
//!     read.rs         the read path, one read transaction per read
//!     apply.rs        the write path, one write transaction per batch
//!     tree.rs         the Merkle index in the node table
//!     guard.rs        containment of redb's panics on damaged files
//!     error.rs        RedbStoreError and the mapping of redb's errors
//!   verify.rs       recompute_root, for any store
//!   conformance/    the suite every backend passes (feature `conformance`)
//! ```
//!
//! ```
//! use synctree_primitives::{merkle, ContextId, Entry, NodeId, Store, Version};
//! use synctree_store::MemoryStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let ctx = ContextId::new("users")?;
//! let (v1, v2) = (Version::new(1, NodeId(1)), Version::new(2, NodeId(2)));
//! store.apply(&ctx, vec![Entry::put("alice", "admin", v1), Entry::put("bob", "guest", v1)])?;
//! // A newer delete wins over the put; an older put does not.
//! let stale = Version::new(0, NodeId(9));
//! let report = store.apply(&ctx, vec![Entry::delete("bob", v2), Entry::put("alice", "x", stale)])?;
//! assert_eq!((report.changed, report.unchanged), (1, 1));
//!
//! // The incrementally maintained root equals a from-scratch recomputation.
//! let root = store.summary(&ctx)?.root;
//! assert_eq!(root, merkle::root_of(&store.entries(&ctx)));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod memory;
#[cfg(feature = "redb")]
mod redb;
mod verify;

#[cfg(feature = "redb")]
pub use self::redb::{RedbStore, RedbStoreError};
pub use memory::MemoryStore;
pub use verify::{recompute_root, recompute_root_with_progress, recompute_sketch};
