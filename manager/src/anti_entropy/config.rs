//! [`AntiEntropyConfig`]: the scheduler's tunables and their defaults.

use std::time::Duration;

use synctree_primitives::ContextId;

use crate::selection::ProtocolChoice;

/// Default time between two sessions of a pair: replicas converge within about a
/// minute while an idle cluster costs one handshake per pair per half minute.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Default jitter: a tenth of the interval, enough that nodes started together
/// do not keep syncing in lockstep.
pub const DEFAULT_JITTER: Duration = Duration::from_secs(3);

/// Default sessions at once, over all pairs: a background task that must not
/// crowd out the sessions peers open to this node.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;

/// Default deadline of one session, connecting included: about a protocol's own
/// deadline, so a stuck peer frees its slot.
pub const DEFAULT_SESSION_DEADLINE: Duration = Duration::from_secs(60);

/// Default wait after a peer's first failure: a restarting peer is retried soon.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Default longest backoff: a peer that is down for good costs one attempt per
/// five minutes.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);

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
            interval: DEFAULT_INTERVAL,
            jitter: DEFAULT_JITTER,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            session_deadline: DEFAULT_SESSION_DEADLINE,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            contexts: Vec::new(),
            protocol: ProtocolChoice::Auto,
            seed: 0,
        }
    }
}
