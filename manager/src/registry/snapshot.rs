//! [`SnapshotProtocol`]: Snapshot's registry entry. Besides running the executor
//! it keeps the progress of interrupted transfers per (peer, context), in memory
//! and, through [`Store::save_sync_state`], in the store under
//! `snapshot/<peer>/<context>` (the initiator saves it after every page), so the
//! next session with the same peer resumes instead of starting over, in this
//! process or after a restart.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use synctree_primitives::wire::SnapshotInit;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{
    ContextId, ProtocolError, ProtocolKind, Store, SyncProtocolExecutor, SyncStats, SyncTransport,
};
use synctree_protocols::{Snapshot, SnapshotConfig, SnapshotProgress};

use super::adapter;
use super::protocol::{HandlerError, InitiatorPlan, RegisteredProtocol, SessionScope};

/// Interrupted snapshots kept in memory for resuming (a few KiB each: cursor,
/// counts and root builder; the store keeps its own saved copy of each).
pub const MAX_PARTIAL_SNAPSHOTS: usize = 4;

/// Snapshot sessions served to one peer (by its label) at once: each holds a read
/// view of the store (`MAX_READ_VIEWS` per store), so one peer cannot take them
/// all; an honest peer streams one context at a time. More are refused `BUSY`.
pub const MAX_SNAPSHOT_VIEWS_PER_PEER: usize = 2;

/// The store key under which the progress of a snapshot from `peer` of `context`
/// is saved.
pub fn progress_key(peer: &str, context: &ContextId) -> String {
    format!("snapshot/{peer}/{context}")
}

/// Snapshot, with resumable transfers.
#[derive(Debug, Default)]
pub struct SnapshotProtocol {
    /// Interrupted snapshots by (peer, context), resumed by the next session.
    partial: Mutex<HashMap<(String, ContextId), SnapshotProgress>>,
    /// Snapshot sessions being served, by peer.
    serving: Mutex<HashMap<String, usize>>,
}

/// One served snapshot session's place under [`MAX_SNAPSHOT_VIEWS_PER_PEER`],
/// given back when dropped.
struct Serving<'a> {
    serving: &'a Mutex<HashMap<String, usize>>,
    peer: String,
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        let mut serving = self.serving.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = serving.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                serving.remove(&self.peer);
            }
        }
    }
}

/// Snapshot's init in an init payload.
fn snapshot_init(kind: &Kind) -> Option<&SnapshotInit> {
    match kind {
        Kind::Snapshot(init) => Some(init),
        _ => None,
    }
}

/// The one place Snapshot's initiator config is built: the agreed page encoding,
/// resuming from `resume`.
fn snapshot_config(
    plan: &InitiatorPlan<'_>,
    resume: SnapshotProgress,
    persist_key: String,
) -> SnapshotConfig {
    SnapshotConfig {
        compression: plan.selection.compression,
        resume: Some(resume),
        persist_key: Some(persist_key),
        adopt_below: plan.adopt_below,
        ..SnapshotConfig::default()
    }
}

/// The progress saved in `store` under `key` for `context`; `None` when there is
/// none, or when it does not decode or names another context (then it is
/// removed, and the snapshot starts over).
fn saved(store: &dyn Store, key: &str, context: &ContextId) -> Option<SnapshotProgress> {
    let bytes = match store.load_sync_state(key) {
        Ok(bytes) => bytes?,
        Err(e) => {
            tracing::warn!(%key, error = %e, "could not read saved snapshot progress; starting over");
            return None;
        }
    };
    match SnapshotProgress::decode(&bytes) {
        Ok(progress) if progress.context().as_ref() == Some(context) => Some(progress),
        other => {
            tracing::warn!(%key, ok = other.is_ok(), "saved snapshot progress unusable; starting over");
            let _ = store.save_sync_state(key, None);
            None
        }
    }
}

impl SnapshotProtocol {
    /// A place for one more snapshot session served to `peer`, or `None` when it
    /// already has [`MAX_SNAPSHOT_VIEWS_PER_PEER`].
    fn serve_slot(&self, peer: &str) -> Option<Serving<'_>> {
        let mut serving = self.serving.lock().unwrap_or_else(PoisonError::into_inner);
        let n = serving.entry(peer.to_owned()).or_default();
        if *n >= MAX_SNAPSHOT_VIEWS_PER_PEER {
            return None;
        }
        *n += 1;
        Some(Serving {
            serving: &self.serving,
            peer: peer.to_owned(),
        })
    }

    /// The progress of an earlier, interrupted snapshot of `context` from `peer`:
    /// kept in memory, else saved in the store (a restart), else a fresh handle.
    fn progress(&self, store: &dyn Store, peer: &str, context: &ContextId) -> SnapshotProgress {
        let key = (peer.to_owned(), context.clone());
        let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(progress) = partial.remove(&key) {
            return progress;
        }
        drop(partial);
        saved(store, &progress_key(peer, context), context).unwrap_or_default()
    }

    /// Keeps a snapshot's staged pages for the next session with the same peer, so
    /// it resumes instead of starting over (dropped once empty: finished, verified
    /// or moved).
    fn keep(&self, peer: &str, context: &ContextId, progress: SnapshotProgress) {
        if progress.is_empty() {
            return;
        }
        let key = (peer.to_owned(), context.clone());
        let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        if partial.len() >= MAX_PARTIAL_SNAPSHOTS {
            tracing::debug!(%peer, %context, "too many partial snapshots kept; this one starts over next time");
            return;
        }
        tracing::debug!(%peer, %context, pages = progress.pages_staged(), "keeping a partial snapshot to resume");
        partial.insert(key, progress);
    }
}

#[async_trait]
impl RegisteredProtocol for SnapshotProtocol {
    fn kind(&self) -> ProtocolKind {
        ProtocolKind::Snapshot
    }

    fn accepts(&self, init: &Kind) -> bool {
        snapshot_init(init).is_some()
    }

    async fn respond(
        &self,
        scope: SessionScope<'_>,
        transport: &mut dyn SyncTransport,
        init: Kind,
    ) -> Result<SyncStats, HandlerError> {
        let Some(_slot) = self.serve_slot(transport.peer()) else {
            let busy = ProtocolError::Busy("snapshot sessions from this peer");
            return Err(HandlerError::Refused(busy));
        };
        let init = (snapshot_init(&init), no_key as adapter::KeyedOf<Snapshot>);
        adapter::respond::<Snapshot, SnapshotInit>(scope, transport, init).await
    }

    async fn initiate(
        &self,
        scope: SessionScope<'_>,
        transport: &mut dyn SyncTransport,
        plan: InitiatorPlan<'_>,
    ) -> Result<SyncStats, HandlerError> {
        let peer = transport.peer().to_owned();
        let progress = self.progress(scope.store, &peer, scope.context);
        let key = progress_key(&peer, scope.context);
        let config = snapshot_config(&plan, progress.clone(), key.clone());
        let SessionScope {
            store,
            context,
            identity,
            ..
        } = scope;
        let outcome = Snapshot::run_initiator(transport, store, context, identity, config).await;
        if progress.is_empty() {
            // Done, or nothing left to resume: forget the saved copy too.
            let _ = store.save_sync_state(&key, None);
        }
        self.keep(&peer, context, progress);
        Ok(outcome?)
    }

    /// An interrupted snapshot from `peer` is kept in memory or saved in the store.
    fn resumable(&self, store: &dyn Store, peer: &str, context: &ContextId) -> bool {
        let key = (peer.to_owned(), context.clone());
        let partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        if partial.get(&key).is_some_and(|p| !p.is_empty()) {
            return true;
        }
        drop(partial);
        saved(store, &progress_key(peer, context), context).is_some_and(|p| !p.is_empty())
    }
}

/// Snapshot compares no truncated hash: it has no use for the session key.
fn no_key(
    init: synctree_protocols::SnapshotResponderInit,
    _: &synctree_primitives::salt::SessionKey,
) -> synctree_protocols::SnapshotResponderInit {
    init
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_served_at_most_max_snapshot_views_per_peer_at_once() {
        let protocol = SnapshotProtocol::default();
        let held: Vec<_> = (0..MAX_SNAPSHOT_VIEWS_PER_PEER)
            .map(|_| protocol.serve_slot("a"))
            .collect();
        assert!(held.iter().all(Option::is_some));
        assert!(protocol.serve_slot("a").is_none(), "the bound holds");
        assert!(protocol.serve_slot("b").is_some(), "per peer");
        drop(held);
        assert!(protocol.serve_slot("a").is_some(), "places come back");
        assert!(protocol.serving.lock().unwrap().is_empty());
    }
}
