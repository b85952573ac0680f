//! [`SimTransport`]: a [`FramedTransport`] over a simulated connection, with the
//! faults turmoil's network lacks.
//!
//! ```text
//!  session ── FramedTransport<SimStream> ── Pipe ── pump task ── network stream
//!                 (unchanged framing)     (socket    │ bandwidth cap (virtual clock)
//!                                          buffers)  │ cut after N bytes → typed error
//!                                                    │ stall after N bytes → timeouts
//!                                                    └ turmoil::net::TcpStream: latency,
//!                                                      partitions, hold/release, hosts
//! ```
//!
//! turmoil's simulated TCP brings hosts, latency and partitions on a virtual clock
//! driven by a seeded RNG. A [`FaultPlan`] adds, per connection: a bandwidth cap
//! (bytes per virtual second, each direction), a cut after a number of bytes (the
//! session's next read or write fails with [`TransportError::Io`] of kind
//! `ConnectionReset` whose source is [`SimFault::Cut`]) and a stall after a
//! number of bytes (nothing more is delivered either way, so the session's
//! timeouts fire). [`SimFaults::plan`] draws a plan from a seed, so the same seed
//! gives the same connection, byte for byte.
//!
//! The pump is a task of its own so that what reaches the network depends on
//! virtual time and on what the session wrote, never on the order in which the
//! session's `select!` polled its branches: runs are reproducible even though
//! tokio randomises `select!`.

mod pace;
mod pipe;
mod pump;

use std::io;
use std::num::NonZeroU64;

use async_trait::async_trait;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use synctree_primitives::{StreamMessage, SyncTransport, TransportError, TransportStats};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::FramedTransport;

pub use pipe::{PIPE_CAPACITY, PIPE_INBOUND_CAPACITY, SimStream};
pub use pump::LINGER;

/// Why a simulated connection failed; the source of the [`io::Error`] inside
/// [`TransportError::Io`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimFault {
    /// The connection's [`FaultPlan`] cut it.
    #[error("simulated connection cut after {after_bytes} bytes")]
    Cut {
        /// Bytes that had moved through this end, both directions.
        after_bytes: u64,
    },
    /// The simulated network failed the connection (peer reset, host restarted).
    #[error("simulated network failed the connection: {message}")]
    Network {
        /// The network stream's error.
        message: String,
    },
}

/// A planned fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail both directions with [`SimFault::Cut`].
    Cut,
    /// Stop delivering both directions; writes are accepted and dropped.
    Stall,
}

/// What happens to one connection. Offsets count bytes through this end in both
/// directions; a fault whose offset the session never reaches never happens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The fault and the byte offset at which it strikes.
    pub fault: Option<(u64, Fault)>,
    /// Bytes per virtual second in each direction (`None`: unlimited).
    pub bandwidth: Option<NonZeroU64>,
}

impl FaultPlan {
    /// A connection with no fault and no cap.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// The planned fault and its offset.
    pub fn fault(&self) -> Option<(u64, Fault)> {
        self.fault
    }
}

/// Fault rates of a simulated network, from which each connection's
/// [`FaultPlan`] is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimFaults {
    /// Probability that a connection is cut (loss, seen as connection failure).
    pub loss: f64,
    /// Probability that a connection stalls.
    pub stall: f64,
    /// Faults strike at an offset drawn uniformly from `0..fault_window` bytes.
    pub fault_window: u64,
    /// Bytes per virtual second in each direction (`None`: unlimited).
    pub bandwidth: Option<NonZeroU64>,
}

/// Default [`SimFaults::fault_window`]: about a handshake and a round of requests,
/// so nearly every planned fault strikes and `loss` is close to the fraction of
/// sessions a cut fails.
pub const DEFAULT_FAULT_WINDOW: u64 = 1024;

impl Default for SimFaults {
    /// No faults, no cap; faults strike within the first [`DEFAULT_FAULT_WINDOW`]
    /// bytes when enabled.
    fn default() -> Self {
        SimFaults {
            loss: 0.0,
            stall: 0.0,
            fault_window: DEFAULT_FAULT_WINDOW,
            bandwidth: None,
        }
    }
}

impl SimFaults {
    /// The plan of the connection seeded with `seed`: always the same three draws,
    /// so plans of later connections do not depend on earlier outcomes.
    pub fn plan(&self, seed: u64) -> FaultPlan {
        let mut rng = SmallRng::seed_from_u64(seed);
        let roll: f64 = rng.random();
        let offset = rng.random_range(0..self.fault_window.max(1));
        let fault = if roll < self.loss {
            Some((offset, Fault::Cut))
        } else if roll < self.loss + self.stall {
            Some((offset, Fault::Stall))
        } else {
            None
        };
        FaultPlan {
            fault,
            bandwidth: self.bandwidth,
        }
    }
}

/// A [`SyncTransport`] over a simulated connection: [`FramedTransport`] on a
/// [`SimStream`] whose bytes a pump task moves to and from the network under a
/// [`FaultPlan`].
#[derive(Debug)]
pub struct SimTransport {
    inner: FramedTransport<SimStream>,
    plan: FaultPlan,
}

impl SimTransport {
    /// Wraps `stream` (a `turmoil::net::TcpStream`, or any byte stream), spawning
    /// its pump on the current tokio runtime. `peer` labels the other end.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (like `tokio::spawn`).
    pub fn new<S>(stream: S, peer: impl Into<String>, plan: FaultPlan) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let pipe = pipe::Pipe::default();
        tokio::spawn(pump::Pump::new(stream, pipe.clone(), plan));
        SimTransport {
            inner: FramedTransport::new(pipe.session_end(), peer),
            plan,
        }
    }

    /// Connects to `addr` (`"host:port"`) over turmoil's simulated network. Must
    /// run on a turmoil host. Under a partition the connection attempt never
    /// completes: callers bound it with a timeout.
    pub async fn connect(addr: &str, plan: FaultPlan) -> io::Result<Self> {
        let stream = turmoil::net::TcpStream::connect(addr).await?;
        Ok(SimTransport::new(stream, addr, plan))
    }

    /// This connection's plan.
    pub fn plan(&self) -> FaultPlan {
        self.plan
    }
}

/// The [`SimFault`] behind a transport error, if a simulated fault caused it.
pub fn sim_fault(error: &TransportError) -> Option<&SimFault> {
    match error {
        TransportError::Io(e) => e.get_ref()?.downcast_ref(),
        _ => None,
    }
}

#[async_trait]
impl SyncTransport for SimTransport {
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.inner.send(message).await
    }

    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
        self.inner.recv().await
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.inner.close().await
    }

    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }

    fn peer(&self) -> &str {
        self.inner.peer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_seed_and_the_rates() {
        let faults = SimFaults {
            loss: 0.3,
            stall: 0.2,
            ..SimFaults::default()
        };
        assert_eq!(faults.plan(9), faults.plan(9));
        let plans: Vec<_> = (0..1000).map(|seed| faults.plan(seed).fault).collect();
        let cuts = plans.iter().flatten().filter(|f| f.1 == Fault::Cut).count();
        let stalls = plans
            .iter()
            .flatten()
            .filter(|f| f.1 == Fault::Stall)
            .count();
        assert!((250..350).contains(&cuts), "{cuts} cuts");
        assert!((150..250).contains(&stalls), "{stalls} stalls");
        assert!(
            plans
                .iter()
                .flatten()
                .all(|(at, _)| *at < DEFAULT_FAULT_WINDOW)
        );
        assert_eq!(SimFaults::default().plan(1), FaultPlan::none());
    }
}
