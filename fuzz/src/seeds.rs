//! Writes the seed corpus (`fuzz/corpus/<target>/`) from real sessions: two
//! machines run against each other with `run_pair`, each side's output recorded.
//! Run from `fuzz/`: `cargo +nightly test --lib -- --ignored write_seeds`.

use std::path::Path;
use std::time::Instant;

use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{Compression, HashComparisonInit, LevelWiseInit, ProtocolKind};
use synctree_primitives::{Entry, Hash, NodeId, Store, StreamMessage, Version, WallClock};
use synctree_protocols::pair::run_pair;
use synctree_protocols::{
    Machine, Schedule, SnapshotConfig, SnapshotInitiator, SnapshotResponder, SnapshotResponderInit,
    TreeConfig, TreeInitiator, TreeResponder, init_message,
};
use synctree_store::MemoryStore;

use crate::{context, encode_messages, store};

const CLOCK: WallClock = WallClock::Fixed(1_700_000_000_000);

/// A machine that keeps a copy of everything it sends.
struct Recorder<M> {
    machine: M,
    sent: Vec<StreamMessage>,
}

impl<M: Machine<MemoryStore>> Machine<MemoryStore> for Recorder<M> {
    fn handle(
        &mut self,
        s: &MemoryStore,
        now: Instant,
        m: StreamMessage,
    ) -> Result<(), SyncErrorKind> {
        self.machine.handle(s, now, m)
    }
    fn poll_transmit(
        &mut self,
        s: &MemoryStore,
        now: Instant,
    ) -> Result<Option<StreamMessage>, SyncErrorKind> {
        let out = self.machine.poll_transmit(s, now)?;
        self.sent.extend(out.clone());
        Ok(out)
    }
    fn is_done(&self) -> bool {
        self.machine.is_done()
    }
    fn phase(&self) -> &'static str {
        self.machine.phase()
    }
}

fn record<M>(machine: M) -> Recorder<M> {
    Recorder {
        machine,
        sent: Vec::new(),
    }
}

/// The other replica: some entries the fuzz store lacks, one it holds newer.
fn peer_store() -> MemoryStore {
    let s = MemoryStore::new();
    let mut entries: Vec<Entry> = (2..7u64)
        .map(|i| {
            Entry::put(
                format!("key-{i}"),
                format!("peer-{i}"),
                Version::new(20 + i, NodeId(3)),
            )
        })
        .collect();
    entries.push(Entry::put(
        vec![0xff, 0],
        vec![1, 2, 3],
        Version::new(5, NodeId(3)),
    ));
    s.apply(&context(), entries).expect("apply");
    s
}

fn root(s: &MemoryStore) -> Hash {
    s.summary(&context()).expect("summary").root
}

fn tree(
    kind: ProtocolKind,
    a: &MemoryStore,
    b: &MemoryStore,
) -> (Vec<StreamMessage>, Vec<StreamMessage>) {
    let bytes = bytes::Bytes::copy_from_slice(&root(a).0);
    let (schedule, opening) = match kind {
        ProtocolKind::LevelWise => (
            Schedule::LevelByLevel,
            Kind::LevelWise(LevelWiseInit { root: bytes }),
        ),
        _ => (
            Schedule::Eager,
            Kind::HashComparison(HashComparisonInit { root: bytes }),
        ),
    };
    let init = init_message(&context(), opening);
    let i = TreeInitiator::new(
        context(),
        kind,
        schedule,
        TreeConfig::default(),
        init,
        root(a),
    );
    let mut i = record(i.with_clock(CLOCK));
    let mut r = record(TreeResponder::new(context(), kind, root(b)).with_clock(CLOCK));
    run_pair(&mut i, a, &mut r, b, 10_000).expect("tree session");
    (i.sent, r.sent)
}

fn snapshot(
    compression: Compression,
    a: &MemoryStore,
    b: &MemoryStore,
) -> (Vec<StreamMessage>, Vec<StreamMessage>) {
    let config = SnapshotConfig {
        compression,
        ..SnapshotConfig::default()
    };
    let mut i = record(SnapshotInitiator::new(context(), config, root(a)).with_clock(CLOCK));
    let init = SnapshotResponderInit {
        initiator_root: root(a),
        window: 4,
        compression,
        resume_root: None,
        resume_after: None,
    };
    let r = SnapshotResponder::new(context(), init, root(b)).with_clock(CLOCK);
    let mut r = record(r.with_page_bytes(64));
    run_pair(&mut i, a, &mut r, b, 10_000).expect("snapshot session");
    (i.sent, r.sent)
}

/// Length-prefixed frames, as on the wire.
fn frames(messages: &[StreamMessage]) -> Vec<u8> {
    use prost::Message;
    let mut out = Vec::new();
    for m in messages {
        let body = m.encode_to_vec();
        out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
        out.extend_from_slice(&body);
    }
    out
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("seed");
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    let (a, b) = (store(), peer_store());
    let sessions = [
        (
            "hash_comparison",
            tree(ProtocolKind::HashComparison, &a, &b),
            0u8,
            2u8,
        ),
        ("level_wise", tree(ProtocolKind::LevelWise, &a, &b), 1, 3),
        ("snapshot", snapshot(Compression::None, &a, &b), 4, 6),
        (
            "snapshot_lz4",
            snapshot(Compression::Lz4, &a, &b),
            0x84,
            0x86,
        ),
    ];
    for (name, (from_i, from_r), as_i, as_r) in &sessions {
        write(
            "frame_decode",
            &format!("{name}_initiator"),
            &frames(from_i),
        );
        write(
            "frame_decode",
            &format!("{name}_responder"),
            &frames(from_r),
        );
        // The dispatch target is a responder: it reads what an initiator sent.
        write("first_message_dispatch", name, &frames(from_i));
        // A machine reads what its peer sent (the init, consumed by the manager, dropped).
        let after_init: Vec<_> = from_i
            .iter()
            .filter(|m| !matches!(m.body, Some(Body::Init(_))))
            .cloned()
            .collect();
        write(
            "machines",
            &format!("{name}_initiator"),
            &[&[*as_i][..], &encode_messages(from_r)].concat(),
        );
        write(
            "machines",
            &format!("{name}_responder"),
            &[&[*as_r | 0x20][..], &encode_messages(&after_init)].concat(),
        );
    }
    for (name, (_, from_r), _, _) in &sessions[2..] {
        write(
            "snapshot_page",
            name,
            &snapshot_seed(name.ends_with("lz4"), from_r),
        );
    }
    let lines = [
        Entry::put(
            "user-1",
            "alice",
            Version::new(114_849_562_034_831_360, NodeId(4660)),
        ),
        Entry::put(vec![0xff, 0], vec![1, 2, 3], Version::new(5, NodeId(7))),
        Entry::delete("gone", Version::new(7, NodeId(1))),
        Entry::put("k\n\"1\"", "välue\u{0}", Version::new(9, NodeId(2))),
    ];
    let mut text = Vec::new();
    for entry in &lines {
        synctree_cli::jsonl::write_line(&mut text, entry).expect("line");
    }
    write("jsonl_import", "four_lines", &text);
    write("jsonl_import", "future_and_top", br#"{"key":"a","value":"b","encoding":"utf8","hlc":18446744073709551615,"node":1,"tombstone":false}
{"key":"a","value":"b","encoding":"utf8","hlc":18446744073709551614,"node":1,"tombstone":false}
"#);
}

/// The snapshot_page input for a responder's output: its pinned root, then each
/// page in mode 0 (protobuf as sent).
fn snapshot_seed(lz4: bool, from_r: &[StreamMessage]) -> Vec<u8> {
    use prost::Message;
    let mut out = vec![if lz4 { 0 } else { 1 } | 2];
    for m in from_r {
        match &m.body {
            Some(Body::SnapshotBegin(begin)) => out.extend_from_slice(&begin.root),
            Some(Body::SnapshotPage(page)) => {
                let bytes = page.encode_to_vec();
                out.push(0);
                out.extend_from_slice(&u16::try_from(bytes.len()).expect("small").to_be_bytes());
                out.extend_from_slice(&bytes);
            }
            _ => {}
        }
    }
    out
}
