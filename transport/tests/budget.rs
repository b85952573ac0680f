//! The shared buffer budget and the send timeout: a peer that stops reading makes
//! a transport hold at most the budget plus one frame, and its send fails in time.

mod common;

use std::time::Duration;

use common::{TestResult, push};
use synctree_primitives::{SyncTransport, TransportError};
use synctree_transport::{BufferBudget, FramedTransport, LENGTH_PREFIX_BYTES};

const KIB: usize = 1024;

#[tokio::test(start_paused = true)]
async fn a_spent_budget_stops_queueing_and_the_send_times_out() -> TestResult {
    let budget = BufferBudget::new(1024 * KIB);
    let timeout = Duration::from_secs(5);
    let (a, _b) = FramedTransport::memory_pair(64 * KIB);
    let mut a = a
        .with_budget(std::sync::Arc::clone(&budget))
        .with_send_timeout(timeout);
    let frame = push(512 * KIB, 0);
    let frame_wire = prost::Message::encoded_len(&frame) + LENGTH_PREFIX_BYTES;
    let mut outcome = Ok(());
    for _ in 0..8 {
        outcome = a.send(&frame).await;
        if outcome.is_err() {
            break;
        }
    }
    // Nobody reads `_b`: the third frame spends the budget and waits, then fails.
    assert!(
        matches!(outcome, Err(TransportError::Timeout(d)) if d == timeout),
        "{outcome:?}"
    );
    assert!(
        budget.peak() <= budget.limit() + frame_wire,
        "{}",
        budget.peak()
    );
    assert_eq!(
        budget.used(),
        0,
        "a timed-out transport gives its outbox back"
    );
    // The transport stopped writing: later sends and close fail at once.
    assert!(a.send(&frame).await.is_err());
    assert!(a.close().await.is_err());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn transports_sharing_a_budget_give_it_back_when_dropped() -> TestResult {
    let budget = BufferBudget::new(usize::MAX);
    let (a, b) = FramedTransport::memory_pair(64 * KIB);
    let mut a = a.with_budget(std::sync::Arc::clone(&budget));
    let b = b.with_budget(std::sync::Arc::clone(&budget));
    a.send(&push(100 * KIB, 1)).await?;
    assert!(budget.used() > 100 * KIB);
    drop((a, b));
    assert_eq!(budget.used(), 0);
    Ok(())
}
