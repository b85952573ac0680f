//! [`SimConfig`]: what to simulate, with the defaults of `synctree simulate`.

use std::num::NonZeroU64;
use std::time::Duration;

use synctree_transport::sim::DEFAULT_FAULT_WINDOW;

use crate::report::SimError;

/// Default one-way latency: a LAN-to-WAN link, long enough that sessions overlap.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(10);
/// Default writes in the fault phase: enough to touch most keys several times.
pub const DEFAULT_WRITES: u32 = 200;
/// Default fraction of deletes: tombstones must sync like any write.
pub const DEFAULT_DELETE_RATIO: f64 = 0.2;
/// Default keys per context: few, so writes overwrite each other and merges matter.
pub const DEFAULT_KEYS: u32 = 64;
/// Default contexts: more than one, so sessions of one pair interleave.
pub const DEFAULT_CONTEXTS: u32 = 2;
/// Default fault phase: about a dozen anti-entropy rounds.
pub const DEFAULT_FAULT_PHASE: Duration = Duration::from_secs(3);
/// Default convergence limit: far above what a healed cluster needs, so only a
/// real failure to converge hits it.
pub const DEFAULT_CONVERGE_LIMIT: Duration = Duration::from_secs(60);
/// Default simulation step: half the default latency.
pub const DEFAULT_TICK: Duration = Duration::from_millis(5);
/// Default anti-entropy round.
pub const DEFAULT_ROUND: Duration = Duration::from_millis(250);
/// Default sessions per node, context and round: a gossip fanout of 3 reaches a
/// 1000-node cluster in a handful of rounds.
pub const DEFAULT_FANOUT: u32 = 3;
/// Largest cluster [`SimConfig`] accepts: each node is a turmoil host with its
/// own tasks and store, stepped on one thread.
pub const MAX_NODES: usize = 1000;

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
            latency: DEFAULT_LATENCY,
            bandwidth: None,
            partition: Duration::ZERO,
            restarts: 0,
            writes: DEFAULT_WRITES,
            delete_ratio: DEFAULT_DELETE_RATIO,
            keys: DEFAULT_KEYS,
            contexts: DEFAULT_CONTEXTS,
            fault_phase: DEFAULT_FAULT_PHASE,
            converge_limit: DEFAULT_CONVERGE_LIMIT,
            tick: DEFAULT_TICK,
            round: DEFAULT_ROUND,
            fanout: DEFAULT_FANOUT,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        let probability = |p: f64| (0.0..=1.0).contains(&p);
        let checks = [
            (self.nodes >= 2, "at least 2 nodes"),
            (self.nodes <= MAX_NODES, "at most 1000 nodes"),
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
