//! The snapshot responder: its window and acknowledgements.

use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{AbortCode, SnapshotAck};

use super::harness::Served;
use super::wire::{Answer, block_on, body, snapshot_init};

fn snapshot_opening(window: u32) -> Answer {
    let mut served = Served::start();
    let mut raw = served.raw();
    let answer = block_on(raw.exchange(&[snapshot_init(window)]));
    served.survived();
    answer
}

#[test]
fn snapshot_window_zero_is_refused() {
    let answer = snapshot_opening(0);
    assert!(
        matches!(
            answer.code(),
            AbortCode::LimitExceeded | AbortCode::Malformed
        ),
        "{answer:?}"
    );
}

#[test]
fn snapshot_window_over_the_maximum_is_refused() {
    let answer = snapshot_opening(9);
    assert!(
        matches!(
            answer.code(),
            AbortCode::LimitExceeded | AbortCode::Malformed
        ),
        "{answer:?}"
    );
}

#[test]
fn snapshot_ack_for_a_page_never_sent_is_unexpected_message() {
    let mut served = Served::start();
    let mut raw = served.raw();
    let answer = block_on(async {
        raw.send(&snapshot_init(1)).await;
        let begin = raw.next().await.expect("snapshot begin");
        assert!(
            matches!(begin.body, Some(Body::SnapshotBegin(_))),
            "{begin:?}"
        );
        raw.send(&body(Body::SnapshotAck(SnapshotAck { seq: 1000 })))
            .await;
        raw.answer().await
    });
    assert_eq!(answer.code(), AbortCode::UnexpectedMessage, "{answer:?}");
    served.survived();
}
