//! The store write path: upserts/s with 1 and 8 concurrent writers (RedbStore's
//! group commit), MemoryStore per core, and MemoryStore's heap bytes per entry
//! against the entry's encoded size.

use std::time::{Duration, Instant};

use peak_alloc::PeakAlloc;
use serde::Serialize;
use synctree_primitives::{Entry, Store};
use synctree_store::MemoryStore;

use crate::context;
use crate::error::BenchError;
use crate::maintenance::{Backend, batches, per_sec};
use crate::rows::{Row, TargetRow, ms};
use crate::workload::{Base, VALUE_LEN, entry};

/// What the writes section measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritesPlan {
    /// Entries in the store before the timed upserts.
    pub preload: u64,
    /// New keys each writer upserts (timed).
    pub per_writer: u64,
    /// Entries per `apply` call.
    pub batch: usize,
    /// (backend, concurrent writers) runs.
    pub runs: Vec<(Backend, usize)>,
    /// Sizes at which MemoryStore's bytes per entry are counted.
    pub memory_entries: Vec<u64>,
}

impl WritesPlan {
    /// The full plan: 10^5 preloaded, 1k batches, each backend with 1 and 8
    /// writers; bytes per entry at 10^5 and 10^6 entries.
    pub fn full() -> Self {
        WritesPlan {
            preload: 100_000,
            per_writer: 25_000,
            batch: 1_000,
            runs: vec![
                (Backend::Redb, 1),
                (Backend::Redb, 8),
                (Backend::Memory, 1),
                (Backend::Memory, 8),
            ],
            memory_entries: vec![100_000, 1_000_000],
        }
    }

    /// The CI subset.
    pub fn quick() -> Self {
        WritesPlan {
            preload: 1_000,
            per_writer: 2_000,
            memory_entries: vec![5_000],
            ..WritesPlan::full()
        }
    }

    /// Nothing.
    pub fn none() -> Self {
        WritesPlan {
            runs: Vec::new(),
            memory_entries: Vec::new(),
            ..WritesPlan::quick()
        }
    }
}

/// One writes measurement: a rate, or MemoryStore's footprint.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct WritesRow {
    /// `memory` or `redb`.
    pub backend: &'static str,
    /// `upserts` or `footprint`.
    pub measure: &'static str,
    /// Concurrent writer threads (footprint: 0).
    pub writers: usize,
    /// Entries per `apply` call.
    pub batch: usize,
    /// Entries held before the timed upserts (footprint: entries held).
    pub preload: u64,
    /// Upserts timed, all writers together.
    pub upserts: u64,
    /// Wall time, ms.
    pub wall_ms: f64,
    /// On-CPU time of the whole process (every writer thread), ms.
    pub cpu_ms: Option<f64>,
    /// Upserts per second of wall time.
    pub per_sec_wall: f64,
    /// Upserts per second of process CPU time (per core).
    pub per_sec_cpu: Option<f64>,
    /// Footprint: heap bytes per entry held.
    pub bytes_per_entry: Option<f64>,
    /// Footprint: mean [`Entry::encoded_len`] of the entries.
    pub encoded_per_entry: Option<f64>,
    /// What failed, if anything did.
    pub error: Option<String>,
}

/// The section's table header.
pub const HEADER: &str = "## Store writes (new keys, 100-byte values)\n\n\
wall: all writers together (redb commits durably: fsync, noisy on a shared disk); \
cpu: process CPU time of every writer thread. footprint: heap bytes allocated per \
entry held (counting allocator) against the entry's encoded size.\n\n\
| backend | measure | writers | batch | preload | upserts | wall ms | cpu ms | upserts/s wall | upserts/s cpu | B/entry | encoded B/entry |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|";

/// Every row of `plan`.
pub fn rows(plan: &WritesPlan) -> Vec<WritesRow> {
    let mut rows: Vec<WritesRow> = plan
        .runs
        .iter()
        .map(|&(backend, writers)| upsert_row(plan, backend, writers))
        .collect();
    rows.extend(plan.memory_entries.iter().map(|&n| footprint_row(n)));
    rows
}

fn upsert_row(plan: &WritesPlan, backend: Backend, writers: usize) -> WritesRow {
    let upserts = plan.per_writer * writers as u64;
    let mut row = WritesRow {
        backend: backend.name(),
        measure: "upserts",
        writers,
        batch: plan.batch,
        preload: plan.preload,
        upserts,
        ..WritesRow::default()
    };
    match time_writers(plan, backend, writers) {
        Ok((wall, cpu)) => {
            row.wall_ms = ms(wall);
            row.cpu_ms = cpu.map(ms);
            row.per_sec_wall = per_sec(upserts, wall);
            row.per_sec_cpu = cpu.map(|c| per_sec(upserts, c));
        }
        Err(e) => row.error = Some(crate::error::chain(&e)),
    }
    row
}

/// Preloads a fresh store, then times `writers` threads each applying its own
/// new keys in batches. Returns wall time and process CPU time.
fn time_writers(
    plan: &WritesPlan,
    backend: Backend,
    writers: usize,
) -> Result<(Duration, Option<Duration>), BenchError> {
    let dir = tempfile::tempdir()?;
    let store = backend.open(dir.path())?;
    Base::new(plan.preload).fill(&*store)?;
    let work: Vec<Vec<Vec<Entry>>> = (0..writers as u64)
        .map(|w| {
            batches(
                plan.preload + w * plan.per_writer,
                plan.per_writer,
                plan.batch,
            )
        })
        .collect();
    let cpu_before = process_cpu();
    let started = Instant::now();
    let applied = std::thread::scope(|s| {
        let handles: Vec<_> = work
            .into_iter()
            .map(|mine| {
                let store = &*store;
                s.spawn(move || apply_all(store, mine))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(panicked())))
            .collect::<Result<Vec<()>, BenchError>>()
    });
    let wall = started.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    applied?;
    let held = store.summary(&context())?.entry_count;
    let want = plan.preload + plan.per_writer * writers as u64;
    if held != want {
        let what = format!("{} writers", backend.name());
        let detail = format!("the store holds {held} entries, not {want}");
        return Err(BenchError::NotConverged { what, detail });
    }
    Ok((wall, cpu))
}

fn panicked() -> BenchError {
    BenchError::Io(std::io::Error::other("a writer thread panicked"))
}

fn apply_all(store: &dyn Store, batches: Vec<Vec<Entry>>) -> Result<(), BenchError> {
    let ctx = context();
    for batch in batches {
        store.apply(&ctx, batch)?;
    }
    Ok(())
}

/// On-CPU time of the whole process so far.
fn process_cpu() -> Option<Duration> {
    cpu_time::ProcessTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

/// Entries per batch while a footprint store fills.
const FOOTPRINT_BATCH: usize = 1_000;

/// Heap bytes per entry of a MemoryStore holding `n` entries, counted by the
/// global allocator (zero when it is not installed: the row says so).
fn footprint_row(n: u64) -> WritesRow {
    let before = PeakAlloc.current_usage();
    let store = MemoryStore::new();
    let mut encoded = 0;
    // Entries are moved into the store, as a session's decoded batches are.
    let applied = (0..n).step_by(FOOTPRINT_BATCH).try_for_each(|first| {
        let batch: Vec<Entry> = (first..n.min(first + FOOTPRINT_BATCH as u64))
            .map(|i| entry(i, VALUE_LEN))
            .collect();
        encoded += batch.iter().map(|e| e.encoded_len() as u64).sum::<u64>();
        store.apply(&context(), batch).map(drop)
    });
    let held = PeakAlloc.current_usage().saturating_sub(before);
    let mut row = WritesRow {
        backend: "memory",
        measure: "footprint",
        batch: FOOTPRINT_BATCH,
        preload: n,
        encoded_per_entry: Some(encoded as f64 / n.max(1) as f64),
        ..WritesRow::default()
    };
    match applied {
        Err(e) => row.error = Some(e.to_string()),
        Ok(()) if held == 0 => row.error = Some("no counting allocator installed".into()),
        Ok(()) => row.bytes_per_entry = Some(held as f64 / n.max(1) as f64),
    }
    drop(store);
    row
}

/// The row as a Markdown table line.
pub fn line(r: &WritesRow) -> String {
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
    };
    if let Some(e) = &r.error {
        return format!(
            "| {} | {} | {} | ERROR: {e} |||||||||",
            r.backend, r.measure, r.writers
        );
    }
    if r.measure == "footprint" {
        let (held, encoded) = (opt(r.bytes_per_entry, 1), opt(r.encoded_per_entry, 1));
        return format!(
            "| {} | footprint | - | {} | {} | - | - | - | - | - | {held} | {encoded} |",
            r.backend, r.batch, r.preload
        );
    }
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.1} | {} | {:.0} | {} | {} | {} |",
        r.backend,
        r.measure,
        r.writers,
        r.batch,
        r.preload,
        r.upserts,
        r.wall_ms,
        opt(r.cpu_ms, 1),
        r.per_sec_wall,
        opt(r.per_sec_cpu, 0),
        opt(r.bytes_per_entry, 1),
        opt(r.encoded_per_entry, 1),
    )
}

/// The write-path targets of issue 15, judged from the writes rows.
pub fn targets(rows: &[Row]) -> Vec<TargetRow> {
    let writes: Vec<&WritesRow> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Writes(w) if w.error.is_none() => Some(w),
            _ => None,
        })
        .collect();
    vec![
        redb_target(&writes),
        memory_rate_target(&writes),
        footprint_target(&writes),
    ]
}

fn find<'a>(rows: &[&'a WritesRow], backend: &str, writers: usize) -> Option<&'a WritesRow> {
    rows.iter().copied().find(|r| {
        r.backend == backend && r.measure == "upserts" && r.writers == writers && r.batch == 1_000
    })
}

fn verdict(target: &'static str, judged: Option<(bool, String)>) -> TargetRow {
    let (met, detail) = match judged {
        Some((met, detail)) => (Some(met), detail),
        None => (None, "no row in this run".to_owned()),
    };
    TargetRow {
        target,
        met,
        detail,
    }
}

fn redb_target(rows: &[&WritesRow]) -> TargetRow {
    let judged = find(rows, "redb", 8).map(|r| {
        let detail = format!(
            "{:.0} upserts/s wall, 8 writers × {} in 1k batches, {} preloaded",
            r.per_sec_wall,
            r.upserts / 8,
            r.preload
        );
        (r.per_sec_wall >= 100_000.0, detail)
    });
    verdict(
        "RedbStore ≥ 100k upserts/s, 1k batches, 8 concurrent writers",
        judged,
    )
}

fn memory_rate_target(rows: &[&WritesRow]) -> TargetRow {
    let judged = find(rows, "memory", 1).and_then(|r| {
        let rate = r.per_sec_cpu?;
        let detail = format!(
            "{rate:.0} upserts/s per core (cpu), {:.0} wall, {} in 1k batches",
            r.per_sec_wall, r.upserts
        );
        Some((rate >= 1_000_000.0, detail))
    });
    verdict("MemoryStore ≥ 1M upserts/s per core, 1k batches", judged)
}

fn footprint_target(rows: &[&WritesRow]) -> TargetRow {
    let sizes: Vec<(u64, f64, f64)> = rows
        .iter()
        .filter(|r| r.measure == "footprint")
        .filter_map(|r| Some((r.preload, r.bytes_per_entry?, r.encoded_per_entry?)))
        .collect();
    let judged = (!sizes.is_empty()).then(|| {
        let met = sizes
            .iter()
            .all(|&(_, held, encoded)| held <= 2.0 * encoded);
        let parts: Vec<String> = sizes
            .iter()
            .map(|&(n, held, encoded)| {
                format!(
                    "{held:.1} B per entry for {encoded:.1} B encoded ({:.2}×) at n = {n}",
                    held / encoded
                )
            })
            .collect();
        (met, parts.join("; "))
    });
    verdict(
        "MemoryStore ≤ 2× the encoded entry size per entry (every n measured)",
        judged,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writer_lands_in_both_backends() {
        let plan = WritesPlan {
            preload: 200,
            per_writer: 300,
            batch: 100,
            runs: vec![(Backend::Memory, 3), (Backend::Redb, 3)],
            memory_entries: Vec::new(),
        };
        let rows = rows(&plan);
        assert_eq!(rows.len(), 2);
        for row in &rows {
            assert_eq!(row.error, None, "{}", row.backend);
            assert_eq!(row.upserts, 900);
            assert!(row.per_sec_wall > 0.0);
        }
    }

    #[test]
    fn footprint_without_the_counting_allocator_says_so() {
        let row = footprint_row(10);
        assert!(row.encoded_per_entry.is_some_and(|e| e > 100.0));
        assert_eq!(
            row.error.as_deref(),
            Some("no counting allocator installed")
        );
    }
}
