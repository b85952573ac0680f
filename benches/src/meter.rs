//! Peak heap bytes during a measured step, from the counting allocator
//! [`peak_alloc::PeakAlloc`].
//!
//! The `matrix` binary installs `PeakAlloc` as its global allocator; the counters
//! are process-wide statics of that crate, so they are read here. Both replicas of
//! a session live in one process, so a session's peak covers both sides. Where the
//! allocator is not installed (tests, criterion benches) the counters stay at zero
//! and [`HeapMark::peak_since`] reports `None`.
//!
//! Why an allocator rather than VmHWM: peak RSS only grows within a process (it can
//! be reset through `/proc/self/clear_refs`, but memory that the allocator keeps
//! after an earlier cell hides new use), while counting allocated bytes measures
//! each session alone. The workspace forbids `unsafe`, and a `GlobalAlloc` needs an
//! `unsafe impl`, so the (20-line, audited) implementation comes from `peak_alloc`.

use peak_alloc::PeakAlloc;

/// Heap state at the start of a measured step.
#[derive(Clone, Copy, Debug)]
pub struct HeapMark {
    current: usize,
}

impl HeapMark {
    /// Resets the peak to what is allocated now and remembers it.
    pub fn now() -> Self {
        PeakAlloc.reset_peak_usage();
        HeapMark {
            current: PeakAlloc.current_usage(),
        }
    }

    /// Most bytes allocated above the mark since it was taken; `None` when the
    /// counting allocator is not installed.
    pub fn peak_since(&self) -> Option<u64> {
        let peak = PeakAlloc.peak_usage();
        (peak > 0).then(|| peak.saturating_sub(self.current) as u64)
    }
}

/// On-CPU time of the calling thread so far (`CLOCK_THREAD_CPUTIME_ID`, kernel
/// time on the thread's behalf included, nanosecond resolution); `None` where the
/// clock is not available. Both sides of a session run on the measuring thread,
/// so the difference over a session is its cost on one core, which other
/// processes competing for the machine do not inflate (wall time they do).
pub fn thread_cpu() -> Option<std::time::Duration> {
    cpu_time::ThreadTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

/// CPU time the calling thread spends in `f`, with its result.
pub fn on_cpu<T>(f: impl FnOnce() -> T) -> (T, Option<std::time::Duration>) {
    let before = thread_cpu();
    let out = f();
    let spent = thread_cpu()
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before));
    (out, spent)
}
