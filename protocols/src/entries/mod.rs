//! Entry handling both protocol families share: checked decoding and applying of
//! received entries, key-hash order ([`successor`]), streaming a subtree in
//! bounded chunks, and packing entries into frames ([`EntryBatcher`]).

mod batcher;
mod cursor;
mod decode;
mod keys;
mod pushes;
#[cfg(test)]
mod recorded;

pub(crate) use batcher::{EntryBatcher, EntrySource};
pub(crate) use cursor::{SCAN_CHUNK, SubtreeCursor};
pub(crate) use decode::{apply_received, apply_received_stored, decode_entries};
pub(crate) use keys::successor;
pub(crate) use pushes::PushBuffer;
pub use pushes::{PUSH_APPLY_BYTES, PUSH_APPLY_WINDOW};
