//! The pump: one task per simulated connection that moves bytes between the
//! session's [`Pipe`] and the network stream, applying the connection's
//! [`FaultPlan`] and bandwidth cap.
//!
//! It polls both directions in a fixed order (no `select!`), so given the same
//! inputs at the same virtual instants it makes the same writes to the network.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::pace::Pacer;
use super::pipe::{Outbound, Pipe};
use super::{Fault, FaultPlan, SimFault};

/// Bytes read from the network at once.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes handed to the network in one write: a simulated segment.
const WRITE_CHUNK: usize = 64 * 1024;

/// How long a connection whose session dropped it keeps sending what was queued
/// (then its FIN) before giving up, like a kernel socket lingering after `close`.
pub const LINGER: Duration = Duration::from_secs(30);

/// What one direction did when polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Moved bytes or changed state: poll again.
    Progress,
    /// Waiting for the network or the session (a waker is registered).
    Blocked,
    /// Waiting for the bandwidth cap until then.
    Wait(Instant),
    /// The connection is over.
    Done,
}

/// Moves bytes between a [`Pipe`] and a network stream until the connection ends.
pub(crate) struct Pump<S> {
    stream: S,
    pipe: Pipe,
    plan: FaultPlan,
    /// Bytes moved through this end, both directions.
    moved: u64,
    stalled: bool,
    /// Taken from the pipe, not yet accepted by the network.
    pending: Bytes,
    read_open: bool,
    write_open: bool,
    out_pace: Pacer,
    in_pace: Pacer,
    timer: Pin<Box<Sleep>>,
    linger_until: Option<Instant>,
    buf: Box<[u8]>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pump<S> {
    pub(crate) fn new(stream: S, pipe: Pipe, plan: FaultPlan) -> Self {
        Pump {
            stream,
            pipe,
            plan,
            moved: 0,
            stalled: false,
            pending: Bytes::new(),
            read_open: true,
            write_open: true,
            out_pace: Pacer::new(plan.bandwidth),
            in_pace: Pacer::new(plan.bandwidth),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            linger_until: None,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// How many of `want` bytes may move before the planned fault; 0 means the
    /// fault is due.
    fn budget(&self, want: usize) -> usize {
        match self.plan.fault() {
            Some((at, _)) if !self.stalled => {
                let left = at.saturating_sub(self.moved);
                usize::try_from(left).map_or(want, |left| left.min(want))
            }
            _ => want,
        }
    }

    /// Applies the planned fault now.
    fn trigger(&mut self) -> Step {
        match self.plan.fault() {
            Some((_, Fault::Cut)) => {
                let fault = SimFault::Cut {
                    after_bytes: self.moved,
                };
                self.pipe.fail(io::ErrorKind::ConnectionReset, fault);
                Step::Done
            }
            Some((_, Fault::Stall)) => {
                self.stalled = true;
                self.pending.clear();
                Step::Progress
            }
            None => Step::Progress,
        }
    }

    fn network_failed(&mut self, error: &io::Error) -> Step {
        let fault = SimFault::Network {
            message: error.to_string(),
        };
        self.pipe.fail(error.kind(), fault);
        Step::Done
    }

    /// Network → session.
    fn step_read(&mut self, cx: &mut Context<'_>, now: Instant) -> Step {
        if !self.read_open || self.stalled || self.pipe.is_dropped() {
            return Step::Blocked;
        }
        let room = self.pipe.inbound_room();
        if room == 0 {
            return Step::Blocked;
        }
        if let Some(at) = self.in_pace.wait_until(now) {
            return Step::Wait(at);
        }
        let max = self.budget(self.in_pace.chunk(room.min(READ_CHUNK)));
        if max == 0 {
            return self.trigger();
        }
        let mut buf = ReadBuf::new(&mut self.buf[..max]);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Pending => Step::Blocked,
            Poll::Ready(Err(e)) => self.network_failed(&e),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                self.read_open = false;
                self.pipe.set_eof();
                Step::Progress
            }
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                self.pipe.deliver(buf.filled());
                self.moved += n as u64;
                self.in_pace.charge(n, now);
                Step::Progress
            }
        }
    }

    /// Session → network.
    fn step_write(&mut self, cx: &mut Context<'_>, now: Instant) -> Step {
        if self.pending.is_empty()
            && let Some(step) = self.refill(cx)
        {
            return step;
        }
        if !self.write_open {
            return Step::Blocked;
        }
        if let Some(at) = self.out_pace.wait_until(now) {
            return Step::Wait(at);
        }
        match Pin::new(&mut self.stream).poll_write(cx, &self.pending) {
            Poll::Pending => Step::Blocked,
            Poll::Ready(Err(e)) => self.network_failed(&e),
            Poll::Ready(Ok(n)) => {
                self.pending.advance(n);
                self.moved += n as u64;
                self.out_pace.charge(n, now);
                Step::Progress
            }
        }
    }

    /// Takes the next chunk from the pipe into `pending`; `Some` when there is no
    /// chunk to write and the step is decided.
    fn refill(&mut self, cx: &mut Context<'_>) -> Option<Step> {
        let max = self.budget(self.out_pace.chunk(WRITE_CHUNK));
        if max == 0 && self.pipe.has_outbound() {
            return Some(self.trigger());
        }
        let step = match self.pipe.take_outbound(max) {
            Outbound::Data(_) if self.stalled || !self.write_open => Step::Progress,
            Outbound::Data(data) => {
                self.pending = data;
                return None;
            }
            Outbound::Nothing => Step::Blocked,
            Outbound::Shutdown if self.stalled || !self.write_open => Step::Blocked,
            Outbound::Dropped if self.stalled || !self.write_open => Step::Done,
            Outbound::Shutdown | Outbound::Dropped => self.shutdown(cx),
        };
        Some(step)
    }

    /// Sends our FIN.
    fn shutdown(&mut self, cx: &mut Context<'_>) -> Step {
        match Pin::new(&mut self.stream).poll_shutdown(cx) {
            Poll::Ready(Ok(())) => {
                self.write_open = false;
                Step::Progress
            }
            Poll::Ready(Err(e)) => self.network_failed(&e),
            Poll::Pending => Step::Blocked,
        }
    }

    /// A session that dropped its end gets [`LINGER`] for its bytes to leave.
    fn linger(&mut self, now: Instant) -> Option<Instant> {
        if !self.pipe.is_dropped() {
            return None;
        }
        Some(*self.linger_until.get_or_insert(now + LINGER))
    }

    fn poll_once(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            // Registered first, so a change the session makes while we look wakes us.
            self.pipe.register_pump(cx);
            let now = Instant::now();
            let linger = self.linger(now);
            if linger.is_some_and(|until| now >= until) {
                return Poll::Ready(());
            }
            let steps = [self.step_read(cx, now), self.step_write(cx, now)];
            if steps.contains(&Step::Done) {
                return Poll::Ready(());
            }
            if steps.contains(&Step::Progress) {
                continue;
            }
            let wake = steps
                .iter()
                .filter_map(|s| match s {
                    Step::Wait(at) => Some(*at),
                    _ => None,
                })
                .chain(linger)
                .min();
            let Some(at) = wake else {
                return Poll::Pending;
            };
            self.timer.as_mut().reset(at);
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Pump<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().poll_once(cx)
    }
}
