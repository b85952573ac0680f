//! The benchmark matrix: every protocol (and negentropy) on every cell of
//! n × d × placement, snapshot throughput against a raw TCP copy, and tree
//! maintenance. Rows are handed to a sink as they complete; errors are recorded in
//! their row and the run goes on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use synctree_primitives::Hash;
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;
use tokio::runtime::Runtime;

use crate::context;
use crate::error::{BenchError, chain};
use crate::floor::{self, HeapUse};
use crate::maintenance::{Backend, batches, per_sec, time_upserts};
use crate::meter::HeapMark;
use crate::reference::{loopback_pair, negentropy, tcp_copy};
use crate::riblt_ref;
use crate::rows::{MaintenanceRow, Row, SessionRow, ThroughputRow, mib_s, ms};
use crate::session::{self, Outcome, Protocol};
use crate::tally::describe;
use crate::workload::{Base, Placement, Workload, converged};
use crate::writes::{self, WritesPlan};

/// What a matrix run covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixConfig {
    /// Shared entries per cell.
    pub ns: Vec<u64>,
    /// Differences per cell (d = 0 runs once, with no placement).
    pub ds: Vec<u64>,
    /// Placements of the differences.
    pub placements: Vec<Placement>,
    /// Protocols per cell.
    pub protocols: Vec<Protocol>,
    /// Also run negentropy on every cell.
    pub negentropy: bool,
    /// Also run the `riblt` crate from scratch on every cell with d > 0.
    pub riblt: bool,
    /// Tally bytes by message kind in every session (costs a little time).
    pub breakdown: bool,
    /// Snapshot sizes measured against a raw TCP copy.
    pub throughput_ns: Vec<u64>,
    /// Tree maintenance runs.
    pub maintenance: MaintenancePlan,
    /// The store write path section.
    pub writes: WritesPlan,
}

/// Upsert timings: a store preloaded with `preload` entries takes `upserts` new
/// ones in batches of each size in `batches`, on each backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaintenancePlan {
    /// Entries loaded (untimed) first.
    pub preload: u64,
    /// Entries upserted (timed).
    pub upserts: u64,
    /// Batch sizes.
    pub batches: Vec<usize>,
    /// Backends.
    pub backends: Vec<Backend>,
}

impl MatrixConfig {
    /// The full matrix: n ∈ {10^4, 10^5, 10^6}, d ∈ {0, 1, 100, 10^4}.
    pub fn full() -> Self {
        MatrixConfig {
            ns: vec![10_000, 100_000, 1_000_000],
            ds: vec![0, 1, 100, 10_000],
            placements: vec![Placement::Scattered, Placement::Clustered],
            protocols: Protocol::ALL.to_vec(),
            negentropy: true,
            riblt: true,
            breakdown: false,
            throughput_ns: vec![100_000, 1_000_000],
            maintenance: MaintenancePlan {
                preload: 100_000,
                upserts: 100_000,
                batches: vec![1_000, 100_000],
                backends: vec![Backend::Memory, Backend::Redb],
            },
            writes: WritesPlan::full(),
        }
    }

    /// The CI subset: n = 10^4, d ∈ {0, 1, 100}, everything else small; well under
    /// a minute in a debug build.
    pub fn quick() -> Self {
        MatrixConfig {
            ns: vec![10_000],
            ds: vec![0, 1, 100],
            throughput_ns: vec![10_000],
            maintenance: MaintenancePlan {
                preload: 1_000,
                upserts: 5_000,
                batches: vec![1_000, 5_000],
                backends: vec![Backend::Memory, Backend::Redb],
            },
            writes: WritesPlan::quick(),
            ..MatrixConfig::full()
        }
    }
}

/// Runs the matrix, handing each row to `sink` as soon as it is measured, and
/// returns every row. Only a runtime that cannot start is an error; anything else
/// that fails is recorded in its row (see [`Row::failed`]).
pub fn run(config: &MatrixConfig, sink: &mut dyn FnMut(&Row)) -> Result<Vec<Row>, BenchError> {
    // One thread: both sides of a session share one core, as "per core" asks.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    let mut emit = |row: Row| {
        sink(&row);
        rows.push(row);
    };
    for &n in &config.ns {
        let base = Base::new(n);
        for w in workloads(config, &base) {
            for &protocol in &config.protocols {
                emit(Row::Session(session_row(
                    &rt,
                    &w,
                    protocol,
                    config.breakdown,
                )));
            }
            if config.negentropy {
                emit(Row::Session(negentropy_row(&w)));
            }
            if config.riblt && w.d > 0 {
                emit(Row::Session(riblt_row(&w)));
            }
        }
    }
    for &n in &config.throughput_ns {
        emit(Row::Throughput(throughput_row(&rt, &Base::new(n))));
    }
    for row in maintenance_rows(&config.maintenance) {
        emit(Row::Maintenance(row));
    }
    for row in writes::rows(&config.writes) {
        emit(Row::Writes(row));
    }
    Ok(rows)
}

/// The cells of one n: d = 0 once, every other d in every placement.
fn workloads(config: &MatrixConfig, base: &Arc<Base>) -> Vec<Workload> {
    let mut out = Vec::new();
    for &d in &config.ds {
        let placements = if d == 0 {
            &[Placement::Scattered][..]
        } else {
            &config.placements[..]
        };
        for &placement in placements {
            out.push(Workload::new(Arc::clone(base), d, placement));
        }
    }
    out
}

fn cell(w: &Workload, protocol: &'static str) -> SessionRow {
    SessionRow {
        n: w.n(),
        d: w.d,
        placement: if w.d == 0 { "-" } else { w.placement.name() },
        protocol,
        payload: w.payload_bytes(),
        ..SessionRow::default()
    }
}

/// Fills in the bytes-derived columns.
fn with_bytes(mut row: SessionRow, bytes: u64, comparable: u64) -> SessionRow {
    row.bytes = bytes;
    row.comparable_bytes = comparable;
    if row.d > 0 {
        row.overhead_per_diff = Some((comparable as f64 - row.payload as f64) / row.d as f64);
    }
    row
}

fn with_time(mut row: SessionRow, wall: Duration, cpu: Option<Duration>) -> SessionRow {
    row.wall_ms = ms(wall);
    row.cpu_ms = cpu.map(ms);
    if row.d > 0 {
        let secs = cpu.filter(|c| !c.is_zero()).unwrap_or(wall).as_secs_f64();
        row.diffs_per_sec = Some(row.d as f64 / secs.max(f64::MIN_POSITIVE));
    }
    row
}

fn session_row(rt: &Runtime, w: &Workload, protocol: Protocol, breakdown: bool) -> SessionRow {
    let row = cell(w, protocol.name());
    match measure_session(rt, w, protocol, breakdown) {
        Ok((out, peak, both)) => {
            let mut row = with_time(with_bytes(row, out.bytes, out.bytes), out.wall, out.cpu);
            row.selected = out.selected;
            row.messages = out.messages;
            row.rounds = out.rounds;
            row.peak_heap_bytes = peak;
            row.converged = out.converged && both;
            row.breakdown = out.breakdown.as_ref().map(describe);
            row
        }
        Err(e) => failed(row, &e),
    }
}

fn failed(mut row: SessionRow, e: &BenchError) -> SessionRow {
    row.error = Some(chain(e));
    row
}

/// Builds a fresh pair, runs one session, and checks both replicas hold n + d.
fn measure_session(
    rt: &Runtime,
    w: &Workload,
    protocol: Protocol,
    breakdown: bool,
) -> Result<(Outcome, Option<u64>, bool), BenchError> {
    let (a, b) = w.memory_pair()?;
    let mark = HeapMark::now();
    let out = rt.block_on(async {
        match breakdown {
            true => session::run_with_breakdown(protocol, &a, &b).await,
            false => session::run(protocol, &a, &b).await,
        }
    })?;
    let peak = mark.peak_since();
    let both = converged(&*a, &*b, &context(), w.n() + w.d)?;
    Ok((out, peak, both))
}

fn negentropy_row(w: &Workload) -> SessionRow {
    let row = cell(w, "negentropy");
    let (a, b) = w.items();
    let mark = HeapMark::now();
    match negentropy(&a, &b) {
        Ok(out) => {
            let peak = mark.peak_since();
            let key_hashes = |side: &[synctree_primitives::Entry]| -> HashSet<Hash> {
                side.iter().map(|e| e.key_hash()).collect()
            };
            let exact = out.have == key_hashes(&w.only_a) && out.need == key_hashes(&w.only_b);
            let comparable = out.bytes + row.payload;
            let mut row = with_time(with_bytes(row, out.bytes, comparable), out.wall, out.cpu);
            row.messages = out.messages;
            row.rounds = out.rounds;
            row.peak_heap_bytes = peak;
            row.converged = exact;
            row
        }
        Err(e) => failed(row, &e),
    }
}

/// The `riblt` crate from scratch: both sides encode their whole set, the
/// symbols' bytes (no framing) plus the entries as the comparable total.
fn riblt_row(w: &Workload) -> SessionRow {
    let row = cell(w, "riblt-crate");
    let (a, b) = w.sketch_items();
    let mark = HeapMark::now();
    let out = riblt_ref::from_scratch(&a, &b);
    let peak = mark.peak_since();
    let comparable = out.bytes + row.payload;
    let mut row = with_time(with_bytes(row, out.bytes, comparable), out.wall, out.cpu);
    row.messages = 0;
    row.rounds = 0;
    row.peak_heap_bytes = peak;
    row.converged = out.exact;
    row.selected = Some(format!("{} symbols", out.symbols));
    row
}

fn throughput_row(rt: &Runtime, base: &Arc<Base>) -> ThroughputRow {
    let mut row = ThroughputRow {
        n: base.len(),
        ..ThroughputRow::default()
    };
    if let Err(e) = measure_throughput(rt, base, &mut row) {
        row.error = Some(chain(&e));
    }
    row
}

/// Snapshot of `base` into an empty store over the memory pipe, then over
/// loopback TCP, then a raw TCP copy of as many bytes.
fn measure_throughput(
    rt: &Runtime,
    base: &Arc<Base>,
    row: &mut ThroughputRow,
) -> Result<(), BenchError> {
    let before_source = HeapUse::now();
    let source = Arc::new(MemoryStore::new());
    base.fill(&*source)?;
    let source_heap = before_source.kept();
    let ctx = context();
    let fresh = || Arc::new(MemoryStore::new());
    let target = fresh();
    let over_memory = rt.block_on(session::run(Protocol::Snapshot, &target, &source))?;
    let memory_ok = converged(&*target, &*source, &ctx, base.len())?;
    drop(target);
    let target = fresh();
    let (before_target, cpu) = (HeapUse::now(), floor::process_cpu());
    let over_tcp = rt.block_on(async {
        let (client, server) = loopback_pair().await?;
        let (mut ta, mut tb) = (FramedTransport::tcp(client)?, FramedTransport::tcp(server)?);
        session::run_over(Protocol::Snapshot, &target, &source, &mut ta, &mut tb).await
    })?;
    row.snapshot_tcp_cpu_ms = floor::process_cpu_since(cpu).map(ms);
    let target_heap = before_target.kept();
    row.peak_heap_bytes = source_heap.zip(before_target.peak()).map(|(s, p)| s + p);
    row.stores_heap_bytes = source_heap.zip(target_heap).map(|(s, t)| s + t);
    let tcp_ok = converged(&*target, &*source, &ctx, base.len())?;
    let raw = rt.block_on(tcp_copy(over_tcp.bytes))?;
    row.sha256_floor_ms = floor::sha256_floor(base).map(ms);
    row.bytes = over_tcp.bytes;
    row.snapshot_memory_ms = ms(over_memory.wall);
    row.snapshot_tcp_ms = ms(over_tcp.wall);
    row.raw_tcp_ms = ms(raw);
    row.snapshot_tcp_mib_s = mib_s(row.bytes, row.snapshot_tcp_ms);
    row.raw_tcp_mib_s = mib_s(row.bytes, row.raw_tcp_ms);
    row.ratio = row.snapshot_tcp_mib_s / row.raw_tcp_mib_s;
    row.converged = memory_ok && tcp_ok && over_memory.converged && over_tcp.converged;
    Ok(())
}

fn maintenance_rows(plan: &MaintenancePlan) -> Vec<MaintenanceRow> {
    let base = Base::new(plan.preload);
    let mut rows = Vec::new();
    for &backend in &plan.backends {
        for &batch in &plan.batches {
            let mut row = MaintenanceRow {
                backend: backend.name(),
                preload: plan.preload,
                upserts: plan.upserts,
                batch,
                ..MaintenanceRow::default()
            };
            match upsert_once(backend, &base, plan.upserts, batch) {
                Ok((wall, cpu)) => {
                    row.wall_ms = ms(wall);
                    row.cpu_ms = cpu.map(ms);
                    let spent = cpu.filter(|c| !c.is_zero()).unwrap_or(wall);
                    row.upserts_per_sec = per_sec(plan.upserts, spent);
                }
                Err(e) => row.error = Some(chain(&e)),
            }
            rows.push(row);
        }
    }
    rows
}

fn upsert_once(
    backend: Backend,
    base: &Base,
    upserts: u64,
    batch: usize,
) -> Result<(Duration, Option<Duration>), BenchError> {
    let dir = tempfile::tempdir()?;
    let store = backend.open(dir.path())?;
    time_upserts(&*store, base, batches(base.len(), upserts, batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_matrix_converges_everywhere() {
        let config = MatrixConfig {
            ns: vec![800],
            ds: vec![0, 9],
            throughput_ns: vec![800],
            maintenance: MaintenancePlan {
                preload: 100,
                upserts: 300,
                batches: vec![100],
                backends: vec![Backend::Memory, Backend::Redb],
            },
            writes: WritesPlan::none(),
            ..MatrixConfig::full()
        };
        let mut seen = 0;
        let rows = run(&config, &mut |_| seen += 1).unwrap();
        // (1 + 2 cells) × (5 protocols + negentropy) + 2 riblt-crate rows
        // + 1 throughput + 2 maintenance.
        assert_eq!((rows.len(), seen), (23, 23));
        let failures: Vec<&Row> = rows.iter().filter(|r| r.failed()).collect();
        assert!(failures.is_empty(), "{failures:#?}");
        let Some(Row::Session(neg)) = rows
            .iter()
            .find(|r| matches!(r, Row::Session(s) if s.protocol == "negentropy" && s.d == 9))
        else {
            panic!("no negentropy row");
        };
        assert_eq!(neg.comparable_bytes, neg.bytes + neg.payload);
    }
}
