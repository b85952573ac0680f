//! The synctree session manager.
//!
//! ```text
//!  incoming stream ─► recv() first message ─► InitPayload.kind ─┬─ Handshake ─► reply, read next init
//!                                                               ├─ HashComparison ─► run_responder
//!                                                               ├─ LevelWise ─► run_responder
//!                                                               ├─ Snapshot ─► run_responder
//!                                                               └─ anything else ─► Abort + typed error
//!
//!  sync(peer) ─► Handshake ⇄ Handshake ─► select() ─► none │ run_initiator ─► SessionReport
//! ```
//!
//! [`SyncManager`] is generic over the store and works over any `SyncTransport`;
//! [`SyncManager::serve`] adds a TCP accept loop with a concurrency cap. The
//! `synctree` binary lives in `synctree-cli` (manager/cli) and the cluster
//! simulator in `synctree-sim` (manager/sim), so this crate pulls in neither a
//! command-line parser nor turmoil nor an HTTP exporter.

#![forbid(unsafe_code)]

pub mod anti_entropy;
mod error;
pub mod handshake;
mod manager;
pub mod metrics;
mod record;
mod report;
pub mod selection;
mod serve;

pub use anti_entropy::{AntiEntropy, AntiEntropyConfig, Connector, TcpConnector};
pub use error::ManagerError;
pub use handshake::{PeerSummary, TopFingerprint};
pub use manager::{MAX_PARTIAL_SNAPSHOTS, ManagerConfig, Served, SyncManager};
pub use report::{ReportJson, SessionReport};
pub use selection::{ProtocolChoice, Selection, select};
pub use serve::{DRAIN_GRACE, STREAM_DEADLINE, ServeSummary};
