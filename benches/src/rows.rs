//! The rows a matrix run reports, one JSON object each with `--json`.

use serde::Serialize;

/// One reported measurement; serialized with a `kind` tag.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Row {
    /// One protocol (or negentropy) on one cell.
    Session(SessionRow),
    /// Snapshot against the raw loopback TCP copy.
    Throughput(ThroughputRow),
    /// Upserts into a store.
    Maintenance(MaintenanceRow),
    /// The store write path ([`crate::writes`]).
    Writes(crate::writes::WritesRow),
    /// A target, met or not.
    Target(TargetRow),
}

impl Row {
    /// True when the row records an error or a non-converged session.
    pub fn failed(&self) -> bool {
        match self {
            Row::Session(r) => r.error.is_some() || !r.converged,
            Row::Throughput(r) => r.error.is_some() || !r.converged,
            Row::Maintenance(r) => r.error.is_some(),
            Row::Writes(r) => r.error.is_some(),
            Row::Target(_) => false,
        }
    }
}

/// A session between two replicas of `n + d` entries (or negentropy on the same
/// sets).
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct SessionRow {
    /// Shared entries.
    pub n: u64,
    /// Differing entries.
    pub d: u64,
    /// `scattered`, `clustered`, or `-` when d = 0.
    pub placement: &'static str,
    /// `hash-comparison`, `level-wise`, `snapshot`, `auto` or `negentropy`.
    pub protocol: &'static str,
    /// Auto: what the manager picked, and why.
    pub selected: Option<String>,
    /// Bytes both ways, framing included (negentropy: ids only, 4-byte prefix
    /// per message).
    pub bytes: u64,
    /// Bytes to compare across rows: ours as measured; negentropy's plus P, since
    /// it would still have to move the entries.
    pub comparable_bytes: u64,
    /// P: encoded size of the differing entries.
    pub payload: u64,
    /// (comparable bytes − P) / d; `None` when d = 0.
    pub overhead_per_diff: Option<f64>,
    /// Messages both ways.
    pub messages: u64,
    /// Round trips (auto: handshake included).
    pub rounds: u32,
    /// Wall time of the session, ms.
    pub wall_ms: f64,
    /// On-CPU time of the session's one thread (both sides), ms.
    pub cpu_ms: Option<f64>,
    /// d per second of CPU time (else of wall time): both sides share one core.
    pub diffs_per_sec: Option<f64>,
    /// Peak heap bytes above the start of the session, both sides together.
    pub peak_heap_bytes: Option<u64>,
    /// Both replicas hold the merged set with equal roots (negentropy: found
    /// exactly the differing ids).
    pub converged: bool,
    /// With `--breakdown`: bytes by message kind, largest first.
    pub breakdown: Option<String>,
    /// What failed, if anything did.
    pub error: Option<String>,
}

/// Snapshot of `n` entries into an empty replica, against a raw TCP copy of the
/// same bytes.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct ThroughputRow {
    /// Entries in the snapshot.
    pub n: u64,
    /// Bytes the snapshot moved both ways, framing included.
    pub bytes: u64,
    /// Snapshot over the in-memory pipe, ms.
    pub snapshot_memory_ms: f64,
    /// Snapshot over loopback TCP, ms.
    pub snapshot_tcp_ms: f64,
    /// Raw copy of `bytes` over loopback TCP, ms.
    pub raw_tcp_ms: f64,
    /// Snapshot over TCP, MiB/s.
    pub snapshot_tcp_mib_s: f64,
    /// Raw TCP copy, MiB/s.
    pub raw_tcp_mib_s: f64,
    /// Snapshot over TCP throughput / raw TCP throughput.
    pub ratio: f64,
    /// CPU time of the snapshot over TCP, every thread of the process (both
    /// sides and the initiator's digest thread), ms.
    pub snapshot_tcp_cpu_ms: Option<f64>,
    /// SHA-256 floor: one core's CPU time to hash every entry once (key hash
    /// and digest), ms.
    pub sha256_floor_ms: Option<f64>,
    /// Peak heap during the snapshot over TCP, above the heap before the
    /// source store was filled (so the source store included).
    pub peak_heap_bytes: Option<u64>,
    /// Heap the finished source and target stores hold together.
    pub stores_heap_bytes: Option<u64>,
    /// The initiator ended with the responder's root and `n` entries.
    pub converged: bool,
    /// What failed, if anything did.
    pub error: Option<String>,
}

/// Upserts of new keys into a store already holding `preload` entries.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct MaintenanceRow {
    /// `memory` or `redb`.
    pub backend: &'static str,
    /// Entries in the store before the timed upserts.
    pub preload: u64,
    /// Upserts timed.
    pub upserts: u64,
    /// Entries per `apply` call.
    pub batch: usize,
    /// Wall time of all the batches, ms.
    pub wall_ms: f64,
    /// On-CPU time of all the batches, ms.
    pub cpu_ms: Option<f64>,
    /// Upserts per second of CPU time (else of wall time), one thread.
    pub upserts_per_sec: f64,
    /// What failed, if anything did.
    pub error: Option<String>,
}

/// One of the targets in benches/RESULTS.md, judged from the rows of this run.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct TargetRow {
    /// The target, as worded in the issue.
    pub target: &'static str,
    /// `Some(true)` met, `Some(false)` not met, `None` not measured in this run.
    pub met: Option<bool>,
    /// The numbers behind the verdict.
    pub detail: String,
}

/// Milliseconds of a duration.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// MiB per second for `bytes` in `ms` milliseconds.
pub fn mib_s(bytes: u64, ms: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / (ms / 1000.0).max(f64::MIN_POSITIVE)
}
