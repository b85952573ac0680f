//! Group commit: concurrent [`Store::apply`](synctree_primitives::Store::apply)
//! batches share one durable redb commit.
//!
//! A writer validates and hashes its batch on its own thread, then queues it
//! as a [`Job`]. The first writer to find no committer at work becomes the
//! committer (the *leader*): it waits up to [`GROUP_WAIT`] for writers still
//! hashing (or for as many batches as recent groups held), takes the queued jobs (at most [`MAX_GROUP_ENTRIES`] entries),
//! merges them one after the other in **one** write transaction, commits once
//! and hands every job its own [`ApplyReport`]. Writers that arrive while a
//! commit is under way queue up for the next one, so under load one `fsync`
//! carries many batches, and a lone writer never waits for company it does
//! not have.
//!
//! **Each batch stays atomic, with its own errors.** Validation failures
//! ([`RedbStoreError::InvalidEntry`](super::RedbStoreError::InvalidEntry)) are
//! found before a batch joins a group, so they never touch anyone else. When
//! anything fails inside a group's transaction (a corrupt record met while
//! merging one batch, an I/O error, a failed commit, a test hook), the
//! transaction is dropped, so nothing of any batch of the group is applied,
//! and every batch is then retried **alone**, in its own transaction: the one
//! that fails gets its own error with nothing of it applied, the others are
//! applied as if no group had formed. A batch's report counts it against the
//! state the batches before it in its group left, exactly as if they had been
//! applied one after the other in that order.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use synctree_primitives::{ApplyReport, ContextId, StoreError, StoredEntry};

/// Longest a leader waits for company (writers still validating and hashing
/// their batches, or as many batches as recent groups had) before it commits
/// without them: short beside one durable commit (tens of milliseconds for a
/// few thousand entries), so joining costs a batch less than missing the group.
pub(super) const GROUP_WAIT: Duration = Duration::from_millis(5);

/// Most entries merged in one group's transaction (a batch larger than this
/// forms a group of its own): bounds how long the last batch of a group waits
/// for the ones before it and the memory redb's dirty pages take.
pub(super) const MAX_GROUP_ENTRIES: usize = 64 * 1024;

/// A test hook run after a batch's writes, just before the commit.
pub(super) type Hook = Box<dyn Fn() -> Result<(), StoreError> + Send + Sync>;

/// One caller's prepared batch, waiting for its commit.
pub(super) struct Job {
    /// The context the batch is for.
    pub(super) context: ContextId,
    /// Validated, hashed and sorted by key hash ([`super::apply::prepare`]).
    pub(super) batch: Vec<StoredEntry>,
    /// Runs before the commit; an error fails the batch.
    pub(super) hook: Option<Hook>,
    /// Set by the leader that committed (or failed) the batch.
    outcome: Mutex<Option<Result<ApplyReport, StoreError>>>,
}

impl Job {
    /// A job for `batch` (already prepared) in `context`.
    pub(super) fn new(context: &ContextId, batch: Vec<StoredEntry>, hook: Option<Hook>) -> Self {
        Job {
            context: context.clone(),
            batch,
            hook,
            outcome: Mutex::new(None),
        }
    }

    fn set(&self, outcome: Result<ApplyReport, StoreError>) {
        *lock(&self.outcome) = Some(outcome);
    }

    fn take(&self) -> Option<Result<ApplyReport, StoreError>> {
        lock(&self.outcome).take()
    }
}

/// Runs one group: applies every job's batch in one transaction and returns
/// one outcome per job, in order (implemented by the store).
pub(super) trait Commit {
    /// The outcome of each of `jobs`.
    fn commit_group(&self, jobs: &[Arc<Job>]) -> Vec<Result<ApplyReport, StoreError>>;
}

/// The queue of prepared batches and who commits them.
#[derive(Debug, Default)]
pub(super) struct Committer {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Arc<Job>>,
    /// A leader is gathering or committing a group.
    leading: bool,
    /// Writers validating and hashing a batch they are about to queue.
    preparing: usize,
    /// Batches the next group expects: the last group's plus those queued
    /// behind it, i.e. how many writers were recently at work. The writers a
    /// commit releases come back with their next batch within moments, so a
    /// leader that did not wait for them would split the writers into two
    /// half-size groups that alternate.
    expected: usize,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("leading", &self.leading)
            .field("preparing", &self.preparing)
            .field("expected", &self.expected)
            .finish()
    }
}

/// A writer counted as preparing until its batch is queued or the guard
/// drops (its batch failed validation).
pub(super) struct Preparing<'c>(Option<&'c Committer>);

impl Drop for Preparing<'_> {
    fn drop(&mut self) {
        if let Some(committer) = self.0.take() {
            lock(&committer.state).preparing -= 1;
            committer.wake.notify_all();
        }
    }
}

impl Committer {
    /// Counts the caller as about to queue a batch, so a leader waits
    /// (up to [`GROUP_WAIT`]) for it.
    pub(super) fn preparing(&self) -> Preparing<'_> {
        lock(&self.state).preparing += 1;
        Preparing(Some(self))
    }

    /// Queues `job` (whose writer counted itself with `preparing`) and returns
    /// its outcome once a group holding it is committed, committing groups
    /// itself while no one else does.
    pub(super) fn submit(
        &self,
        job: Job,
        mut preparing: Preparing<'_>,
        store: &dyn Commit,
    ) -> Result<ApplyReport, StoreError> {
        let job = Arc::new(job);
        let mut state = lock(&self.state);
        state.queue.push_back(job.clone());
        if preparing.0.take().is_some() {
            state.preparing -= 1;
        }
        self.wake.notify_all();
        loop {
            if let Some(outcome) = job.take() {
                return outcome;
            }
            if state.leading {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.leading = true;
            state = self.lead(state, store);
        }
    }

    /// As the leader: gathers a group, commits it, hands each job its
    /// outcome, then gives up leading and wakes every writer.
    fn lead<'s>(
        &'s self,
        state: MutexGuard<'s, State>,
        store: &dyn Commit,
    ) -> MutexGuard<'s, State> {
        let group = self.gather(state);
        let outcomes = store.commit_group(&group);
        for (job, outcome) in group.iter().zip(outcomes) {
            job.set(outcome);
        }
        let mut state = lock(&self.state);
        state.leading = false;
        state.expected = group.len() + state.queue.len();
        self.wake.notify_all();
        state
    }

    /// Waits (at most [`GROUP_WAIT`]) while writers are still preparing, or
    /// fewer batches are queued than recent groups had, and the group has
    /// room; then takes the group from the front of the queue.
    fn gather(&self, mut state: MutexGuard<'_, State>) -> Vec<Arc<Job>> {
        let deadline = Instant::now() + GROUP_WAIT;
        let waiting = |s: &State| {
            (s.preparing > 0 || s.queue.len() < s.expected)
                && queued_entries(&s.queue) < MAX_GROUP_ENTRIES
        };
        while waiting(&state) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            state = self
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        take_group(&mut state.queue)
    }
}

/// Entries in the queued batches.
fn queued_entries(queue: &VecDeque<Arc<Job>>) -> usize {
    queue.iter().map(|job| job.batch.len()).sum()
}

/// The jobs at the front of `queue` that fit [`MAX_GROUP_ENTRIES`] (at least one).
fn take_group(queue: &mut VecDeque<Arc<Job>>) -> Vec<Arc<Job>> {
    let mut group = Vec::new();
    let mut entries = 0;
    while let Some(next) = queue.front() {
        let len = next.batch.len();
        if !group.is_empty() && entries + len > MAX_GROUP_ENTRIES {
            break;
        }
        entries += len;
        group.extend(queue.pop_front());
    }
    group
}

/// Locks `mutex`, keeping its data when another thread panicked holding it:
/// every update under these locks is a single assignment, never half done.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use super::*;
    use synctree_primitives::{Entry, NodeId, Version};

    fn job(n: usize) -> Arc<Job> {
        let ctx = ContextId::new("g").expect("valid");
        let entry = StoredEntry::new(Entry::put("k", "v", Version::new(1, NodeId(1))));
        Arc::new(Job::new(&ctx, vec![entry; n], None))
    }

    #[test]
    fn a_group_takes_whole_batches_up_to_the_entry_bound() {
        let mut queue: VecDeque<_> = [40_000, 20_000, 10_000, 5].map(job).into();
        let sizes = |g: Vec<Arc<Job>>| g.iter().map(|j| j.batch.len()).collect::<Vec<_>>();
        assert_eq!(sizes(take_group(&mut queue)), [40_000, 20_000]);
        assert_eq!(sizes(take_group(&mut queue)), [10_000, 5]);
        assert!(take_group(&mut queue).is_empty());
    }

    /// Records the size of every group; the first group waits until three
    /// more writers have queued.
    struct Recorder<'c> {
        committer: &'c Committer,
        groups: Mutex<Vec<usize>>,
    }

    impl Commit for Recorder<'_> {
        fn commit_group(&self, jobs: &[Arc<Job>]) -> Vec<Result<ApplyReport, StoreError>> {
            let first = lock(&self.groups).is_empty();
            lock(&self.groups).push(jobs.len());
            while first && lock(&self.committer.state).queue.len() < 3 {
                std::thread::yield_now();
            }
            let report = |job: &Arc<Job>| ApplyReport {
                changed: job.batch.len() as u64,
                ..ApplyReport::default()
            };
            jobs.iter().map(|job| Ok(report(job))).collect()
        }
    }

    #[test]
    fn batches_queued_during_a_commit_share_the_next_one_and_get_their_own_reports() {
        let committer = Committer::default();
        let store = Recorder {
            committer: &committer,
            groups: Mutex::new(Vec::new()),
        };
        let submit = |n: usize| {
            let job = Arc::try_unwrap(job(n)).ok().expect("one owner");
            committer.submit(job, committer.preparing(), &store)
        };
        let reports = std::thread::scope(|s| {
            let lead = s.spawn(|| submit(1));
            while lock(&store.groups).is_empty() {
                std::thread::yield_now();
            }
            let rest: Vec<_> = (2..5).map(|n| s.spawn(move || submit(n))).collect();
            let mut all = vec![lead.join().expect("lead")];
            all.extend(rest.into_iter().map(|h| h.join().expect("writer")));
            all
        });
        let changed: Vec<u64> = reports
            .into_iter()
            .map(|r| r.expect("ok").changed)
            .collect();
        assert_eq!(changed, [1, 2, 3, 4]);
        assert_eq!(*lock(&store.groups), [1, 3], "one commit for the three");
        assert_eq!(lock(&committer.state).preparing, 0);
    }

    #[test]
    fn a_writer_whose_batch_fails_validation_stops_counting_as_preparing() {
        let committer = Committer::default();
        drop(committer.preparing());
        assert_eq!(lock(&committer.state).preparing, 0);
    }

    #[test]
    fn a_batch_over_the_bound_forms_a_group_alone() {
        let mut queue: VecDeque<_> = [MAX_GROUP_ENTRIES + 1, 1].map(job).into();
        assert_eq!(take_group(&mut queue).len(), 1);
        assert_eq!(take_group(&mut queue).len(), 1);
    }
}
