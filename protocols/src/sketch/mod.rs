//! Sketch: set reconciliation with the rateless invertible Bloom lookup table
//! every store maintains a prefix of ([`synctree_primitives::sketch`]).
//!
//! ```text
//!  initiator                                      responder
//!  ─────────                                      ─────────
//!  Init{SketchInit{root, want}}          ──►
//!                             ◄──────────────── SketchWindow × ⌈want / 4096⌉
//!  (subtract own symbols, peel)
//!  [SketchMore{want} ──► ◄── windows]              only when the estimate was low
//!  SketchEnd{decoded} + EntryRequest(prefixes)
//!    + EntryPush + Finish                ──►
//!                             ◄──────────────── EntryBatch … FinishAck{root}
//! ```
//!
//! With the handshake that is 3 round trips. When the difference does not decode
//! within the prefix both sides maintain, the initiator sends
//! `SketchEnd{decoded: false}` and continues as a HashComparison initiator in the
//! same session (the responder is a tree responder from then on), starting from
//! the handshake's top fingerprint. The wire flow and the security notes are in
//! docs/PROTOCOL.md, "Sketch".

mod config;
mod executor;
mod initiator;
mod responder;

pub use config::{
    DEFAULT_SKETCH_WANT, SketchConfig, SketchResponderInit, WANT_SLACK, WANT_TENTHS_PER_DIFFERENCE,
    want_for,
};
pub use executor::Sketch;
pub use initiator::SketchInitiator;
pub use responder::SketchResponder;
