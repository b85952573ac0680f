//! Every limit a peer can push against, with the reason it has the value it has.
//!
//! Limits are enforced by the receiver *before* acting on a message. Sizes are in
//! bytes, counts in items; batching is always by byte budget first.

use std::time::Duration;

/// Largest frame accepted from the wire (checked from the length prefix, before any
/// allocation): big enough for one maximal entry plus framing, small enough that a
/// peer cannot make us reserve more than a few MiB per connection.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Largest first frame a node accepts on a new connection, before it gives the
/// connection a session slot: the first frame is an init (a handshake is well under
/// 1 KiB), so a connection that has not been admitted makes us read at most this.
pub const MAX_FIRST_FRAME_BYTES: usize = 64 * 1024;

/// Bytes of the big-endian length prefix in front of every frame: four bytes cover
/// [`MAX_FRAME_BYTES`]; counted in [`TransportStats`](crate::TransportStats) bytes and
/// in every byte budget that sizes frames.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Byte budget for the messages a node builds itself (entry batches, node responses):
/// well under [`MAX_FRAME_BYTES`] so a batch plus one maximal entry always fits.
pub const BATCH_BYTE_BUDGET: usize = 1024 * 1024;

/// Longest key: keys are hashed and compared often; long keys belong in values.
pub const MAX_KEY_BYTES: usize = 4 * 1024;

/// Longest value: one entry must always fit in one frame with room to spare.
pub const MAX_VALUE_BYTES: usize = 2 * 1024 * 1024;

/// Longest context name: names are repeated in every init message and log line.
pub const MAX_CONTEXT_ID_BYTES: usize = 128;

/// Node positions plus compare items per `NodeRequest`: every node of a full tree
/// level fits in a handful of requests, and the response stays bounded by the byte
/// budget (a compare item's answer is at most 16 children's worth).
pub const MAX_NODES_PER_REQUEST: usize = 4096;

/// Bytes of each child hash carried in `NodeChildren` (of 32), salted per session
/// ([`crate::salt`]): two different subtrees match by accident with probability 2^-64
/// per comparison, a crafted collision does not survive into the next session, and the
/// full 32-byte roots of `Finish`/`FinishAck` still expose a miss as "not converged".
pub const NODE_HASH_BYTES: usize = 8;

/// Bytes of the random nonce each side of a handshake contributes to the session
/// key of the salted node-hash truncation ([`crate::salt`]): 128 bits, so a key
/// repeats across sessions only by a 2^-64 birthday accident.
pub const SESSION_NONCE_BYTES: usize = 16;

/// Key hashes plus key-hash prefixes per `EntryRequest`: 32 bytes each keeps the
/// request under 300 KiB.
pub const MAX_KEYS_PER_REQUEST: usize = 8192;

/// Bytes of the key hash that name an entry in `EntrySummary` and in the prefix pulls
/// of `EntryRequest` (of 32): a bucket fixes the first 2, leaving 48 bits, so two keys of
/// a 15-entry bucket share a prefix by accident with probability about 2^-41.
pub const KEY_PREFIX_BYTES: usize = 8;

/// Entries a responder answers for one key-hash prefix (and the initiator accepts):
/// honest prefixes match one entry; 16 sharing 64 bits costs an attacker ~2^60 hashes.
pub const MAX_ENTRIES_PER_PREFIX: usize = 16;

/// Whole-subtree asks per `EntryRequest`: each can make the responder scan a
/// subtree, so few are allowed at once.
pub const MAX_SUBTREES_PER_REQUEST: usize = 256;

/// Entry summaries per leaf-summary part a responder sends (about 29 bytes each):
/// keeps one part well inside the batch budget.
pub const LEAF_SUMMARY_CHUNK: usize = 8192;

/// Entry summaries accepted for one leaf bucket across all its parts: 16× the
/// bucket size of a 10^9-entry context, and a bound on what a peer can make us buffer.
pub const MAX_LEAF_ENTRIES: usize = 262_144;

/// Entries per received `EntryBatch`/`EntryPush` frame: bounds the work of applying
/// one frame, independent of how small the entries are.
pub const MAX_ENTRIES_PER_BATCH: usize = 65_536;

/// Requests one session may make: a full comparison of the whole tree takes a few
/// hundred; a peer asking for more is looping or attacking.
pub const MAX_REQUESTS_PER_SESSION: usize = 65_536;

/// Entries a tree responder sends in one session beyond the context's entry count
/// when the session opened: an honest session sends each entry at most once, so the
/// whole context plus this slack (writes during the session) is what a session can
/// honestly cost; asking for more is an amplification attack.
pub const SESSION_ENTRY_SLACK: u64 = 4096;

/// Requests the responder accepts before the initiator reads any answer: keeps the
/// responder's queued output bounded when the initiator stops reading.
pub const MAX_UNANSWERED_REQUESTS: usize = 64;

/// Protocol ids accepted in a peer's handshake: far more than exist, so a newer
/// peer's list fits, while a peer cannot make us keep an unbounded list.
pub const MAX_SUPPORTED_PROTOCOLS: usize = 16;

/// Bytes of entries in one snapshot page (compressed pages: before compression):
/// large enough that per-page overhead is noise, small enough to stream smoothly.
pub const MAX_SNAPSHOT_PAGE_BYTES: usize = 1024 * 1024;

/// Snapshot pages a responder sends ahead of acknowledgements: keeps the pipe full
/// across round trips while bounding what the initiator must buffer unacknowledged.
pub const MAX_SNAPSHOT_PAGES_IN_FLIGHT: usize = 8;

/// Pages one snapshot session may carry: 2^20 full pages is a terabyte; a peer
/// sending more is looping or attacking.
pub const MAX_SNAPSHOT_PAGES: usize = 1 << 20;

/// Entry bytes one snapshot may apply before its root is verified: pages are applied
/// as they arrive, so this bounds the unverified writes a peer can make, not memory.
pub const MAX_SNAPSHOT_STAGED_BYTES: usize = 4 * 1024 * 1024 * 1024;

/// Coded symbols a store maintains per context, and the most a sketch session
/// streams (768 KiB at 24 bytes each): enough to decode about 23,000 differences;
/// past that a tree protocol costs about as much per difference, and the session
/// falls over to one.
pub const SKETCH_MAX_SYMBOLS: u32 = 32_768;

/// Coded symbols per `SketchWindow` frame (96 KiB): well inside the batch budget.
pub const SKETCH_SYMBOLS_PER_WINDOW: usize = 4096;

/// Items a sketch initiator peels from a difference before it gives up: an
/// honest difference of k items needs about 1.4 k symbols, so no honest decode
/// of at most [`SKETCH_MAX_SYMBOLS`] symbols yields more.
pub const SKETCH_MAX_DECODED: usize = SKETCH_MAX_SYMBOLS as usize;

/// Checksum bytes per probed symbol in a handshake's `sketch_probe`: a probe only
/// tells empty from not, and 16 bits make a false "empty" a 2^-16 accident, well
/// below the estimate's own noise.
pub const SKETCH_PROBE_BYTES: usize = 2;

/// Probed symbols a handshake may carry: the probe indices below
/// [`SKETCH_MAX_SYMBOLS`] are fewer.
pub const SKETCH_MAX_PROBES: usize = 192;
/// Read views ([`Store::read_view`](crate::Store::read_view)) one store hands out at
/// once: each costs memory a writer copies (MemoryStore) or pins database pages
/// (redb) while it lives; a snapshot responder holds one per session, so this many
/// snapshots stream at once and more are refused `BUSY`.
pub const MAX_READ_VIEWS: usize = 8;

/// Longest a snapshot responder serves from one read view: past it the session
/// ends (`TIMEOUT`) and the initiator resumes against the current state. A view
/// pins memory or database pages; a 10^6-entry snapshot streams in seconds.
pub const MAX_SNAPSHOT_VIEW_AGE: Duration = Duration::from_secs(10 * 60);

/// Longest abort message kept from a peer: it ends up in logs.
pub const MAX_ABORT_MESSAGE_BYTES: usize = 1024;

/// Most context names one `ContextList` carries: at most 4,096 × 128 bytes of
/// names (512 KiB) fit one frame, and a node syncs far fewer contexts with one
/// peer; beyond it the list says `truncated`.
pub const MAX_LISTED_CONTEXTS: usize = 4096;

/// Longest a node waits for the peer's next message before giving up the session.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a snapshot responder waits, after its last page, for the initiator's
/// next message: the initiator first applies the last page, verifies the root and
/// plans its merge-mode pushes, which scans its local state.
pub const SNAPSHOT_APPLY_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Longest one whole session may last, whatever the peer does.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(15 * 60);
