//! Bytes from a peer → `FramedTransport` (tokio-util's `LengthDelimitedCodec` with
//! the frame limit, plus the end-of-stream check) → `StreamMessage`. Never panics;
//! every message it yields fits in a frame; libFuzzer's `-malloc_limit_mb` catches
//! an allocation the declared length did not bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use synctree_primitives::SyncTransport;
use synctree_primitives::limits::MAX_FRAME_BYTES;

fuzz_target!(|data: &[u8]| {
    let mut transport = synctree_fuzz::transport(data);
    synctree_fuzz::runtime().block_on(async {
        // Every frame takes at least its 4-byte prefix.
        for _ in 0..=data.len() / 4 {
            match transport.recv().await {
                Ok(Some(message)) => assert!(message.encoded_len() <= MAX_FRAME_BYTES),
                Ok(None) | Err(_) => return,
            }
        }
        let end = transport.recv().await;
        assert!(!matches!(end, Ok(Some(_))), "more frames than prefixes");
    });
});
