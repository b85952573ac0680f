//! The node's tombstone GC task: sweeps every context on a fixed period while
//! `serve` runs ([`synctree_manager::gc::sweep`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use synctree_manager::SyncManager;
use synctree_manager::gc;
use synctree_primitives::Store;

/// Time between sweeps: each is one scan of every context, so once a minute
/// keeps tombstones within a minute of the horizon at the cost of that scan.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Sweeps every [`SWEEP_EVERY`] until `stop` resolves; a node without peers
/// ([`GcConfig::standalone`](synctree_manager::gc::GcConfig::standalone))
/// purges below `now − H`, one with peers no later than its last settled
/// session. A failed sweep is logged and retried next period.
pub(crate) async fn run<S: Store + 'static>(
    manager: Arc<SyncManager<S>>,
    stop: impl Future<Output = ()>,
) {
    if manager.config().gc.horizon.is_none() {
        return;
    }
    tokio::pin!(stop);
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => {}
        }
        let manager = Arc::clone(&manager);
        let swept = tokio::task::spawn_blocking(move || {
            gc::sweep(&**manager.store(), &manager.config().gc)
        })
        .await;
        match swept {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "tombstone sweep failed; retrying next period")
            }
            Err(e) => tracing::warn!(error = %e, "tombstone sweep task failed"),
        }
    }
}
