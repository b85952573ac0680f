//! Embedding the manager over a store of your own: `AuditedStore` wraps a
//! `MemoryStore` and logs every batch a sync merges, and two managers sync over an
//! in-memory pipe. Any type implementing `Store` works the same way.
//!
//! ```text
//! cargo run -p synctree-manager --example embed
//! ```

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use synctree_manager::{ManagerConfig, ProtocolChoice, SyncManager};
use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, Identity, NodeId, PurgeRule, Store, StoreError,
    StoredEntry, Version,
};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;

/// Bytes the in-memory pipe buffers in each direction.
const PIPE_BYTES: usize = 64 * 1024;

/// A user's store: delegates to a `MemoryStore` and counts what syncs merge.
#[derive(Debug, Default)]
struct AuditedStore {
    inner: MemoryStore,
    changed: AtomicU64,
}

impl Store for AuditedStore {
    // Reads go straight to the inner store; only writes are audited.
    synctree_primitives::forward_store_reads!(inner);

    fn apply(&self, context: &ContextId, entries: Vec<Entry>) -> Result<ApplyReport, StoreError> {
        let report = self.inner.apply(context, entries)?;
        self.audit(context, &report);
        Ok(report)
    }

    fn apply_stored(
        &self,
        context: &ContextId,
        entries: Vec<StoredEntry>,
    ) -> Result<ApplyReport, StoreError> {
        let report = self.inner.apply_stored(context, entries)?;
        self.audit(context, &report);
        Ok(report)
    }

    fn purge(
        &self,
        context: &ContextId,
        key_hashes: &[Hash],
        rule: PurgeRule,
        watermark: u64,
    ) -> Result<u64, StoreError> {
        self.inner.purge(context, key_hashes, rule, watermark)
    }
}

impl AuditedStore {
    fn audit(&self, context: &ContextId, report: &ApplyReport) {
        self.changed.fetch_add(report.changed, Ordering::Relaxed);
        println!(
            "{context}: merged a batch, {} entries changed",
            report.changed
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let context = ContextId::new("embedded")?;
    let ours = Arc::new(AuditedStore::default());
    let theirs = Arc::new(MemoryStore::new());
    let writes =
        (0..100).map(|i| Entry::put(format!("key{i}"), "theirs", Version::new(1, NodeId(2))));
    theirs.apply(&context, writes.collect())?;

    let config = ManagerConfig::default();
    let us = SyncManager::new(Arc::clone(&ours), Identity::new(NodeId(1)), config.clone());
    let them = SyncManager::new(theirs, Identity::new(NodeId(2)), config);
    let (left, right) = tokio::io::duplex(PIPE_BYTES);
    let (mut to_them, mut to_us) = (
        FramedTransport::new(left, "them"),
        FramedTransport::new(right, "us"),
    );
    let (report, served) = tokio::join!(
        us.sync(&mut to_them, &context, ProtocolChoice::Auto),
        them.handle_stream(&mut to_us),
    );
    let (report, _) = (report?, served?);
    let changed = ours.changed.load(Ordering::Relaxed);
    println!(
        "protocol {}, converged {}, {changed} entries merged into our store",
        report.json().protocol,
        report.converged()
    );
    if !report.converged() || changed != 100 {
        return Err("the embedded store did not converge".into());
    }
    Ok(())
}
