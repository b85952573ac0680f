//! Full duplex without spawned tasks: heavy two-way sending, back-pressure above the
//! high-water mark, cancellation in the middle of a flush, and timeouts.

mod common;

use std::time::Duration;

use common::{TestResult, guard, push, recv_all, recv_n, tag_of};
use synctree_primitives::{StreamMessage, SyncTransport, TransportError};
use synctree_transport::{
    FramedTransport, INBOX_HIGH_WATER, LENGTH_PREFIX_BYTES, OUTBOX_HIGH_WATER,
};
use tokio::io::DuplexStream;

const MIB: usize = 1024 * 1024;

/// Sends `count` pushes of about `size` bytes before reading anything, then reads
/// the peer's `count` and closes; returns the tags received in order.
async fn flood(
    mut t: FramedTransport<DuplexStream>,
    count: u64,
    size: usize,
) -> Result<Vec<u64>, String> {
    for tag in 0..count {
        t.send(&push(size, tag))
            .await
            .map_err(|e| format!("send {tag}: {e:?}"))?;
    }
    let received = recv_n(&mut t, count as usize).await?;
    t.close().await.map_err(|e| format!("close: {e:?}"))?;
    let tags: Vec<u64> = received.iter().filter_map(tag_of).collect();
    let stats = t.stats();
    if stats.messages_sent != count || stats.messages_received != count {
        return Err(format!(
            "counters disagree with {count} messages: {stats:?}"
        ));
    }
    Ok(tags)
}

/// What `INBOX_HIGH_WATER` promises: both sides may send the two high-water marks'
/// worth (here in 64 KiB frames, less a frame each for the one crossing a mark)
/// before either receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_sending_both_high_water_marks_before_receiving_do_not_deadlock() -> TestResult {
    const SIZE: usize = 64 * 1024;
    const COUNT: u64 = ((OUTBOX_HIGH_WATER + INBOX_HIGH_WATER) / SIZE - 2) as u64;
    let (a, b) = FramedTransport::memory_pair(64 * 1024);
    let (a, b) = (
        tokio::spawn(flood(a, COUNT, SIZE)),
        tokio::spawn(flood(b, COUNT, SIZE)),
    );
    let (at_a, at_b) = guard(async { tokio::join!(a, b) }).await?;
    let expected: Vec<u64> = (0..COUNT).collect();
    assert_eq!(at_a??, expected);
    assert_eq!(at_b??, expected);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn both_sides_flooding_in_one_task_do_not_deadlock() -> TestResult {
    const COUNT: u64 = 40;
    let (a, b) = FramedTransport::memory_pair(4096);
    let (at_a, at_b) =
        guard(async { tokio::join!(flood(a, COUNT, 32 * 1024), flood(b, COUNT, 32 * 1024)) })
            .await?;
    let expected: Vec<u64> = (0..COUNT).collect();
    assert_eq!(at_a?, expected);
    assert_eq!(at_b?, expected);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn send_waits_above_the_high_water_mark_until_the_peer_reads() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(64 * 1024);
    let frame = push(MIB, 0);
    let frame_wire = (prost::Message::encoded_len(&frame) + LENGTH_PREFIX_BYTES) as u64;
    let under_high_water = (OUTBOX_HIGH_WATER as u64 / frame_wire) as usize;
    let mut sent = Vec::new();
    let mut first_wait = None;
    // The paused clock only advances once every task is idle, so a send times out
    // exactly when it cannot make progress on its own.
    for tag in 0..under_high_water as u64 + 4 {
        let message = push(MIB, tag);
        let waited = tokio::time::timeout(Duration::from_secs(10), a.send(&message)).await;
        // A send that waited was cancelled, but its message was already queued.
        sent.push(message);
        if waited.is_err() {
            first_wait = Some(tag as usize);
            break;
        }
    }
    let first_wait = first_wait.ok_or("send never waited although nobody reads")?;
    // Under the mark, sends return at once; past it (plus the frame the writer holds
    // and the pipe), they wait.
    assert!(
        (under_high_water..=under_high_water + 2).contains(&first_wait),
        "first waited at message {first_wait}, the mark is at {under_high_water}"
    );

    let (closed, received) = tokio::join!(a.close(), recv_all(&mut b));
    closed?;
    assert_eq!(received?, sent);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn cancelling_recv_in_the_middle_of_a_flush_loses_no_frame() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(1024);
    let messages: Vec<StreamMessage> = (0..200).map(|tag| push(300, tag)).collect();
    for message in &messages {
        a.send(message).await?;
    }
    let reader = tokio::spawn(async move { recv_n(&mut b, 200).await });
    // Each poll of `recv` writes what fits in the 1 KiB pipe, then is dropped.
    let cancelled = guard(async {
        let mut cancelled = 0;
        loop {
            tokio::select! {
                biased;
                received = a.recv() => {
                    // The reader drops its end once it has everything.
                    assert!(matches!(received, Ok(None)), "the peer sent nothing: {received:?}");
                    return cancelled;
                }
                () = tokio::task::yield_now() => cancelled += 1,
            }
        }
    })
    .await?;
    assert_eq!(reader.await??, messages);
    assert!(
        cancelled > 10,
        "the flush was never interrupted ({cancelled} cancellations)"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn recv_timeout_fails_with_timeout_and_the_transport_stays_usable() -> TestResult {
    let (mut a, mut b) = FramedTransport::memory_pair(1024);
    let wait = Duration::from_secs(30);
    let result = a.recv_timeout(wait).await;
    assert!(
        matches!(result, Err(TransportError::Timeout(d)) if d == wait),
        "{result:?}"
    );

    let late = push(10, 7);
    b.send(&late).await?;
    b.close().await?;
    assert_eq!(guard(a.recv()).await??, Some(late));
    Ok(())
}
