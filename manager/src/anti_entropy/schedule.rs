//! When each (context, peer) pair is due, and how long failing peers back off.
//! No I/O and no clock: `now` is passed in and jitter comes from a seeded RNG, so
//! the same inputs give the same schedule.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use synctree_primitives::ContextId;
use tokio::time::Instant;

use super::config::AntiEntropyConfig;
use crate::record::PeerBackoff;

#[derive(Clone, Copy, Debug)]
struct PairState {
    due: Instant,
    running: bool,
    /// The running session is an immediate catch-up after a snapshot: a second
    /// one in a row waits an interval.
    catching_up: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct PeerState {
    failures: u32,
    retry_at: Option<Instant>,
}

/// The schedule of every (context, peer index) pair.
#[derive(Debug)]
pub(crate) struct Schedule {
    peers: Vec<PeerState>,
    pairs: BTreeMap<(ContextId, usize), PairState>,
    rng: SmallRng,
    config: AntiEntropyConfig,
}

impl Schedule {
    pub(crate) fn new(peers: usize, config: &AntiEntropyConfig) -> Self {
        Schedule {
            peers: vec![PeerState::default(); peers],
            pairs: BTreeMap::new(),
            rng: SmallRng::seed_from_u64(config.seed),
            config: config.clone(),
        }
    }

    /// Adds the pairs of contexts seen for the first time, due at a random point
    /// of the next interval so that a node's first round is spread out.
    pub(crate) fn add_contexts(&mut self, contexts: &[ContextId], now: Instant) {
        for context in contexts {
            for peer in 0..self.peers.len() {
                if !self.pairs.contains_key(&(context.clone(), peer)) {
                    let due = now + self.random_below(self.config.interval);
                    let state = PairState {
                        due,
                        running: false,
                        catching_up: false,
                    };
                    self.pairs.insert((context.clone(), peer), state);
                }
            }
        }
    }

    /// Marks up to `limit` due pairs as running and returns them, earliest first.
    pub(crate) fn start_due(&mut self, now: Instant, limit: usize) -> Vec<(ContextId, usize)> {
        let mut due: Vec<_> = self
            .pairs
            .iter()
            .filter(|(_, s)| !s.running)
            .map(|(key, s)| (self.effective_due(key.1, s), key.clone()))
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort();
        due.truncate(limit);
        for (_, key) in &due {
            if let Some(state) = self.pairs.get_mut(key) {
                state.running = true;
            }
        }
        due.into_iter().map(|(_, key)| key).collect()
    }

    /// When the earliest idle pair is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.pairs
            .iter()
            .filter(|(_, s)| !s.running)
            .map(|(key, s)| self.effective_due(key.1, s))
            .min()
    }

    /// Records how a pair's session ended and schedules its next one; returns the
    /// peer's backoff state.
    pub(crate) fn finish(
        &mut self,
        context: &ContextId,
        peer: usize,
        succeeded: bool,
        now: Instant,
    ) -> PeerBackoff {
        let next = if succeeded {
            self.peers[peer] = PeerState::default();
            now + self.config.interval + self.random_below(self.config.jitter)
        } else {
            let failures = self.peers[peer].failures.saturating_add(1);
            let retry = now + self.delay(failures) + self.random_below(self.config.jitter);
            self.peers[peer] = PeerState {
                failures,
                retry_at: Some(retry),
            };
            retry
        };
        if let Some(state) = self.pairs.get_mut(&(context.clone(), peer)) {
            *state = PairState {
                due: next,
                running: false,
                catching_up: false,
            };
        }
        self.backoff(peer)
    }

    /// Records a session that completed without converging: the pair is due again
    /// after an interval, and the peer's backoff stays as it was (a diverged
    /// session is no evidence the peer is healthy, nor that it is failing).
    pub(crate) fn unconverged(
        &mut self,
        context: &ContextId,
        peer: usize,
        now: Instant,
    ) -> PeerBackoff {
        let next = now + self.config.interval + self.random_below(self.config.jitter);
        if let Some(state) = self.pairs.get_mut(&(context.clone(), peer)) {
            *state = PairState {
                due: next,
                running: false,
                catching_up: false,
            };
        }
        self.backoff(peer)
    }

    /// Records a snapshot that completed while the peer kept writing (roots
    /// differ): the pair is due again at once, so a tree session brings what was
    /// written during the stream; the peer's backoff resets (the session worked).
    pub(crate) fn catch_up(
        &mut self,
        context: &ContextId,
        peer: usize,
        now: Instant,
    ) -> PeerBackoff {
        if self
            .pairs
            .get(&(context.clone(), peer))
            .is_some_and(|s| s.catching_up)
        {
            return self.unconverged(context, peer, now);
        }
        self.peers[peer] = PeerState::default();
        if let Some(state) = self.pairs.get_mut(&(context.clone(), peer)) {
            *state = PairState {
                due: now,
                running: false,
                catching_up: true,
            };
        }
        self.backoff(peer)
    }

    /// The backoff state of `peer`.
    pub(crate) fn backoff(&self, peer: usize) -> PeerBackoff {
        let failures = self.peers.get(peer).map_or(0, |p| p.failures);
        PeerBackoff {
            failures,
            delay: self.delay(failures),
        }
    }

    /// `backoff_base · 2^(failures − 1)`, capped at `backoff_max`; zero without failures.
    fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.config
            .backoff_base
            .saturating_mul(factor)
            .min(self.config.backoff_max)
    }

    fn effective_due(&self, peer: usize, state: &PairState) -> Instant {
        match self.peers.get(peer).and_then(|p| p.retry_at) {
            Some(retry) => retry.max(state.due),
            None => state.due,
        }
    }

    fn random_below(&mut self, span: Duration) -> Duration {
        if span.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.random_range(0..nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AntiEntropyConfig {
        AntiEntropyConfig {
            interval: Duration::from_secs(10),
            jitter: Duration::from_secs(1),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            ..AntiEntropyConfig::default()
        }
    }

    fn ctx(name: &str) -> ContextId {
        ContextId::new(name).unwrap()
    }

    #[test]
    fn first_round_is_spread_over_one_interval_and_capped_by_the_limit() {
        let now = Instant::now();
        let mut s = Schedule::new(3, &config());
        s.add_contexts(&[ctx("a"), ctx("b")], now);
        let first = s.next_due().unwrap();
        assert!(first >= now && first < now + Duration::from_secs(10));
        let later = now + Duration::from_secs(10);
        let started = s.start_due(later, 4);
        assert_eq!(started.len(), 4, "the cap holds");
        assert_eq!(s.start_due(later, 10).len(), 2, "the rest, once each");
        assert!(
            s.start_due(later, 10).is_empty(),
            "one session per pair at a time"
        );
        assert_eq!(s.next_due(), None, "every pair is running");
    }

    #[test]
    fn a_snapshot_that_ended_apart_is_caught_up_at_once_but_only_once() {
        let now = Instant::now();
        let mut s = Schedule::new(1, &config());
        let a = ctx("a");
        s.add_contexts(std::slice::from_ref(&a), now);
        assert_eq!(s.start_due(now + Duration::from_secs(10), 1).len(), 1);
        s.catch_up(&a, 0, now);
        assert_eq!(s.next_due(), Some(now), "due at once");
        assert_eq!(s.start_due(now, 1).len(), 1);
        s.catch_up(&a, 0, now);
        let due = s.next_due().unwrap();
        assert!(
            due >= now + Duration::from_secs(10),
            "the second waits an interval"
        );
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap_and_reset_on_success() {
        let now = Instant::now();
        let mut s = Schedule::new(1, &config());
        let a = ctx("a");
        s.add_contexts(std::slice::from_ref(&a), now);
        let delays: Vec<_> = (0..5)
            .map(|_| s.finish(&a, 0, false, now).delay.as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        let due = s.next_due().unwrap();
        assert!(due >= now + Duration::from_secs(5) && due < now + Duration::from_secs(6));
        assert_eq!(s.finish(&a, 0, true, now), PeerBackoff::default());
        let due = s.next_due().unwrap();
        assert!(due >= now + Duration::from_secs(10) && due < now + Duration::from_secs(11));
    }

    #[test]
    fn a_diverged_session_keeps_the_backoff_neither_reset_nor_grown() {
        let now = Instant::now();
        let mut s = Schedule::new(1, &config());
        let a = ctx("a");
        s.add_contexts(std::slice::from_ref(&a), now);
        s.finish(&a, 0, false, now);
        let failed = s.finish(&a, 0, false, now);
        assert_eq!((failed.failures, failed.delay.as_secs()), (2, 2));
        assert_eq!(s.unconverged(&a, 0, now), failed);
        assert_eq!(s.backoff(0), failed);
        // Due no sooner than both the interval and the retry the backoff set.
        let due = s.next_due().unwrap();
        assert!(due >= now + Duration::from_secs(10), "{due:?}");
        assert_eq!(s.finish(&a, 0, true, now), PeerBackoff::default());
    }

    #[test]
    fn a_failing_peer_holds_back_all_its_contexts() {
        let now = Instant::now();
        let mut s = Schedule::new(2, &config());
        let (a, b) = (ctx("a"), ctx("b"));
        s.add_contexts(&[a.clone(), b.clone()], now);
        let all = s.start_due(now + Duration::from_secs(10), 10);
        assert_eq!(all.len(), 4);
        let t = now + Duration::from_secs(20);
        for (context, peer) in &all {
            s.finish(context, *peer, *peer == 1, t);
        }
        // Peer 0 failed once (1 s backoff); peer 1 is next due after an interval.
        let soon = s.start_due(t + Duration::from_secs(3), 10);
        assert_eq!(soon, vec![(a, 0), (b, 0)]);
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let now = Instant::now();
        let draw = || {
            let mut s = Schedule::new(4, &config());
            s.add_contexts(&[ctx("a")], now);
            (0..4)
                .map(|_| s.start_due(now + Duration::from_secs(10), 1))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
    }
}
