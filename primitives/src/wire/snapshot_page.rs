//! `SnapshotPage`, written by hand rather than generated (see `build.rs`): the
//! same message on the wire, plus [`SnapshotPage::packed`], entries a sender
//! encoded itself straight from a store's lent bytes.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use super::WireEntry;
use super::entry_codec::SNAPSHOT_PAGE_ENTRIES_TAG;
use crate::error::ProtocolError;

/// One page of a snapshot: entries in strictly increasing key-hash order, all above
/// the previous page's cursor.
///
/// The entries travel as field 3 (`repeated WireEntry entries`). A sender may give
/// them as [`SnapshotPage::entries`], or already encoded as [`SnapshotPage::packed`]
/// (each a field 3: tag, length, `WireEntry`), or both (`entries` first); the
/// bytes on the wire are the same. A decoded page always has them in `entries`
/// and `packed` empty.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct SnapshotPage {
    /// 0 for the first page of a session, then +1 per page.
    pub seq: u64,
    /// Key hash of the last entry in the page (32 bytes): where a resumed session
    /// continues. Empty only on an empty last page.
    pub cursor: Bytes,
    /// The entries, when the session is not compressed.
    pub entries: Vec<WireEntry>,
    /// More entries of field 3, already encoded (sent after `entries`; never
    /// filled by decoding).
    pub packed: Bytes,
    /// When compressed: an lz4 block holding an encoded EntryPush with the entries.
    pub compressed: Bytes,
    /// Length of the decompressed block: at most MAX_SNAPSHOT_PAGE_BYTES, or for a
    /// page holding one entry larger than a page, that entry's encoded size.
    pub raw_len: u32,
    /// No page follows.
    pub last: bool,
}

impl SnapshotPage {
    /// Every entry of the page: `entries`, then those of `packed` decoded (a page
    /// handed over in memory, without the wire, still has them packed).
    pub fn take_entries(&mut self) -> Result<Vec<WireEntry>, ProtocolError> {
        let malformed = |_| ProtocolError::Malformed("snapshot page entries do not decode");
        let mut entries = std::mem::take(&mut self.entries);
        let mut packed = std::mem::take(&mut self.packed);
        while packed.has_remaining() {
            let (tag, wire_type) = encoding::decode_key(&mut packed).map_err(malformed)?;
            if tag != SNAPSHOT_PAGE_ENTRIES_TAG {
                return Err(ProtocolError::Malformed(
                    "packed snapshot entries hold another field",
                ));
            }
            let mut entry = WireEntry::default();
            let ctx = DecodeContext::default();
            encoding::message::merge(wire_type, &mut entry, &mut packed, ctx).map_err(malformed)?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl Message for SnapshotPage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if self.seq != 0 {
            encoding::uint64::encode(1, &self.seq, buf);
        }
        if !self.cursor.is_empty() {
            encoding::bytes::encode(2, &self.cursor, buf);
        }
        encoding::message::encode_repeated(SNAPSHOT_PAGE_ENTRIES_TAG, &self.entries, buf);
        buf.put_slice(&self.packed);
        if !self.compressed.is_empty() {
            encoding::bytes::encode(4, &self.compressed, buf);
        }
        if self.raw_len != 0 {
            encoding::uint32::encode(5, &self.raw_len, buf);
        }
        if self.last {
            encoding::bool::encode(6, &self.last, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => encoding::uint64::merge(wire_type, &mut self.seq, buf, ctx),
            2 => encoding::bytes::merge(wire_type, &mut self.cursor, buf, ctx),
            3 => encoding::message::merge_repeated(wire_type, &mut self.entries, buf, ctx),
            4 => encoding::bytes::merge(wire_type, &mut self.compressed, buf, ctx),
            5 => encoding::uint32::merge(wire_type, &mut self.raw_len, buf, ctx),
            6 => encoding::bool::merge(wire_type, &mut self.last, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let optional = |present: bool, len: usize| if present { len } else { 0 };
        optional(self.seq != 0, encoding::uint64::encoded_len(1, &self.seq))
            + optional(
                !self.cursor.is_empty(),
                encoding::bytes::encoded_len(2, &self.cursor),
            )
            + encoding::message::encoded_len_repeated(SNAPSHOT_PAGE_ENTRIES_TAG, &self.entries)
            + self.packed.len()
            + optional(
                !self.compressed.is_empty(),
                encoding::bytes::encoded_len(4, &self.compressed),
            )
            + optional(
                self.raw_len != 0,
                encoding::uint32::encoded_len(5, &self.raw_len),
            )
            + optional(self.last, encoding::bool::encoded_len(6, &self.last))
    }

    fn clear(&mut self) {
        *self = SnapshotPage::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::entry_codec::EntryFields;

    fn wire(i: u8) -> WireEntry {
        WireEntry {
            key: vec![i; 3].into(),
            value: vec![i; i as usize].into(),
            hlc: u64::from(i),
            node: 1,
            tombstone: false,
        }
    }

    #[test]
    fn packed_entries_are_the_same_bytes_as_entries_and_decode_into_them() {
        let entries: Vec<WireEntry> = (0..5).map(wire).collect();
        let mut packed = Vec::new();
        for e in &entries {
            let fields = EntryFields {
                key: &e.key,
                value: &e.value,
                hlc: e.hlc,
                node: e.node,
                tombstone: e.tombstone,
            };
            fields.encode_field(SNAPSHOT_PAGE_ENTRIES_TAG, &mut packed);
        }
        let base = SnapshotPage {
            seq: 3,
            cursor: vec![1; 32].into(),
            raw_len: 0,
            last: true,
            ..SnapshotPage::default()
        };
        let plain = SnapshotPage {
            entries: entries.clone(),
            ..base.clone()
        };
        let hand = SnapshotPage {
            packed: packed.into(),
            ..base
        };
        let bytes = plain.encode_to_vec();
        assert_eq!(hand.encode_to_vec(), bytes);
        assert_eq!(hand.encoded_len(), bytes.len());
        let back = SnapshotPage::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(back, plain);
        let mut in_memory = hand.clone();
        assert_eq!(in_memory.take_entries().expect("packed decodes"), entries);
        let mut bad = hand;
        bad.packed = vec![0x08, 0x01].into();
        assert!(bad.take_entries().is_err());
    }

    #[test]
    fn unknown_fields_are_skipped_and_defaults_encode_to_nothing() {
        assert!(SnapshotPage::default().encode_to_vec().is_empty());
        // Field 9, varint 1, then `last`.
        let back = SnapshotPage::decode(&[0x48, 0x01, 0x30, 0x01][..]).expect("decodes");
        assert!(back.last);
    }
}
