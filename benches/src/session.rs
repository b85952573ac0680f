//! One sync session between two stores over [`FramedTransport::memory_pair`] (or
//! any pair of transports), measured from the initiator's side.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use synctree_manager::{ManagerConfig, ProtocolChoice, SyncManager};
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{
    ContextId, Identity, NodeId, ProtocolError, ProtocolKind, Store, SyncProtocolExecutor,
    SyncStats, SyncTransport,
};
use synctree_protocols::{
    HashComparison, HashComparisonConfig, HashComparisonResponderInit, LevelWise, LevelWiseConfig,
    LevelWiseResponderInit, Snapshot, SnapshotConfig, SnapshotResponderInit,
};
use synctree_transport::FramedTransport;

use crate::context;
use crate::error::BenchError;
use crate::meter::thread_cpu;
use crate::tally::{KindTally, Tally};

/// Bytes each direction of the in-memory pipe buffers: one full batch.
pub const PIPE_BYTES: usize = 1 << 20;

/// What a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// HashComparison with [`HashComparisonConfig::default`].
    HashComparison,
    /// LevelWise with [`LevelWiseConfig::default`].
    LevelWise,
    /// Snapshot with [`SnapshotConfig::default`] (no compression).
    Snapshot,
    /// The manager's choice: handshake, decision table, then that protocol.
    Auto,
    /// Sketch through the manager (`--protocol sketch`): the handshake's probe
    /// sizes the first request, so its bytes and round trip are counted.
    Sketch,
}

impl Protocol {
    /// Every protocol the matrix runs, in report order.
    pub const ALL: [Protocol; 5] = [
        Protocol::HashComparison,
        Protocol::LevelWise,
        Protocol::Snapshot,
        Protocol::Sketch,
        Protocol::Auto,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::HashComparison => "hash-comparison",
            Protocol::LevelWise => "level-wise",
            Protocol::Snapshot => "snapshot",
            Protocol::Auto => "auto",
            Protocol::Sketch => "sketch",
        }
    }
}

/// What one session moved and took.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Bytes both ways, length prefixes (and for auto the handshake) included.
    pub bytes: u64,
    /// Messages both ways.
    pub messages: u64,
    /// Round trips counted by the initiator (auto: the handshake included).
    pub rounds: u32,
    /// Wall time from the first byte to both sides done.
    pub wall: Duration,
    /// On-CPU time of the calling thread over the same span: the session's cost on
    /// one core when both sides run on a current-thread runtime (see
    /// [`crate::meter::thread_cpu`]).
    pub cpu: Option<Duration>,
    /// Auto only: the protocol the manager picked and why.
    pub selected: Option<String>,
    /// Both sides reported the same root at the end.
    pub converged: bool,
    /// Bytes by message kind, both directions (only from [`run_with_breakdown`]).
    pub breakdown: Option<BTreeMap<&'static str, KindTally>>,
}

/// Runs `protocol` with `a` as initiator and `b` as responder over an in-memory
/// pipe, on the caller's runtime.
pub async fn run<S: Store + 'static>(
    protocol: Protocol,
    a: &Arc<S>,
    b: &Arc<S>,
) -> Result<Outcome, BenchError> {
    let (mut ta, mut tb) = FramedTransport::memory_pair(PIPE_BYTES);
    run_over(protocol, a, b, &mut ta, &mut tb).await
}

/// [`run`], with the initiator's transport tapped by a [`Tally`] so the outcome
/// says which message kinds the bytes went to.
pub async fn run_with_breakdown<S: Store + 'static>(
    protocol: Protocol,
    a: &Arc<S>,
    b: &Arc<S>,
) -> Result<Outcome, BenchError> {
    let (ta, mut tb) = FramedTransport::memory_pair(PIPE_BYTES);
    let mut ta = Tally::wrap(ta);
    let mut out = run_over(protocol, a, b, &mut ta, &mut tb).await?;
    out.breakdown = Some(ta.hook.kinds().clone());
    Ok(out)
}

/// Runs `protocol` over a given pair of connected transports.
pub async fn run_over<S, TA, TB>(
    protocol: Protocol,
    a: &Arc<S>,
    b: &Arc<S>,
    ta: &mut TA,
    tb: &mut TB,
) -> Result<Outcome, BenchError>
where
    S: Store + 'static,
    TA: SyncTransport,
    TB: SyncTransport,
{
    match protocol {
        Protocol::Auto => return run_managed(a, b, ta, tb, ProtocolChoice::Auto).await,
        Protocol::Sketch => {
            let sketch = ProtocolChoice::Force(ProtocolKind::Sketch);
            return run_managed(a, b, ta, tb, sketch).await;
        }
        _ => {}
    }
    let ctx = context();
    let clock = Clock::start();
    let initiator = initiate(protocol, ta, &**a, &ctx);
    let responder = respond(tb, &**b, &ctx);
    let (stats, served) = tokio::join!(initiator, responder);
    let (wall, cpu) = clock.stop();
    served?;
    Ok(outcome(&stats?, wall, cpu))
}

/// Wall and thread CPU time from `start` to `stop`.
struct Clock {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Clock {
    fn start() -> Self {
        Clock {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    fn stop(&self) -> (Duration, Option<Duration>) {
        let cpu = thread_cpu()
            .zip(self.cpu)
            .map(|(now, then)| now.saturating_sub(then));
        (self.wall.elapsed(), cpu)
    }
}

fn outcome(stats: &SyncStats, wall: Duration, cpu: Option<Duration>) -> Outcome {
    let t = stats.transport;
    Outcome {
        bytes: t.bytes_sent + t.bytes_received,
        messages: t.messages_sent + t.messages_received,
        rounds: stats.rounds,
        wall,
        cpu,
        selected: None,
        converged: stats.converged(),
        breakdown: None,
    }
}

/// Opens a session of `protocol` (not [`Protocol::Auto`]) on `transport`.
pub async fn initiate<T, S>(
    protocol: Protocol,
    transport: &mut T,
    store: &S,
    ctx: &ContextId,
) -> Result<SyncStats, BenchError>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
{
    let id = Identity::new(NodeId(1));
    let stats = match protocol {
        Protocol::HashComparison => {
            let config = HashComparisonConfig::default();
            HashComparison::run_initiator(transport, store, ctx, &id, config).await?
        }
        Protocol::LevelWise => {
            let config = LevelWiseConfig::default();
            LevelWise::run_initiator(transport, store, ctx, &id, config).await?
        }
        Protocol::Snapshot => {
            let config = SnapshotConfig::default();
            Snapshot::run_initiator(transport, store, ctx, &id, config).await?
        }
        Protocol::Auto | Protocol::Sketch => {
            return Err(ProtocolError::UnknownInit("runs through the manager").into());
        }
    };
    Ok(stats)
}

/// Serves one session: reads the init message and runs the responder it names,
/// as the manager would (without a handshake).
pub async fn respond<T, S>(
    transport: &mut T,
    store: &S,
    ctx: &ContextId,
) -> Result<SyncStats, BenchError>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
{
    let id = Identity::new(NodeId(2));
    let first = transport.recv().await?;
    let kind = match first.and_then(|m| m.body) {
        Some(Body::Init(init)) => init.kind,
        _ => None,
    };
    let stats = match kind {
        Some(Kind::HashComparison(init)) => {
            let init = HashComparisonResponderInit::try_from(&init)?;
            HashComparison::run_responder(transport, store, ctx, &id, init).await?
        }
        Some(Kind::LevelWise(init)) => {
            let init = LevelWiseResponderInit::try_from(&init)?;
            LevelWise::run_responder(transport, store, ctx, &id, init).await?
        }
        Some(Kind::Snapshot(init)) => {
            let init = SnapshotResponderInit::try_from(&init)?;
            Snapshot::run_responder(transport, store, ctx, &id, init).await?
        }
        _ => return Err(ProtocolError::UnknownInit("not a protocol init").into()),
    };
    Ok(stats)
}

/// Auto and Sketch: `SyncManager::sync` against a responder's
/// `SyncManager::handle_stream`.
async fn run_managed<S, TA, TB>(
    a: &Arc<S>,
    b: &Arc<S>,
    ta: &mut TA,
    tb: &mut TB,
    choice: ProtocolChoice,
) -> Result<Outcome, BenchError>
where
    S: Store + 'static,
    TA: SyncTransport,
    TB: SyncTransport,
{
    let manager = |store: &Arc<S>, node| {
        SyncManager::new(
            Arc::clone(store),
            Identity::new(NodeId(node)),
            ManagerConfig::default(),
        )
    };
    let (ma, mb) = (manager(a, 1), manager(b, 2));
    let ctx = context();
    let clock = Clock::start();
    let initiator = ma.sync(ta, &ctx, choice);
    let responder = mb.handle_stream(tb);
    let (report, served) = tokio::join!(initiator, responder);
    let (wall, cpu) = clock.stop();
    served?;
    let report = report?;
    let selected = match report.selection.protocol {
        Some(p) => format!("{} ({})", p.name(), report.selection.reason),
        None => format!("none ({})", report.selection.reason),
    };
    let t = report.transport;
    Ok(Outcome {
        bytes: t.bytes_sent + t.bytes_received,
        messages: t.messages_sent + t.messages_received,
        rounds: report.rounds(),
        wall,
        cpu,
        selected: Some(selected),
        converged: report.converged(),
        breakdown: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Base, Placement, Workload, converged};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn every_protocol_converges_a_diverged_pair() {
        let rt = runtime();
        let base = Base::new(1_500);
        for placement in [Placement::Scattered, Placement::Clustered] {
            let w = Workload::new(base.clone(), 40, placement);
            for protocol in Protocol::ALL {
                let (a, b) = w.memory_pair().unwrap();
                let out = rt.block_on(run(protocol, &a, &b)).unwrap();
                assert!(out.converged, "{protocol:?} {placement:?}");
                assert!(converged(&*a, &*b, &context(), 1_540).unwrap());
                assert!(out.bytes > w.payload_bytes(), "{protocol:?}");
                let managed = matches!(protocol, Protocol::Auto | Protocol::Sketch);
                assert_eq!(out.selected.is_some(), managed);
                let (a, b) = w.memory_pair().unwrap();
                let tallied = rt.block_on(run_with_breakdown(protocol, &a, &b)).unwrap();
                let kinds = tallied.breakdown.unwrap();
                let total: u64 = kinds.values().map(|k| k.bytes).sum();
                assert_eq!(
                    (total, tallied.bytes),
                    (out.bytes, out.bytes),
                    "{protocol:?}"
                );
            }
        }
    }

    #[test]
    fn auto_with_equal_roots_is_one_handshake() {
        let rt = runtime();
        let w = Workload::new(Base::new(100), 0, Placement::Scattered);
        let (a, b) = w.memory_pair().unwrap();
        let out = rt.block_on(run(Protocol::Auto, &a, &b)).unwrap();
        assert_eq!(out.rounds, 1);
        assert!(out.selected.unwrap().starts_with("none"));
    }
}
