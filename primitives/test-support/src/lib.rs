//! Test helpers shared by synctree's tests, the simulator and the benches.
//!
//! Tests keep needing "the real transport, but cut after N frames" or "the real
//! store, but one write lands mid-session". Instead of each test writing its own
//! seven-method forwarding wrapper, this crate has exactly one of each:
//!
//! - [`Tap`] (re-exported from `synctree_primitives::tap`): wraps any
//!   [`SyncTransport`](synctree_primitives::SyncTransport) and calls a
//!   [`TransportHook`] around every send and receive (count, cut, trigger).
//! - [`StoreTap`]: wraps any [`Store`](synctree_primitives::Store) and calls a
//!   [`StoreHook`] before every operation and after every apply (fail, log, move the
//!   state), or replaces `range` (crowd a bucket). [`FaultyStore`] is one such hook:
//!   it fails operations after a threshold.
//!
//! The crate is unpublished: it is for this workspace's tests and tools only.
//!
//! ```
//! use synctree_primitives::{ContextId, Entry, NodeId, Store, Version};
//! use synctree_test_support::{StoreHook, StoreOp, StoreTap};
//! # use synctree_primitives::{ApplyReport, Hash, NodePos, StoreError, StoredEntry, TreeSummary};
//! # #[derive(Default)] struct Empty;
//! # impl Store for Empty {
//! #   fn summary(&self, _: &ContextId) -> Result<TreeSummary, StoreError> { Ok(TreeSummary { root: Hash::ZERO, entry_count: 0, depth: 0 }) }
//! #   fn node(&self, _: &ContextId, _: NodePos) -> Result<Hash, StoreError> { Ok(Hash::ZERO) }
//! #   fn range(&self, _: &ContextId, _: &Hash, _: &Hash, _: usize) -> Result<Vec<StoredEntry>, StoreError> { Ok(vec![]) }
//! #   fn get(&self, _: &ContextId, _: &Hash) -> Result<Option<Entry>, StoreError> { Ok(None) }
//! #   fn apply(&self, _: &ContextId, e: Vec<Entry>) -> Result<ApplyReport, StoreError> { Ok(ApplyReport { changed: e.len() as u64, unchanged: 0, refused: 0 }) }
//! #   fn contexts(&self) -> Result<Vec<ContextId>, StoreError> { Ok(vec![]) }
//! # }
//!
//! /// Refuses every write: a read-only replica.
//! struct ReadOnly;
//! impl<S: Store> StoreHook<S> for ReadOnly {
//!     fn before(&self, _: &S, op: StoreOp) -> Result<(), synctree_primitives::StoreError> {
//!         match op {
//!             StoreOp::Apply(_) => Err(synctree_primitives::StoreError::Fault { op: op.name() }),
//!             _ => Ok(()),
//!         }
//!     }
//! }
//!
//! let store = StoreTap::new(Empty, ReadOnly);
//! let ctx = ContextId::new("c").unwrap();
//! let entry = Entry::put("k", "v", Version::new(1, NodeId(1)));
//! assert!(store.apply(&ctx, vec![entry]).is_err());
//! assert_eq!(store.summary(&ctx).unwrap().entry_count, 0);
//! ```

#![forbid(unsafe_code)]

mod faults;
mod store;

pub use faults::{Faults, FaultyStore};
pub use store::{StoreHook, StoreOp, StoreTap};
/// The delegating transport lives in `synctree-primitives` (nodes use it too).
pub use synctree_primitives::tap::{Tap, TransportHook};
