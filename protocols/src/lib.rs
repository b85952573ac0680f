//! Sync protocols for synctree.
//!
//! Each protocol is a state machine with no I/O ([`Machine`]: message in → messages
//! out, the store passed in) plus a thin async driver ([`drive`]) that implements
//! [`SyncProtocolExecutor`](synctree_primitives::SyncProtocolExecutor) over any
//! [`SyncTransport`]. The same machines therefore
//! run over TCP, in-memory pipes, a simulator, or [`pair::run_pair`], which steps two
//! machines against each other without any transport at all.
//!
//! ```text
//!  initiator                                   responder
//!  ─────────                                   ─────────
//!  Init{root} + NodeRequest{compare root: my L1 hashes}  ──►
//!                                  ◄────────── NodeResponse(L2 under differing L1)
//!  NodeRequest{compare differing L2: my L3 hashes}     ──►   two levels per round
//!                                  ◄────────── NodeResponse(leaf hashes under differing L3)
//!  NodeRequest[differing leaves]   ──────────►
//!                                  ◄────────── NodeResponse(leaf summaries)
//!  EntryRequest + EntryPush        ──────────►
//!                                  ◄────────── EntryBatch
//!  Finish{root}                    ──────────►
//!                                  ◄────────── FinishAck{root}
//! ```
//!
//! Protocols: [`HashComparison`] and [`LevelWise`] (both on the shared
//! [`TreeInitiator`]/[`TreeResponder`] machines, which new tree protocols can reuse).

#![forbid(unsafe_code)]

/// Implements [`SyncProtocolExecutor`](synctree_primitives::SyncProtocolExecutor)
/// for a tree protocol: the two tree protocols differ only in their init payload
/// and their [`Schedule`]; everything else is the shared machines.
macro_rules! tree_executor {
    ($protocol:ident, $init:ident, $schedule:expr) => {
        #[async_trait::async_trait]
        impl synctree_primitives::SyncProtocolExecutor for $protocol {
            type Config = $crate::TreeConfig;
            type ResponderInit = $crate::TreeResponderInit;
            type Stats = synctree_primitives::SyncStats;

            const KIND: synctree_primitives::ProtocolKind =
                synctree_primitives::ProtocolKind::$protocol;

            async fn run_initiator<T, S>(
                transport: &mut T,
                store: &S,
                context: &synctree_primitives::ContextId,
                identity: &synctree_primitives::Identity,
                config: $crate::TreeConfig,
            ) -> Result<synctree_primitives::SyncStats, synctree_primitives::SyncError>
            where
                T: synctree_primitives::SyncTransport + ?Sized,
                S: synctree_primitives::Store + ?Sized,
            {
                let start = |root: synctree_primitives::Hash| {
                    let init = synctree_primitives::wire::init_payload::Kind::$protocol($init {
                        root: root.0.to_vec().into(),
                    });
                    (init, $schedule, config)
                };
                $crate::run_tree_initiator(transport, store, context, identity, Self::KIND, start)
                    .await
            }

            async fn run_responder<T, S>(
                transport: &mut T,
                store: &S,
                context: &synctree_primitives::ContextId,
                identity: &synctree_primitives::Identity,
                init: $crate::TreeResponderInit,
            ) -> Result<synctree_primitives::SyncStats, synctree_primitives::SyncError>
            where
                T: synctree_primitives::SyncTransport + ?Sized,
                S: synctree_primitives::Store + ?Sized,
            {
                tracing::debug!(initiator_root = %init.initiator_root, "{} requested", Self::KIND.name());
                $crate::run_tree_responder(transport, store, context, identity, Self::KIND).await
            }
        }
    };
}

mod hash_comparison;
mod leaf;
mod level_wise;
pub mod machine;
pub mod pair;
mod snapshot;
mod subtree;
mod tree_initiator;
mod tree_responder;
mod tree_wire;

pub use hash_comparison::{HashComparison, HashComparisonResponderInit};
pub use level_wise::{LevelWise, LevelWiseResponderInit};
pub use machine::{Machine, drive};
pub use snapshot::{
    Snapshot, SnapshotConfig, SnapshotInitiator, SnapshotProgress, SnapshotResponder,
    SnapshotResponderInit,
};
pub use tree_initiator::{Schedule, TreeConfig, TreeInitiator};
pub use tree_responder::TreeResponder;

use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{InitPayload, PROTOCOL_VERSION};
use synctree_primitives::{
    ContextId, Hash, Identity, ProtocolKind, Role, SessionInfo, Store, StreamMessage, SyncError,
    SyncStats, SyncTransport,
};

/// What a tree-protocol responder learns from the session's first message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeResponderInit {
    /// The initiator's root when it opened the session.
    pub initiator_root: Hash,
}

impl TreeResponderInit {
    /// Checks the root field of an init payload.
    fn from_root(root: &[u8]) -> Result<Self, synctree_primitives::ProtocolError> {
        Ok(TreeResponderInit {
            initiator_root: Hash::from_wire(root, "root")?,
        })
    }
}

/// The `InitPayload` frame that opens a session of `kind` on `context`.
pub fn init_message(context: &ContextId, kind: Kind) -> StreamMessage {
    StreamMessage::new(Body::Init(InitPayload {
        protocol_version: PROTOCOL_VERSION,
        context_id: context.as_str().to_owned(),
        kind: Some(kind),
    }))
}

/// Runs a tree-protocol initiator; `start` turns the local root into the init
/// payload, schedule and config.
async fn run_tree_initiator<T, S>(
    transport: &mut T,
    store: &S,
    context: &ContextId,
    identity: &Identity,
    protocol: ProtocolKind,
    start: impl FnOnce(Hash) -> (Kind, Schedule, TreeConfig) + Send,
) -> Result<SyncStats, SyncError>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
{
    let info = session(transport.peer(), context, protocol, Role::Initiator);
    let root = opening_root(store, &info)?;
    tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, %root, "initiating {}", protocol.name());
    let (kind, schedule, config) = start(root);
    let init = init_message(context, kind);
    let machine = TreeInitiator::new(context.clone(), protocol, schedule, config, init, root);
    run_machine(transport, store, &info, machine, TreeInitiator::into_stats).await
}

/// Runs a tree-protocol responder after the init message was read.
async fn run_tree_responder<T, S>(
    transport: &mut T,
    store: &S,
    context: &ContextId,
    identity: &Identity,
    protocol: ProtocolKind,
) -> Result<SyncStats, SyncError>
where
    T: SyncTransport + ?Sized,
    S: Store + ?Sized,
{
    let info = session(transport.peer(), context, protocol, Role::Responder);
    let root = opening_root(store, &info)?;
    tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, "responding {}", protocol.name());
    let machine = TreeResponder::new(context.clone(), protocol, root);
    run_machine(transport, store, &info, machine, TreeResponder::into_stats).await
}

/// The local root when a session opens.
fn opening_root<S: Store + ?Sized>(store: &S, info: &SessionInfo) -> Result<Hash, SyncError> {
    Ok(store
        .summary(&info.context)
        .map_err(|e| info.error("opening", e))?
        .root)
}

/// Drives `machine` to the end and returns its stats with what the transport moved.
async fn run_machine<T, S, M>(
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

fn session(peer: &str, context: &ContextId, protocol: ProtocolKind, role: Role) -> SessionInfo {
    SessionInfo {
        peer: peer.to_owned(),
        context: context.clone(),
        protocol,
        role,
    }
}
