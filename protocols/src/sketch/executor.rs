//! The sketch protocol's [`SyncProtocolExecutor`].

use async_trait::async_trait;
use synctree_primitives::wire::SketchInit;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{
    ContextId, Identity, ProtocolKind, Role, Store, SyncError, SyncProtocolExecutor, SyncStats,
    SyncTransport,
};

use super::config::{SketchConfig, SketchResponderInit};
use super::initiator::SketchInitiator;
use super::responder::SketchResponder;
use crate::executor::{init_message, opening_root, run_machine, session};

/// The Sketch protocol.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sketch;

#[async_trait]
impl SyncProtocolExecutor for Sketch {
    type Config = SketchConfig;
    type ResponderInit = SketchResponderInit;
    type Stats = SyncStats;

    const KIND: ProtocolKind = ProtocolKind::Sketch;

    async fn run_initiator<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        config: SketchConfig,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        let info = session(transport.peer(), context, Self::KIND, Role::Initiator);
        let root = opening_root(store, &info)?;
        let len = store
            .sketch_len(context)
            .map_err(|e| info.error("opening", e))?;
        tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, %root, want = config.want, "initiating sketch");
        let machine = initiator(context, config, root, len);
        run_machine(
            transport,
            store,
            &info,
            machine,
            SketchInitiator::into_stats,
        )
        .await
    }

    async fn run_responder<T, S>(
        transport: &mut T,
        store: &S,
        context: &ContextId,
        identity: &Identity,
        init: SketchResponderInit,
    ) -> Result<SyncStats, SyncError>
    where
        T: SyncTransport + ?Sized,
        S: Store + ?Sized,
    {
        let info = session(transport.peer(), context, Self::KIND, Role::Responder);
        let root = opening_root(store, &info)?;
        let len = store
            .sketch_len(context)
            .map_err(|e| info.error("opening", e))?;
        tracing::debug!(node = %identity.node_id, peer = %info.peer, %context, want = init.want, "responding sketch");
        let machine =
            SketchResponder::new(context.clone(), root, len, init.want).with_key(init.key);
        run_machine(
            transport,
            store,
            &info,
            machine,
            SketchResponder::into_stats,
        )
        .await
    }
}

/// The initiator machine, with its init frame asking for what both sides keep.
pub(crate) fn initiator(
    context: &ContextId,
    config: SketchConfig,
    root: synctree_primitives::Hash,
    local_len: u32,
) -> SketchInitiator {
    let placeholder = init_message(context, Kind::Sketch(SketchInit::default()));
    let machine = SketchInitiator::new(context.clone(), config, placeholder, root, local_len);
    let init = init_message(
        context,
        Kind::Sketch(SketchInit {
            root: root.0.to_vec().into(),
            want: machine.first_want(),
        }),
    );
    machine.with_init(init)
}
