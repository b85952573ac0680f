//! A bandwidth cap as a serialisation delay: after `n` bytes the direction is busy
//! for `n / bytes_per_second`, on tokio's clock (turmoil's virtual clock in a
//! simulation).

use std::num::NonZeroU64;
use std::time::Duration;

use tokio::time::Instant;

/// Longest stretch of link time one chunk may occupy: keeps a capped direction's
/// chunks small enough that the two directions and the fault offsets interleave
/// at a fine grain.
const MAX_CHUNK_TIME: Duration = Duration::from_millis(10);

/// Paces one direction of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacer {
    bytes_per_second: Option<NonZeroU64>,
    /// When the link is free again.
    free_at: Option<Instant>,
}

impl Pacer {
    /// A pacer for `bytes_per_second` (`None`: unlimited).
    pub(crate) fn new(bytes_per_second: Option<NonZeroU64>) -> Self {
        Pacer {
            bytes_per_second,
            free_at: None,
        }
    }

    /// When the next chunk may go, if that is later than `now`.
    pub(crate) fn wait_until(&self, now: Instant) -> Option<Instant> {
        self.free_at.filter(|at| *at > now)
    }

    /// The largest chunk to move at once, at most `limit`.
    pub(crate) fn chunk(&self, limit: usize) -> usize {
        match self.bytes_per_second {
            None => limit,
            Some(rate) => {
                let per_chunk = rate.get() * MAX_CHUNK_TIME.as_millis() as u64 / 1000;
                usize::try_from(per_chunk.max(1)).map_or(limit, |c| c.min(limit))
            }
        }
    }

    /// Records that `n` bytes went at `now`.
    pub(crate) fn charge(&mut self, n: usize, now: Instant) {
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        let nanos = (n as u128 * 1_000_000_000).div_ceil(u128::from(rate.get()));
        let busy = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        let start = self.free_at.map_or(now, |at| at.max(now));
        self.free_at = Some(start + busy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_direction_is_busy_for_the_bytes_it_sent() {
        let now = Instant::now();
        let mut pacer = Pacer::new(NonZeroU64::new(1000));
        assert_eq!(pacer.chunk(1 << 20), 10, "10 ms of a 1000 B/s link");
        assert_eq!(pacer.wait_until(now), None);
        pacer.charge(10, now);
        pacer.charge(10, now);
        assert_eq!(pacer.wait_until(now), Some(now + Duration::from_millis(20)));

        let mut free = Pacer::new(None);
        free.charge(1 << 30, now);
        assert_eq!((free.chunk(77), free.wait_until(now)), (77, None));
    }
}
