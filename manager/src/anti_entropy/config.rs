//! [`AntiEntropyConfig`]: the scheduler's tunables and their defaults.

use std::time::Duration;

use synctree_primitives::ContextId;

use crate::selection::ProtocolChoice;

/// Scheduler tunables.
#[derive(Clone, Debug)]
pub struct AntiEntropyConfig {
    /// Time between two sessions of one (context, peer) pair.
    pub interval: Duration,
    /// Random extra delay, uniform in `[0, jitter)`, added to every reschedule.
    pub jitter: Duration,
    /// Sessions running at once, over all pairs.
    pub max_concurrent: usize,
    /// Longest one session may take, connecting included.
    pub session_deadline: Duration,
    /// Wait after a peer's first failure; doubles with each further failure.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Contexts synced even while the local store holds nothing of them.
    pub contexts: Vec<ContextId>,
    /// Which protocol sessions run.
    pub protocol: ProtocolChoice,
    /// Seed of the jitter.
    pub seed: u64,
}

impl Default for AntiEntropyConfig {
    /// Every 30 s ± 3 s, 4 at a time, 60 s deadline, backoff 1 s doubling to 5 min.
    fn default() -> Self {
        AntiEntropyConfig {
            interval: Duration::from_secs(30),
            jitter: Duration::from_secs(3),
            max_concurrent: 4,
            session_deadline: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            contexts: Vec::new(),
            protocol: ProtocolChoice::Auto,
            seed: 0,
        }
    }
}
