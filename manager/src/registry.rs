//! The protocol registry: every protocol this node runs, registered once.
//!
//! ```text
//!  handle_stream ─ init.kind ─► ProtocolRegistry::for_init ─► RegisteredProtocol::respond
//!                                                               └ ResponderInit::try_from ─► run_responder
//!  sync ─ select() ─ kind ─────► ProtocolRegistry::get ──────► RegisteredProtocol::initiate
//!                                                               └ Config from the handshake ─► run_initiator
//!  ManagerConfig::default().supported = ProtocolRegistry::standard().kinds()
//! ```
//!
//! Any [`SyncProtocolExecutor`](synctree_primitives::SyncProtocolExecutor) is
//! registered through [`ExecutorProtocol`], which needs two functions: which
//! `init_payload::Kind` variant carries the protocol's first message, and how
//! its initiator `Config` is built from the handshake. Snapshot has its own
//! handler ([`SnapshotProtocol`]) because it keeps interrupted transfers per
//! (peer, context) to resume them.
//!
//! Adding a protocol: implement its executor, add its `InitPayload.kind` and
//! `ProtocolKind` variants to the proto, add its row to [`crate::selection`],
//! and register it in [`ProtocolRegistry::standard`] (or on a registry given to
//! [`crate::SyncManager::with_registry`]).

mod adapter;
mod protocol;
mod snapshot;
mod standard;
mod table;

pub use adapter::{ConfigOf, ExecutorProtocol, InitOf, KeyedOf};
pub use protocol::{HandlerError, InitiatorPlan, RegisteredProtocol, SessionScope};
pub use snapshot::{
    MAX_PARTIAL_SNAPSHOTS, MAX_SNAPSHOT_VIEWS_PER_PEER, SnapshotProtocol,
    progress_key as snapshot_progress_key,
};
pub use table::ProtocolRegistry;
