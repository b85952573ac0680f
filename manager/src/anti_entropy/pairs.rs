//! What the last sessions with each (peer, context) pair did: the table behind a
//! node's status page.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use synctree_primitives::ContextId;

use crate::record::{Outcome, SessionRecord};

/// The latest state of one (peer, context) pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PairStatus {
    /// The peer, as the scheduler names it.
    pub peer: String,
    /// The context.
    #[serde(serialize_with = "context_str")]
    pub context: ContextId,
    /// When the last converged session ended, in milliseconds since the Unix epoch.
    pub last_success_ms: Option<u64>,
    /// When the last session of any outcome ended, in milliseconds since the Unix epoch.
    pub last_attempt_ms: u64,
    /// How the last session ended ([`Outcome::name`]).
    pub last_outcome: &'static str,
    /// Why the last session failed, if it did (peer text escaped).
    pub last_error: Option<String>,
    /// Sessions with this pair, every outcome.
    pub sessions: u64,
    /// Of those, sessions that failed or did not converge.
    pub failures: u64,
    /// Bytes sent to the peer for this context.
    pub bytes_sent: u64,
    /// Bytes received from the peer for this context.
    pub bytes_received: u64,
    /// Entries pulled from the peer.
    pub entries_pulled: u64,
    /// Entries pushed to the peer.
    pub entries_pushed: u64,
}

fn context_str<S: serde::Serializer>(context: &ContextId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(context.as_str())
}

impl PairStatus {
    pub(crate) fn new(record: &SessionRecord) -> Self {
        PairStatus {
            peer: record.peer.clone(),
            context: record.context.clone(),
            last_success_ms: None,
            last_attempt_ms: 0,
            last_outcome: record.outcome.name(),
            last_error: None,
            sessions: 0,
            failures: 0,
            bytes_sent: 0,
            bytes_received: 0,
            entries_pulled: 0,
            entries_pushed: 0,
        }
    }

    /// Folds in a session that ended at `now`.
    pub(crate) fn record(&mut self, record: &SessionRecord, now: SystemTime) {
        let now_ms = unix_ms(now);
        self.last_attempt_ms = now_ms;
        self.last_outcome = record.outcome.name();
        self.sessions += 1;
        self.bytes_sent += record.transport.bytes_sent;
        self.bytes_received += record.transport.bytes_received;
        self.entries_pulled += record.entries_pulled;
        self.entries_pushed += record.entries_pushed;
        if record.outcome == Outcome::Converged {
            self.last_success_ms = Some(now_ms);
            self.last_error = None;
        } else {
            self.failures += 1;
            self.last_error = record.error.as_ref().map(|e| {
                synctree_primitives::wire::escape_untrusted(
                    &synctree_primitives::error::error_chain(e.as_ref()),
                )
            });
        }
    }

    /// How long ago the pair last converged, seen from `now` (`None`: never).
    pub fn lag(&self, now: SystemTime) -> Option<Duration> {
        let last = self.last_success_ms?;
        Some(Duration::from_millis(unix_ms(now).saturating_sub(last)))
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
