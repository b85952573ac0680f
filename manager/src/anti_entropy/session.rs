//! One anti-entropy session: connect, sync under a deadline, and record what
//! happened whatever the outcome.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use synctree_primitives::{ContextId, Store, SyncTransport};
use tokio::time::{Instant, timeout_at};

use super::connector::Connector;
use super::pairs::PairStatus;
use crate::manager::SyncManager;
use crate::record::{Outcome, SessionError, SessionRecord};
use crate::selection::ProtocolChoice;

/// Totals over a scheduler's sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AntiEntropyStats {
    /// Sessions started.
    pub attempted: u64,
    /// Sessions that completed, converged or not (`succeeded - diverged`
    /// converged).
    pub succeeded: u64,
    /// Of those, the sessions that completed without converging
    /// ([`Outcome::Diverged`]): they do not reset the peer's backoff.
    pub diverged: u64,
    /// Sessions that failed (connect, deadline, transport, protocol, store).
    pub failed: u64,
    /// Round trips of completed sessions (diverged ones included), handshakes included.
    pub rounds: u64,
    /// Bytes sent, failed sessions included.
    pub bytes_sent: u64,
    /// Bytes received, failed sessions included.
    pub bytes_received: u64,
    /// Entries pulled by completed sessions.
    pub entries_pulled: u64,
    /// Entries pushed by completed sessions.
    pub entries_pushed: u64,
}

impl AntiEntropyStats {
    fn record(&mut self, record: &SessionRecord) {
        match record.outcome {
            Outcome::Converged => self.succeeded += 1,
            Outcome::Diverged => {
                self.succeeded += 1;
                self.diverged += 1;
            }
            _ => self.failed += 1,
        }
        self.rounds += u64::from(record.rounds);
        self.bytes_sent += record.transport.bytes_sent;
        self.bytes_received += record.transport.bytes_received;
        self.entries_pulled += record.entries_pulled;
        self.entries_pushed += record.entries_pushed;
    }
}

/// [`AntiEntropyStats`] and the per-pair [`PairStatus`] table, shared between a
/// scheduler and whoever watches it; it outlives the scheduler (a simulated node
/// keeps its totals across restarts).
#[derive(Clone, Debug, Default)]
pub struct SharedStats(Arc<Mutex<Totals>>);

#[derive(Debug, Default)]
struct Totals {
    all: AntiEntropyStats,
    pairs: BTreeMap<(String, ContextId), PairStatus>,
}

impl SharedStats {
    /// The totals so far.
    pub fn snapshot(&self) -> AntiEntropyStats {
        self.lock().all
    }

    /// The latest state of every (peer, context) pair that has had a session,
    /// ordered by peer, then context.
    pub fn pairs(&self) -> Vec<PairStatus> {
        self.lock().pairs.values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn started(&self) {
        self.lock().all.attempted += 1;
    }

    pub(crate) fn finished(&self, record: &SessionRecord) {
        let mut totals = self.lock();
        totals.all.record(record);
        totals
            .pairs
            .entry((record.peer.clone(), record.context.clone()))
            .or_insert_with(|| PairStatus::new(record))
            .record(record, SystemTime::now());
    }
}

/// Connects to `peer` and syncs `context`, all within `deadline`.
pub(crate) async fn run_session<S, C>(
    manager: Arc<SyncManager<S>>,
    connector: Arc<C>,
    context: ContextId,
    peer: String,
    deadline: Duration,
    choice: ProtocolChoice,
) -> SessionRecord
where
    S: Store + 'static,
    C: Connector,
{
    let started = Instant::now();
    let until = started + deadline;
    let record = SessionRecord::new(context.clone(), peer.clone());
    let late = |peer: String, context: ContextId| SessionError::Deadline {
        peer,
        context,
        deadline,
    };
    let mut transport = match timeout_at(until, connector.connect(&peer)).await {
        Ok(Ok(transport)) => transport,
        Ok(Err(e)) => {
            let error = SessionError::Connect {
                peer,
                context,
                source: Box::new(e),
            };
            return with_time(record, started, None).fail(Outcome::ConnectFailed, error);
        }
        Err(_) => {
            let record = with_time(record, started, None);
            return record.fail(Outcome::DeadlineExceeded, late(peer, context));
        }
    };
    let connected = Instant::now();
    let synced = timeout_at(until, manager.sync(&mut transport, &context, choice)).await;
    let mut record = with_time(record, started, Some(connected));
    record.transport = transport.stats();
    match synced {
        Ok(Ok(report)) => record.succeed(&report),
        Ok(Err(source)) => {
            let error = SessionError::Sync {
                peer,
                context,
                source,
            };
            record.fail(Outcome::Failed, error)
        }
        Err(_) => record.fail(Outcome::DeadlineExceeded, late(peer, context)),
    }
}

/// Fills in the phase timings: connect until `connected` (or until now when it
/// never connected), sync from then until now.
fn with_time(
    mut record: SessionRecord,
    started: Instant,
    connected: Option<Instant>,
) -> SessionRecord {
    let now = Instant::now();
    let connected_at = connected.unwrap_or(now);
    record.connect_time = connected_at - started;
    record.sync_time = now - connected_at;
    record
}
