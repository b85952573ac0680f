//! [`ExecutorProtocol`]: registers any [`SyncProtocolExecutor`] whose stats are
//! [`SyncStats`], given where its init lives in `init_payload::Kind` and how its
//! initiator config is built.

use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::{
    ProtocolError, ProtocolKind, SyncProtocolExecutor, SyncStats, SyncTransport,
};

use super::protocol::{HandlerError, InitiatorPlan, RegisteredProtocol, SessionScope};

/// Finds a protocol's init message in an init payload (`None`: another protocol's).
pub type InitOf<I> = for<'a> fn(&'a Kind) -> Option<&'a I>;

/// Builds a protocol's initiator config from the selection and handshake.
pub type ConfigOf<E> = fn(&InitiatorPlan<'_>) -> <E as SyncProtocolExecutor>::Config;

/// Gives a protocol's responder init the stream's session key.
pub type KeyedOf<E> = fn(
    <E as SyncProtocolExecutor>::ResponderInit,
    &SessionKey,
) -> <E as SyncProtocolExecutor>::ResponderInit;

/// The registry entry of executor `E`, whose init message on the wire is `I`.
pub struct ExecutorProtocol<E: SyncProtocolExecutor, I> {
    init: InitOf<I>,
    config: ConfigOf<E>,
    keyed: KeyedOf<E>,
    executor: PhantomData<fn() -> E>,
}

impl<E: SyncProtocolExecutor, I> ExecutorProtocol<E, I> {
    /// `E`, answering inits that `init` finds and opening sessions with the
    /// config `config` builds. Its responder ignores the session key unless
    /// [`Self::with_keyed`] says how to hand it over.
    pub fn new(init: InitOf<I>, config: ConfigOf<E>) -> Self {
        ExecutorProtocol {
            init,
            config,
            keyed: |init, _| init,
            executor: PhantomData,
        }
    }

    /// Hands the stream's session key to the responder init with `keyed` (a
    /// protocol that truncates hashes needs it).
    pub fn with_keyed(self, keyed: KeyedOf<E>) -> Self {
        ExecutorProtocol { keyed, ..self }
    }
}

impl<E: SyncProtocolExecutor, I> fmt::Debug for ExecutorProtocol<E, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ExecutorProtocol").field(&E::KIND).finish()
    }
}

/// Converts `init` to `E`'s responder init and runs the responder; a bad init
/// is [`HandlerError::Refused`].
pub(crate) async fn respond<E, I>(
    scope: SessionScope<'_>,
    transport: &mut dyn SyncTransport,
    (init, keyed): (Option<&I>, KeyedOf<E>),
) -> Result<SyncStats, HandlerError>
where
    E: SyncProtocolExecutor<Stats = SyncStats>,
    E::ResponderInit: for<'a> TryFrom<&'a I, Error = ProtocolError>,
{
    let Some(init) = init else {
        return Err(HandlerError::Refused(ProtocolError::UnknownInit(
            "init of another protocol",
        )));
    };
    let init = E::ResponderInit::try_from(init).map_err(HandlerError::Refused)?;
    let SessionScope {
        store,
        context,
        identity,
        key,
    } = scope;
    let init = keyed(init, key);
    Ok(E::run_responder(transport, store, context, identity, init).await?)
}

#[async_trait]
impl<E, I> RegisteredProtocol for ExecutorProtocol<E, I>
where
    E: SyncProtocolExecutor<Stats = SyncStats> + 'static,
    E::ResponderInit: for<'a> TryFrom<&'a I, Error = ProtocolError>,
    I: Sync + 'static,
{
    fn kind(&self) -> ProtocolKind {
        E::KIND
    }

    fn accepts(&self, init: &Kind) -> bool {
        (self.init)(init).is_some()
    }

    async fn respond(
        &self,
        scope: SessionScope<'_>,
        transport: &mut dyn SyncTransport,
        init: Kind,
    ) -> Result<SyncStats, HandlerError> {
        respond::<E, I>(scope, transport, ((self.init)(&init), self.keyed)).await
    }

    async fn initiate(
        &self,
        scope: SessionScope<'_>,
        transport: &mut dyn SyncTransport,
        plan: InitiatorPlan<'_>,
    ) -> Result<SyncStats, HandlerError> {
        let config = (self.config)(&plan);
        let SessionScope {
            store,
            context,
            identity,
            ..
        } = scope;
        Ok(E::run_initiator(transport, store, context, identity, config).await?)
    }
}
