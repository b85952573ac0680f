//! The Snapshot protocol's executor: the two machines driven over a transport, and
//! the responder's `STATE_MOVED` abort turned into the typed error.

use async_trait::async_trait;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::wire::AbortCode;
use synctree_primitives::{
    ContextId, Identity, ProtocolError, ProtocolKind, Role, Store, SyncError, SyncProtocolExecutor,
    SyncStats, SyncTransport,
};

use super::config::{SnapshotConfig, SnapshotResponderInit};
use super::initiator::SnapshotInitiator;
use super::responder::SnapshotResponder;
use super::staging::SnapshotProgress;
use crate::executor::{opening_root, run_machine, session};

/// The Snapshot protocol.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot;

#[async_trait]
impl SyncProtocolExecutor for Snapshot {
    type Config = SnapshotConfig;
    type ResponderInit = SnapshotResponderInit;
    type Stats = SyncStats;

    const KIND: ProtocolKind = ProtocolKind::Snapshot;

    async fn run_initiator<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        config: SnapshotConfig,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        let info = session(transport.peer(), context, Self::KIND, Role::Initiator);
        let root = opening_root(store, &info)?;
        tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, %root, "initiating snapshot");
        let machine = SnapshotInitiator::new(context.clone(), config, root);
        let progress = machine.progress().clone();
        run_machine(
            transport,
            store,
            &info,
            machine,
            SnapshotInitiator::into_stats,
        )
        .await
        .map_err(|e| state_moved_abort(e, &progress))
    }

    async fn run_responder<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        init: SnapshotResponderInit,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        let info = session(transport.peer(), context, Self::KIND, Role::Responder);
        let root = opening_root(store, &info)?;
        tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, resume = init.resume_root.is_some(), "responding snapshot");
        let machine = SnapshotResponder::new(context.clone(), init, root);
        run_machine(
            transport,
            store,
            &info,
            machine,
            SnapshotResponder::into_stats,
        )
        .await
    }
}

/// Turns the responder's `STATE_MOVED` abort into the typed error, and clears the
/// handle: the pinned version can no longer be completed.
fn state_moved_abort(mut error: SyncError, progress: &SnapshotProgress) -> SyncError {
    if let SyncErrorKind::Protocol(ProtocolError::Aborted {
        code: AbortCode::StateMoved,
        ..
    }) = &error.kind
    {
        let pinned = progress.pinned_root().unwrap_or_default().to_hex();
        progress.clear();
        error.kind = ProtocolError::StateMoved { pinned }.into();
    }
    error
}
