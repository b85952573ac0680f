//! One protocol session without the manager: two `MemoryStore`s, a framed
//! in-memory pipe, HashComparison's initiator on one side and its responder on the
//! other. This is all a custom deployment needs to run a protocol over its own
//! transport; `synctree-manager` adds the handshake, selection and serving.
//!
//! ```text
//! cargo run -p synctree-protocols --example one_session
//! ```

use std::error::Error;

use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::{
    ContextId, Entry, Identity, NodeId, Store, SyncProtocolExecutor, SyncTransport, Version,
};
use synctree_protocols::{HashComparison, HashComparisonConfig, HashComparisonResponderInit};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

/// Bytes the in-memory pipe buffers in each direction.
const PIPE_BYTES: usize = 64 * 1024;

fn replica(node: u64, keys: std::ops::Range<u32>) -> Result<MemoryStore, Box<dyn Error>> {
    let store = MemoryStore::new();
    let entries = keys
        .map(|k| Entry::put(format!("key-{k}"), "value", Version::new(1, NodeId(node))))
        .collect();
    store.apply(&ContextId::new("c")?, entries)?;
    Ok(store)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let context = ContextId::new("c")?;
    let (a, b) = (replica(1, 0..1_000)?, replica(1, 10..1_010)?);
    let (mut ta, mut tb) = FramedTransport::memory_pair(PIPE_BYTES);
    let me = Identity::new(NodeId(1));
    let config = HashComparisonConfig::default();
    let initiator = HashComparison::run_initiator(&mut ta, &a, &context, &me, config);
    let responder = async {
        // What the manager does with a stream's first message.
        let first = tb.recv().await?.ok_or("stream closed before its init")?;
        let Some(Body::Init(init)) = first.body else {
            return Err("not an init".into());
        };
        let Some(Kind::HashComparison(init)) = init.kind else {
            return Err("not a HashComparison init".into());
        };
        let init = HashComparisonResponderInit::try_from(&init)?;
        let id = Identity::new(NodeId(2));
        Ok::<_, Box<dyn Error>>(
            HashComparison::run_responder(&mut tb, &b, &context, &id, init).await?,
        )
    };
    let (ra, rb) = tokio::join!(initiator, responder);
    let (ra, rb) = (ra?, rb?);
    assert!(ra.converged() && rb.converged());
    assert_eq!(a.summary(&context)?.root, b.summary(&context)?.root);
    println!(
        "converged in {} rounds: pulled {}, pushed {}, {} bytes on the wire",
        ra.rounds,
        ra.entries_pulled,
        ra.entries_pushed,
        ra.transport.bytes_sent + ra.transport.bytes_received
    );
    Ok(())
}
