//! Framing: partial frames, oversized and garbage frames, end of stream, and the
//! exact bytes on the wire.

mod common;

use common::{
    TestResult, frame_bytes, guard, push_of_encoded_len, raw_pair, recv_all, recv_ready, samples,
    wire_len,
};
use proptest::prelude::*;
use prost::Message;
use synctree_primitives::limits::MAX_FRAME_BYTES;
use synctree_primitives::wire::{
    HashComparisonInit, InitPayload, init_payload::Kind, stream_message::Body,
};
use synctree_primitives::{StreamMessage, SyncTransport, TransportError, TransportStats};
use synctree_transport::{FramedTransport, LENGTH_PREFIX_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn frames_split_at_every_byte_decode_to_the_original_messages() -> TestResult {
    let messages = samples();
    let bytes = frame_bytes(&messages);
    for split in 0..=bytes.len() {
        let (mut t, mut raw) = raw_pair(bytes.len() + 1);
        raw.write_all(&bytes[..split]).await?;
        let mut got = recv_ready(&mut t).await?;
        raw.write_all(&bytes[split..]).await?;
        drop(raw);
        got.extend(guard(recv_all(&mut t)).await??);
        assert_eq!(got, messages, "split at byte {split}");
        assert_eq!(t.stats().bytes_received, bytes.len() as u64);
        assert_eq!(t.stats().messages_received, messages.len() as u64);
    }
    Ok(())
}

#[tokio::test]
async fn a_message_arrives_exactly_when_its_last_byte_does() -> TestResult {
    let messages = samples();
    let bytes = frame_bytes(&messages);
    let mut frame_ends = Vec::new();
    let mut end = 0;
    for message in &messages {
        end += message.encoded_len() + LENGTH_PREFIX_BYTES;
        frame_ends.push(end);
    }
    let (mut t, mut raw) = raw_pair(bytes.len() + 1);
    let mut got = Vec::new();
    for (written, byte) in bytes.iter().enumerate() {
        raw.write_all(std::slice::from_ref(byte)).await?;
        got.extend(recv_ready(&mut t).await?);
        let complete = frame_ends.iter().filter(|&&end| end <= written + 1).count();
        assert_eq!(got.len(), complete, "after {} bytes", written + 1);
    }
    assert_eq!(got, messages);
    Ok(())
}

#[tokio::test]
async fn an_oversized_length_prefix_is_rejected_without_the_body() -> TestResult {
    for declared in [MAX_FRAME_BYTES as u32 + 1, u32::MAX] {
        let (mut t, mut raw) = raw_pair(64);
        raw.write_all(&declared.to_be_bytes()).await?;
        // `raw` stays open and sends no body: the prefix alone must fail the frame.
        let Err(error) = guard(t.recv()).await? else {
            panic!("a {declared}-byte frame was accepted");
        };
        let TransportError::FrameTooLarge { len, max } = error else {
            panic!("wrong error for a {declared}-byte frame: {error:?}");
        };
        assert_eq!((len, max), (declared as usize, MAX_FRAME_BYTES));
        // The stream is out of step now: it must not read as a clean close later.
        assert!(matches!(guard(t.recv()).await?, Err(TransportError::Io(_))));
        drop(raw);
    }
    Ok(())
}

#[tokio::test]
async fn a_frame_of_exactly_the_limit_passes() -> TestResult {
    let largest = push_of_encoded_len(MAX_FRAME_BYTES).ok_or("no message of the limit's size")?;
    let (mut a, mut b) = FramedTransport::memory_pair(64 * 1024);
    let (sent, received) = tokio::join!(
        async {
            a.send(&largest).await?;
            a.close().await
        },
        guard(b.recv()),
    );
    sent?;
    assert_eq!(received??, Some(largest));
    assert_eq!(
        b.stats().bytes_received,
        (MAX_FRAME_BYTES + LENGTH_PREFIX_BYTES) as u64
    );
    Ok(())
}

#[tokio::test]
async fn an_oversized_message_is_refused_on_send_and_nothing_is_written() -> TestResult {
    let too_big =
        push_of_encoded_len(MAX_FRAME_BYTES + 1).ok_or("no message one over the limit")?;
    let (mut a, mut b) = FramedTransport::memory_pair(64 * 1024);
    let Err(TransportError::FrameTooLarge { len, max }) = a.send(&too_big).await else {
        panic!("an oversized message was accepted");
    };
    assert_eq!((len, max), (MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES));
    assert_eq!(a.stats(), TransportStats::default());

    let next = samples().remove(0);
    a.send(&next).await?;
    a.close().await?;
    assert_eq!(guard(recv_all(&mut b)).await??, vec![next.clone()]);
    assert_eq!(b.stats().bytes_received, wire_len(&[next]));
    Ok(())
}

#[tokio::test]
async fn a_frame_that_is_not_protobuf_is_a_decode_error_and_the_next_frame_still_reads()
-> TestResult {
    let (mut t, mut raw) = raw_pair(1024);
    let good = samples().remove(1);
    raw.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await?;
    raw.write_all(&frame_bytes(std::slice::from_ref(&good)))
        .await?;
    drop(raw);
    assert!(matches!(
        guard(t.recv()).await?,
        Err(TransportError::Decode(_))
    ));
    // The frame boundary was intact, so the stream is still in step.
    assert_eq!(guard(t.recv()).await??, Some(good));
    assert_eq!(guard(t.recv()).await??, None);
    assert_eq!(t.stats().messages_received, 1);
    Ok(())
}

#[tokio::test]
async fn a_clean_close_reads_as_none_every_time() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(1024);
    a.close().await?;
    assert_eq!(guard(b.recv()).await??, None);
    assert_eq!(guard(b.recv()).await??, None);
    Ok(())
}

#[tokio::test]
async fn end_of_stream_inside_a_frame_is_an_error() -> TestResult {
    let frame = frame_bytes(&samples()[..1]);
    // Cut inside the length prefix, right after it, and inside the body.
    for cut in [1, LENGTH_PREFIX_BYTES, frame.len() - 1] {
        let (mut t, mut raw) = raw_pair(1024);
        raw.write_all(&frame[..cut]).await?;
        drop(raw);
        let result = guard(t.recv()).await?;
        assert!(
            matches!(&result, Err(TransportError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "cut at {cut}: {result:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_wire_bytes_match_the_protocol_spec_example() -> TestResult {
    // docs/PROTOCOL.md, test vector (e): one framed InitPayload, 50 bytes.
    let init = StreamMessage::new(Body::Init(InitPayload {
        protocol_version: 1,
        context_id: "demo".into(),
        kind: Some(Kind::HashComparison(HashComparisonInit {
            root: vec![0; 32].into(),
        })),
    }));
    let mut expected = vec![0x00, 0x00, 0x00, 0x2e, 0x0a, 0x2c, 0x08, 0x01, 0x12, 0x04];
    expected.extend_from_slice(b"demo");
    expected.extend_from_slice(&[0x5a, 0x22, 0x0a, 0x20]);
    expected.extend_from_slice(&[0; 32]);

    let (mut t, mut raw) = raw_pair(1024);
    t.send(&init).await?;
    t.close().await?;
    let mut written = Vec::new();
    guard(raw.read_to_end(&mut written)).await??;
    assert_eq!(written, expected);
    assert_eq!(t.stats().bytes_sent, 50);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_messages_in_any_chunks_decode_to_the_original_messages(
        sizes in prop::collection::vec(0usize..3000, 1..12),
        chunks in prop::collection::vec(1usize..700, 1..40),
    ) {
        let messages: Vec<StreamMessage> =
            sizes.iter().enumerate().map(|(i, &n)| common::push(n, i as u64)).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = runtime
            .block_on(deliver_in_chunks(&messages, &chunks))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, messages);
    }
}

/// Writes the frames of `messages` in chunks of the given sizes (cycling), letting
/// the transport read after every chunk, and returns what it decoded.
async fn deliver_in_chunks(
    messages: &[StreamMessage],
    chunks: &[usize],
) -> Result<Vec<StreamMessage>, Box<dyn std::error::Error + Send + Sync>> {
    let bytes = frame_bytes(messages);
    let (mut t, mut raw) = raw_pair(bytes.len() + 1);
    let mut got = Vec::new();
    let mut rest = &bytes[..];
    for &size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        raw.write_all(chunk).await?;
        got.extend(recv_ready(&mut t).await?);
        rest = tail;
    }
    drop(raw);
    got.extend(guard(recv_all(&mut t)).await??);
    Ok(got)
}
