//! The cluster simulator: N real [`SyncManager`](synctree_manager::SyncManager)s on
//! turmoil hosts, syncing through anti-entropy over
//! [`SimTransport`](synctree_transport::sim::SimTransport) while a seeded script
//! writes, partitions and restarts; then the faults heal and every replica must
//! converge to exactly the merge of all writes.
//!
//! ```text
//!  seed ─► Script (writes · partitions · restarts, at virtual times)
//!            │ applied between turmoil steps
//!  ┌─────────▼───────── turmoil Sim (virtual clock, latency, partitions) ──────────┐
//!  │ node0: SyncManager + serve + AntiEntropy ──SimTransport (cut/stall/cap)── node1 │ …
//!  └─────────┬──────────────────────────────────────────────────────────────────────┘
//!            │ after the fault phase: heal, then every 50 ms compare roots
//!  Oracle (every write) ─► expected merge ─► every replica: same entries, same root,
//!                                            root verifies over its entries
//! ```
//!
//! Faults: `loss` and `stall` are per-connection probabilities (a cut or stall
//! at a seeded byte offset, planned by the connecting side), latency is turmoil's
//! (between `latency` and twice it per message), partitions split the nodes into
//! two random groups, and a restart drops a node's manager and scheduler and
//! reopens them over the same store. Loss, stalls and latency stay on while the
//! cluster converges; partitions and restarts end with the fault phase.
//!
//! [`run`] drives turmoil from the calling thread, which must not be inside a
//! tokio runtime. The same config gives the same [`SimReport`].

#![forbid(unsafe_code)]

mod config;
mod driver;
mod node;
mod oracle;
mod plan;
mod report;
mod seed;

pub use config::{
    DEFAULT_CONTEXTS, DEFAULT_CONVERGE_LIMIT, DEFAULT_DELETE_RATIO, DEFAULT_FANOUT,
    DEFAULT_FAULT_PHASE, DEFAULT_KEYS, DEFAULT_LATENCY, DEFAULT_ROUND, DEFAULT_TICK,
    DEFAULT_WRITES, MAX_NODES, SimConfig,
};
pub use driver::{
    SIM_BACKOFF_MAX, SIM_CONNECT_TIMEOUT, SIM_HANDSHAKE_TIMEOUT, SIM_MAX_CONCURRENT,
    SIM_SESSION_DEADLINE, SIM_STREAM_DEADLINE, run,
};
pub use node::{PORT, SimConnector};
pub use report::{SimError, SimReport};
