//! Periodic anti-entropy: every context is synced with every peer on an
//! interval, so replicas converge even when nobody asks them to.
//!
//! ```text
//!  contexts = store.contexts() ∪ config.contexts        peers (fixed set)
//!        └──────────── (context, peer) pairs ─────────────┘
//!                            │  Schedule (no I/O): due = last + interval + jitter;
//!                            │  failing peer: base·2^(n−1) capped at backoff_max
//!                            ▼
//!  run(): start due pairs (≤ max_concurrent, one per pair) ─► JoinSet of sessions
//!           each: Connector::connect ─► SyncManager::sync, under session_deadline
//!         ◄─ SessionRecord ─ finish: reschedule, backoff, stats, metrics
//! ```
//!
//! Only tokio time is used (`sleep_until`, `timeout_at`, `Instant`), so under
//! turmoil the scheduler runs on the virtual clock, and jitter comes from a seeded
//! RNG. A write that lands while a session runs is either carried by it or left
//! for the next round: every pair is synced again one interval later whatever the
//! last session saw.

mod config;
mod connector;
mod pairs;
mod schedule;
mod session;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use synctree_primitives::{ContextId, ProtocolKind, Store};
use tokio::task::{Id, JoinSet};
use tokio::time::{Instant, sleep_until};

pub use crate::record::{Outcome, PeerBackoff, SessionError, SessionRecord};
pub use config::{
    AntiEntropyConfig, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX, DEFAULT_INTERVAL, DEFAULT_JITTER,
    DEFAULT_MAX_CONCURRENT, DEFAULT_SESSION_DEADLINE,
};
pub use connector::{Connector, DEFAULT_CONNECT_TIMEOUT, TcpConnector};
pub use pairs::PairStatus;
pub use session::{AntiEntropyStats, SharedStats};

use crate::manager::SyncManager;
use schedule::Schedule;

/// The scheduler: owns a peer set and syncs every context with every peer.
#[derive(Debug)]
pub struct AntiEntropy<S, C> {
    manager: Arc<SyncManager<S>>,
    connector: Arc<C>,
    peers: Vec<String>,
    config: AntiEntropyConfig,
    stats: SharedStats,
}

impl<S: Store + 'static, C: Connector> AntiEntropy<S, C> {
    /// A scheduler syncing `manager`'s store with `peers` through `connector`.
    pub fn new(
        manager: Arc<SyncManager<S>>,
        connector: C,
        peers: impl IntoIterator<Item = impl Into<String>>,
        config: AntiEntropyConfig,
    ) -> Self {
        AntiEntropy {
            manager,
            connector: Arc::new(connector),
            peers: peers.into_iter().map(Into::into).collect(),
            config,
            stats: SharedStats::default(),
        }
    }

    /// Adds to `stats` instead of fresh totals.
    pub fn with_stats(mut self, stats: SharedStats) -> Self {
        self.stats = stats;
        self
    }

    /// The totals this scheduler adds to.
    pub fn stats(&self) -> SharedStats {
        self.stats.clone()
    }

    /// Runs one session with `peer` on `context` now, outside the schedule.
    pub async fn sync_once(&self, context: &ContextId, peer: &str) -> SessionRecord {
        self.stats.started();
        crate::metrics::record_attempt();
        let record = self.session(context.clone(), peer.to_owned()).await;
        self.stats.finished(&record);
        crate::metrics::record_session(&record);
        record
    }

    /// Runs the schedule until `shutdown` completes, then aborts the sessions in
    /// progress and returns the totals.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> AntiEntropyStats {
        let mut schedule = Schedule::new(self.peers.len(), &self.config);
        let mut running = Running::default();
        tokio::pin!(shutdown);
        loop {
            let now = Instant::now();
            schedule.add_contexts(&self.contexts(), now);
            self.start_due(&mut schedule, &mut running, now);
            let wake = self.wake_at(&schedule, &running, now);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = running.sessions.join_next_with_id(), if !running.sessions.is_empty() => {
                    self.finish(&mut schedule, &mut running, done);
                }
                () = sleep_until(wake) => {}
            }
        }
        running.sessions.shutdown().await;
        crate::metrics::record_running(0);
        self.stats.snapshot()
    }

    /// When to look at the schedule again if no session ends first: the next due
    /// pair, and at least once an interval, so a context created meanwhile (a
    /// local write, a peer's push) joins the schedule. At the cap only an ending
    /// session can let another start, so due pairs do not count.
    fn wake_at(&self, schedule: &Schedule, running: &Running, now: Instant) -> Instant {
        let rescan = now + self.config.interval;
        if running.pairs.len() >= self.config.max_concurrent.max(1) {
            return rescan;
        }
        schedule.next_due().map_or(rescan, |due| due.min(rescan))
    }

    fn start_due(&self, schedule: &mut Schedule, running: &mut Running, now: Instant) {
        let room = self
            .config
            .max_concurrent
            .max(1)
            .saturating_sub(running.pairs.len());
        for (context, peer) in schedule.start_due(now, room) {
            let session = self.session(context.clone(), self.peers[peer].clone());
            self.stats.started();
            crate::metrics::record_attempt();
            let id = running.sessions.spawn(session).id();
            running.pairs.insert(id, (context, peer));
        }
        crate::metrics::record_running(running.pairs.len());
    }

    fn finish(
        &self,
        schedule: &mut Schedule,
        running: &mut Running,
        done: Result<(Id, SessionRecord), tokio::task::JoinError>,
    ) {
        let (id, record) = match done {
            Ok((id, record)) => (id, Some(record)),
            // A session task panicked: count it as a failure of its pair.
            Err(e) => (e.id(), None),
        };
        let Some((context, peer)) = running.pairs.remove(&id) else {
            return;
        };
        let outcome = record.as_ref().map(|r| r.outcome);
        let snapshot = record
            .as_ref()
            .is_some_and(|r| r.protocol == Some(ProtocolKind::Snapshot));
        let backoff = match outcome {
            // Writes landed during the snapshot's stream: catch up at once.
            Some(Outcome::Diverged) if snapshot => {
                schedule.catch_up(&context, peer, Instant::now())
            }
            Some(Outcome::Diverged) => schedule.unconverged(&context, peer, Instant::now()),
            _ => {
                let succeeded = outcome.is_some_and(Outcome::is_success);
                schedule.finish(&context, peer, succeeded, Instant::now())
            }
        };
        crate::metrics::record_backoff(&self.peers[peer], backoff);
        crate::metrics::record_running(running.pairs.len());
        if let Some(record) = record {
            self.stats.finished(&record);
            crate::metrics::record_session(&record);
            log(&record);
        }
    }

    fn session(
        &self,
        context: ContextId,
        peer: String,
    ) -> impl Future<Output = SessionRecord> + Send + 'static {
        session::run_session(
            Arc::clone(&self.manager),
            Arc::clone(&self.connector),
            context,
            peer,
            self.config.session_deadline,
            self.config.protocol,
        )
    }

    /// The store's contexts and the configured ones, sorted (a store may list
    /// them in any order; the schedule must not depend on it).
    fn contexts(&self) -> Vec<ContextId> {
        let mut contexts = match self.manager.store().contexts() {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "listing contexts failed; syncing the configured ones");
                Vec::new()
            }
        };
        contexts.extend(self.config.contexts.iter().cloned());
        contexts.sort();
        contexts.dedup();
        contexts
    }
}

/// Sessions in progress and the pair each one serves.
#[derive(Default)]
struct Running {
    sessions: JoinSet<SessionRecord>,
    pairs: HashMap<Id, (ContextId, usize)>,
}

fn log(record: &SessionRecord) {
    let (peer, context) = (&record.peer, &record.context);
    match &record.error {
        None => {
            tracing::debug!(%peer, %context, outcome = record.outcome.name(), "anti-entropy session")
        }
        Some(e) => tracing::debug!(
            %peer, %context, outcome = record.outcome.name(),
            error = %synctree_primitives::error::error_chain(e.as_ref()), "anti-entropy session failed"
        ),
    }
}
