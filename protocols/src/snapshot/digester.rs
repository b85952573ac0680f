//! The initiator's second core: a checked page is applied in chunks of
//! [`APPLY_CHUNK_ENTRIES`], and a worker thread computes the entry digests of the
//! next chunk while the session thread applies the one before.
//!
//! ```text
//!  session thread: decode+check page (key hashes) ─ plan pushes ─ submit chunks ─ apply 0 ─ apply 1 ─ … ─ record
//!  worker thread:                                                   digest 0 ─ digest 1 ─ digest 2 ─ …
//! ```
//!
//! Every check of the page passes before any chunk is handed over (a digest
//! cannot fail), so a page is still refused or accepted as a whole; chunks come
//! back in the order they were submitted. When the worker cannot be started, the
//! session thread computes the digests itself.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use synctree_primitives::{StoreError, StoredEntry};

use super::page::Keyed;

/// Entries per chunk a page is applied in: small enough that the worker's digests
/// of the next chunk overlap this chunk's apply within one page (a full page of
/// 100-byte values holds about 8,000 entries), large enough that handing a chunk
/// over costs little beside applying it.
pub(crate) const APPLY_CHUNK_ENTRIES: usize = 1024;

/// The worker thread stopped before answering (it cannot short of a panic).
#[derive(Debug, thiserror::Error)]
#[error("the snapshot digest thread stopped")]
#[non_exhaustive]
pub(crate) struct DigesterStopped;

/// Computes entry digests off the session thread, in order.
#[derive(Debug, Default)]
pub(crate) struct Digester {
    worker: Option<Worker>,
    /// Chunks submitted to the worker and not yet taken back.
    in_flight: usize,
    /// Chunks digested on the session thread (no worker).
    inline: VecDeque<Vec<StoredEntry>>,
    /// Whether starting the worker was tried already.
    tried: bool,
}

#[derive(Debug)]
struct Worker {
    jobs: Option<Sender<Vec<Keyed>>>,
    /// In a mutex only so that the machine is `Sync`; one thread takes from it.
    done: Mutex<Receiver<Vec<StoredEntry>>>,
    thread: Option<JoinHandle<()>>,
}

impl Digester {
    /// Hands `entries` over in chunks of [`APPLY_CHUNK_ENTRIES`]; returns how
    /// many chunks [`Digester::next`] will give back for them.
    pub(crate) fn submit(&mut self, mut entries: Vec<Keyed>) -> usize {
        let mut chunks = 0;
        while !entries.is_empty() {
            let rest = entries.split_off(entries.len().min(APPLY_CHUNK_ENTRIES));
            self.submit_chunk(std::mem::replace(&mut entries, rest));
            chunks += 1;
        }
        chunks
    }

    fn submit_chunk(&mut self, chunk: Vec<Keyed>) {
        if !self.tried {
            self.tried = true;
            self.worker = Worker::start();
        }
        let chunk = match self.worker.as_ref().and_then(|w| w.jobs.as_ref()) {
            Some(jobs) => match jobs.send(chunk) {
                Ok(()) => {
                    self.in_flight += 1;
                    return;
                }
                Err(returned) => returned.0,
            },
            None => chunk,
        };
        self.inline.push_back(digest_all(chunk));
    }

    /// The oldest chunk not yet taken back, waiting for the worker if need be
    /// (an empty chunk when nothing is pending).
    pub(crate) fn next(&mut self) -> Result<Vec<StoredEntry>, StoreError> {
        if self.in_flight == 0 {
            return Ok(self.inline.pop_front().unwrap_or_default());
        }
        self.in_flight -= 1;
        let chunk = self.worker.as_ref().and_then(|w| match w.done.lock() {
            Ok(done) => done.recv().ok(),
            Err(_) => None,
        });
        chunk.ok_or_else(|| StoreError::Backend {
            op: "snapshot entry digests",
            source: Box::new(DigesterStopped),
        })
    }
}

/// The entries with their digests.
fn digest_all(chunk: Vec<Keyed>) -> Vec<StoredEntry> {
    chunk.into_iter().map(Keyed::into_stored).collect()
}

impl Worker {
    /// Starts the worker thread, or `None` when the system refuses a thread.
    fn start() -> Option<Self> {
        let (jobs, inbox) = channel::<Vec<Keyed>>();
        let (outbox, done) = channel();
        let thread = std::thread::Builder::new()
            .name("snapshot-digest".into())
            .spawn(move || {
                for chunk in inbox {
                    if outbox.send(digest_all(chunk)).is_err() {
                        return;
                    }
                }
            });
        match thread {
            Ok(thread) => Some(Worker {
                jobs: Some(jobs),
                done: Mutex::new(done),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::debug!(error = %e, "no snapshot digest thread; digesting inline");
                None
            }
        }
    }
}

/// Closes the job queue and waits for the worker, which finishes at most the
/// chunk it is on.
impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            // A panicked worker has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use synctree_primitives::{Entry, NodeId, Version};

    use super::*;

    fn keyed(n: usize) -> Vec<Keyed> {
        (0..n)
            .map(|i| {
                let entry = Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(1)));
                Keyed {
                    key_hash: entry.key_hash(),
                    entry,
                }
            })
            .collect()
    }

    #[test]
    fn chunks_come_back_in_order_with_the_digests_stored_entry_computes() {
        let entries = keyed(2 * APPLY_CHUNK_ENTRIES + 5);
        let mut digester = Digester::default();
        assert_eq!(digester.submit(entries.clone()), 3);
        assert_eq!(digester.submit(Vec::new()), 0);
        let mut back = Vec::new();
        for _ in 0..3 {
            back.extend(digester.next().expect("digested"));
        }
        let expected: Vec<StoredEntry> = entries
            .into_iter()
            .map(|k| StoredEntry::new(k.entry))
            .collect();
        assert_eq!(back, expected);
        assert!(digester.next().expect("nothing pending").is_empty());
    }
}
