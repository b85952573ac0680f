//! `matrix`: every protocol on every cell of n × d × placement, beside negentropy
//! and a raw TCP copy, then the issue's targets judged from the numbers.
//!
//! ```text
//! cargo run --release -p synctree-benches --bin matrix            # full matrix
//! cargo run -p synctree-benches --bin matrix -- --quick           # CI subset
//! cargo run --release -p synctree-benches --bin matrix -- --json  # JSON Lines
//! ```
//!
//! Exits non-zero only when a step fails or a session does not converge; slow
//! numbers are reported, never fatal.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use peak_alloc::PeakAlloc;
use synctree_benches::error::chain;
use synctree_benches::matrix::{self, MatrixConfig};
use synctree_benches::report::Printer;
use synctree_benches::rows::Row;
use synctree_benches::targets;
use synctree_benches::writes::WritesPlan;

/// Counts heap bytes so each session's peak can be reported (see
/// `synctree_benches::meter`).
#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// Benchmark matrix of synctree's protocols.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// CI-sized subset: n = 10^4, d ∈ {0, 1, 100}.
    #[arg(long)]
    quick: bool,
    /// One JSON object per row (JSON Lines) instead of Markdown tables.
    #[arg(long)]
    json: bool,
    /// Only these n (repeatable); default per mode.
    #[arg(long = "n", value_name = "N")]
    ns: Vec<u64>,
    /// Only these d (repeatable); default per mode.
    #[arg(long = "d", value_name = "D")]
    ds: Vec<u64>,
    /// Only these protocols (repeatable): hash-comparison, level-wise, snapshot,
    /// sketch, auto, negentropy, riblt-crate. Given alone with `--n`/`--d`, it is how to profile one
    /// cell (`perf record target/release/matrix --n … --d … --protocol …`).
    #[arg(long = "protocol", value_name = "NAME")]
    protocols: Vec<String>,
    /// Skip the snapshot-throughput, tree-maintenance and writes sections.
    #[arg(long)]
    sessions_only: bool,
    /// Only the store writes section (concurrent writers, bytes per entry).
    #[arg(long, conflicts_with = "sessions_only")]
    writes_only: bool,
    /// Tally each session's bytes by message kind (a column / `breakdown` field).
    #[arg(long)]
    breakdown: bool,
}

impl Args {
    fn config(&self) -> MatrixConfig {
        let mut config = if self.quick {
            MatrixConfig::quick()
        } else {
            MatrixConfig::full()
        };
        if !self.ns.is_empty() {
            config.throughput_ns.retain(|n| self.ns.contains(n));
            config.ns.clone_from(&self.ns);
        }
        if !self.ds.is_empty() {
            config.ds.clone_from(&self.ds);
        }
        if !self.protocols.is_empty() {
            let wanted = |name: &str| self.protocols.iter().any(|p| p == name);
            config.protocols.retain(|p| wanted(p.name()));
            config.negentropy = wanted("negentropy");
            config.riblt = wanted("riblt-crate");
        }
        config.breakdown = self.breakdown;
        if self.sessions_only {
            config.throughput_ns.clear();
            config.maintenance.backends.clear();
            config.writes = WritesPlan::none();
        }
        if self.writes_only {
            config.ns.clear();
            config.throughput_ns.clear();
            config.maintenance.backends.clear();
        }
        config
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = args.config();
    let started = Instant::now();
    let mut printer = Printer::new(std::io::stdout().lock(), args.json);
    let mut print_failed = false;
    let mut print = |row: &Row| {
        if let Err(e) = printer.row(row) {
            eprintln!("matrix: cannot print: {e}");
            print_failed = true;
        }
    };
    let rows = match matrix::run(&config, &mut print) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("matrix: {}", chain(&e));
            return ExitCode::FAILURE;
        }
    };
    for target in targets::evaluate(&rows) {
        print(&Row::Target(target));
    }
    let failed = rows.iter().filter(|r| r.failed()).count();
    eprintln!(
        "matrix: {} rows, {failed} failed, {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    if failed > 0 || print_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
