//! The first message of a stream: only a valid `InitPayload` opens a session.

use synctree_primitives::wire::AbortCode;
use synctree_primitives::wire::stream_message::Body;

use super::harness::{CTX, Served};
use super::wire::{
    Answer, block_on, finish, handshake_init, hash_comparison, init, init_version, push, wire_entry,
};
use synctree_primitives::StreamMessage;

/// Sends `messages` as the stream's opening and returns the server's answer,
/// then runs the survival checks.
fn opening(messages: &[StreamMessage]) -> Answer {
    let mut served = Served::start();
    let mut raw = served.raw();
    let answer = block_on(raw.exchange(messages));
    served.survived();
    answer
}

/// Sends raw bytes as the stream's opening.
fn opening_bytes(bytes: &[u8]) -> Answer {
    let mut served = Served::start();
    let mut raw = served.raw();
    let answer = block_on(async {
        raw.bytes(bytes).await;
        raw.answer().await
    });
    served.survived();
    answer
}

#[test]
fn first_message_not_an_init_is_unknown_init() {
    let answer = opening(&[push(vec![wire_entry("k", b"v", 1, 1)])]);
    assert_eq!(answer.code(), AbortCode::UnknownInit, "{answer:?}");
}

#[test]
fn init_with_unknown_version_is_unsupported_version() {
    let answer = opening(&[init_version(2, CTX, Some(hash_comparison()))]);
    assert_eq!(answer.code(), AbortCode::UnsupportedVersion, "{answer:?}");
}

#[test]
fn init_with_version_zero_is_unsupported_version() {
    let answer = opening(&[init_version(0, CTX, Some(hash_comparison()))]);
    assert_eq!(answer.code(), AbortCode::UnsupportedVersion, "{answer:?}");
}

#[test]
fn empty_context_id_is_invalid_context() {
    let answer = opening(&[init("", Some(hash_comparison()))]);
    assert_eq!(answer.code(), AbortCode::InvalidContext, "{answer:?}");
}

#[test]
fn context_id_with_control_characters_is_invalid_context() {
    let answer = opening(&[init("ctx\n\u{1b}[31m", Some(hash_comparison()))]);
    assert_eq!(answer.code(), AbortCode::InvalidContext, "{answer:?}");
}

#[test]
fn context_id_of_129_bytes_is_invalid_context() {
    let answer = opening(&[init(&"c".repeat(129), Some(hash_comparison()))]);
    assert_eq!(answer.code(), AbortCode::InvalidContext, "{answer:?}");
}

/// Not UTF-8 does not decode as a string field: an undecodable first frame.
#[test]
fn context_id_that_is_not_utf8_is_refused() {
    // StreamMessage.init { protocol_version: 1, context_id: ff fe, handshake {} }
    let init = [0x08, 0x01, 0x12, 0x02, 0xff, 0xfe, 0x52, 0x00];
    let mut message = vec![0x0a, init.len() as u8];
    message.extend_from_slice(&init);
    let mut bytes = (message.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&message);
    let answer = opening_bytes(&bytes);
    assert_eq!(answer.code(), AbortCode::UnknownInit, "{answer:?}");
}

#[test]
fn unknown_protocol_kind_is_unknown_init() {
    // InitPayload { protocol_version: 1, context_id: "ctx", field 15 (unknown kind): {} }
    let init = [0x08, 0x01, 0x12, 0x03, b'c', b't', b'x', 0x7a, 0x00];
    let mut message = vec![0x0a, init.len() as u8];
    message.extend_from_slice(&init);
    let mut bytes = (message.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&message);
    let answer = opening_bytes(&bytes);
    assert_eq!(answer.code(), AbortCode::UnknownInit, "{answer:?}");
}

#[test]
fn unknown_message_body_first_is_unknown_init() {
    // StreamMessage with only field 17 (unassigned) set: no body.
    let answer = opening_bytes(&[0, 0, 0, 3, 0x8a, 0x01, 0x00]);
    assert_eq!(answer.code(), AbortCode::UnknownInit, "{answer:?}");
}

#[test]
fn init_without_kind_is_unknown_init() {
    let answer = opening(&[init(CTX, None)]);
    assert_eq!(answer.code(), AbortCode::UnknownInit, "{answer:?}");
}

#[test]
fn second_handshake_is_unexpected_message() {
    let answer = opening(&[handshake_init(CTX), handshake_init(CTX)]);
    assert_eq!(answer.code(), AbortCode::UnexpectedMessage, "{answer:?}");
}

#[test]
fn handshake_then_a_push_is_unknown_init() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let messages = [handshake_init(CTX), push(vec![wire_entry("k", b"v", 1, 1)])];
    let answer = block_on(raw.exchange(&messages));
    // After a handshake the next message must be a protocol's init.
    assert_eq!(answer.code(), AbortCode::UnknownInit, "{answer:?}");
    assert!(matches!(
        raw.skipped.first().and_then(|m| m.body.as_ref()),
        Some(Body::Handshake(_))
    ));
    served.survived();
}

#[test]
fn init_with_a_short_root_is_malformed() {
    use synctree_primitives::wire::HashComparisonInit;
    use synctree_primitives::wire::init_payload::Kind;
    let kind = Kind::HashComparison(HashComparisonInit {
        root: vec![0u8; 31].into(),
    });
    let answer = opening(&[init(CTX, Some(kind))]);
    assert_eq!(answer.code(), AbortCode::Malformed, "{answer:?}");
}

#[test]
fn init_for_an_unknown_context_is_answered_without_harm() {
    let answer = opening(&[init("nope", Some(hash_comparison())), finish()]);
    assert!(
        matches!(
            answer,
            Answer::Closed | Answer::Abort(AbortCode::UnknownContext, _)
        ),
        "{answer:?}"
    );
}
