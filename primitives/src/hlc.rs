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
        let limit = now_ms.saturating_add(MAX_CLOCK_SKEW_MS) << HLC_LOGICAL_BITS;
        if remote > limit {
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
}
