//! The manager's first-message dispatch: `SyncManager::handle_stream` over a framed
//! transport whose peer sent the fuzz bytes (then closed), on one current-thread
//! runtime. Never panics; a refused stream or a bare handshake leaves the store
//! unchanged; whatever a session applied is valid, admitted by the clock, and the
//! stored root matches the entries.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use synctree_manager::{ManagerConfig, ManagerError, Served, SyncManager};
use synctree_primitives::{Identity, NodeId, Store, WallClock};
use synctree_store::recompute_root;

fuzz_target!(|data: &[u8]| {
    let store = Arc::new(synctree_fuzz::store());
    let before = store.summary(&synctree_fuzz::context()).expect("summary");
    let identity = Identity::new(NodeId(7));
    let manager = SyncManager::new(store.clone(), identity, ManagerConfig::default());
    let mut transport = synctree_fuzz::transport(data);
    let served = synctree_fuzz::runtime().block_on(manager.handle_stream(&mut transport));
    let untouched = matches!(
        served,
        Err(ManagerError::Rejected { .. }) | Ok(Served::HandshakeOnly { .. })
    );
    for context in store.contexts().expect("contexts") {
        let summary = store.summary(&context).expect("summary");
        let recomputed = recompute_root(&*store, &context).expect("recompute");
        assert_eq!(recomputed, (summary.root, summary.entry_count));
        if context == synctree_fuzz::context() && untouched {
            assert_eq!(summary, before, "{served:?} changed the store");
        }
        for entry in store.entries(&context) {
            assert!(entry.validate().is_ok(), "{entry:?}");
            assert!(WallClock::System.admits(entry.version.hlc), "{entry:?}");
        }
    }
});
