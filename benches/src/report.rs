//! Prints matrix rows as Markdown tables (one section per row kind, a header when
//! a section starts) or as JSON Lines.

use std::io::Write;

use crate::rows::{MaintenanceRow, Row, SessionRow, TargetRow, ThroughputRow};

/// What the session table's columns mean, printed above it.
pub const SESSION_NOTES: &str = "\
bytes: both directions, 4-byte length prefixes included (auto: handshake included). \
P: encoded size of the d differing entries (Entry::encoded_len). \
(bytes − P)/d uses negentropy's bytes + P, since negentropy only finds the differing \
ids (32-byte key hashes, timestamp = hlc) and transfers no entries. \
rt: round trips. cpu: on-CPU time of the one thread both sides run on \
(CLOCK_THREAD_CPUTIME_ID), which other load on the machine does not inflate; \
diffs/s/core = d / cpu. peak: heap bytes allocated above the start of the session, \
both sides (negentropy: its sorted item vectors included).";

/// Writes rows as they come.
#[derive(Debug)]
pub struct Printer<W: Write> {
    out: W,
    json: bool,
    section: Option<&'static str>,
}

impl<W: Write> Printer<W> {
    /// A printer of Markdown tables, or of JSON Lines when `json` is set.
    pub fn new(out: W, json: bool) -> Self {
        Printer {
            out,
            json,
            section: None,
        }
    }

    /// Prints one row (and its section's header first, if it starts a section).
    pub fn row(&mut self, row: &Row) -> std::io::Result<()> {
        if self.json {
            let line = serde_json::to_string(row).map_err(std::io::Error::other)?;
            writeln!(self.out, "{line}")?;
            return self.out.flush();
        }
        let (section, header) = header(row);
        if self.section != Some(section) {
            self.section = Some(section);
            writeln!(self.out, "\n{header}")?;
        }
        writeln!(self.out, "{}", line(row))?;
        self.out.flush()
    }
}

fn header(row: &Row) -> (&'static str, String) {
    match row {
        Row::Session(_) => (
            "sessions",
            format!(
                "## Sessions\n\n{SESSION_NOTES}\n\n\
                 | n | d | placement | protocol | bytes | P | (bytes−P)/d | rt | wall ms | cpu ms | diffs/s/core | peak KiB | ok | auto picked / bytes by message |\n\
                 |---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            ),
        ),
        Row::Throughput(_) => (
            "throughput",
            "## Snapshot throughput (empty replica ← n entries) vs raw loopback TCP copy of the same bytes\n\n\
             snapshot tcp cpu: every thread of the process (both sides, the initiator's digest thread). \
             SHA-256 floor: one core's CPU time to hash every entry once (key hash + digest). \
             peak / stores: heap peak during the TCP snapshot (source store included) / heap the two finished stores hold.\n\n\
             | n | bytes | snapshot mem ms | snapshot tcp ms | snapshot tcp cpu ms | SHA-256 floor ms | raw tcp ms | snapshot MiB/s | raw MiB/s | ratio | peak / stores MiB | ok |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|"
                .to_owned(),
        ),
        Row::Maintenance(_) => (
            "maintenance",
            "## Tree maintenance (new keys, 100-byte values, one thread)\n\n\
             | backend | preload | upserts | batch | wall ms | cpu ms | upserts/s/core |\n\
             |---|---|---|---|---|---|---|"
                .to_owned(),
        ),
        Row::Writes(_) => ("writes", crate::writes::HEADER.to_owned()),
        Row::Target(_) => (
            "targets",
            "## Targets\n\n| target | verdict | numbers |\n|---|---|---|".to_owned(),
        ),
    }
}

fn line(row: &Row) -> String {
    match row {
        Row::Session(s) => session_line(s),
        Row::Throughput(t) => throughput_line(t),
        Row::Maintenance(m) => maintenance_line(m),
        Row::Writes(w) => crate::writes::line(w),
        Row::Target(t) => target_line(t),
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn session_line(s: &SessionRow) -> String {
    if let Some(e) = &s.error {
        return format!(
            "| {} | {} | {} | {} | ERROR: {e} |||||||||",
            s.n, s.d, s.placement, s.protocol
        );
    }
    let bytes = if s.comparable_bytes == s.bytes {
        s.bytes.to_string()
    } else {
        format!("{} ids (+P = {})", s.bytes, s.comparable_bytes)
    };
    let peak = opt(s.peak_heap_bytes.map(|b| b as f64 / 1024.0), 0);
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {} | {} | {} | {} | {} |",
        s.n,
        s.d,
        s.placement,
        s.protocol,
        bytes,
        s.payload,
        opt(s.overhead_per_diff, 1),
        s.rounds,
        s.wall_ms,
        opt(s.cpu_ms, 3),
        opt(s.diffs_per_sec, 0),
        peak,
        if s.converged { "yes" } else { "NO" },
        notes(s),
    )
}

fn notes(s: &SessionRow) -> String {
    let parts: Vec<&str> = [s.selected.as_deref(), s.breakdown.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    parts.join("; ")
}

fn throughput_line(t: &ThroughputRow) -> String {
    if let Some(e) = &t.error {
        return format!("| {} | ERROR: {e} |||||||||||", t.n);
    }
    let mib = |b: Option<u64>| opt(b.map(|b| b as f64 / (1024.0 * 1024.0)), 0);
    format!(
        "| {} | {} | {:.1} | {:.1} | {} | {} | {:.1} | {:.0} | {:.0} | {:.1}% | {} / {} | {} |",
        t.n,
        t.bytes,
        t.snapshot_memory_ms,
        t.snapshot_tcp_ms,
        opt(t.snapshot_tcp_cpu_ms, 0),
        opt(t.sha256_floor_ms, 0),
        t.raw_tcp_ms,
        t.snapshot_tcp_mib_s,
        t.raw_tcp_mib_s,
        t.ratio * 100.0,
        mib(t.peak_heap_bytes),
        mib(t.stores_heap_bytes),
        if t.converged { "yes" } else { "NO" },
    )
}

fn maintenance_line(m: &MaintenanceRow) -> String {
    if let Some(e) = &m.error {
        return format!("| {} | {} | ERROR: {e} ||||", m.backend, m.preload);
    }
    format!(
        "| {} | {} | {} | {} | {:.1} | {} | {:.0} |",
        m.backend,
        m.preload,
        m.upserts,
        m.batch,
        m.wall_ms,
        opt(m.cpu_ms, 1),
        m.upserts_per_sec
    )
}

fn target_line(t: &TargetRow) -> String {
    let verdict = match t.met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    };
    format!("| {} | {verdict} | {} |", t.target, t.detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_tagged_objects() {
        let mut buf = Vec::new();
        let row = Row::Target(TargetRow {
            target: "t",
            met: Some(true),
            detail: "x".into(),
        });
        Printer::new(&mut buf, true).row(&row).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let value: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(value["kind"], "target");
        assert_eq!(value["met"], true);
    }

    #[test]
    fn tables_start_each_section_once() {
        let mut buf = Vec::new();
        let mut p = Printer::new(&mut buf, false);
        let row = Row::Session(SessionRow {
            protocol: "auto",
            converged: true,
            ..SessionRow::default()
        });
        p.row(&row).unwrap();
        p.row(&row).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.matches("## Sessions").count(), 1);
        assert_eq!(text.matches("| auto |").count(), 2);
    }
}
