//! Shared vocabulary of synctree: what every other crate meets through.
//!
//! ```text
//!            ┌────────────── synctree-manager ──────────────┐
//!            │ dispatch first message · handshake · serve   │
//!            └───────┬──────────────────────────┬───────────┘
//!   SyncProtocolExecutor                         │
//!            ┌───────▼────────┐                  │
//!            │   protocols    │ state machines + thin async drivers
//!            └──┬──────────┬──┘                  │
//!        Store  │          │ SyncTransport       │
//!      ┌────────▼──┐    ┌──▼────────────────┐    │
//!      │   store   │    │    transport      │◄───┘
//!      └───────────┘    └───────────────────┘
//! ```
//!
//! This crate holds the ids ([`Hash`](struct@Hash), [`ContextId`], [`NodeId`]), the entry model
//! and merge rule ([`Entry`], [`merge`]), the Merkle index ([`merkle`]), the three
//! traits ([`Store`], [`SyncTransport`], [`SyncProtocolExecutor`]), the protobuf
//! messages ([`wire`]), typed errors ([`error`]), limits ([`limits`]) and versioned local writes
//! ([`LocalWrites`]).
//!
//! ```
//! use synctree_primitives::{merkle, Entry, NodeId, Version};
//!
//! let a = Entry::put("k1", "v1", Version::new(1, NodeId(1)));
//! let b = Entry::put("k2", "v2", Version::new(2, NodeId(2)));
//! // The root does not depend on the order entries arrived in.
//! assert_eq!(merkle::root_of([&a, &b]), merkle::root_of([&b, &a]));
//! ```

#![forbid(unsafe_code)]

pub mod entry;
pub mod error;
mod forward;
pub mod gc;
pub mod hlc;
pub mod ids;
pub mod limits;
pub mod local;
pub mod merkle;
pub mod protocol;
pub mod riblt;
pub mod salt;
pub mod sketch;
pub mod store;
pub mod tap;
pub mod transport;
pub mod wire;

pub use entry::{Entry, Version, key_hash, merge};
pub use error::{ProtocolError, StoreError, SyncError, SyncErrorKind, TransportError};
pub use hlc::{Hlc, WallClock};
pub use ids::{ContextId, Hash, IdError, Identity, NodeId};
pub use local::{LocalWrites, WriteLocalError};
pub use merkle::NodePos;
pub use protocol::{Role, SessionInfo, SyncProtocolExecutor, SyncStats};
pub use store::{
    ApplyReport, ContextView, EntryRef, PurgeRule, Store, StoredEntry, TreeSummary, ViewPermit,
    ViewPermits,
};
pub use transport::{SyncTransport, TransportStats};
pub use wire::{PROTOCOL_VERSION, ProtocolKind, StreamMessage};
