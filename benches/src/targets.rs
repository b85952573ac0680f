//! The targets, judged from the rows of a run. A target needing n = 10^6
//! (or another row the run did not measure) is reported as not measured.
//!
//! Verdicts are about the protocols a node runs on a diverged pair: the tree
//! protocols and `auto` (snapshot streams the whole set by design, so it is
//! judged only by its throughput).

use crate::rows::{MaintenanceRow, Row, SessionRow, TargetRow, ThroughputRow};

/// n at which the issue states most targets.
pub const TARGET_N: u64 = 1_000_000;

/// Protocols judged by the session targets.
const JUDGED: [&str; 3] = ["hash-comparison", "level-wise", "auto"];

/// Every target, in the order.
pub fn evaluate(rows: &[Row]) -> Vec<TargetRow> {
    let sessions: Vec<&SessionRow> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Session(s) if s.error.is_none() => Some(s),
            _ => None,
        })
        .collect();
    vec![
        idle(&sessions),
        rounds(&sessions),
        versus_negentropy(&sessions),
        overhead(&sessions),
        identification_rate(&sessions),
        throughput(rows),
        maintenance(rows),
    ]
    .into_iter()
    .chain(crate::floor::verdicts(rows))
    .chain(crate::writes::targets(rows))
    .collect()
}

fn judged<'a>(sessions: &[&'a SessionRow], n: u64) -> Vec<&'a SessionRow> {
    sessions
        .iter()
        .copied()
        .filter(|s| s.n == n && JUDGED.contains(&s.protocol))
        .collect()
}

/// Per protocol, `verdict` over its rows; met when every judged protocol's rows
/// pass for `auto` (what a node runs), detail listing all of them.
fn per_protocol(
    target: &'static str,
    rows: &[&SessionRow],
    show: impl Fn(&[&SessionRow]) -> (bool, String),
) -> TargetRow {
    if rows.is_empty() {
        return not_measured(target);
    }
    let mut met = None;
    let mut parts = Vec::new();
    for protocol in JUDGED {
        let mine: Vec<&SessionRow> = rows
            .iter()
            .copied()
            .filter(|r| r.protocol == protocol)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let (ok, detail) = show(&mine);
        if protocol == "auto" {
            met = Some(ok);
        }
        parts.push(format!(
            "{protocol}: {detail}{}",
            if ok { "" } else { " ✗" }
        ));
    }
    TargetRow {
        target,
        met,
        detail: parts.join("; "),
    }
}

fn not_measured(target: &'static str) -> TargetRow {
    TargetRow {
        target,
        met: None,
        detail: format!("not measured in this run (most targets need n = {TARGET_N})"),
    }
}

fn idle(sessions: &[&SessionRow]) -> TargetRow {
    let rows: Vec<&SessionRow> = judged(sessions, TARGET_N)
        .into_iter()
        .filter(|s| s.d == 0)
        .collect();
    per_protocol(
        "d = 0: one round trip, ≤ 128 bytes, ≤ 1 ms at n = 10^6",
        &rows,
        |mine| {
            let r = mine[0];
            let ok = r.rounds == 1 && r.bytes <= 128 && r.wall_ms <= 1.0;
            let detail = format!("{} rt, {} B, {:.3} ms", r.rounds, r.bytes, r.wall_ms);
            (ok, detail)
        },
    )
}

fn rounds(sessions: &[&SessionRow]) -> TargetRow {
    let rows = judged(sessions, TARGET_N);
    per_protocol(
        "round trips ≤ 3 at n = 10^6 for any d ≤ 10^4",
        &rows,
        |mine| {
            let max = mine.iter().map(|r| r.rounds).max().unwrap_or(0);
            (max <= 3, format!("max {max} rt"))
        },
    )
}

fn versus_negentropy(sessions: &[&SessionRow]) -> TargetRow {
    let target = "never more bytes than negentropy (its ids + P) on any cell";
    let negs: Vec<&SessionRow> = sessions
        .iter()
        .copied()
        .filter(|s| s.protocol == "negentropy")
        .collect();
    let neg_of = |s: &SessionRow| {
        negs.iter()
            .find(|g| (g.n, g.d, g.placement) == (s.n, s.d, s.placement))
            .map(|g| g.comparable_bytes)
    };
    let mut met = None;
    let mut parts = Vec::new();
    for protocol in JUDGED {
        // (ratio ours / negentropy, cell) for every cell both measured.
        let ratios: Vec<(f64, String)> = sessions
            .iter()
            .filter(|s| s.protocol == protocol)
            .filter_map(|s| {
                let neg = neg_of(s)?;
                let cell = format!("n={} d={} {}", s.n, s.d, s.placement);
                Some((s.comparable_bytes as f64 / neg.max(1) as f64, cell))
            })
            .collect();
        if ratios.is_empty() {
            continue;
        }
        let worse = ratios.iter().filter(|(r, _)| *r > 1.0).count();
        let (worst, cell) =
            ratios.iter().fold(
                (0.0, ""),
                |a, (r, c)| if *r > a.0 { (*r, c.as_str()) } else { a },
            );
        if protocol == "auto" {
            met = Some(worse == 0);
        }
        parts.push(format!(
            "{protocol}: more on {worse} of {} cells, worst {worst:.2}× ({cell})",
            ratios.len()
        ));
    }
    match met {
        None => not_measured(target),
        Some(met) => TargetRow {
            target,
            met: Some(met),
            detail: parts.join("; "),
        },
    }
}

fn overhead(sessions: &[&SessionRow]) -> TargetRow {
    let rows: Vec<&SessionRow> = judged(sessions, TARGET_N)
        .into_iter()
        .filter(|s| s.d > 0 && s.placement == "scattered")
        .collect();
    per_protocol(
        "scattered n = 10^6: (bytes − P)/d ≤ 256 B",
        &rows,
        |mine| {
            let worst = mine
                .iter()
                .filter_map(|r| r.overhead_per_diff.map(|o| (o, r.d)))
                .fold((0.0f64, 0), |a, b| if b.0 > a.0 { b } else { a });
            (
                worst.0 <= 256.0,
                format!("worst {:.0} B (d={})", worst.0, worst.1),
            )
        },
    )
}

fn identification_rate(sessions: &[&SessionRow]) -> TargetRow {
    let rows: Vec<&SessionRow> = judged(sessions, TARGET_N)
        .into_iter()
        .filter(|s| s.d >= 10_000)
        .collect();
    per_protocol(
        "≥ 1M differences identified per second per core at n = 10^6",
        &rows,
        |mine| {
            let worst = mine
                .iter()
                .filter_map(|r| r.diffs_per_sec)
                .fold(f64::INFINITY, f64::min);
            (worst >= 1e6, format!("slowest {:.0}/s", worst))
        },
    )
}

fn throughput(rows: &[Row]) -> TargetRow {
    let target = "snapshot throughput ≥ 70% of the raw loopback TCP copy";
    let largest = rows
        .iter()
        .filter_map(|r| match r {
            Row::Throughput(t) if t.error.is_none() => Some(t),
            _ => None,
        })
        .max_by_key(|t| t.n);
    match largest {
        None => not_measured(target),
        Some(ThroughputRow {
            n,
            ratio,
            snapshot_tcp_mib_s,
            raw_tcp_mib_s,
            ..
        }) => TargetRow {
            target,
            met: Some(*ratio >= 0.7),
            detail: format!(
                "n={n}: {snapshot_tcp_mib_s:.0} MiB/s vs {raw_tcp_mib_s:.0} MiB/s = {:.1}%",
                ratio * 100.0
            ),
        },
    }
}

fn maintenance(rows: &[Row]) -> TargetRow {
    let target = "in-memory tree maintenance ≥ 1M upserts/s on one core";
    let memory: Vec<&MaintenanceRow> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Maintenance(m) if m.backend == "memory" && m.error.is_none() => Some(m),
            _ => None,
        })
        .collect();
    if memory.is_empty() {
        return not_measured(target);
    }
    let detail: Vec<String> = memory
        .iter()
        .map(|m| format!("batch {}: {:.0}/s", m.batch, m.upserts_per_sec))
        .collect();
    TargetRow {
        target,
        met: Some(memory.iter().all(|m| m.upserts_per_sec >= 1e6)),
        detail: detail.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(protocol: &'static str, d: u64, bytes: u64, rounds: u32) -> Row {
        Row::Session(SessionRow {
            n: TARGET_N,
            d,
            placement: if d == 0 { "-" } else { "scattered" },
            protocol,
            bytes,
            comparable_bytes: bytes,
            rounds,
            wall_ms: 0.5,
            converged: true,
            ..SessionRow::default()
        })
    }

    #[test]
    fn idle_sessions_are_judged_on_auto() {
        let rows = [
            session("auto", 0, 100, 1),
            session("hash-comparison", 0, 400, 2),
        ];
        let idle = &evaluate(&rows)[0];
        assert_eq!(idle.met, Some(true));
        assert!(
            idle.detail.contains("hash-comparison: 2 rt, 400 B"),
            "{}",
            idle.detail
        );
    }

    #[test]
    fn missing_sizes_are_not_measured() {
        let verdicts = evaluate(&[]);
        // 7 of the benchmarks issue, 3 floors (crate::floor), 3 of the write
        // path (crate::writes).
        assert_eq!(verdicts.len(), 13);
        assert!(verdicts.iter().all(|v| v.met.is_none()));
    }
}
