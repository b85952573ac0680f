//! [`BufferBudget`]: bytes buffered (outboxes plus inboxes) across every transport
//! that shares it, so a node can bound what all its peers together make it hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A node-wide count of buffered bytes with a soft limit.
///
/// Transports charge it for every queued outgoing frame and every frame read ahead
/// into the inbox, and release it when the frame leaves. Past the limit, a `send`
/// waits until its own outbox is empty and nobody reads ahead, so the node holds at
/// most the limit plus one frame per connection (see
/// [`FramedTransport::with_budget`](crate::FramedTransport::with_budget)).
#[derive(Debug)]
pub struct BufferBudget {
    used: AtomicUsize,
    peak: AtomicUsize,
    limit: usize,
}

impl BufferBudget {
    /// A budget of `limit` bytes, shared by cloning the `Arc`.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(BufferBudget {
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit,
        })
    }

    /// A budget that is never exceeded (a transport's own count, shared with nobody).
    pub fn unlimited() -> Arc<Self> {
        Self::new(usize::MAX)
    }

    /// Bytes buffered now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Most bytes ever buffered at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether more than the limit is buffered.
    pub fn over(&self) -> bool {
        self.used() > self.limit
    }

    /// Whether `bytes` more still fit under the limit.
    pub fn fits(&self, bytes: usize) -> bool {
        self.used().saturating_add(bytes) <= self.limit
    }

    fn add(&self, bytes: usize) {
        let now = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One half's share of a [`BufferBudget`]; returns what it holds when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<BufferBudget>,
    bytes: usize,
    peak: usize,
}

impl Charge {
    pub(crate) fn new(budget: Arc<BufferBudget>) -> Self {
        Charge {
            budget,
            bytes: 0,
            peak: 0,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Most bytes this half held at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    pub(crate) fn budget(&self) -> &BufferBudget {
        &self.budget
    }

    pub(crate) fn add(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.peak = self.peak.max(self.bytes);
        self.budget.add(bytes);
    }

    pub(crate) fn sub(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.budget.sub(bytes);
    }

    /// Moves what is held onto `budget`.
    pub(crate) fn rebind(&mut self, budget: Arc<BufferBudget>) {
        let held = self.bytes;
        self.sub(held);
        self.budget = budget;
        self.add(held);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.sub(self.bytes);
    }
}
