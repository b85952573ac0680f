//! Steps an initiator machine and a responder machine against each other in memory,
//! with no transport, no runtime and a virtual clock: deterministic, for tests and
//! benches.
//!
//! Each step delivers one flight of messages each way and advances the virtual
//! clock by the configured latency. Both sides run the same [`Timers`] as over a
//! real transport, so an idle timeout or the session deadline fires here exactly as
//! it would there, without anyone sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use prost::Message;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::LENGTH_PREFIX_BYTES;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{ProtocolError, Role, Store, StreamMessage};

use crate::machine::{Machine, Timers};

/// Virtual time one flight of messages takes by default: a LAN hop, so that a
/// bounded run of many steps stays far from the idle timeout and the deadline.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(1);

/// How a paired run is simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairConfig {
    /// Scheduling steps before the run gives up with [`PairError::StepLimit`].
    pub max_steps: usize,
    /// Virtual time one flight of messages takes.
    pub latency: Duration,
}

impl PairConfig {
    /// At most `max_steps` steps of [`DEFAULT_LATENCY`] each.
    pub fn new(max_steps: usize) -> Self {
        PairConfig {
            max_steps,
            latency: DEFAULT_LATENCY,
        }
    }
}

/// What crossed between the two machines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairReport {
    /// Messages delivered, both ways (the init message included).
    pub messages: u64,
    /// Bytes those messages take on the wire, length prefixes included.
    pub bytes: u64,
    /// Scheduling steps taken.
    pub steps: usize,
    /// Virtual time the run took.
    pub elapsed: Duration,
}

/// Why a paired run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// One machine failed, or its timers expired.
    #[error("{} failed", .side.name())]
    Machine {
        /// Which side.
        side: Role,
        /// Its error.
        #[source]
        kind: SyncErrorKind,
    },
    /// Neither side finished within the step budget.
    #[error("no completion within {0} steps")]
    StepLimit(usize),
    /// Neither side can make progress.
    #[error("both sides are waiting for each other")]
    Stalled,
}

/// Runs both machines to completion with [`PairConfig::new`]`(max_steps)`.
pub fn run_pair<SA, SB, A, B>(
    initiator: &mut A,
    store_a: &SA,
    responder: &mut B,
    store_b: &SB,
    max_steps: usize,
) -> Result<PairReport, PairError>
where
    SA: Store + ?Sized,
    SB: Store + ?Sized,
    A: Machine<SA>,
    B: Machine<SB>,
{
    let config = PairConfig::new(max_steps);
    run_pair_with(initiator, store_a, responder, store_b, config)
}

/// Runs both machines to completion as `config` says. The initiator's first message
/// must be its init payload; it is consumed here, as the manager would, before the
/// responder starts.
pub fn run_pair_with<SA, SB, A, B>(
    initiator: &mut A,
    store_a: &SA,
    responder: &mut B,
    store_b: &SB,
    config: PairConfig,
) -> Result<PairReport, PairError>
where
    SA: Store + ?Sized,
    SB: Store + ?Sized,
    A: Machine<SA>,
    B: Machine<SB>,
{
    // The virtual clock's epoch; only differences from it matter.
    let start = Instant::now();
    let mut report = PairReport::default();
    let mut a = Side::new(Role::Initiator, initiator, store_a, start);
    let mut b = Side::new(Role::Responder, responder, store_b, start);
    a.open(start, &mut report)?;
    let mut now = start;
    while report.steps < config.max_steps {
        report.steps += 1;
        match step(&mut a, &mut b, &mut now, config.latency, &mut report)? {
            Flow::Done => {
                report.elapsed = now - start;
                return Ok(report);
            }
            Flow::Stalled => return Err(PairError::Stalled),
            Flow::Continue => {}
        }
    }
    Err(PairError::StepLimit(config.max_steps))
}

/// What one step left the run with.
enum Flow {
    Continue,
    Done,
    Stalled,
}

/// Both sides send what they have, wait one flight of `latency`, then receive.
fn step<SA, SB, A, B>(
    a: &mut Side<'_, SA, A>,
    b: &mut Side<'_, SB, B>,
    now: &mut Instant,
    latency: Duration,
    report: &mut PairReport,
) -> Result<Flow, PairError>
where
    SA: Store + ?Sized,
    SB: Store + ?Sized,
    A: Machine<SA>,
    B: Machine<SB>,
{
    let mut progressed = a.drain(*now, &mut b.inbox, report)?;
    progressed |= b.drain(*now, &mut a.inbox, report)?;
    if a.is_done() && b.is_done() {
        return Ok(Flow::Done);
    }
    a.wait(*now)?;
    b.wait(*now)?;
    *now += latency;
    a.check_timeout(*now)?;
    b.check_timeout(*now)?;
    progressed |= b.deliver(*now)?;
    progressed |= a.deliver(*now)?;
    Ok(if progressed {
        Flow::Continue
    } else {
        Flow::Stalled
    })
}

/// One machine with its store, timers and the messages in flight to it.
struct Side<'a, S: ?Sized, M> {
    role: Role,
    machine: &'a mut M,
    store: &'a S,
    timers: Timers,
    inbox: VecDeque<StreamMessage>,
}

impl<'a, S: Store + ?Sized, M: Machine<S>> Side<'a, S, M> {
    fn new(role: Role, machine: &'a mut M, store: &'a S, now: Instant) -> Self {
        Side {
            role,
            machine,
            store,
            timers: Timers::new(now),
            inbox: VecDeque::new(),
        }
    }

    fn fail(&self, kind: SyncErrorKind) -> PairError {
        PairError::Machine {
            side: self.role,
            kind,
        }
    }

    fn is_done(&self) -> bool {
        self.machine.is_done()
    }

    /// Takes the init payload the initiator must open with.
    fn open(&mut self, now: Instant, report: &mut PairReport) -> Result<(), PairError> {
        let first = self.machine.poll_transmit(self.store, now);
        match first.map_err(|kind| self.fail(kind))? {
            Some(
                msg @ StreamMessage {
                    body: Some(Body::Init(_)),
                },
            ) => {
                count(report, &msg);
                Ok(())
            }
            _ => Err(self.fail(
                ProtocolError::Unexpected {
                    expected: "init payload first",
                    got: "something else",
                }
                .into(),
            )),
        }
    }

    /// Sends everything the machine has; true if anything was sent.
    fn drain(
        &mut self,
        now: Instant,
        out: &mut VecDeque<StreamMessage>,
        report: &mut PairReport,
    ) -> Result<bool, PairError> {
        let mut sent = false;
        while let Some(msg) = self
            .machine
            .poll_transmit(self.store, now)
            .map_err(|kind| self.fail(kind))?
        {
            count(report, &msg);
            out.push_back(msg);
            sent = true;
        }
        Ok(sent)
    }

    /// Starts (or continues) waiting for the peer, unless done.
    fn wait(&mut self, now: Instant) -> Result<(), PairError> {
        if self.is_done() {
            return Ok(());
        }
        let idle = self.machine.idle_timeout();
        match self.timers.wait(now, idle) {
            Ok(_) => Ok(()),
            Err(kind) => Err(self.fail(kind)),
        }
    }

    fn check_timeout(&mut self, now: Instant) -> Result<(), PairError> {
        self.timers
            .handle_timeout(now)
            .map_err(|kind| self.fail(kind))
    }

    /// Feeds the flight that arrived; true if there was one.
    fn deliver(&mut self, now: Instant) -> Result<bool, PairError> {
        if self.inbox.is_empty() {
            return Ok(false);
        }
        self.timers.on_message();
        while let Some(msg) = self.inbox.pop_front() {
            let handled = self.machine.handle(self.store, now, msg);
            handled.map_err(|kind| self.fail(kind))?;
        }
        Ok(true)
    }
}

fn count(report: &mut PairReport, msg: &StreamMessage) {
    report.messages += 1;
    report.bytes += (msg.encoded_len() + LENGTH_PREFIX_BYTES) as u64;
}

#[cfg(test)]
mod tests {
    use synctree_primitives::limits::{IDLE_TIMEOUT, SESSION_DEADLINE};
    use synctree_primitives::wire::init_payload::Kind;
    use synctree_primitives::wire::{HashComparisonInit, SnapshotAck};
    use synctree_primitives::{ContextId, TransportError};
    use synctree_store::MemoryStore;

    use super::*;
    use crate::executor::init_message;

    /// Opens (as initiator), then answers every message with one message of its own.
    struct Echo {
        init: Option<StreamMessage>,
        owed: usize,
    }

    impl Echo {
        fn initiator(owed: usize) -> Self {
            let context = ContextId::new("c").expect("valid");
            let kind = Kind::HashComparison(HashComparisonInit::default());
            Echo {
                init: Some(init_message(&context, kind)),
                owed,
            }
        }

        fn responder() -> Self {
            Echo {
                init: None,
                owed: 0,
            }
        }
    }

    impl<S: Store + ?Sized> Machine<S> for Echo {
        fn handle(&mut self, _: &S, _: Instant, _: StreamMessage) -> Result<(), SyncErrorKind> {
            self.owed += 1;
            Ok(())
        }

        fn poll_transmit(
            &mut self,
            _: &S,
            _: Instant,
        ) -> Result<Option<StreamMessage>, SyncErrorKind> {
            if let Some(init) = self.init.take() {
                return Ok(Some(init));
            }
            if self.owed == 0 {
                return Ok(None);
            }
            self.owed -= 1;
            let ack = SnapshotAck::default();
            Ok(Some(StreamMessage::new(Body::SnapshotAck(ack))))
        }

        fn is_done(&self) -> bool {
            false
        }

        fn phase(&self) -> &'static str {
            "echoing"
        }
    }

    fn run(initiator_owed: usize, config: PairConfig) -> Result<PairReport, PairError> {
        let store = MemoryStore::new();
        let (mut a, mut b) = (Echo::initiator(initiator_owed), Echo::responder());
        run_pair_with(&mut a, &store, &mut b, &store, config)
    }

    #[test]
    fn a_flight_slower_than_the_idle_timeout_times_out() {
        let config = PairConfig {
            latency: IDLE_TIMEOUT + Duration::from_secs(1),
            ..PairConfig::new(10)
        };
        let result = run(0, config);
        let timed_out = matches!(
            result,
            Err(PairError::Machine {
                side: Role::Initiator,
                kind: SyncErrorKind::Transport(TransportError::Timeout(t)),
            }) if t == IDLE_TIMEOUT
        );
        assert!(timed_out, "{result:?}");
        assert!(matches!(
            run(0, PairConfig::new(10)),
            Err(PairError::Stalled)
        ));
    }

    /// Every side hears from the other every two flights (well inside the idle
    /// timeout), so only the session deadline can end the exchange: the last wait
    /// is cut short at the deadline, as a transport's receive would be.
    #[test]
    fn an_endless_exchange_is_cut_at_the_session_deadline() {
        let latency = Duration::from_secs(10);
        let flights = SESSION_DEADLINE.as_secs() / latency.as_secs();
        let steps = |n: u64| PairConfig {
            latency,
            ..PairConfig::new(usize::try_from(n).unwrap_or(usize::MAX))
        };
        let before = flights - 2;
        let result = run(1, steps(before));
        let limit = usize::try_from(before).unwrap_or(usize::MAX);
        assert!(
            matches!(result, Err(PairError::StepLimit(l)) if l == limit),
            "{result:?}"
        );
        let result = run(1, steps(2 * flights));
        let cut = matches!(
            result,
            Err(PairError::Machine {
                kind: SyncErrorKind::Deadline(_)
                    | SyncErrorKind::Transport(TransportError::Timeout(_)),
                ..
            })
        );
        assert!(cut, "{result:?}");
    }
}
