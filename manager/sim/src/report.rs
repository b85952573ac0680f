//! [`SimReport`] (what a run did) and [`SimError`] (why it could not run).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use synctree_primitives::StoreError;

/// What a simulation did. Equal configs give equal reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimReport {
    /// Every replica ended with exactly the merge of all writes.
    pub converged: bool,
    /// Nodes.
    pub nodes: usize,
    /// The seed.
    pub seed: u64,
    /// Anti-entropy sessions that ended (restarts abort the ones in progress).
    pub sessions: u64,
    /// Of those, the ones that failed.
    pub failed_sessions: u64,
    /// Round trips of completed sessions, handshakes included.
    pub rounds: u64,
    /// Bytes both ways, seen by the initiators, failed sessions included.
    pub bytes: u64,
    /// Entries pulled by initiators.
    pub entries_pulled: u64,
    /// Entries pushed by initiators.
    pub entries_pushed: u64,
    /// Virtual time when the run ended: convergence confirmed, or the limit.
    pub virtual_ms: u64,
    /// Virtual time when the faults healed.
    pub heal_ms: u64,
    /// Virtual time from the heal to convergence (`None`: did not converge).
    pub converge_ms: Option<u64>,
    /// Puts written.
    pub writes: u64,
    /// Deletes written.
    pub deletes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Restarts.
    pub restarts: u64,
    /// Entries of the expected merge (tombstones included).
    pub entries: u64,
    /// (replica, context) pairs that differ from the expected merge.
    pub mismatches: u64,
    /// Expected root per context, hex.
    pub roots: BTreeMap<String, String>,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The config is out of range.
    #[error("invalid simulation config: {0}")]
    Config(&'static str),
    /// [`run`](crate::run) was called inside a tokio runtime; turmoil drives its own.
    #[error("the simulator cannot run inside a tokio runtime (call it from a plain thread)")]
    InsideRuntime,
    /// A simulated host's software failed.
    #[error("simulated host failed after {at:?} of virtual time: {message}")]
    Host {
        /// Virtual time of the failure.
        at: Duration,
        /// The host's error.
        message: String,
    },
    /// Writing to a node's store failed.
    #[error("writing to node {node} failed")]
    Store {
        /// The node.
        node: usize,
        /// The store's error.
        #[source]
        source: StoreError,
    },
}
