//! What the fuzz targets share: a small store, the fuzz input split into
//! messages, a framed transport that reads the input, and a bounded sans-IO loop
//! over a protocol machine. `seeds` (an ignored test) writes the seed corpus.

use std::io::Cursor;
use std::sync::OnceLock;
use std::time::Instant;

use prost::Message;
use synctree_primitives::{ContextId, Entry, NodeId, Store, StreamMessage, Version};
use synctree_protocols::Machine;
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;
use tokio::io::{Join, Sink};

#[cfg(test)]
mod seeds;

/// Most messages taken from one input.
pub const MAX_MESSAGES: usize = 64;
/// Most `poll_transmit` calls after one message before the target calls it a loop:
/// far above what a machine over a five-entry store ever queues.
pub const MAX_POLLS: usize = 10_000;

/// The context every target uses.
pub fn context() -> ContextId {
    ContextId::new("ctx").expect("valid context")
}

/// A store with five entries (one a tombstone) in [`context`].
pub fn store() -> MemoryStore {
    let store = MemoryStore::new();
    let mut entries: Vec<Entry> = (0..4u64)
        .map(|i| {
            Entry::put(
                format!("key-{i}"),
                format!("value-{i}"),
                Version::new(i + 1, NodeId(1)),
            )
        })
        .collect();
    entries.push(Entry::delete("gone", Version::new(9, NodeId(2))));
    store.apply(&context(), entries).expect("memory apply");
    store
}

/// Splits `data` into messages, each a 2-byte big-endian length and that many
/// bytes of protobuf; chunks that do not decode are skipped.
pub fn messages(data: &[u8]) -> Vec<StreamMessage> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < MAX_MESSAGES && rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let take = len.min(rest.len() - 2);
        if let Ok(m) = StreamMessage::decode(&rest[2..2 + take]) {
            out.push(m);
        }
        rest = &rest[2 + take..];
    }
    out
}

/// The inverse of [`messages`], for seeds.
pub fn encode_messages(messages: &[StreamMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let bytes = m.encode_to_vec();
        let len = u16::try_from(bytes.len()).expect("seed message under 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// A byte stream that reads `data` and then ends, and swallows writes.
pub type InputStream = Join<Cursor<Vec<u8>>, Sink>;

/// A framed transport whose peer sent exactly `data`.
pub fn transport(data: &[u8]) -> FramedTransport<InputStream> {
    let stream = tokio::io::join(Cursor::new(data.to_vec()), tokio::io::sink());
    FramedTransport::new(stream, "fuzz")
}

/// The current-thread runtime the async targets share, created once.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

/// Feeds `messages` to `machine` one by one, draining its output after each (at
/// most [`MAX_POLLS`] messages, else it panics: an unbounded loop). Stops at the
/// first error or once the machine is done. `now` is fixed.
pub fn run_machine<M: Machine<MemoryStore>>(
    machine: &mut M,
    store: &MemoryStore,
    messages: Vec<StreamMessage>,
) {
    let now = Instant::now();
    if drain(machine, store, now).is_err() {
        return;
    }
    for message in messages {
        if machine.is_done() || machine.handle(store, now, message).is_err() {
            return;
        }
        if drain(machine, store, now).is_err() {
            return;
        }
    }
}

/// Everything the machine has to send now (at most [`MAX_POLLS`] messages, else it
/// panics: an unbounded loop).
pub fn drain<M: Machine<MemoryStore>>(
    machine: &mut M,
    store: &MemoryStore,
    now: Instant,
) -> Result<(), ()> {
    for _ in 0..MAX_POLLS {
        match machine.poll_transmit(store, now) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(_) => return Err(()),
        }
    }
    panic!("poll_transmit sent {MAX_POLLS} messages after one input message");
}
