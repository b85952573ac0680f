//! Steps an initiator machine and a responder machine against each other in memory,
//! with no transport, no runtime and no clock: deterministic, for tests and benches.

use std::collections::VecDeque;

use prost::Message;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::LENGTH_PREFIX_BYTES;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{Role, Store, StreamMessage};

use crate::machine::Machine;

/// What crossed between the two machines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairReport {
    /// Messages delivered, both ways (the init message included).
    pub messages: u64,
    /// Bytes those messages take on the wire, length prefixes included.
    pub bytes: u64,
    /// Scheduling steps taken.
    pub steps: usize,
}

/// Why a paired run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// One machine failed.
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

/// Runs both machines to completion. The initiator's first message must be its init
/// payload; it is consumed here, as the manager would, before the responder starts.
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
    let fail = |side| move |kind| PairError::Machine { side, kind };
    let mut report = PairReport::default();
    let mut to_b: VecDeque<StreamMessage> = VecDeque::new();
    let mut to_a: VecDeque<StreamMessage> = VecDeque::new();
    let first = initiator
        .poll_transmit(store_a)
        .map_err(fail(Role::Initiator))?;
    match first {
        Some(
            msg @ StreamMessage {
                body: Some(Body::Init(_)),
            },
        ) => count(&mut report, &msg),
        _ => return Err(fail(Role::Initiator)(protocol_error("init payload first"))),
    }
    while report.steps < max_steps {
        report.steps += 1;
        let mut progressed =
            drain(initiator, store_a, &mut to_b, &mut report).map_err(fail(Role::Initiator))?;
        progressed |=
            drain(responder, store_b, &mut to_a, &mut report).map_err(fail(Role::Responder))?;
        if initiator.is_done() && responder.is_done() {
            return Ok(report);
        }
        progressed |= deliver(responder, store_b, &mut to_b).map_err(fail(Role::Responder))?;
        progressed |= deliver(initiator, store_a, &mut to_a).map_err(fail(Role::Initiator))?;
        if !progressed {
            return Err(PairError::Stalled);
        }
    }
    Err(PairError::StepLimit(max_steps))
}

fn protocol_error(expected: &'static str) -> SyncErrorKind {
    synctree_primitives::ProtocolError::Unexpected {
        expected,
        got: "something else",
    }
    .into()
}

fn count(report: &mut PairReport, msg: &StreamMessage) {
    report.messages += 1;
    report.bytes += (msg.encoded_len() + LENGTH_PREFIX_BYTES) as u64;
}

fn drain<S: Store + ?Sized, M: Machine<S>>(
    machine: &mut M,
    store: &S,
    out: &mut VecDeque<StreamMessage>,
    report: &mut PairReport,
) -> Result<bool, SyncErrorKind> {
    let mut sent = false;
    while let Some(msg) = machine.poll_transmit(store)? {
        count(report, &msg);
        out.push_back(msg);
        sent = true;
    }
    Ok(sent)
}

fn deliver<S: Store + ?Sized, M: Machine<S>>(
    machine: &mut M,
    store: &S,
    inbox: &mut VecDeque<StreamMessage>,
) -> Result<bool, SyncErrorKind> {
    let delivered = !inbox.is_empty();
    while let Some(msg) = inbox.pop_front() {
        machine.handle(store, msg)?;
    }
    Ok(delivered)
}
