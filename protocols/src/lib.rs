//! Sync protocols for synctree.
//!
//! Each protocol is a state machine with no I/O and no clock ([`Machine`]: message
//! in → messages out, the store and the current time passed in) plus one thin async
//! driver ([`drive`]) behind each protocol's
//! [`SyncProtocolExecutor`](synctree_primitives::SyncProtocolExecutor), over any
//! [`SyncTransport`](synctree_primitives::SyncTransport). The same machines
//! therefore run over TCP, in-memory pipes, a simulator, or [`pair::run_pair`],
//! which steps two machines against each other on a virtual clock without any
//! transport at all.
//!
//! ```text
//!  SyncProtocolExecutor impls  tree/hash_comparison.rs · tree/level_wise.rs · snapshot/executor.rs
//!        │   (each with its own Config; executor.rs: init frame, session info, opening root)
//!        ▼
//!  machines, sans-IO           TreeInitiator · TreeResponder · SnapshotInitiator · SnapshotResponder
//!        │   handle(store, now, msg) / poll_transmit(store, now)
//!        │   entries/: decode + apply, EntryBatcher, SubtreeCursor, successor
//!        ▼
//!  machine::Timers             idle timeout and session deadline, from `now` alone
//!        │
//!        ├── machine::drive    the only async part: tokio's clock, any SyncTransport
//!        └── pair::run_pair    a virtual clock, no transport, no runtime
//! ```
//!
//! The tree protocols' wire flow (two tree levels per round trip):
//!
//! ```text
//!  initiator                                   responder
//!  ─────────                                   ─────────
//!  Init{root} + NodeRequest{compare root: my L1 hashes}  ──►
//!                                  ◄────────── NodeResponse(L2 under differing L1)
//!  NodeRequest{compare differing L2: my L3 hashes}     ──►   two levels per round
//!                                  ◄────────── NodeResponse(leaf hashes under differing L3)
//!  NodeRequest[differing leaves]   ──────────►
//!                                  ◄────────── NodeResponse(leaf summaries)
//!  EntryRequest + EntryPush        ──────────►
//!                                  ◄────────── EntryBatch
//!  Finish{root}                    ──────────►
//!                                  ◄────────── FinishAck{root}
//! ```
//!
//! Layout, one folder per protocol family:
//!
//! - `tree/`: [`HashComparison`] and [`LevelWise`], each with its own config
//!   ([`HashComparisonConfig`], [`LevelWiseConfig`]), on the shared
//!   [`TreeInitiator`]/[`TreeResponder`] machines, which new tree protocols can
//!   reuse;
//! - `snapshot/`: [`Snapshot`], a whole replica streamed in pages;
//! - `entries/`: entry decoding, applying and frame batching both families use;
//! - [`machine`]: the [`Machine`] trait, the sans-IO [`Timers`] and the driver;
//! - [`pair`]: the in-memory, virtual-clock simulator.
//!
//! Each tree protocol's config defaults right for that protocol, so a caller only
//! names what it changes:
//!
//! ```
//! use synctree_protocols::{HashComparisonConfig, LevelWiseConfig};
//!
//! let remote_top = None; // or the handshake's top fingerprint
//! let eager = HashComparisonConfig { remote_top, ..Default::default() };
//! let level = LevelWiseConfig { remote_top, ..Default::default() };
//! assert!(level.nodes_per_request > eager.nodes_per_request, "a whole level per request");
//! ```

#![forbid(unsafe_code)]

mod entries;
pub use entries::{PUSH_APPLY_BYTES, PUSH_APPLY_WINDOW};
mod executor;
pub mod machine;
pub mod pair;
mod sketch;
mod snapshot;
mod tree;

pub use executor::init_message;
pub use machine::{Machine, Timers, drive};
pub use sketch::{
    DEFAULT_SKETCH_WANT, Sketch, SketchConfig, SketchInitiator, SketchResponder,
    SketchResponderInit, WANT_SLACK, WANT_TENTHS_PER_DIFFERENCE, want_for,
};
pub use snapshot::{
    DEFAULT_SNAPSHOT_WINDOW, Snapshot, SnapshotConfig, SnapshotInitiator, SnapshotProgress,
    SnapshotResponder, SnapshotResponderInit,
};
pub use tree::{
    DEEP_DESCENT_DIFFERENCES, DEEP_DESCENT_SPREAD, DEFAULT_KEYS_PER_REQUEST,
    DEFAULT_LEVEL_WISE_NODES_PER_REQUEST, DEFAULT_MAX_IN_FLIGHT, DEFAULT_NODES_PER_REQUEST,
    DEFAULT_PUSH_BYTES, HashComparison, HashComparisonConfig, HashComparisonResponderInit,
    LevelWise, LevelWiseConfig, LevelWiseResponderInit, Schedule, TreeConfig, TreeInitiator,
    TreeResponder, TreeResponderInit,
};
