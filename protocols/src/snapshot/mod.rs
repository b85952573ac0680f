//! Snapshot: a whole replica in one pass, for a node with no state in a context or
//! far behind.
//!
//! ```text
//!  initiator                                          responder
//!  Init{snapshot{root, window, compression,
//!       [resume_root, resume_after]}}     ──────────►  take a read view, pin its root
//!                                          ◄────────── SnapshotBegin{root, entry_count}
//!                                          ◄────────── SnapshotPage{seq 0, cursor, entries}
//!  check, apply, save progress                          … up to `window` pages unacked,
//!  SnapshotAck{seq} every max(1, window/2) ──────────►  all from the view
//!                                          ◄────────── SnapshotPage{seq n, …, last}
//!  verify the root of everything received
//!  EntryPush{local entries it lacks}…      ──────────►  apply (merge)
//!  Finish{root}                            ──────────►
//!                                          ◄────────── FinishAck{root}
//! ```
//!
//! - **Read view.** The responder serves the state of one instant,
//!   [`Store::read_view`](synctree_primitives::Store::read_view), so writes during
//!   the stream do not disturb it (at most
//!   [`MAX_SNAPSHOT_VIEW_AGE`](synctree_primitives::limits::MAX_SNAPSHOT_VIEW_AGE) per
//!   view). A store without views is read live with its root checked around each
//!   page; if it moved, the session fails with [`ProtocolError::StateMoved`]
//!   (`STATE_MOVED`).
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
//! - **Applied as it arrives.** Each page is checked, hashed into a constant-size
//!   streaming root builder and applied through the merge rule, so the initiator
//!   holds one page, never the set. After the last page a root other than the pinned
//!   one is [`ProtocolError::VerificationFailed`]; what was applied stays (valid
//!   entries of the peer, merged like any write), and a tree session converges the
//!   rest.
//! - **Merge mode.** Before applying a page the initiator notes the local entries of
//!   the page's key range that the responder lacks or holds older, and pushes them
//!   after the last page, so both sides end with the merged set.
//! - **Resume.** Progress lives in a [`SnapshotProgress`] handle (cursor, counts,
//!   root builder; a few KiB), saved through
//!   [`Store::save_sync_state`](synctree_primitives::Store::save_sync_state) after
//!   every page when [`SnapshotConfig::persist_key`] is set. A new session resumes
//!   after the last applied key hash (at most one page is received twice). If the
//!   responder's root moved meanwhile it serves its current state above the cursor
//!   and the initiator rebases: it keeps what it applied, and the snapshot ends
//!   unverifiable ([`SnapshotProgress::is_rebased`]).

mod adopt;
mod config;
mod digester;
mod executor;
mod initiator;
mod page;
mod push;
mod reader;
mod responder;
mod root;
mod staging;

pub use config::{DEFAULT_SNAPSHOT_WINDOW, SnapshotConfig, SnapshotResponderInit};
pub use executor::Snapshot;
pub use initiator::SnapshotInitiator;
pub use responder::SnapshotResponder;
pub use staging::SnapshotProgress;
