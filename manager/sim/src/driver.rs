//! Steps turmoil, applies the script between steps, heals, and watches for
//! convergence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use synctree_primitives::{ContextId, Entry, Hash, Hlc, NodeId, Store, Version};
use synctree_store::MemoryStore;
use synctree_transport::sim::SimFaults;

use crate::config::SimConfig;
use crate::node::{self, Seat, Setup};
use crate::oracle::{Oracle, Verdict};
use crate::plan::{Event, Script};
use crate::report::{SimError, SimReport};
use crate::seed::mix;
use synctree_manager::ManagerConfig;
use synctree_manager::anti_entropy::{AntiEntropyConfig, AntiEntropyStats, SharedStats};

/// How often, in virtual time, replicas' roots are compared after the heal.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// Wall-clock instant the simulation's clock starts at (2023-11-14): fixed, so
/// versions written by the script do not depend on when the run happens.
const EPOCH_SECS: u64 = 1_700_000_000;

/// Handshake timeout of a simulated node: virtual latency is milliseconds, so a
/// second means the peer is cut or stalled.
pub const SIM_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Anti-entropy sessions at once per simulated node, as
/// [`DEFAULT_MAX_CONCURRENT`](synctree_manager::anti_entropy::DEFAULT_MAX_CONCURRENT)
/// on a real node.
pub const SIM_MAX_CONCURRENT: usize = 4;

/// Deadline of one simulated session: sessions of a few hundred entries take
/// tens of virtual milliseconds, so two seconds only cut stalled ones.
pub const SIM_SESSION_DEADLINE: Duration = Duration::from_secs(2);

/// Longest backoff of a simulated peer: short, so a healed partition is
/// retried within the convergence limit.
pub const SIM_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Connect timeout of a simulated node (a connect is one virtual round trip).
pub const SIM_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest one served stream may hold a slot on a simulated node: a session
/// deadline plus a handshake.
pub const SIM_STREAM_DEADLINE: Duration = Duration::from_secs(3);

/// Virtual time turmoil may run past the fault phase and convergence limit, so
/// the driver, not turmoil, reports a run that did not converge.
const SIM_DURATION_SLACK: Duration = Duration::from_secs(10);

/// Runs the simulation `config` describes and checks convergence. Must not be
/// called inside a tokio runtime.
pub fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    config.validate()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(SimError::InsideRuntime);
    }
    let seats = seats(config);
    let setup = Arc::new(setup(config, &seats));
    let mut sim = builder(config).build();
    for seat in &seats {
        let (seat, setup) = (seat.clone(), Arc::clone(&setup));
        sim.host(seat.name.clone(), move || {
            node::run(seat.clone(), Arc::clone(&setup))
        });
    }
    let contexts = (0..config.contexts)
        .map(|i| ContextId::new(format!("sim-{i}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| SimError::Config("context names"))?;
    let mut driver = Driver {
        sim,
        clocks: vec![Hlc::new(); seats.len()],
        seats,
        contexts,
        script: Script::draw(config),
        oracle: Oracle::default(),
        partitioned: Vec::new(),
        partitions: 0,
        restarts: 0,
        written: 0,
    };
    driver.run(config)
}

fn seats(config: &SimConfig) -> Vec<Seat> {
    (0..config.nodes)
        .map(|index| Seat {
            index,
            name: format!("node{index}"),
            store: Arc::new(MemoryStore::new()),
            stats: SharedStats::default(),
            starts: Arc::default(),
            restart: Arc::default(),
        })
        .collect()
}

fn setup(config: &SimConfig, seats: &[Seat]) -> Setup {
    let peers = (config.nodes - 1) as u32;
    let interval = (config.round * peers / config.fanout).max(config.round);
    let contexts = (0..config.contexts)
        .filter_map(|i| ContextId::new(format!("sim-{i}")).ok())
        .collect();
    Setup {
        seed: config.seed,
        peers: seats.iter().map(|s| node::peer_addr(&s.name)).collect(),
        faults: SimFaults {
            loss: config.loss,
            stall: config.stall,
            fault_window: config.fault_window,
            bandwidth: config.bandwidth,
        },
        manager: ManagerConfig {
            handshake_timeout: SIM_HANDSHAKE_TIMEOUT,
            ..ManagerConfig::default()
        },
        anti_entropy: AntiEntropyConfig {
            interval,
            jitter: interval / 2,
            max_concurrent: SIM_MAX_CONCURRENT,
            session_deadline: SIM_SESSION_DEADLINE,
            backoff_base: config.round / 2,
            backoff_max: SIM_BACKOFF_MAX,
            contexts,
            ..AntiEntropyConfig::default()
        },
        connect_timeout: SIM_CONNECT_TIMEOUT,
        stream_deadline: SIM_STREAM_DEADLINE,
    }
}

fn builder(config: &SimConfig) -> turmoil::Builder {
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(mix(config.seed, 1))
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        .simulation_duration(config.fault_phase + config.converge_limit + SIM_DURATION_SLACK)
        .tick_duration(config.tick)
        .min_message_latency(config.latency)
        .max_message_latency(config.latency * 2);
    builder
}

struct Driver<'a> {
    sim: turmoil::Sim<'a>,
    seats: Vec<Seat>,
    clocks: Vec<Hlc>,
    contexts: Vec<ContextId>,
    script: Script,
    oracle: Oracle,
    /// Links cut by the current partition.
    partitioned: Vec<(usize, usize)>,
    partitions: u64,
    restarts: u64,
    written: u64,
}

impl Driver<'_> {
    fn run(&mut self, config: &SimConfig) -> Result<SimReport, SimError> {
        let heal_at = config.fault_phase;
        let limit = heal_at + config.converge_limit;
        let mut expected: Option<BTreeMap<ContextId, Hash>> = None;
        let mut next_check = heal_at;
        let converged_at = loop {
            self.step()?;
            let now = self.sim.elapsed();
            for event in self.script.due(now) {
                self.apply(event)?;
            }
            if now < heal_at {
                continue;
            }
            let expected = expected.get_or_insert_with(|| {
                self.heal();
                self.oracle.expected_roots()
            });
            if now >= next_check {
                next_check = now + CHECK_EVERY;
                if Oracle::roots_match(expected, &self.stores()) {
                    break Some(now);
                }
            }
            if now >= limit {
                break None;
            }
        };
        let verdict = self.oracle.verify(&self.stores());
        Ok(self.report(config, converged_at, verdict))
    }

    fn step(&mut self) -> Result<(), SimError> {
        self.sim.step().map(drop).map_err(|e| SimError::Host {
            at: self.sim.elapsed(),
            message: e.to_string(),
        })
    }

    fn stores(&self) -> Vec<&MemoryStore> {
        self.seats.iter().map(|s| &*s.store).collect()
    }

    fn apply(&mut self, event: Event) -> Result<(), SimError> {
        match event {
            Event::Write {
                node,
                context,
                key,
                delete,
            } => self.write(node, context, key, delete)?,
            Event::Partition { group } => self.partition(&group),
            Event::Heal => self.heal(),
            Event::Restart { node } => {
                self.seats[node].restart.notify_one();
                self.restarts += 1;
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        node: usize,
        context: usize,
        key: u32,
        delete: bool,
    ) -> Result<(), SimError> {
        let now_ms = u64::try_from(self.sim.since_epoch().as_millis()).unwrap_or(u64::MAX);
        let version = Version::new(self.clocks[node].tick(now_ms), NodeId(node as u64 + 1));
        let key = format!("key-{key:04}");
        self.written += 1;
        let entry = if delete {
            Entry::delete(key, version)
        } else {
            Entry::put(
                key,
                format!("value-{}-from-node{node}", self.written),
                version,
            )
        };
        let context = &self.contexts[context];
        self.seats[node]
            .store
            .apply(context, vec![entry.clone()])
            .map_err(|source| SimError::Store { node, source })?;
        self.oracle.record(context, entry);
        Ok(())
    }

    fn partition(&mut self, group: &[usize]) {
        self.heal();
        let others: Vec<usize> = (0..self.seats.len())
            .filter(|n| !group.contains(n))
            .collect();
        for &a in group {
            for &b in &others {
                self.sim
                    .partition(self.seats[a].name.as_str(), self.seats[b].name.as_str());
                self.partitioned.push((a, b));
            }
        }
        self.partitions += 1;
    }

    fn heal(&mut self) {
        for (a, b) in std::mem::take(&mut self.partitioned) {
            self.sim
                .repair(self.seats[a].name.as_str(), self.seats[b].name.as_str());
        }
    }

    fn totals(&self) -> AntiEntropyStats {
        let mut sum = AntiEntropyStats::default();
        for stats in self.seats.iter().map(|s| s.stats.snapshot()) {
            sum.attempted += stats.attempted;
            sum.succeeded += stats.succeeded;
            sum.failed += stats.failed;
            sum.rounds += stats.rounds;
            sum.bytes_sent += stats.bytes_sent;
            sum.bytes_received += stats.bytes_received;
            sum.entries_pulled += stats.entries_pulled;
            sum.entries_pushed += stats.entries_pushed;
        }
        sum
    }

    fn report(
        &self,
        config: &SimConfig,
        converged_at: Option<Duration>,
        verdict: Verdict,
    ) -> SimReport {
        let totals = self.totals();
        let (writes, deletes) = self.oracle.counts();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        SimReport {
            converged: converged_at.is_some() && verdict.mismatches == 0,
            nodes: config.nodes,
            seed: config.seed,
            sessions: totals.succeeded + totals.failed,
            failed_sessions: totals.failed,
            rounds: totals.rounds,
            bytes: totals.bytes_sent + totals.bytes_received,
            entries_pulled: totals.entries_pulled,
            entries_pushed: totals.entries_pushed,
            virtual_ms: ms(self.sim.elapsed()),
            heal_ms: ms(config.fault_phase),
            converge_ms: converged_at.map(|at| ms(at.saturating_sub(config.fault_phase))),
            writes,
            deletes,
            partitions: self.partitions,
            restarts: self.restarts,
            entries: verdict.entries,
            mismatches: verdict.mismatches,
            roots: verdict.roots,
        }
    }
}
