//! `synctree simulate`: a seeded cluster of real managers on a simulated network
//! with faults; exits 0 only when every replica converged.

use std::error::Error;
use std::num::NonZeroU64;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use synctree_sim::{self as simulate, SimConfig, SimReport};

/// Arguments of `synctree simulate`.
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// Nodes in the cluster (at least 2).
    #[arg(long)]
    nodes: usize,
    /// Seed of everything random: the same seed gives the same run and report.
    #[arg(long)]
    seed: u64,
    /// Probability that a session's connection is cut part-way (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Probability that a session's connection stalls until timeouts fire (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    stall: f64,
    /// One-way latency in virtual ms; each message takes between this and twice this.
    #[arg(long, default_value_t = 10)]
    latency: u64,
    /// Length of each partition in virtual ms (0: none). Partitions split the nodes
    /// in two random groups, again and again through the fault phase.
    #[arg(long, default_value_t = 0)]
    partition_ms: u64,
    /// Node restarts during the fault phase.
    #[arg(long, default_value_t = 0)]
    restarts: u32,
    /// Writes (puts and one in five deletes) on random nodes during the fault phase.
    #[arg(long, default_value_t = 200)]
    writes: u32,
    /// Bandwidth cap per connection and direction, bytes per virtual second (0: none).
    #[arg(long, default_value_t = 0)]
    bandwidth: u64,
    /// Virtual ms of the fault phase (writes, partitions, restarts); then faults heal.
    #[arg(long, default_value_t = 3_000)]
    fault_ms: u64,
    /// Print one JSON object on stdout instead of a human summary.
    #[arg(long)]
    json: bool,
}

impl SimulateArgs {
    fn config(&self) -> SimConfig {
        SimConfig {
            loss: self.loss,
            stall: self.stall,
            latency: Duration::from_millis(self.latency),
            partition: Duration::from_millis(self.partition_ms),
            restarts: self.restarts,
            writes: self.writes,
            bandwidth: NonZeroU64::new(self.bandwidth),
            fault_phase: Duration::from_millis(self.fault_ms),
            ..SimConfig::new(self.nodes, self.seed)
        }
    }
}

/// Runs the simulation (on this thread: it must not be inside a tokio runtime).
pub(crate) fn run(args: SimulateArgs) -> Result<ExitCode, Box<dyn Error>> {
    let config = args.config();
    let started = Instant::now();
    let report = simulate::run(&config)?;
    let text = if args.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        human(&config, &report, started.elapsed())
    };
    crate::output::emit(&text)?;
    Ok(if report.converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn human(config: &SimConfig, r: &SimReport, wall: Duration) -> String {
    let outcome = match r.converge_ms {
        Some(ms) if r.converged => format!("converged {ms} ms (virtual) after the faults healed"),
        _ => format!(
            "did NOT converge: {} replica/context pairs differ from the merge of all writes",
            r.mismatches
        ),
    };
    let mut out = format!(
        "{} nodes, seed {}: {outcome}\n\
         writes    {} puts, {} deletes -> {} entries in {} contexts\n\
         faults    loss {:.1}%, stall {:.1}%, latency {}-{} ms, {} partitions, {} restarts\n\
         sessions  {} ({} failed), {} round trips, {} bytes, {} entries pulled, {} pushed\n\
         time      {} ms virtual (faults healed at {} ms), {:.2} s wall\n",
        r.nodes,
        r.seed,
        r.writes,
        r.deletes,
        r.entries,
        r.roots.len(),
        config.loss * 100.0,
        config.stall * 100.0,
        config.latency.as_millis(),
        config.latency.as_millis() * 2,
        r.partitions,
        r.restarts,
        r.sessions,
        r.failed_sessions,
        r.rounds,
        r.bytes,
        r.entries_pulled,
        r.entries_pushed,
        r.virtual_ms,
        r.heal_ms,
        wall.as_secs_f64(),
    );
    for (context, root) in &r.roots {
        out.push_str(&format!("root      {context} {root}\n"));
    }
    out
}
