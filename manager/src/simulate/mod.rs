//! The cluster simulator: N real [`SyncManager`](crate::SyncManager)s on
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

mod driver;
mod node;
mod oracle;
mod plan;

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::time::Duration;

use serde::Serialize;
use synctree_primitives::StoreError;
use synctree_transport::sim::DEFAULT_FAULT_WINDOW;

pub use driver::run;
pub use node::{PORT, SimConnector};

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Nodes in the cluster (at least 2).
    pub nodes: usize,
    /// Seed of everything random: script, fault plans, jitter, turmoil's RNG.
    pub seed: u64,
    /// Probability that a connection is cut mid-session.
    pub loss: f64,
    /// Probability that a connection stalls mid-session.
    pub stall: f64,
    /// Planned cuts and stalls strike at an offset uniform in
    /// `0..fault_window` bytes of the connection (default
    /// [`DEFAULT_FAULT_WINDOW`]: nearly every planned fault strikes).
    pub fault_window: u64,
    /// One-way latency: each message takes between this and twice this.
    pub latency: Duration,
    /// Bytes per virtual second per connection and direction (`None`: unlimited).
    pub bandwidth: Option<NonZeroU64>,
    /// Length of each partition (zero: none). Partitions repeat through the fault
    /// phase with gaps of half their length.
    pub partition: Duration,
    /// Node restarts during the fault phase.
    pub restarts: u32,
    /// Writes (puts and deletes) during the fault phase, on random nodes.
    pub writes: u32,
    /// Fraction of writes that are deletes.
    pub delete_ratio: f64,
    /// Keys per context; writes pick keys at random, so keys are overwritten.
    pub keys: u32,
    /// Contexts written to (`sim-0`, `sim-1`, …).
    pub contexts: u32,
    /// Virtual time during which the script writes, partitions and restarts.
    pub fault_phase: Duration,
    /// Virtual time allowed to converge after the fault phase.
    pub converge_limit: Duration,
    /// Virtual time of one simulation step (message delivery granularity).
    pub tick: Duration,
    /// Anti-entropy round: each node starts about `fanout` sessions per context
    /// per round.
    pub round: Duration,
    /// Sessions per node, context and round.
    pub fanout: u32,
}

impl SimConfig {
    /// `nodes` nodes and `seed`, with 200 writes over 3 s, 10 ms latency and no
    /// other fault.
    pub fn new(nodes: usize, seed: u64) -> Self {
        SimConfig {
            nodes,
            seed,
            loss: 0.0,
            stall: 0.0,
            fault_window: DEFAULT_FAULT_WINDOW,
            latency: Duration::from_millis(10),
            bandwidth: None,
            partition: Duration::ZERO,
            restarts: 0,
            writes: 200,
            delete_ratio: 0.2,
            keys: 64,
            contexts: 2,
            fault_phase: Duration::from_secs(3),
            converge_limit: Duration::from_secs(60),
            tick: Duration::from_millis(5),
            round: Duration::from_millis(250),
            fanout: 3,
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        let probability = |p: f64| (0.0..=1.0).contains(&p);
        let checks = [
            (self.nodes >= 2, "at least 2 nodes"),
            (self.nodes <= 1000, "at most 1000 nodes"),
            (probability(self.loss), "loss is a probability"),
            (probability(self.stall), "stall is a probability"),
            (self.loss + self.stall < 1.0, "loss + stall < 1"),
            (self.fault_window >= 1, "fault window ≥ 1 byte"),
            (
                probability(self.delete_ratio),
                "delete ratio is a probability",
            ),
            (
                self.contexts >= 1 && self.keys >= 1,
                "at least one context and key",
            ),
            (
                !self.tick.is_zero() && !self.round.is_zero(),
                "tick and round > 0",
            ),
            (self.fanout >= 1, "fanout ≥ 1"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(SimError::Config(what)),
            None => Ok(()),
        }
    }
}

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
    /// [`run`] was called inside a tokio runtime; turmoil drives its own.
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

/// Mixes two numbers into a seed (SplitMix64's finaliser).
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = (a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
