//! The synctree session manager.
//!
//! ```text
//!  incoming stream ─► recv() first message ─► InitPayload.kind ─┬─ Handshake ─► reply, read next init
//!                                                               ├─ accepted by a RegisteredProtocol
//!                                                               │    (HashComparison · LevelWise · Snapshot)
//!                                                               │    ─► ResponderInit ─► run_responder
//!                                                               └─ anything else ─► Abort + typed error
//!
//!  sync(peer) ─► Handshake ⇄ Handshake ─► select() ─► none │ registry.get(kind).initiate ─► SessionReport
//! ```
//!
//! [`SyncManager`] is generic over the store and works over any `SyncTransport`;
//! the protocols it runs come from a [`ProtocolRegistry`] ([`registry`]).
//! [`SyncManager::serve`] adds a TCP accept loop with a concurrency cap, and
//! [`AntiEntropy`] syncs every context with every peer on an interval. The
//! `synctree` binary lives in `synctree-cli` (manager/cli) and the cluster
//! simulator in `synctree-sim` (manager/sim), so this crate pulls in neither a
//! command-line parser nor turmoil nor an HTTP exporter.
//!
//! # Example
//!
//! Two in-memory replicas, one serving a stream and one syncing over it:
//!
//! ```
//! use std::sync::Arc;
//!
//! use synctree_manager::{ManagerConfig, ProtocolChoice, SyncManager};
//! use synctree_primitives::{ContextId, Entry, Identity, NodeId, Store, Version};
//! use synctree_store::MemoryStore;
//! use synctree_transport::FramedTransport;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let context = ContextId::new("docs")?;
//! let node = |id| {
//!     let store = Arc::new(MemoryStore::new());
//!     SyncManager::new(store, Identity::new(NodeId(id)), ManagerConfig::default())
//! };
//! let (a, b) = (node(1), node(2));
//! a.store().apply(&context, vec![Entry::put("k1", "from a", Version::new(1, NodeId(1)))])?;
//! b.store().apply(&context, vec![Entry::put("k2", "from b", Version::new(1, NodeId(2)))])?;
//!
//! let (left, right) = tokio::io::duplex(64 * 1024);
//! let mut serving = FramedTransport::new(left, "b");
//! let mut syncing = FramedTransport::new(right, "a");
//! let (served, report) = tokio::join!(
//!     b.handle_stream(&mut serving),
//!     a.sync(&mut syncing, &context, ProtocolChoice::Auto),
//! );
//! served?;
//! assert!(report?.converged());
//! assert_eq!(a.store().summary(&context)?.root, b.store().summary(&context)?.root);
//! # Ok(())
//! # }
//! ```
//!
//! `manager/examples/three_nodes.rs` runs anti-entropy between three nodes, and
//! `manager/examples/embed.rs` embeds the manager over a store of your own.

#![forbid(unsafe_code)]

pub mod accept;
pub mod access;
pub mod anti_entropy;
mod config;
mod error;
pub mod gc;
pub mod handshake;
mod listing;
mod manager;
pub mod metrics;
mod record;
pub mod registry;
mod report;
pub mod selection;
mod serve;
mod slots;
mod unconverged;

pub use accept::{AcceptError, Accepted, Acceptor, PlainTcp};
pub use access::{Access, ContextSet, ReadOnly};
pub use anti_entropy::{
    AntiEntropy, AntiEntropyConfig, AntiEntropyStats, Connector, PairStatus, SharedStats,
    TcpConnector,
};
pub use error::ManagerError;
pub use handshake::{PeerSummary, SketchProbe, TopFingerprint};
pub use listing::PeerContexts;
pub use manager::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONCURRENT_SESSIONS, MAX_REMEMBERED_UNCONVERGED,
    ManagerConfig, Served, SyncManager,
};
pub use registry::{
    ExecutorProtocol, MAX_PARTIAL_SNAPSHOTS, MAX_SNAPSHOT_VIEWS_PER_PEER, ProtocolRegistry,
    RegisteredProtocol, SnapshotProtocol, snapshot_progress_key,
};
pub use report::{ReportJson, SessionReport};
pub use selection::{
    ProtocolChoice, Selection, Unconverged, select, select_after, select_resuming,
};
pub use serve::{
    DEFAULT_ACCEPT_TIMEOUT, DEFAULT_BUFFER_BUDGET_BYTES, DEFAULT_EVICT_IDLE_AFTER,
    DEFAULT_FIRST_MESSAGE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_PENDING_CONNECTIONS,
    DRAIN_GRACE, STREAM_DEADLINE, ServeSummary, SessionSlots,
};
