//! [`SnapshotProtocol`]: Snapshot's registry entry. Besides running the executor
//! it keeps the staged pages of interrupted transfers per (peer, context), so the
//! next session with the same peer resumes instead of starting over.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use synctree_primitives::wire::SnapshotInit;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{
    ContextId, ProtocolKind, SyncProtocolExecutor, SyncStats, SyncTransport,
};
use synctree_protocols::{Snapshot, SnapshotConfig, SnapshotProgress};

use super::adapter;
use super::protocol::{HandlerError, InitiatorPlan, RegisteredProtocol, SessionScope};

/// Interrupted snapshots kept for resuming: each holds staged entries (up to
/// `MAX_SNAPSHOT_STAGED_BYTES`), so only a few are kept at once.
pub const MAX_PARTIAL_SNAPSHOTS: usize = 4;

/// Snapshot, with resumable transfers.
#[derive(Debug, Default)]
pub struct SnapshotProtocol {
    /// Interrupted snapshots by (peer, context), resumed by the next session.
    partial: Mutex<HashMap<(String, ContextId), SnapshotProgress>>,
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
fn snapshot_config(plan: &InitiatorPlan<'_>, resume: SnapshotProgress) -> SnapshotConfig {
    SnapshotConfig {
        compression: plan.selection.compression,
        resume: Some(resume),
        ..SnapshotConfig::default()
    }
}

impl SnapshotProtocol {
    /// The staged pages of an earlier, interrupted snapshot of `context` from
    /// `peer`, or a fresh handle.
    fn progress(&self, peer: &str, context: &ContextId) -> SnapshotProgress {
        let key = (peer.to_owned(), context.clone());
        let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        partial.remove(&key).unwrap_or_default()
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
        let progress = self.progress(&peer, scope.context);
        let config = snapshot_config(&plan, progress.clone());
        let SessionScope {
            store,
            context,
            identity,
            ..
        } = scope;
        let outcome = Snapshot::run_initiator(transport, store, context, identity, config).await;
        self.keep(&peer, context, progress);
        Ok(outcome?)
    }
}

/// Snapshot compares no truncated hash: it has no use for the session key.
fn no_key(
    init: synctree_protocols::SnapshotResponderInit,
    _: &synctree_primitives::salt::SessionKey,
) -> synctree_protocols::SnapshotResponderInit {
    init
}
