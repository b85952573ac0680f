//! Entries a hostile initiator pushes: poisoned clocks, oversize and over-count
//! pushes, unsolicited batches, and text meant to forge log lines.

use synctree_primitives::limits::{MAX_ENTRIES_PER_BATCH, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{AbortCode, EntryBatch};

use super::harness::{CTX, Gen, Served, ok, root, synctree};
use super::wire::{
    Answer, block_on, body, finish, handshake_init, hlc_in, push, tree_init, wire_entry,
};
use synctree_primitives::StreamMessage;

/// A key `data --seed 1` wrote.
const GEN_KEY: &str = "gen-1-0000000007";

const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;

/// `Init{hash_comparison}`, `messages`, `Finish`: the server's answer.
fn session(served: &Served, messages: Vec<StreamMessage>) -> (Answer, Vec<StreamMessage>) {
    let mut raw = served.raw();
    let mut all = vec![tree_init()];
    all.extend(messages);
    all.push(finish());
    let answer = block_on(raw.exchange(&all));
    (answer, raw.skipped)
}

fn got_finish_ack(skipped: &[StreamMessage]) -> bool {
    skipped
        .iter()
        .any(|m| matches!(m.body, Some(Body::FinishAck(_))))
}

#[test]
fn clock_poisoning_tombstone_at_u64_max_is_refused() {
    let mut served = Served::start();
    let mut poison = wire_entry(GEN_KEY, b"", u64::MAX, u64::MAX);
    poison.tombstone = true;
    let (answer, skipped) = session(&served, vec![push(vec![poison])]);
    assert!(
        answer == Answer::Closed && got_finish_ack(&skipped),
        "the entry is refused, the session ends normally: {answer:?} {skipped:?}"
    );
    served.survived();
    let kept = synctree(&served.store, &["get", CTX, GEN_KEY]);
    assert!(
        kept.status.success() && kept.stdout.len() > 1,
        "the key keeps its value"
    );
    ok(&served.store, &["put", CTX, GEN_KEY, "v2"]);
    assert_eq!(ok(&served.store, &["get", CTX, GEN_KEY]), "v2\n");
}

#[test]
fn entry_one_year_ahead_is_not_stored() {
    let mut served = Served::start();
    let ahead = wire_entry("from-the-future", b"v", hlc_in(YEAR_MS), 9);
    let (answer, skipped) = session(&served, vec![push(vec![ahead])]);
    assert!(
        answer == Answer::Closed && got_finish_ack(&skipped),
        "{answer:?}"
    );
    served.survived();
    let out = synctree(&served.store, &["get", CTX, "from-the-future"]);
    assert!(!out.status.success(), "the entry was stored");
}

#[test]
fn a_valid_push_is_stored_and_nothing_else() {
    let mut served = Served::start();
    let hlc = hlc_in(0);
    let entry = wire_entry("hostile-but-valid", b"v", hlc, 99);
    let (answer, skipped) = session(&served, vec![push(vec![entry])]);
    assert!(
        answer == Answer::Closed && got_finish_ack(&skipped),
        "{answer:?}"
    );
    // The expected root: the same generated data plus that one entry.
    let twin = served.dir.path().join("twin");
    ok(
        &twin,
        &[
            "gen",
            CTX,
            "--entries",
            "500",
            "--seed",
            "1",
            "--value-size",
            "64",
        ],
    );
    let line = format!(
        r#"{{"key":"hostile-but-valid","value":"v","encoding":"utf8","hlc":{hlc},"node":99,"tombstone":false}}"#
    );
    let file = served.dir.path().join("one.jsonl");
    std::fs::write(&file, line).unwrap();
    ok(&twin, &["import", CTX, file.to_str().unwrap()]);
    let expected = root(&twin);
    assert_ne!(expected, served.root_before);
    served.survived_with(&expected);
}

#[test]
fn oversize_key_in_a_push_is_limit_exceeded() {
    let mut served = Served::start();
    let key = "k".repeat(MAX_KEY_BYTES + 1);
    let (answer, _) = session(&served, vec![push(vec![wire_entry(&key, b"v", 1, 1)])]);
    assert_eq!(answer.code(), AbortCode::LimitExceeded, "{answer:?}");
    served.survived();
}

#[test]
fn oversize_value_in_a_push_is_limit_exceeded() {
    let mut served = Served::start();
    let value = vec![7u8; MAX_VALUE_BYTES + 1];
    let (answer, _) = session(&served, vec![push(vec![wire_entry("k", &value, 1, 1)])]);
    assert_eq!(answer.code(), AbortCode::LimitExceeded, "{answer:?}");
    served.survived();
}

#[test]
fn tombstone_with_a_value_is_malformed() {
    let mut served = Served::start();
    let mut entry = wire_entry("k", b"not empty", 1, 1);
    entry.tombstone = true;
    let (answer, _) = session(&served, vec![push(vec![entry])]);
    assert_eq!(answer.code(), AbortCode::Malformed, "{answer:?}");
    served.survived();
}

#[test]
fn entries_per_push_over_the_limit_is_limit_exceeded() {
    let mut served = Served::start();
    let entries = (0..=MAX_ENTRIES_PER_BATCH)
        .map(|i| wire_entry(&format!("k{i}"), b"", 1, 1))
        .collect();
    let (answer, _) = session(&served, vec![push(entries)]);
    assert_eq!(answer.code(), AbortCode::LimitExceeded, "{answer:?}");
    served.survived();
}

#[test]
fn unsolicited_entry_batch_is_unexpected_message() {
    let mut served = Served::start();
    let batch = body(Body::EntryBatch(EntryBatch {
        request_id: 1,
        entries: vec![wire_entry("k", b"v", 1, 1)],
        last: true,
    }));
    let (answer, _) = session(&served, vec![batch]);
    assert_eq!(answer.code(), AbortCode::UnexpectedMessage, "{answer:?}");
    served.survived();
}

/// Regression: a peer's abort text is escaped before it reaches a log line.
#[test]
fn abort_text_cannot_forge_log_lines_or_send_terminal_escapes() {
    let data = Gen::default();
    let mut served = Served::start_with(data, Some("debug"));
    let mut raw = served.raw();
    let text = "x\nFORGED-LINE 2026-01-01T00:00:00Z INFO synctree: admin login ok\n\x1b[31m";
    let abort = StreamMessage::abort(AbortCode::StoreFailure, text);
    let answer = block_on(async {
        raw.send(&handshake_init(CTX)).await;
        let reply = raw.next().await.expect("handshake reply");
        assert!(matches!(reply.body, Some(Body::Handshake(_))), "{reply:?}");
        raw.send(&abort).await;
        raw.answer().await
    });
    assert_eq!(answer, Answer::Closed, "nobody answers an abort");
    let log = served.survived();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("FORGED-LINE"), "the abort was logged: {text}");
    assert!(!log.contains(&0x1b), "an ESC byte reached the log: {text}");
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED-LINE")),
        "a forged line: {text}"
    );
}
