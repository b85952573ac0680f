//! Framing: what the length prefix and the frame body may not do.

use std::time::Duration;

use synctree_primitives::limits::MAX_FRAME_BYTES;
use synctree_primitives::wire::AbortCode;
use synctree_primitives::wire::stream_message::Body;

use super::harness::{CTX, Served};
use super::wire::{Answer, block_on, frame, handshake_init};

#[test]
fn declared_length_over_the_frame_limit_is_limit_exceeded() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let len = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes();
    let answer = block_on(async {
        raw.bytes(&len).await;
        raw.answer().await
    });
    assert_eq!(answer.code(), AbortCode::LimitExceeded, "{answer:?}");
    served.survived();
}

#[test]
fn a_maximal_declared_length_is_refused_before_the_body_arrives() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let answer = block_on(async {
        raw.bytes(&u32::MAX.to_be_bytes()).await;
        raw.answer().await
    });
    assert_eq!(answer.code(), AbortCode::LimitExceeded, "{answer:?}");
    served.survived();
}

#[test]
fn zero_length_frame_is_an_empty_message_unknown_init() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let answer = block_on(async {
        raw.bytes(&[0, 0, 0, 0]).await;
        raw.answer().await
    });
    assert_eq!(answer.code(), AbortCode::UnknownInit, "{answer:?}");
    served.survived();
}

#[test]
fn truncated_frame_then_close_ends_cleanly() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let whole = frame(&handshake_init(CTX));
    let answer = block_on(async {
        raw.bytes(&whole[..whole.len() / 2]).await;
        raw.shutdown_write().await;
        raw.answer().await
    });
    assert!(
        matches!(
            answer,
            Answer::Closed | Answer::Abort(AbortCode::Malformed, _)
        ),
        "{answer:?}"
    );
    served.survived();
}

/// An undecodable *first* frame is not a known init (docs/PROTOCOL.md, Framing).
#[test]
fn garbage_first_body_is_unknown_init() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let mut garbage = 16u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff; 16]);
    let answer = block_on(async {
        raw.bytes(&garbage).await;
        raw.answer().await
    });
    assert_eq!(answer.code(), AbortCode::UnknownInit, "{answer:?}");
    served.survived();
}

#[test]
fn http_request_is_read_as_an_oversized_length() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let answer = block_on(async {
        raw.bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        raw.answer().await
    });
    // "GET " is a length of 1,195,725,856 bytes.
    assert_eq!(answer.code(), AbortCode::LimitExceeded, "{answer:?}");
    served.survived();
}

#[test]
fn a_frame_split_at_every_byte_still_works() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let whole = frame(&handshake_init(CTX));
    let reply = block_on(async {
        for byte in &whole {
            raw.bytes(std::slice::from_ref(byte)).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        raw.next().await
    });
    let reply = reply.expect("a reply");
    assert!(matches!(reply.body, Some(Body::Handshake(_))), "{reply:?}");
    drop(raw);
    served.survived();
}
