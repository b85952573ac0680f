//! What every protocol's [`SyncProtocolExecutor`](synctree_primitives::SyncProtocolExecutor)
//! does around its machine: the opening frame, the session's context for errors,
//! the local root at the start, and running the machine with [`drive`].

use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{InitPayload, PROTOCOL_VERSION};
use synctree_primitives::{
    ContextId, Hash, ProtocolKind, Role, SessionInfo, Store, StreamMessage, SyncError, SyncStats,
    SyncTransport,
};

use crate::machine::{Machine, drive};

/// The `InitPayload` frame that opens a session of `kind` on `context`.
pub fn init_message(context: &ContextId, kind: Kind) -> StreamMessage {
    StreamMessage::new(Body::Init(InitPayload {
        protocol_version: PROTOCOL_VERSION,
        context_id: context.as_str().to_owned(),
        kind: Some(kind),
    }))
}

/// The context errors of one session carry.
pub(crate) fn session(
    peer: &str,
    context: &ContextId,
    protocol: ProtocolKind,
    role: Role,
) -> SessionInfo {
    SessionInfo {
        peer: peer.to_owned(),
        context: context.clone(),
        protocol,
        role,
    }
}

/// The local root when a session opens.
pub(crate) fn opening_root<S: Store + ?Sized>(
    store: &S,
    info: &SessionInfo,
) -> Result<Hash, SyncError> {
    Ok(store
        .summary(&info.context)
        .map_err(|e| info.error("opening", e))?
        .root)
}

/// Drives `machine` to the end and returns its stats with what the transport moved.
pub(crate) async fn run_machine<T, S, M>(
    transport: &mut T,
    store: &S,
    info: &SessionInfo,
    mut machine: M,
    into_stats: fn(M) -> SyncStats,
) -> Result<SyncStats, SyncError>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
    M: Machine<S> + Send,
{
    let moved = drive(transport, store, &mut machine, info).await?;
    let mut stats = into_stats(machine);
    stats.transport = moved;
    Ok(stats)
}
