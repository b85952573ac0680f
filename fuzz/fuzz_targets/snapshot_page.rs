//! Snapshot pages whose declared sizes lie, through the snapshot initiator (the
//! page decoder is private): a valid `SnapshotBegin`, then pages built from the
//! input. Each page is a mode byte and a 2-byte-length chunk:
//! - mode 0: the chunk is a `SnapshotPage` in protobuf;
//! - mode 1: the chunk is the lz4 block itself, `raw_len` from the next 4 bytes;
//! - mode 2: the chunk (an `EntryPush`) is lz4-compressed here, and `raw_len` is
//!   its true length plus a signed lie from the next byte; the cursor is the
//!   key hash of its last entry when it decodes, so the page can pass.
//!
//! Never panics; nothing reaches the store unless the snapshot verified.

#![no_main]

use std::time::Instant;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use synctree_fuzz::{MAX_MESSAGES, context};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{Compression, EntryPush, SnapshotBegin, SnapshotPage};
use synctree_primitives::{Hash, Store, StreamMessage, WallClock, key_hash};
use synctree_protocols::{Machine, SnapshotConfig, SnapshotInitiator};

const CLOCK: WallClock = WallClock::Fixed(1_700_000_000_000);

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let compression = if flags & 1 == 0 {
        Compression::Lz4
    } else {
        Compression::None
    };
    let store = synctree_fuzz::store();
    let before = store.summary(&context()).expect("summary");
    let config = SnapshotConfig {
        compression,
        ..SnapshotConfig::default()
    };
    let mut machine = SnapshotInitiator::new(context(), config, before.root).with_clock(CLOCK);
    let now = Instant::now();
    // The pinned root: the local one (an equal snapshot), or one of the input's.
    let pinned = match rest.split_first_chunk::<32>() {
        Some((root, tail)) if flags & 2 != 0 => {
            rest = tail;
            Hash(*root)
        }
        _ => Hash([7; 32]),
    };
    let begin = Body::SnapshotBegin(SnapshotBegin {
        root: Bytes::copy_from_slice(&pinned.0),
        entry_count: u64::from(flags >> 2),
    });
    let mut feed = vec![StreamMessage::new(begin)];
    let mut seq = 0;
    while feed.len() < MAX_MESSAGES {
        let Some(page) = next_page(&mut rest, seq) else {
            break;
        };
        feed.push(StreamMessage::new(Body::SnapshotPage(page)));
        seq += 1;
    }
    synctree_fuzz::drain(&mut machine, &store, now).expect("the init goes out");
    for message in feed {
        if machine.handle(&store, now, message).is_err() {
            break;
        }
        if synctree_fuzz::drain(&mut machine, &store, now).is_err() {
            break;
        }
    }
    let after = store.summary(&context()).expect("summary");
    if after != before {
        assert_eq!(
            after.root, pinned,
            "only a verified snapshot reaches the store"
        );
    }
});

/// The next page the input describes, `None` at its end.
fn next_page(rest: &mut &[u8], seq: u64) -> Option<SnapshotPage> {
    let (&mode, tail) = rest.split_first()?;
    let (len, tail) = tail.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
    let (chunk, tail) = tail.split_at(len);
    *rest = tail;
    let mut page = SnapshotPage {
        seq,
        last: mode & 0x80 != 0,
        ..SnapshotPage::default()
    };
    match mode & 0x3 {
        0 => return SnapshotPage::decode(chunk).ok(),
        1 => {
            let (raw_len, tail) = rest.split_first_chunk::<4>().unwrap_or((&[0; 4], rest));
            *rest = tail;
            page.compressed = Bytes::copy_from_slice(chunk);
            page.raw_len = u32::from_be_bytes(*raw_len);
        }
        _ => {
            let (&lie, tail) = rest.split_first().unwrap_or((&0, rest));
            *rest = tail;
            page.compressed = Bytes::from(lz4_flex::block::compress(chunk));
            let raw_len = i64::try_from(chunk.len()).unwrap_or(0) + i64::from(lie as i8);
            page.raw_len = u32::try_from(raw_len.max(0)).unwrap_or(0);
            if let Some(last) = EntryPush::decode(chunk)
                .ok()
                .and_then(|p| p.entries.last().cloned())
            {
                page.cursor = Bytes::copy_from_slice(&key_hash(&last.key).0);
            }
        }
    }
    Some(page)
}
