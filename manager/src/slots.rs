//! Session slots a newcomer may take from the holder that has gone longest
//! without progress.
//!
//! Per-address caps stop one address from holding every slot, but many addresses
//! (one IPv6 prefix is plenty) could still fill them with sessions that send one
//! frame and then nothing. So when every slot is taken, a connection whose first
//! frame has arrived evicts the holder whose last *progress* (a received message
//! that [`makes_progress`]) is oldest, provided that was at least
//! [`ManagerConfig::evict_idle_after`](crate::ManagerConfig::evict_idle_after)
//! ago: an idle holder gives way, a working session is never cut off. The evicted
//! session is told `BUSY` and closed; for a moment the node serves one session
//! over its cap while that refusal goes out (at most a second).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use synctree_primitives::StreamMessage;
use synctree_primitives::tap::TransportHook;
use synctree_protocols::machine::makes_progress;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The session slots of one serve loop.
#[derive(Debug)]
pub(crate) struct SlotTable {
    holders: Mutex<Vec<Option<Holder>>>,
    capacity: usize,
    evict_idle_after: Duration,
    base: Instant,
    next_id: AtomicU64,
}

/// One occupied slot, as the table sees it.
#[derive(Debug)]
struct Holder {
    id: u64,
    progress: Progress,
    evicted: Arc<Notify>,
}

/// A held slot: given back on drop, unless a newcomer already took it over.
#[derive(Debug)]
pub(crate) struct Slot {
    table: Arc<SlotTable>,
    index: usize,
    id: u64,
    /// Marked by the session's transport on every message that makes progress.
    pub(crate) progress: Progress,
    /// Notified when a newcomer evicts this session.
    pub(crate) evicted: Arc<Notify>,
}

/// When a session last made progress, in milliseconds since its table's base.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    base: Instant,
    last_ms: Arc<AtomicU64>,
}

/// How a slot was obtained.
#[derive(Debug)]
pub(crate) enum Acquired {
    /// A free slot.
    Free(Slot),
    /// The slot of a holder idle for at least the eviction threshold, told to go.
    Evicted(Slot),
}

impl Progress {
    fn new(base: Instant) -> Self {
        let progress = Progress {
            base,
            last_ms: Arc::new(AtomicU64::new(0)),
        };
        progress.mark();
        progress
    }

    /// Records progress now.
    pub(crate) fn mark(&self) {
        self.last_ms.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.elapsed_ms().saturating_sub(last))
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl SlotTable {
    /// `capacity` slots (at least one); holders idle for `evict_idle_after` may be evicted.
    pub(crate) fn new(capacity: usize, evict_idle_after: Duration) -> Arc<Self> {
        let capacity = capacity.max(1);
        Arc::new(SlotTable {
            holders: Mutex::new(Vec::with_capacity(capacity)),
            capacity,
            evict_idle_after,
            base: Instant::now(),
            next_id: AtomicU64::new(0),
        })
    }

    /// A free slot, else the slot of the holder idle longest if it has been idle
    /// for the threshold, else `None` (the caller answers `BUSY`).
    pub(crate) fn acquire(self: &Arc<Self>) -> Option<Acquired> {
        let mut holders = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = holders.iter().position(Option::is_none) {
            return Some(Acquired::Free(self.occupy(&mut holders, index)));
        }
        if holders.len() < self.capacity {
            holders.push(None);
            let index = holders.len() - 1;
            return Some(Acquired::Free(self.occupy(&mut holders, index)));
        }
        let (index, idle) = holders
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, h.progress.idle())))
            .max_by_key(|&(_, idle)| idle)?;
        if idle < self.evict_idle_after {
            return None;
        }
        if let Some(old) = holders.get(index).and_then(Option::as_ref) {
            old.evicted.notify_one();
        }
        Some(Acquired::Evicted(self.occupy(&mut holders, index)))
    }

    fn occupy(self: &Arc<Self>, holders: &mut [Option<Holder>], index: usize) -> Slot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let progress = Progress::new(self.base);
        let evicted = Arc::new(Notify::new());
        if let Some(place) = holders.get_mut(index) {
            *place = Some(Holder {
                id,
                progress: progress.clone(),
                evicted: Arc::clone(&evicted),
            });
        }
        Slot {
            table: Arc::clone(self),
            index,
            id,
            progress,
            evicted,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut holders = self
            .table
            .holders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(place) = holders.get_mut(self.index)
            && place.as_ref().is_some_and(|h| h.id == self.id)
        {
            *place = None;
        }
    }
}

/// A [`TransportHook`] that marks a slot's [`Progress`] on every received message
/// that makes progress (sending does not count: a peer reading slowly is not
/// working). Wrap a session's transport in a [`Tap`](synctree_primitives::tap::Tap) with it.
pub(crate) struct ProgressHook(pub(crate) Progress);

impl TransportHook for ProgressHook {
    fn after_recv(&mut self, message: Option<&StreamMessage>) {
        if message.is_some_and(makes_progress) {
            self.0.mark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_table_refuses_until_a_holder_has_been_idle_for_the_threshold() {
        let table = SlotTable::new(2, Duration::from_secs(1));
        let a = table.acquire();
        let b = table.acquire();
        assert!(matches!(a, Some(Acquired::Free(_))));
        assert!(matches!(b, Some(Acquired::Free(_))));
        assert!(table.acquire().is_none(), "both holders just started");

        tokio::time::advance(Duration::from_millis(600)).await;
        let Some(Acquired::Free(a)) = a else {
            unreachable!("checked above")
        };
        a.progress.mark();
        tokio::time::advance(Duration::from_millis(600)).await;
        let Some(Acquired::Evicted(c)) = table.acquire() else {
            panic!("b has been idle 1.2 s and should give way");
        };
        let Some(Acquired::Free(b)) = b else {
            unreachable!("checked above")
        };
        // b was told; a (progress 0.6 s ago) was not.
        tokio::time::timeout(Duration::from_millis(1), b.evicted.notified())
            .await
            .expect("b notified");
        assert!(
            tokio::time::timeout(Duration::from_millis(1), a.evicted.notified())
                .await
                .is_err()
        );
        // The evicted holder's drop leaves its successor in place.
        drop(b);
        assert!(table.acquire().is_none(), "a and c hold both slots");
        drop(c);
        assert!(matches!(table.acquire(), Some(Acquired::Free(_))));
    }
}
