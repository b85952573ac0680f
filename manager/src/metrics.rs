//! Metrics, recorded through the [`metrics`] facade: nothing is kept
//! unless a recorder is installed (the `synctree` binary installs a Prometheus
//! exporter: `synctree_cli::prometheus::install_prometheus`).
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | [`SESSIONS`] | counter | `protocol`, `outcome`, `peer` | initiated sessions that ended |
//! | [`SESSION_DURATION`] | histogram (s) | `protocol`, `outcome` | connect + sync time |
//! | [`SESSION_PHASE`] | histogram (s) | `phase` = `connect` / `sync` | time per phase |
//! | [`SESSION_ROUNDS`] | histogram | `protocol` | round trips of completed sessions |
//! | [`SESSION_BYTES`] | counter (B) | `direction` = `sent` / `received` | bytes, failed sessions included |
//! | [`SESSION_ENTRIES`] | counter | `direction` = `pulled` / `pushed` | entries moved |
//! | [`ATTEMPTED`] | counter | | anti-entropy sessions started |
//! | [`SUCCEEDED`] | counter | | anti-entropy sessions completed (diverged ones included) |
//! | [`DIVERGED`] | counter | | of those, sessions that did not converge (backoff kept) |
//! | [`FAILED`] | counter | `reason` = outcome | anti-entropy sessions failed |
//! | [`RUNNING`] | gauge | | anti-entropy sessions in progress |
//! | [`PEER_FAILURES`] | gauge | `peer` | failures in a row (0 after a success) |
//! | [`PEER_BACKOFF`] | gauge (s) | `peer` | current backoff of the peer |
//! | [`SERVED`] | counter | `protocol`, `outcome`, `peer` | streams answered as responder |
//! | [`SERVED_DURATION`] | histogram (s) | `protocol`, `outcome` | time from a served stream's first frame to its end |
//! | [`SERVED_ROUNDS`] | histogram | `protocol` | round trips of served sessions |
//! | [`SERVED_BYTES`] | counter (B) | `direction` = `sent` / `received` | bytes of served streams, failed ones included |
//! | [`SERVED_ENTRIES`] | counter | `direction` = `pulled` / `pushed` | entries a served session received / sent |
//! | [`ENTRIES_REFUSED`] | counter | `reason` = `clock_ahead` | received entries refused, initiated and served sessions |
//! | [`GC_REFUSED`] | counter | | received entries refused below the GC watermark (docs/PROTOCOL.md, "Tombstone GC") |
//! | [`GC_ADOPTED`] | counter | | local entries removed adopting a peer's state below its watermark |
//! | [`GC_PURGED`] | counter | | tombstones purged by sweeps |
//!
//! `outcome` is one of [`Outcome::name`]'s values; `protocol` is a protocol name,
//! `none` (roots matched) or `unknown` (failed before one was picked). `peer` is
//! the peer as the node names it: the node ID (or `ID@ADDR`) when authenticated,
//! else the IP address without the port, so the label's values stay as few as
//! the peers.

use ::metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use std::time::Duration;

use synctree_primitives::TransportStats;

use crate::error::ManagerError;
use crate::manager::Served;
use crate::record::{Outcome, PeerBackoff, SessionRecord};

/// Initiated sessions that ended, by protocol and outcome.
pub const SESSIONS: &str = "synctree_sessions_total";
/// Seconds from connecting to done, by protocol and outcome.
pub const SESSION_DURATION: &str = "synctree_session_duration_seconds";
/// Seconds spent in each phase (`connect`, `sync`).
pub const SESSION_PHASE: &str = "synctree_session_phase_seconds";
/// Round trips of completed sessions, handshake included.
pub const SESSION_ROUNDS: &str = "synctree_session_rounds";
/// Bytes moved by initiated sessions, by direction (`sent`, `received`).
pub const SESSION_BYTES: &str = "synctree_session_bytes_total";
/// Entries moved by initiated sessions, by direction (`pulled`, `pushed`).
pub const SESSION_ENTRIES: &str = "synctree_session_entries_total";
/// Anti-entropy sessions started.
pub const ATTEMPTED: &str = "synctree_anti_entropy_sessions_attempted_total";
/// Anti-entropy sessions that completed, diverged ones included.
pub const SUCCEEDED: &str = "synctree_anti_entropy_sessions_succeeded_total";
/// Anti-entropy sessions that completed without converging: counted in
/// [`SUCCEEDED`] too, but they keep the peer's backoff.
pub const DIVERGED: &str = "synctree_anti_entropy_sessions_diverged_total";
/// Anti-entropy sessions that failed, by reason.
pub const FAILED: &str = "synctree_anti_entropy_sessions_failed_total";
/// Anti-entropy sessions in progress.
pub const RUNNING: &str = "synctree_anti_entropy_sessions_running";
/// Failed sessions in a row, per peer.
pub const PEER_FAILURES: &str = "synctree_peer_consecutive_failures";
/// Current backoff in seconds, per peer.
pub const PEER_BACKOFF: &str = "synctree_peer_backoff_seconds";
/// Streams answered as responder, by protocol, outcome and peer.
pub const SERVED: &str = "synctree_served_sessions_total";
/// Seconds a served stream took, by protocol and outcome.
pub const SERVED_DURATION: &str = "synctree_served_session_duration_seconds";
/// Round trips of served sessions, by protocol.
pub const SERVED_ROUNDS: &str = "synctree_served_session_rounds";
/// Bytes moved by served streams, by direction (`sent`, `received`).
pub const SERVED_BYTES: &str = "synctree_served_bytes_total";
/// Entries moved by served sessions, by direction (`pulled`: received and
/// merged, `pushed`: sent).
pub const SERVED_ENTRIES: &str = "synctree_served_entries_total";

/// Received entries refused, by reason (`clock_ahead`: a version more than
/// `MAX_CLOCK_SKEW_MS` ahead of this node's clock).
pub const ENTRIES_REFUSED: &str = "synctree_entries_refused_total";
/// Received entries refused because they are older than the context's GC
/// watermark for a key this node holds nothing for.
pub const GC_REFUSED: &str = "synctree_gc_entries_refused_total";
/// Local entries removed while adopting a peer's settled state.
pub const GC_ADOPTED: &str = "synctree_gc_entries_adopted_away_total";
/// Tombstones purged by GC sweeps.
pub const GC_PURGED: &str = "synctree_gc_tombstones_purged_total";

/// The metrics of [`ALL`] that move only when a peer misbehaves (an honest
/// cluster, simulated or real, leaves them at zero).
pub const ON_MISBEHAVIOUR: [&str; 1] = [ENTRIES_REFUSED];

/// The metrics of [`ALL`] that move only with tombstone GC on
/// (`ManagerConfig::gc`), and then only once deletes are older than the horizon.
pub const WITH_GC: [&str; 3] = [GC_REFUSED, GC_ADOPTED, GC_PURGED];

/// Every metric this module records.
pub const ALL: [&str; 22] = [
    SESSIONS,
    SESSION_DURATION,
    SESSION_PHASE,
    SESSION_ROUNDS,
    SESSION_BYTES,
    SESSION_ENTRIES,
    ATTEMPTED,
    SUCCEEDED,
    DIVERGED,
    FAILED,
    RUNNING,
    PEER_FAILURES,
    PEER_BACKOFF,
    SERVED,
    SERVED_DURATION,
    SERVED_ROUNDS,
    SERVED_BYTES,
    SERVED_ENTRIES,
    ENTRIES_REFUSED,
    GC_REFUSED,
    GC_ADOPTED,
    GC_PURGED,
];

/// Registers units and descriptions of every metric with the installed recorder.
pub fn describe() {
    describe_counter!(SESSIONS, "initiated sessions that ended");
    describe_histogram!(
        SESSION_DURATION,
        Unit::Seconds,
        "connect + sync time of a session"
    );
    describe_histogram!(
        SESSION_PHASE,
        Unit::Seconds,
        "time spent in each session phase"
    );
    describe_histogram!(SESSION_ROUNDS, "round trips of completed sessions");
    describe_counter!(
        SESSION_BYTES,
        Unit::Bytes,
        "bytes moved by initiated sessions"
    );
    describe_counter!(SESSION_ENTRIES, "entries moved by initiated sessions");
    describe_counter!(ATTEMPTED, "anti-entropy sessions started");
    describe_counter!(SUCCEEDED, "anti-entropy sessions completed");
    describe_counter!(
        DIVERGED,
        "anti-entropy sessions completed without converging"
    );
    describe_counter!(FAILED, "anti-entropy sessions failed");
    describe_gauge!(RUNNING, "anti-entropy sessions in progress");
    describe_gauge!(PEER_FAILURES, "failed sessions in a row with the peer");
    describe_gauge!(PEER_BACKOFF, Unit::Seconds, "current backoff of the peer");
    describe_counter!(SERVED, "streams answered as responder");
    describe_histogram!(SERVED_DURATION, Unit::Seconds, "time of a served stream");
    describe_histogram!(SERVED_ROUNDS, "round trips of served sessions");
    describe_counter!(SERVED_BYTES, Unit::Bytes, "bytes moved by served streams");
    describe_counter!(SERVED_ENTRIES, "entries moved by served sessions");
    describe_counter!(ENTRIES_REFUSED, "received entries refused, by reason");
    describe_counter!(
        GC_REFUSED,
        "received entries refused below the GC watermark"
    );
    describe_counter!(
        GC_ADOPTED,
        "local entries removed adopting a peer's settled state"
    );
    describe_counter!(GC_PURGED, "tombstones purged by GC sweeps");
}

/// Records what GC did in a session: entries refused below the watermark, and
/// local entries adopted away.
pub fn record_gc(refused: u64, adopted: u64) {
    if refused > 0 {
        counter!(GC_REFUSED).increment(refused);
    }
    if adopted > 0 {
        counter!(GC_ADOPTED).increment(adopted);
    }
}

/// Records tombstones a sweep purged.
pub fn record_purged(count: u64) {
    if count > 0 {
        counter!(GC_PURGED).increment(count);
    }
}

/// Records received entries refused because their version ran ahead of this
/// node's clock.
pub fn record_refused_ahead(count: u64) {
    if count > 0 {
        counter!(ENTRIES_REFUSED, "reason" => "clock_ahead").increment(count);
    }
}

/// Records an ended initiated session.
pub fn record_session(record: &SessionRecord) {
    let (protocol, outcome) = (record.protocol_label(), record.outcome.name());
    let peer = peer_label(&record.peer);
    counter!(SESSIONS, "protocol" => protocol, "outcome" => outcome, "peer" => peer).increment(1);
    histogram!(SESSION_DURATION, "protocol" => protocol, "outcome" => outcome)
        .record(record.duration().as_secs_f64());
    histogram!(SESSION_PHASE, "phase" => "connect").record(record.connect_time.as_secs_f64());
    if record.outcome != Outcome::ConnectFailed {
        histogram!(SESSION_PHASE, "phase" => "sync").record(record.sync_time.as_secs_f64());
    }
    if record.outcome.is_complete() {
        histogram!(SESSION_ROUNDS, "protocol" => protocol).record(f64::from(record.rounds));
        counter!(SUCCEEDED).increment(1);
    } else {
        counter!(FAILED, "reason" => outcome).increment(1);
    }
    if record.outcome == Outcome::Diverged {
        counter!(DIVERGED).increment(1);
    }
    let t = &record.transport;
    counter!(SESSION_BYTES, "direction" => "sent").increment(t.bytes_sent);
    counter!(SESSION_BYTES, "direction" => "received").increment(t.bytes_received);
    counter!(SESSION_ENTRIES, "direction" => "pulled").increment(record.entries_pulled);
    counter!(SESSION_ENTRIES, "direction" => "pushed").increment(record.entries_pushed);
    record_refused_ahead(record.entries_refused_ahead);
    record_gc(record.entries_refused_gc, record.entries_adopted_away);
}

/// Records that an anti-entropy session started.
pub fn record_attempt() {
    counter!(ATTEMPTED).increment(1);
}

/// Records how many anti-entropy sessions are in progress.
pub fn record_running(sessions: usize) {
    gauge!(RUNNING).set(sessions as f64);
}

/// Records a peer's backoff state.
pub fn record_backoff(peer: &str, backoff: PeerBackoff) {
    gauge!(PEER_FAILURES, "peer" => peer.to_owned()).set(f64::from(backoff.failures));
    gauge!(PEER_BACKOFF, "peer" => peer.to_owned()).set(backoff.delay.as_secs_f64());
}

/// What a served stream moved, for [`record_served`].
#[derive(Clone, Copy, Debug)]
pub struct ServedStream<'a> {
    /// The peer (node ID when authenticated, else its address).
    pub peer: &'a str,
    /// What the transport moved, failed streams included.
    pub transport: TransportStats,
    /// From the first frame to the end.
    pub duration: Duration,
}

/// Records how an incoming stream was answered and what it moved.
pub fn record_served(outcome: &Result<Served, ManagerError>, stream: ServedStream<'_>) {
    let (protocol, label) = match outcome {
        Ok(Served::Session { stats, .. }) => (stats.protocol.name(), "session"),
        Ok(Served::HandshakeOnly { .. }) => ("none", "handshake_only"),
        Ok(Served::Listed { .. }) => ("none", "listed"),
        Err(ManagerError::Rejected { .. }) => ("unknown", "rejected"),
        Err(_) => ("unknown", "failed"),
    };
    let peer = peer_label(stream.peer);
    counter!(SERVED, "protocol" => protocol, "outcome" => label, "peer" => peer).increment(1);
    histogram!(SERVED_DURATION, "protocol" => protocol, "outcome" => label)
        .record(stream.duration.as_secs_f64());
    let t = stream.transport;
    counter!(SERVED_BYTES, "direction" => "sent").increment(t.bytes_sent);
    counter!(SERVED_BYTES, "direction" => "received").increment(t.bytes_received);
    if let Ok(Served::Session { stats, .. }) = outcome {
        record_refused_ahead(stats.entries_refused_ahead);
        record_gc(stats.entries_refused_gc, stats.entries_adopted_away);
        histogram!(SERVED_ROUNDS, "protocol" => protocol).record(f64::from(stats.rounds));
        counter!(SERVED_ENTRIES, "direction" => "pulled").increment(stats.entries_pulled);
        counter!(SERVED_ENTRIES, "direction" => "pushed").increment(stats.entries_pushed);
    }
}

/// The `peer` label: an address loses its port (a new one per connection), any
/// other name (a node ID, `ID@ADDR`) is kept.
fn peer_label(peer: &str) -> String {
    match peer.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => peer.to_owned(),
    }
}

/// Records a served stream ended to give its slot to a newcomer.
pub fn record_evicted(peer: &str) {
    let peer = peer_label(peer);
    counter!(SERVED, "protocol" => "unknown", "outcome" => "evicted", "peer" => peer).increment(1);
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::{CompositeKey, MetricKind};
    use synctree_primitives::{ContextId, ProtocolError, ProtocolKind};

    use super::*;

    type Snapshot = Vec<(CompositeKey, DebugValue)>;

    fn recorded(f: impl FnOnce()) -> Snapshot {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, f);
        let values = snapshotter.snapshot().into_vec();
        values.into_iter().map(|(k, _, _, v)| (k, v)).collect()
    }

    /// The value of `name` with exactly `labels`.
    fn value<'a>(snapshot: &'a Snapshot, name: &str, labels: &[(&str, &str)]) -> &'a DebugValue {
        let found = snapshot.iter().find(|(k, _)| {
            let key = k.key();
            let mut have: Vec<_> = key.labels().map(|l| (l.key(), l.value())).collect();
            let mut want = labels.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            key.name() == name && have == want
        });
        &found
            .unwrap_or_else(|| panic!("{name} {labels:?} not recorded: {snapshot:#?}"))
            .1
    }

    fn session(outcome: Outcome) -> SessionRecord {
        SessionRecord {
            context: ContextId::new("c").unwrap(),
            peer: "peer-1".into(),
            outcome,
            protocol: outcome.is_success().then_some(ProtocolKind::HashComparison),
            rounds: 3,
            transport: TransportStats {
                messages_sent: 4,
                messages_received: 4,
                bytes_sent: 100,
                bytes_received: 250,
            },
            entries_pulled: 7,
            entries_pushed: 2,
            entries_refused_ahead: 0,
            entries_refused_gc: 0,
            entries_adopted_away: 0,
            connect_time: Duration::from_millis(20),
            sync_time: Duration::from_millis(480),
            error: None,
        }
    }

    fn stream(peer: &str) -> ServedStream<'_> {
        ServedStream {
            peer,
            transport: TransportStats {
                messages_sent: 2,
                messages_received: 2,
                bytes_sent: 30,
                bytes_received: 40,
            },
            duration: Duration::from_millis(12),
        }
    }

    #[test]
    fn a_session_moves_every_per_session_metric() {
        let snapshot = recorded(|| {
            record_session(&session(Outcome::Converged));
            record_session(&session(Outcome::ConnectFailed));
        });
        let hc = [("protocol", "hash-comparison"), ("outcome", "converged")];
        let by_peer = [hc[0], hc[1], ("peer", "peer-1")];
        assert_eq!(
            value(&snapshot, SESSIONS, &by_peer),
            &DebugValue::Counter(1)
        );
        let failed = [
            ("protocol", "unknown"),
            ("outcome", "connect_failed"),
            ("peer", "peer-1"),
        ];
        assert_eq!(value(&snapshot, SESSIONS, &failed), &DebugValue::Counter(1));
        let DebugValue::Histogram(d) = value(&snapshot, SESSION_DURATION, &hc) else {
            panic!()
        };
        assert_eq!(d.iter().map(|v| v.0).collect::<Vec<_>>(), [0.5]);
        let DebugValue::Histogram(sync) = value(&snapshot, SESSION_PHASE, &[("phase", "sync")])
        else {
            panic!()
        };
        assert_eq!(sync.len(), 1, "no sync phase without a connection");
        let DebugValue::Histogram(connect) =
            value(&snapshot, SESSION_PHASE, &[("phase", "connect")])
        else {
            panic!()
        };
        assert_eq!(connect.len(), 2);
        let rounds = value(
            &snapshot,
            SESSION_ROUNDS,
            &[("protocol", "hash-comparison")],
        );
        assert_eq!(rounds, &DebugValue::Histogram(vec![3.0.into()]));
        assert_eq!(
            value(&snapshot, SESSION_BYTES, &[("direction", "sent")]),
            &DebugValue::Counter(200)
        );
        assert_eq!(
            value(&snapshot, SESSION_BYTES, &[("direction", "received")]),
            &DebugValue::Counter(500)
        );
        assert_eq!(
            value(&snapshot, SESSION_ENTRIES, &[("direction", "pulled")]),
            &DebugValue::Counter(14)
        );
        assert_eq!(
            value(&snapshot, SESSION_ENTRIES, &[("direction", "pushed")]),
            &DebugValue::Counter(4)
        );
        assert_eq!(value(&snapshot, SUCCEEDED, &[]), &DebugValue::Counter(1));
        assert_eq!(
            value(&snapshot, FAILED, &[("reason", "connect_failed")]),
            &DebugValue::Counter(1)
        );
    }

    #[test]
    fn node_metrics_track_attempts_running_sessions_backoff_and_served_streams() {
        let snapshot = recorded(|| {
            record_attempt();
            record_attempt();
            record_running(3);
            record_backoff(
                "peer-1",
                PeerBackoff {
                    failures: 3,
                    delay: Duration::from_secs(4),
                },
            );
            record_served(
                &Ok(Served::HandshakeOnly {
                    context: ContextId::new("c").unwrap(),
                }),
                stream("10.0.0.1:4711"),
            );
            let refused = ManagerError::Rejected {
                peer: "x".into(),
                source: ProtocolError::UnknownInit("junk"),
            };
            record_served(&Err(refused), stream("10.0.0.1:4712"));
        });
        assert_eq!(value(&snapshot, ATTEMPTED, &[]), &DebugValue::Counter(2));
        assert_eq!(
            value(&snapshot, RUNNING, &[]),
            &DebugValue::Gauge(3.0.into())
        );
        assert_eq!(
            value(&snapshot, PEER_FAILURES, &[("peer", "peer-1")]),
            &DebugValue::Gauge(3.0.into())
        );
        assert_eq!(
            value(&snapshot, PEER_BACKOFF, &[("peer", "peer-1")]),
            &DebugValue::Gauge(4.0.into())
        );
        let ip = ("peer", "10.0.0.1");
        let quiet = [("protocol", "none"), ("outcome", "handshake_only"), ip];
        assert_eq!(value(&snapshot, SERVED, &quiet), &DebugValue::Counter(1));
        let refused = [("protocol", "unknown"), ("outcome", "rejected"), ip];
        assert_eq!(value(&snapshot, SERVED, &refused), &DebugValue::Counter(1));
        assert_eq!(
            value(&snapshot, SERVED_BYTES, &[("direction", "received")]),
            &DebugValue::Counter(2 * 40)
        );
        assert!(snapshot.iter().all(|(k, _)| ALL.contains(&k.key().name())));
        assert!(snapshot.iter().any(|(k, _)| k.kind() == MetricKind::Gauge));
    }

    #[test]
    fn refused_entries_of_a_served_session_are_counted() {
        let mut stats = synctree_primitives::SyncStats::new(
            ProtocolKind::HashComparison,
            synctree_primitives::Role::Responder,
            synctree_primitives::Hash::ZERO,
        );
        stats.entries_refused_ahead = 3;
        stats.entries_refused_gc = 4;
        let context = ContextId::new("c").unwrap();
        stats.rounds = 2;
        stats.entries_pulled = 5;
        let peer = "ABC@127.0.0.1:7000";
        let served = Ok(Served::Session { context, stats });
        let snapshot = recorded(|| record_served(&served, stream(peer)));
        let session = [("protocol", "hash-comparison"), ("outcome", "session")];
        let by_peer = [session[0], session[1], ("peer", peer)];
        assert_eq!(value(&snapshot, SERVED, &by_peer), &DebugValue::Counter(1));
        let DebugValue::Histogram(d) = value(&snapshot, SERVED_DURATION, &session) else {
            panic!()
        };
        assert_eq!(d.len(), 1);
        let rounds = value(&snapshot, SERVED_ROUNDS, &[session[0]]);
        assert_eq!(rounds, &DebugValue::Histogram(vec![2.0.into()]));
        assert_eq!(
            value(&snapshot, SERVED_ENTRIES, &[("direction", "pulled")]),
            &DebugValue::Counter(5)
        );
        let ahead = [("reason", "clock_ahead")];
        assert_eq!(
            value(&snapshot, ENTRIES_REFUSED, &ahead),
            &DebugValue::Counter(3)
        );
        assert_eq!(value(&snapshot, GC_REFUSED, &[]), &DebugValue::Counter(4));
    }
}
