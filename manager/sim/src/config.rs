//! [`SimConfig`]: what to simulate, with the defaults of `synctree simulate`.

use std::num::NonZeroU64;
use std::time::Duration;

use synctree_transport::sim::DEFAULT_FAULT_WINDOW;

use crate::report::SimError;

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

    pub(crate) fn validate(&self) -> Result<(), SimError> {
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
