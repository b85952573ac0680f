//! The shape every protocol state machine has, the sans-IO timers that bound a
//! session, and the one async driver that runs a machine over a transport.
//!
//! A machine never touches the network or the clock: messages come in through
//! [`Machine::handle`], messages go out through [`Machine::poll_transmit`], and the
//! current time arrives as a `now` argument. The store is passed in because it is
//! synchronous and local. [`Timers`] decides, from `now` alone, when the idle timeout
//! and the session deadline expire. [`drive`] is the only place that awaits or reads
//! a clock.

mod driver;
mod endpoint;
mod timers;

pub use driver::drive;
pub use endpoint::Machine;
pub(crate) use endpoint::unexpected;
pub use timers::{Timers, makes_progress};
