//! Three in-process nodes, each serving on a local TCP port and running
//! anti-entropy with the other two, until their roots agree (or a bound passes).
//!
//! ```text
//! cargo run -p synctree-manager --example three_nodes
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use synctree_manager::{AntiEntropy, AntiEntropyConfig, ManagerConfig, SyncManager, TcpConnector};
use synctree_primitives::{ContextId, Entry, Hash, Identity, NodeId, Store, Version};
use synctree_store::MemoryStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Nodes in the example cluster.
const NODES: u64 = 3;
/// Entries each node writes before syncing starts.
const ENTRIES_PER_NODE: u64 = 200;
/// Anti-entropy interval: short, so the example ends in well under a second.
const INTERVAL: Duration = Duration::from_millis(50);
/// Longest the example waits for the roots to agree.
const BOUND: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let context = ContextId::new("three-nodes")?;
    let (stop, stopped) = watch::channel(false);
    let mut managers = Vec::new();
    let mut addrs = Vec::new();
    for id in 1..=NODES {
        let store = Arc::new(MemoryStore::new());
        let writes = (0..ENTRIES_PER_NODE).map(|i| {
            Entry::put(
                format!("node{id}/key{i}"),
                "value",
                Version::new(1, NodeId(id)),
            )
        });
        store.apply(&context, writes.collect())?;
        let identity = Identity::new(NodeId(id));
        let manager = Arc::new(SyncManager::new(store, identity, ManagerConfig::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        addrs.push(listener.local_addr()?.to_string());
        let shutdown = until_stopped(stopped.clone());
        tokio::spawn(Arc::clone(&manager).serve(listener, shutdown));
        managers.push(manager);
    }
    for (i, manager) in managers.iter().enumerate() {
        let peers: Vec<String> = addrs
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, a)| a.clone())
            .collect();
        let config = AntiEntropyConfig {
            interval: INTERVAL,
            jitter: INTERVAL / 5,
            seed: i as u64,
            ..AntiEntropyConfig::default()
        };
        let scheduler =
            AntiEntropy::new(Arc::clone(manager), TcpConnector::default(), peers, config);
        tokio::spawn(scheduler.run(until_stopped(stopped.clone())));
    }
    let agreed = tokio::time::timeout(BOUND, wait_for_agreement(&managers, &context)).await;
    stop.send_replace(true);
    let root = agreed.map_err(|_| format!("roots did not agree within {BOUND:?}"))??;
    let entries = managers[0].store().summary(&context)?.entry_count;
    println!(
        "{NODES} nodes agree on root {} ({entries} entries)",
        root.to_hex()
    );
    Ok(())
}

/// Polls the roots until all nodes hold the same one.
async fn wait_for_agreement(
    managers: &[Arc<SyncManager<MemoryStore>>],
    context: &ContextId,
) -> Result<Hash, Box<dyn Error>> {
    loop {
        let mut roots = Vec::new();
        for manager in managers {
            roots.push(manager.store().summary(context)?.root);
        }
        let entries = managers[0].store().summary(context)?.entry_count;
        if roots.windows(2).all(|w| w[0] == w[1]) && entries == NODES * ENTRIES_PER_NODE {
            return Ok(roots[0]);
        }
        tokio::time::sleep(INTERVAL / 2).await;
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn until_stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
