//! Hybrid logical clock: versions that follow wall time yet never go backwards.

/// Bits of an HLC value that hold the logical counter under the millisecond part.
pub const HLC_LOGICAL_BITS: u32 = 16;

/// Largest lead over local wall time accepted from a remote clock value: a minute
/// covers real clock skew between hosts.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// A hybrid logical clock. Time is passed in (milliseconds since the Unix epoch),
/// so the clock is deterministic under simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hlc {
    last: u64,
}

impl Hlc {
    /// A clock that has issued nothing yet.
    pub fn new() -> Self {
        Hlc::default()
    }

    /// The next value for a local write at wall time `now_ms`: greater than every
    /// value issued or observed before.
    pub fn tick(&mut self, now_ms: u64) -> u64 {
        let physical = now_ms << HLC_LOGICAL_BITS;
        self.last = physical.max(self.last.saturating_add(1));
        self.last
    }

    /// Moves the clock past a value seen from another node at wall time `now_ms`.
    /// A value more than [`MAX_CLOCK_SKEW_MS`] ahead of `now_ms` is refused (returns
    /// false) so one peer with a broken or hostile clock cannot push every later
    /// local write to the end of the clock's range.
    pub fn observe(&mut self, remote: u64, now_ms: u64) -> bool {
        if remote > max_admissible_hlc(now_ms) {
            return false;
        }
        self.last = self.last.max(remote);
        true
    }

    /// The last value issued or observed.
    pub fn last(&self) -> u64 {
        self.last
    }
}

/// The largest clock value a node accepts from outside at wall time `now_ms`:
/// [`MAX_CLOCK_SKEW_MS`] ahead of it, and never the top of the range (`u64::MAX`
/// would make the key unwritable for ever).
pub fn max_admissible_hlc(now_ms: u64) -> u64 {
    let ms = now_ms.saturating_add(MAX_CLOCK_SKEW_MS);
    let top = u64::MAX - 1;
    ms.checked_shl(HLC_LOGICAL_BITS)
        .filter(|hlc| hlc >> HLC_LOGICAL_BITS == ms)
        .map_or(top, |hlc| hlc.min(top))
}

/// The wall clock a node checks received versions against: the system clock in a
/// node, a fixed time in deterministic tests and simulations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WallClock {
    /// The system clock, read at each check.
    #[default]
    System,
    /// A fixed time, in milliseconds since the Unix epoch.
    Fixed(u64),
}

impl WallClock {
    /// Milliseconds since the Unix epoch (0 for a system clock set before it).
    pub fn now_ms(&self) -> u64 {
        match self {
            WallClock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            WallClock::Fixed(ms) => *ms,
        }
    }

    /// True when a version with clock value `hlc` may enter a store from outside
    /// now: at most [`max_admissible_hlc`].
    pub fn admits(&self, hlc: u64) -> bool {
        hlc <= max_admissible_hlc(self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_monotonic_even_when_time_goes_back() {
        let mut c = Hlc::new();
        let a = c.tick(1000);
        let b = c.tick(1000);
        let d = c.tick(500);
        assert!(a < b && b < d);
        assert!(
            !c.observe(u64::MAX - 5, 1000),
            "a clock far ahead is refused"
        );
        let ahead = (1000 + MAX_CLOCK_SKEW_MS) << HLC_LOGICAL_BITS;
        assert!(c.observe(ahead, 1000));
        assert!(c.tick(1) > ahead);
    }

    #[test]
    fn admission_stops_at_the_allowed_skew_and_never_reaches_the_top() {
        let clock = WallClock::Fixed(1_000);
        let limit = (1_000 + MAX_CLOCK_SKEW_MS) << HLC_LOGICAL_BITS;
        assert!(clock.admits(limit) && !clock.admits(limit + 1));
        assert!(!WallClock::Fixed(u64::MAX).admits(u64::MAX));
        assert_eq!(max_admissible_hlc(u64::MAX), u64::MAX - 1);
        assert_eq!(max_admissible_hlc(1 << 50), u64::MAX - 1);
        assert!(WallClock::System.now_ms() > 1_600_000_000_000, "after 2020");
        assert!(WallClock::System.admits(Hlc::new().tick(WallClock::System.now_ms())));
    }
}
