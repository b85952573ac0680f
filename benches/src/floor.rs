//! The snapshot's yardsticks beside the raw TCP copy, measured in the same run:
//! the SHA-256 floor (one core hashing every entry once, key hash and entry
//! digest, as `StoredEntry::new` does), the process CPU time of a session (both
//! sides and the initiator's digest thread), and the heap the two finished
//! stores hold against the session's peak; then the snapshot verdicts.

use std::hint::black_box;
use std::time::Duration;

use peak_alloc::PeakAlloc;

use crate::meter::on_cpu;
use crate::rows::{Row, TargetRow, ThroughputRow};
use crate::targets::TARGET_N;
use crate::workload::Base;

/// Snapshot throughput against the raw TCP copy the target asks for.
const MIN_RAW_TCP_SHARE: f64 = 0.25;
/// Snapshot time against the SHA-256 floor the target allows.
const MAX_FLOOR_MULTIPLE: f64 = 2.0;
/// Peak heap of a snapshot against the two finished stores the target allows.
const MAX_PEAK_OVER_STORES: f64 = 1.2;

/// One core's CPU time to compute the key hash and digest of every entry of
/// `base` once; `None` where the thread clock is unavailable.
pub fn sha256_floor(base: &Base) -> Option<Duration> {
    let ((), cpu) = on_cpu(|| {
        for entry in &base.entries {
            black_box(entry.key_hash());
            black_box(entry.digest());
        }
    });
    cpu
}

/// CPU time of the whole process so far (every thread).
pub fn process_cpu() -> Option<Duration> {
    cpu_time::ProcessTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

/// CPU time of the whole process since `before`.
pub fn process_cpu_since(before: Option<Duration>) -> Option<Duration> {
    process_cpu()
        .zip(before)
        .map(|(now, before)| now.saturating_sub(before))
}

/// Heap allocated when the mark was taken, to measure what a step keeps and its
/// peak; every reading is `None` where the counting allocator is not installed.
#[derive(Clone, Copy, Debug)]
pub struct HeapUse {
    start: usize,
}

impl HeapUse {
    /// Marks the heap now and resets the peak to it.
    pub fn now() -> Self {
        PeakAlloc.reset_peak_usage();
        HeapUse {
            start: PeakAlloc.current_usage(),
        }
    }

    /// Bytes allocated now above the mark (what the step kept).
    pub fn kept(&self) -> Option<u64> {
        let now = PeakAlloc.current_usage();
        (now > 0).then(|| now.saturating_sub(self.start) as u64)
    }

    /// Most bytes allocated above the mark since it was taken.
    pub fn peak(&self) -> Option<u64> {
        let peak = PeakAlloc.peak_usage();
        (peak > 0).then(|| peak.saturating_sub(self.start) as u64)
    }
}

/// The snapshot verdicts from the largest throughput row measured at
/// [`TARGET_N`]: share of the raw TCP copy, multiple of the SHA-256 floor, peak
/// heap over the two finished stores.
pub fn verdicts(rows: &[Row]) -> Vec<TargetRow> {
    let row = rows.iter().find_map(|r| match r {
        Row::Throughput(t) if t.error.is_none() && t.n == TARGET_N => Some(t),
        _ => None,
    });
    vec![raw_share(row), floor_multiple(row), peak_over_stores(row)]
}

fn verdict(target: &'static str, judged: Option<(bool, String)>) -> TargetRow {
    let (met, detail) = match judged {
        Some((met, detail)) => (Some(met), detail),
        None => (
            None,
            format!("not measured in this run (needs n = {TARGET_N})"),
        ),
    };
    TargetRow {
        target,
        met,
        detail,
    }
}

fn raw_share(row: Option<&ThroughputRow>) -> TargetRow {
    let judged = row.map(|t| {
        let detail = format!(
            "{:.0} MiB/s vs raw {:.0} MiB/s = {:.1}% ({:.0} ms vs {:.1} ms, {} B)",
            t.snapshot_tcp_mib_s,
            t.raw_tcp_mib_s,
            t.ratio * 100.0,
            t.snapshot_tcp_ms,
            t.raw_tcp_ms,
            t.bytes
        );
        (t.ratio >= MIN_RAW_TCP_SHARE, detail)
    });
    verdict(
        "snapshot n = 10^6, 100-byte values: ≥ 25% of the raw loopback TCP copy",
        judged,
    )
}

fn floor_multiple(row: Option<&ThroughputRow>) -> TargetRow {
    let judged = row.and_then(|t| {
        let floor = t.sha256_floor_ms?;
        let multiple = t.snapshot_tcp_ms / floor.max(f64::MIN_POSITIVE);
        let cpu = t
            .snapshot_tcp_cpu_ms
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}"));
        let detail = format!(
            "{:.0} ms wall ({cpu} ms cpu, all threads) vs floor {floor:.0} ms cpu = {multiple:.1}×",
            t.snapshot_tcp_ms
        );
        Some((multiple <= MAX_FLOOR_MULTIPLE, detail))
    });
    verdict(
        "snapshot n = 10^6: ≤ 2× the SHA-256 floor (one core hashing every entry once)",
        judged,
    )
}

fn peak_over_stores(row: Option<&ThroughputRow>) -> TargetRow {
    let judged = row.and_then(|t| {
        let (peak, stores) = (t.peak_heap_bytes?, t.stores_heap_bytes?);
        let ratio = peak as f64 / stores.max(1) as f64;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let detail = format!(
            "peak {:.0} MiB vs stores {:.0} MiB = {ratio:.2}×",
            mib(peak),
            mib(stores)
        );
        Some((ratio <= MAX_PEAK_OVER_STORES, detail))
    });
    verdict(
        "snapshot n = 10^6: peak memory ≤ 1.2× the two finished stores",
        judged,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(snapshot_ms: f64, floor_ms: f64, peak: u64, stores: u64) -> Row {
        Row::Throughput(ThroughputRow {
            n: TARGET_N,
            snapshot_tcp_ms: snapshot_ms,
            ratio: 0.3,
            sha256_floor_ms: Some(floor_ms),
            peak_heap_bytes: Some(peak),
            stores_heap_bytes: Some(stores),
            converged: true,
            ..ThroughputRow::default()
        })
    }

    #[test]
    fn verdicts_judge_the_row_at_the_target_size() {
        let met = verdicts(&[row(300.0, 200.0, 110, 100)]);
        assert_eq!(
            met.iter().map(|v| v.met).collect::<Vec<_>>(),
            [Some(true); 3]
        );
        let missed = verdicts(&[row(500.0, 200.0, 130, 100)]);
        assert_eq!(missed[1].met, Some(false), "{}", missed[1].detail);
        assert_eq!(missed[2].met, Some(false), "{}", missed[2].detail);
        assert!(verdicts(&[]).iter().all(|v| v.met.is_none()));
    }

    #[test]
    fn the_floor_hashes_every_entry() {
        let base = Base::new(50);
        // The thread clock may be missing; where it exists it moved.
        if let Some(cpu) = sha256_floor(&base) {
            assert!(cpu > Duration::ZERO);
        }
        assert!(process_cpu_since(process_cpu()).is_some() == process_cpu().is_some());
    }
}
