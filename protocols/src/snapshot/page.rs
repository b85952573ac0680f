//! Snapshot pages on the wire: building a page from stored entries, and the checks a
//! received page must pass before anything in it is staged.
//!
//! A page's size is the sum of [`Entry::encoded_len`] over its entries, which is also
//! the length of the `EntryPush` a compressed page carries (`raw_len`). A page holds
//! at most [`MAX_SNAPSHOT_PAGE_BYTES`] of entries and
//! [`MAX_ENTRIES_PER_BATCH`](synctree_primitives::limits::MAX_ENTRIES_PER_BATCH)
//! entries, except that an entry larger than a page travels alone.

use bytes::Bytes;
use prost::Message;
use synctree_primitives::limits::{MAX_KEY_BYTES, MAX_SNAPSHOT_PAGE_BYTES, MAX_VALUE_BYTES};
use synctree_primitives::wire::{Compression, EntryPush, SnapshotPage, WireEntry};
use synctree_primitives::{Entry, Hash, ProtocolError, StoredEntry};

use super::reader::PageEntries;
use crate::entries::decode_entries;

/// Field tags and length prefixes of one encoded entry around its key and value:
/// 36 bytes at most, rounded up.
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Upper bound on one entry's encoded size: a maximal key and value plus
/// [`ENTRY_OVERHEAD_BYTES`].
pub(crate) const MAX_ENTRY_BYTES: usize = MAX_KEY_BYTES + MAX_VALUE_BYTES + ENTRY_OVERHEAD_BYTES;

/// Largest `raw_len` a receiver decompresses: a full page, or one entry larger than
/// a page. Checked before any memory is reserved for the decompressed block.
pub(crate) const MAX_PAGE_RAW_BYTES: usize = if MAX_SNAPSHOT_PAGE_BYTES > MAX_ENTRY_BYTES {
    MAX_SNAPSHOT_PAGE_BYTES
} else {
    MAX_ENTRY_BYTES
};

/// An entry of a received page with its key hash; its digest is computed when
/// it is applied ([`Keyed::into_stored`]), off the session thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keyed {
    /// SHA-256 of the key.
    pub(crate) key_hash: Hash,
    /// The entry, validated.
    pub(crate) entry: Entry,
}

impl Keyed {
    /// Hashes the key of `entry`.
    fn new(entry: Entry) -> Self {
        Keyed {
            key_hash: entry.key_hash(),
            entry,
        }
    }

    /// The entry as a store keeps it: its digest computed, its key hash kept.
    pub(crate) fn into_stored(self) -> StoredEntry {
        StoredEntry {
            key_hash: self.key_hash,
            digest: self.entry.digest(),
            entry: self.entry,
        }
    }
}

/// A received page that passed every check that needs no session state.
#[derive(Debug)]
pub(crate) struct Page {
    /// Entries in strictly increasing key-hash order, with their key hashes.
    pub(crate) entries: Vec<Keyed>,
    /// Encoded size of the entries.
    pub(crate) bytes: usize,
    /// No page follows.
    pub(crate) last: bool,
}

/// Page `seq` around `entries`, which [`PageEntries::push`] encoded for
/// `compression`: handed over as they are (no entry is re-encoded), or as an lz4
/// block of the `EntryPush` they form.
pub(crate) fn encode_page(
    seq: u64,
    entries: PageEntries,
    last: bool,
    compression: Compression,
) -> SnapshotPage {
    let cursor = entries
        .cursor
        .map(|h| Bytes::copy_from_slice(&h.0))
        .unwrap_or_default();
    let mut page = SnapshotPage {
        seq,
        cursor,
        last,
        ..SnapshotPage::default()
    };
    match compression {
        Compression::None => page.packed = entries.bytes.into(),
        Compression::Lz4 => {
            page.raw_len = u32::try_from(entries.bytes.len()).unwrap_or(u32::MAX);
            page.compressed = lz4_flex::block::compress(&entries.bytes).into();
        }
    }
    page
}

/// Checks and decodes a received page: its encoding matches the session's,
/// sizes and counts are within limits, every entry is valid, key hashes strictly
/// increase, and the cursor names the last entry.
pub(crate) fn decode_page(
    mut msg: SnapshotPage,
    compression: Compression,
) -> Result<Page, ProtocolError> {
    let wire = msg.take_entries()?;
    let wire = match compression {
        Compression::None => {
            if !msg.compressed.is_empty() || msg.raw_len != 0 {
                return Err(ProtocolError::Malformed(
                    "compressed page in an uncompressed session",
                ));
            }
            wire
        }
        Compression::Lz4 => {
            if !wire.is_empty() {
                return Err(ProtocolError::Malformed(
                    "plain entries in a compressed session",
                ));
            }
            decompress(&msg.compressed, msg.raw_len)?
        }
    };
    let entries = decode_entries(wire)?;
    let bytes = entries.iter().map(Entry::encoded_len).sum();
    if entries.len() > 1 {
        ProtocolError::check_limit("snapshot page bytes", MAX_SNAPSHOT_PAGE_BYTES, bytes)?;
    }
    let entries: Vec<Keyed> = entries.into_iter().map(Keyed::new).collect();
    check_order(&entries)?;
    check_cursor(&msg.cursor, &entries, msg.last)?;
    Ok(Page {
        entries,
        bytes,
        last: msg.last,
    })
}

/// Decompresses an lz4 block holding an encoded `EntryPush`, checking the declared
/// length before reserving memory for it.
fn decompress(block: &[u8], raw_len: u32) -> Result<Vec<WireEntry>, ProtocolError> {
    let raw_len = usize::try_from(raw_len).unwrap_or(usize::MAX);
    ProtocolError::check_limit("snapshot page raw bytes", MAX_PAGE_RAW_BYTES, raw_len)?;
    let raw = lz4_flex::block::decompress(block, raw_len)
        .map_err(|_| ProtocolError::Malformed("snapshot page does not decompress"))?;
    if raw.len() != raw_len {
        return Err(ProtocolError::Malformed(
            "snapshot page decompresses to another length than raw_len",
        ));
    }
    EntryPush::decode(raw.as_slice())
        .map(|push| push.entries)
        .map_err(|_| ProtocolError::Malformed("decompressed snapshot page does not decode"))
}

fn check_order(entries: &[Keyed]) -> Result<(), ProtocolError> {
    if entries.windows(2).any(|w| w[0].key_hash >= w[1].key_hash) {
        return Err(ProtocolError::Malformed(
            "snapshot page not in strictly increasing key-hash order",
        ));
    }
    Ok(())
}

fn check_cursor(cursor: &[u8], entries: &[Keyed], last: bool) -> Result<(), ProtocolError> {
    let Some(final_entry) = entries.last() else {
        if !last {
            return Err(ProtocolError::Malformed(
                "empty snapshot page before the last",
            ));
        }
        if !cursor.is_empty() {
            return Err(ProtocolError::Malformed("cursor on an empty snapshot page"));
        }
        return Ok(());
    };
    if Hash::from_wire(cursor, "cursor")? != final_entry.key_hash {
        return Err(ProtocolError::Malformed(
            "snapshot page cursor is not its last key hash",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use synctree_primitives::{EntryRef, NodeId, Version};

    use super::*;

    fn encode_page(
        seq: u64,
        entries: &[StoredEntry],
        last: bool,
        compression: Compression,
    ) -> SnapshotPage {
        let mut page = PageEntries::default();
        entries
            .iter()
            .for_each(|s| page.push(EntryRef::of(s), compression));
        // Through the wire, as a receiver sees it (packed entries decode into
        // `entries`).
        let sent = super::encode_page(seq, page, last, compression).encode_to_vec();
        SnapshotPage::decode(sent.as_slice()).expect("a page decodes")
    }

    fn stored(n: usize) -> Vec<StoredEntry> {
        let mut v: Vec<StoredEntry> = (0..n)
            .map(|i| {
                let e = Entry::put(format!("k{i}"), "v".repeat(i), Version::new(1, NodeId(1)));
                StoredEntry::new(e)
            })
            .collect();
        v.sort_by_key(|s| s.key_hash);
        v
    }

    #[test]
    fn pages_round_trip_in_both_encodings() {
        for compression in [Compression::None, Compression::Lz4] {
            for n in [0, 1, 50] {
                let entries = stored(n);
                let msg = encode_page(7, &entries, true, compression);
                let page = decode_page(msg, compression).expect("valid page");
                assert!(page.last);
                let stored: Vec<StoredEntry> =
                    page.entries.into_iter().map(Keyed::into_stored).collect();
                assert_eq!(stored, entries);
                let bytes: usize = entries.iter().map(|s| s.entry.encoded_len()).sum();
                assert_eq!(page.bytes, bytes);
            }
        }
    }

    #[test]
    fn raw_len_is_the_encoded_size_of_the_entries() {
        let entries = stored(20);
        let msg = encode_page(0, &entries, false, Compression::Lz4);
        let bytes: usize = entries.iter().map(|s| s.entry.encoded_len()).sum();
        assert_eq!(msg.raw_len as usize, bytes);
    }

    #[test]
    fn a_page_in_the_other_encoding_is_malformed() {
        let entries = stored(3);
        let plain = encode_page(0, &entries, true, Compression::None);
        let lz4 = encode_page(0, &entries, true, Compression::Lz4);
        assert!(matches!(
            decode_page(plain, Compression::Lz4),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            decode_page(lz4, Compression::None),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn empty_pages_only_end_a_snapshot() {
        let msg = encode_page(0, &[], false, Compression::None);
        assert!(decode_page(msg, Compression::None).is_err());
    }
}
