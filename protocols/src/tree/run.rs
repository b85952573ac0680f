//! The executor bodies both tree protocols share: open the session, build the
//! shared machine, drive it.

use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{
    ContextId, Hash, Identity, ProtocolKind, Role, Store, SyncError, SyncStats, SyncTransport,
};

use super::config::{Schedule, TreeConfig};
use super::initiator::TreeInitiator;
use super::responder::TreeResponder;
use crate::executor::{init_message, opening_root, run_machine, session};

/// What tells one tree protocol's initiator from the other's.
#[derive(Debug)]
pub(crate) struct TreeStart {
    /// The protocol, for stats and errors.
    pub(crate) protocol: ProtocolKind,
    /// When node requests go out.
    pub(crate) schedule: Schedule,
    /// The protocol's config, converted.
    pub(crate) config: TreeConfig,
    /// The init payload for the local root.
    pub(crate) opening: fn(Hash) -> Kind,
}

/// Runs a tree-protocol initiator.
pub(crate) async fn run_tree_initiator<T, S>(
    transport: &mut T,
    store: &S,
    context: &ContextId,
    identity: &Identity,
    start: TreeStart,
) -> Result<SyncStats, SyncError>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
{
    let protocol = start.protocol;
    let info = session(transport.peer(), context, protocol, Role::Initiator);
    let root = opening_root(store, &info)?;
    tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, %root, "initiating {}", protocol.name());
    let init = init_message(context, (start.opening)(root));
    let machine = TreeInitiator::new(
        context.clone(),
        protocol,
        start.schedule,
        start.config,
        init,
        root,
    );
    run_machine(transport, store, &info, machine, TreeInitiator::into_stats).await
}

/// Runs a tree-protocol responder after the init message was read.
pub(crate) async fn run_tree_responder<T, S>(
    transport: &mut T,
    store: &S,
    context: &ContextId,
    identity: &Identity,
    (protocol, key): (ProtocolKind, SessionKey),
) -> Result<SyncStats, SyncError>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
{
    let info = session(transport.peer(), context, protocol, Role::Responder);
    let root = opening_root(store, &info)?;
    tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, "responding {}", protocol.name());
    let machine = TreeResponder::new(context.clone(), protocol, root).with_key(key);
    run_machine(transport, store, &info, machine, TreeResponder::into_stats).await
}
