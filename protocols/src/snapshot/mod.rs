//! Snapshot: a whole replica in one pass, for a node with no state in a context or
//! far behind.
//!
//! ```text
//!  initiator                                          responder
//!  Init{snapshot{root, window, compression,
//!       [resume_root, resume_after]}}     ──────────►  pin the current root
//!                                          ◄────────── SnapshotBegin{root, entry_count}
//!                                          ◄────────── SnapshotPage{seq 0, cursor, entries}
//!  stage, check                                         … up to `window` pages unacked;
//!  SnapshotAck{seq} every max(1, window/2) ──────────►  root re-checked around each page
//!                                          ◄────────── SnapshotPage{seq n, …, last}
//!  verify root, apply in one batch
//!  EntryPush{local entries it lacks}…      ──────────►  apply (merge)
//!  Finish{root}                            ──────────►
//!                                          ◄────────── FinishAck{root}
//! ```
//!
//! - **Pinning.** The responder pins its root when the session opens (a resumed
//!   session must find the root it pinned before) and checks before and after
//!   reading each page that its root is still the pinned one; if it moved, the
//!   session fails with [`ProtocolError::StateMoved`], sent as a `STATE_MOVED` abort.
//! - **Pages** hold entries in strictly increasing key-hash order above the previous
//!   cursor, at most
//!   [`MAX_SNAPSHOT_PAGE_BYTES`](synctree_primitives::limits::MAX_SNAPSHOT_PAGE_BYTES) of encoded entries and
//!   `MAX_ENTRIES_PER_BATCH` entries (an entry larger than a page travels alone);
//!   `cursor` is the last key hash; only the last page may be empty. With LZ4 the
//!   entries travel as an lz4 block of an encoded `EntryPush`, and `raw_len` is
//!   checked before decompressing.
//! - **Flow control.** The responder keeps at most `window` pages unacknowledged
//!   (acks are cumulative). The initiator acks after staging
//!   `max(1, window / 2)` pages since its previous ack, never the last page, and
//!   refuses a page beyond the window it granted.
//! - **Verification.** Received entries are staged in memory (never visible in the
//!   store) while a streaming builder computes their root. After the last page a
//!   root other than the pinned one is [`ProtocolError::VerificationFailed`] and
//!   nothing is applied; otherwise the snapshot goes through the merge rule in one
//!   [`Store::apply`], so a node with state keeps its newer versions.
//! - **Merge mode.** The initiator then knows the responder's whole pinned set and
//!   pushes every local entry the responder lacks or holds older, so both sides end
//!   with the merged set.
//! - **Resume.** Staging lives in a [`SnapshotProgress`] handle. A session cut off
//!   mid-stream leaves it holding every page that arrived; passing it to a new
//!   session resumes after the last staged key hash (at most the page cut in flight
//!   is sent again). A responder whose root moved answers `STATE_MOVED`, which clears
//!   the handle.

mod config;
mod executor;
mod initiator;
mod page;
mod push;
mod responder;
mod root;
mod staging;

pub use config::{DEFAULT_SNAPSHOT_WINDOW, SnapshotConfig, SnapshotResponderInit};
pub use executor::Snapshot;
pub use initiator::SnapshotInitiator;
pub use responder::SnapshotResponder;
pub use staging::SnapshotProgress;
