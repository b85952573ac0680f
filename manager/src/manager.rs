//! [`SyncManager`]: dispatches incoming streams to protocol responders and opens
//! sessions as initiator.

use std::sync::{Arc, Mutex, PoisonError};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use synctree_primitives::salt::{SessionKey, SessionNonce};

use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{InitPayload, PROTOCOL_VERSION};
use synctree_primitives::{
    ContextId, Identity, ProtocolError, ProtocolKind, Store, StoreError, StreamMessage, SyncStats,
    SyncTransport, TransportError,
};
use synctree_protocols::init_message;
use tokio::time::Instant;

use crate::access::{Access, ReadOnly};
pub use crate::config::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONCURRENT_SESSIONS, ManagerConfig,
};
use crate::error::ManagerError;
use crate::gc;
use crate::handshake::{PeerSummary, SketchProbe, TopFingerprint};
use crate::registry::{HandlerError, InitiatorPlan, ProtocolRegistry, SessionScope};
use crate::report::SessionReport;
use crate::selection::{ProtocolChoice, select_resuming};
use crate::unconverged::UnconvergedMemory;
use synctree_transport::BufferBudget;

pub use crate::unconverged::MAX_REMEMBERED_UNCONVERGED;

/// How a served stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
// One per served stream, moved once: boxing the stats would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Served {
    /// The peer asked which contexts this node holds, and was told.
    Listed {
        /// How many contexts were listed.
        contexts: usize,
    },
    /// Only a handshake: the initiator found nothing to do.
    HandshakeOnly {
        /// The context.
        context: ContextId,
    },
    /// A protocol session ran.
    Session {
        /// The context.
        context: ContextId,
        /// The responder's stats.
        stats: SyncStats,
    },
}

/// Dispatches streams to protocols and opens sessions, over one shared store.
#[derive(Debug)]
pub struct SyncManager<S> {
    store: Arc<S>,
    identity: Identity,
    config: ManagerConfig,
    /// The protocols this manager answers and opens.
    registry: ProtocolRegistry,
    /// What the transports `serve` creates buffer, together.
    buffer_budget: Arc<BufferBudget>,
    /// The CSPRNG the handshake nonces come from.
    nonces: Mutex<StdRng>,
    /// How the last delta session with each (peer node, context) ended when it
    /// did not converge: selection's row 1a.
    unconverged: UnconvergedMemory,
}

impl<S: Store + 'static> SyncManager<S> {
    /// A manager for `store`, acting as `identity`, running the
    /// [standard protocols](ProtocolRegistry::standard).
    pub fn new(store: Arc<S>, identity: Identity, config: ManagerConfig) -> Self {
        SyncManager::with_registry(store, identity, config, ProtocolRegistry::standard())
    }

    /// A manager running the protocols of `registry` (advertise them with
    /// `config.supported = registry.kinds()`).
    pub fn with_registry(
        store: Arc<S>,
        identity: Identity,
        config: ManagerConfig,
        registry: ProtocolRegistry,
    ) -> Self {
        let buffer_budget = crate::serve::budget_for(config.buffer_budget_bytes);
        SyncManager {
            store,
            identity,
            config,
            registry,
            buffer_budget,
            nonces: Mutex::new(StdRng::from_os_rng()),
            unconverged: UnconvergedMemory::default(),
        }
    }

    /// Draws handshake nonces from `rng` instead of a generator seeded by the
    /// operating system (deterministic simulations and tests).
    pub fn with_nonce_rng(self, rng: StdRng) -> Self {
        SyncManager {
            nonces: Mutex::new(rng),
            ..self
        }
    }

    /// A fresh nonce for a handshake.
    fn fresh_nonce(&self) -> SessionNonce {
        let mut nonce = SessionNonce::NONE;
        let mut rng = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        rng.fill_bytes(&mut nonce.0);
        nonce
    }

    /// The budget every transport [`SyncManager::serve`] creates is charged to:
    /// its `used` and `peak` are the bytes served peers make this node buffer.
    pub fn buffer_budget(&self) -> &Arc<BufferBudget> {
        &self.buffer_budget
    }

    /// The protocols this manager runs.
    pub fn registry(&self) -> &ProtocolRegistry {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The tunables.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// Serves one incoming stream: reads the first message, answers a handshake if
    /// that is what came, then runs the responder of the protocol the next init
    /// message names. A refused stream gets an abort frame and leaves the store
    /// untouched.
    pub async fn handle_stream<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
    ) -> Result<Served, ManagerError> {
        self.handle_stream_as(transport, &Access::all()).await
    }

    /// [`SyncManager::handle_stream`] for a peer granted `access`: a context it
    /// may not read is refused at its first message as `UNKNOWN_CONTEXT`, the same
    /// refusal as a context this node does not know; a context it may not write is
    /// served read-only, so its pushes end the session with `WRITE_DENIED` and
    /// nothing applied.
    pub async fn handle_stream_as<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        access: &Access,
    ) -> Result<Served, ManagerError> {
        let mut handshaken: Option<(ContextId, SessionKey)> = None;
        loop {
            let first = self.recv_init(transport, handshaken.is_some()).await;
            let init = match first {
                Ok(None) => match handshaken {
                    Some((context, _)) => {
                        // Flush the handshake reply and end our side cleanly.
                        let _ = transport.close().await;
                        return Ok(Served::HandshakeOnly { context });
                    }
                    None => {
                        return Err(self
                            .rejected(transport, ProtocolError::UnknownInit("empty stream"))
                            .await);
                    }
                },
                Ok(Some(init)) => init,
                Err(e) => return Err(self.refuse(transport, e).await),
            };
            if matches!(init.kind, Some(Kind::ListContexts(_)))
                && handshaken.is_none()
                && init.protocol_version == PROTOCOL_VERSION
            {
                return self.answer_listing(transport, access).await;
            }
            let context = match self.check_init(&init, access) {
                Ok(context) => context,
                Err(e) => return Err(self.rejected(transport, e).await),
            };
            match init.kind {
                Some(Kind::Handshake(h)) if handshaken.is_none() => {
                    let key = self.reply_handshake(transport, &context, &h).await?;
                    handshaken = Some((context, key));
                }
                Some(kind) => {
                    let key = handshaken.map(|(_, key)| key).unwrap_or_default();
                    let writable = access.may_write(&context);
                    let scope = (&context, &key, writable);
                    let stats = self.respond(transport, scope, kind).await?;
                    return Ok(Served::Session { context, stats });
                }
                None => {
                    return Err(self
                        .rejected(transport, ProtocolError::UnknownInit("init without a kind"))
                        .await);
                }
            }
        }
    }

    /// Runs the responder of the registered protocol that accepts `kind`.
    async fn respond<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        (context, key, writable): (&ContextId, &SessionKey, bool),
        kind: Kind,
    ) -> Result<SyncStats, ManagerError> {
        // A second handshake: the first was answered in `handle_stream`.
        if let Kind::Handshake(_) = kind {
            let e = ProtocolError::Unexpected {
                expected: "protocol init",
                got: "second handshake",
            };
            return Err(self.rejected(transport, e).await);
        }
        let Some(protocol) = self.registry.for_init(&kind) else {
            let e = ProtocolError::UnknownInit("no registered protocol takes this init");
            return Err(self.rejected(transport, e).await);
        };
        let read_only = ReadOnly(&*self.store);
        let mut scope = self.scope(context, key);
        if !writable {
            scope.store = &read_only;
        }
        let outcome = protocol.respond(scope, &mut &mut *transport, kind).await;
        self.handled(transport, outcome).await
    }

    /// Opens a session on `transport`: exchanges handshakes, selects a protocol,
    /// runs it, and reports what happened.
    pub async fn sync<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        context: &ContextId,
        choice: ProtocolChoice,
    ) -> Result<SessionReport, ManagerError> {
        let started = Instant::now();
        let started_ms = self.config.gc.clock.now_ms();
        let before = transport.stats();
        let peer = transport.peer().to_owned();
        let mut local = self.local_summary(context, &peer, "handshake")?;
        local.nonce = self.fresh_nonce();
        let remote = self.exchange_handshakes(transport, context, &local).await?;
        let key = SessionKey::derive(&local.nonce, &remote.nonce);
        if remote.top_fingerprint.is_some() {
            local.top_fingerprint = Some(self.fingerprint(context, &peer, &key)?);
        }
        if remote.sketch_probe.is_some() {
            local.sketch_probe = Some(self.sketch_probe(context, &peer, remote.sketch_len)?);
        }
        let previous = self.unconverged.get(remote.node_id, context);
        let resumable = self
            .registry
            .get(ProtocolKind::Snapshot)
            .is_some_and(|p| p.resumable(&*self.store, &peer, context));
        let mut selection =
            match select_resuming(choice, &local, &remote, previous.as_ref(), resumable) {
                Ok(selection) => selection,
                Err(e) => return Err(self.rejected(transport, e).await),
            };
        let gc = (&remote, choice);
        let adoption =
            gc::plan_adoption(&*self.store, context, &self.config.gc, gc, &mut selection)
                .map_err(|source| self.store_error(&peer, "handshake", source))?;
        tracing::debug!(%peer, %context, protocol = ?selection.protocol, reason = %selection.reason, "selected");
        let stats = match selection.protocol {
            None => {
                let _ = transport.close().await;
                None
            }
            Some(protocol) => {
                let plan = InitiatorPlan {
                    selection: &selection,
                    remote: &remote,
                    key: &key,
                    adopt_below: adoption.below(),
                };
                Some(self.initiate(transport, context, protocol, plan).await?)
            }
        };
        // Only a node running GC keeps the settled time (one small durable write).
        if self.config.gc.horizon.is_some() && adoption != gc::Adoption::Blocked {
            gc::record_settled(&*self.store, context, started_ms)
                .map_err(|source| self.store_error(&peer, "finish", source))?;
        }
        self.unconverged
            .remember(remote.node_id, context, stats.as_ref());
        Ok(SessionReport::new(
            selection,
            local,
            remote,
            stats,
            transport.stats().since(&before),
            started.elapsed(),
        ))
    }

    /// Runs the initiator of `protocol`, as registered.
    async fn initiate<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        context: &ContextId,
        protocol: ProtocolKind,
        plan: InitiatorPlan<'_>,
    ) -> Result<SyncStats, ManagerError> {
        let Some(registered) = self.registry.get(protocol) else {
            let e = ProtocolError::UnsupportedProtocol(protocol.name().to_owned());
            return Err(self.rejected(transport, e).await);
        };
        let outcome = registered
            .initiate(self.scope(context, plan.key), &mut &mut *transport, plan)
            .await;
        self.handled(transport, outcome).await
    }

    fn scope<'a>(&'a self, context: &'a ContextId, key: &'a SessionKey) -> SessionScope<'a> {
        SessionScope {
            store: &*self.store,
            context,
            identity: &self.identity,
            key,
        }
    }

    /// A registered protocol's outcome as the manager's: a refused init gets the
    /// peer an abort.
    async fn handled<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        outcome: Result<SyncStats, HandlerError>,
    ) -> Result<SyncStats, ManagerError> {
        match outcome {
            Ok(stats) => Ok(stats),
            Err(HandlerError::Refused(e)) => Err(self.rejected(transport, e).await),
            Err(HandlerError::Session(e)) => Err(ManagerError::Session(e)),
        }
    }

    fn fingerprint(
        &self,
        context: &ContextId,
        peer: &str,
        key: &SessionKey,
    ) -> Result<TopFingerprint, ManagerError> {
        TopFingerprint::local(&*self.store, context, key).map_err(|source| ManagerError::Store {
            peer: peer.to_owned(),
            phase: "handshake",
            source,
        })
    }

    fn sketch_probe(
        &self,
        context: &ContextId,
        peer: &str,
        len: u32,
    ) -> Result<SketchProbe, ManagerError> {
        SketchProbe::local(&*self.store, context, len).map_err(|source| ManagerError::Store {
            peer: peer.to_owned(),
            phase: "handshake",
            source,
        })
    }

    async fn exchange_handshakes<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        context: &ContextId,
        local: &PeerSummary,
    ) -> Result<PeerSummary, ManagerError> {
        let peer = transport.peer().to_owned();
        let hello = init_message(context, Kind::Handshake(local.to_wire()));
        let transport_err = |source| ManagerError::Transport {
            peer: peer.clone(),
            phase: "handshake",
            source,
        };
        transport.send(&hello).await.map_err(transport_err)?;
        let reply = transport
            .recv_timeout(self.config.handshake_timeout)
            .await
            .map_err(transport_err)?;
        let reply = match reply.and_then(|m| m.body) {
            Some(Body::Handshake(h)) => PeerSummary::from_wire(&h),
            Some(Body::Abort(a)) => Err(a.into_error()),
            None => Err(ProtocolError::PeerClosed("handshake reply")),
            Some(_) => Err(ProtocolError::Unexpected {
                expected: "handshake reply",
                got: "another message",
            }),
        };
        match reply {
            Ok(remote) => Ok(remote),
            Err(e) => Err(self.rejected(transport, e).await),
        }
    }

    async fn recv_init<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        after_handshake: bool,
    ) -> Result<Option<InitPayload>, DispatchFailure> {
        let message = transport
            .recv_timeout(self.config.handshake_timeout)
            .await?;
        match message.map(|m| m.body) {
            None => Ok(None),
            Some(Some(Body::Init(init))) => Ok(Some(init)),
            Some(Some(Body::Abort(a))) if after_handshake => Err(a.into_error().into()),
            Some(_) => {
                Err(ProtocolError::UnknownInit("first message is not an init payload").into())
            }
        }
    }

    fn check_init(&self, init: &InitPayload, access: &Access) -> Result<ContextId, ProtocolError> {
        if init.protocol_version != PROTOCOL_VERSION {
            return Err(ProtocolError::UnsupportedVersion {
                got: init.protocol_version,
                supported: PROTOCOL_VERSION,
            });
        }
        let context = ContextId::new(init.context_id.clone())?;
        let unknown = !self.config.accept_unknown_contexts && !self.holds(&context);
        if unknown || !access.may_read(&context) {
            return Err(ProtocolError::UnknownContext(context.to_string()));
        }
        Ok(context)
    }

    fn holds(&self, context: &ContextId) -> bool {
        self.store.summary(context).is_ok_and(|s| s.entry_count > 0)
    }

    async fn reply_handshake<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        context: &ContextId,
        theirs: &synctree_primitives::wire::Handshake,
    ) -> Result<SessionKey, ManagerError> {
        let theirs = match PeerSummary::from_wire(theirs) {
            Ok(theirs) => theirs,
            Err(e) => return Err(self.rejected(transport, e).await),
        };
        let peer = transport.peer().to_owned();
        let mut local = self.local_summary(context, &peer, "handshake")?;
        local.nonce = self.fresh_nonce();
        let key = SessionKey::derive(&theirs.nonce, &local.nonce);
        if local.root != theirs.root {
            local.top_fingerprint = Some(self.fingerprint(context, &peer, &key)?);
            let sketch = ProtocolKind::Sketch;
            if theirs.supported.contains(&sketch) && local.supported.contains(&sketch) {
                local.sketch_probe = Some(self.sketch_probe(context, &peer, local.sketch_len)?);
            }
        }
        let reply = StreamMessage::new(Body::Handshake(local.to_wire()));
        transport
            .send(&reply)
            .await
            .map_err(|source| ManagerError::Transport {
                peer,
                phase: "handshake",
                source,
            })?;
        Ok(key)
    }

    fn store_error(&self, peer: &str, phase: &'static str, source: StoreError) -> ManagerError {
        ManagerError::Store {
            peer: peer.to_owned(),
            phase,
            source,
        }
    }

    fn local_summary(
        &self,
        context: &ContextId,
        peer: &str,
        phase: &'static str,
    ) -> Result<PeerSummary, ManagerError> {
        PeerSummary::local(
            &*self.store,
            context,
            self.identity.node_id,
            &self.config.supported,
        )
        .map_err(|source| ManagerError::Store {
            peer: peer.to_owned(),
            phase,
            source,
        })
    }

    /// Tells the peer why its stream is refused, closes it, and returns the error.
    async fn rejected<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        error: ProtocolError,
    ) -> ManagerError {
        let peer = transport.peer().to_owned();
        if !matches!(
            error,
            ProtocolError::Aborted { .. } | ProtocolError::PeerClosed(_)
        ) {
            let abort = StreamMessage::abort(error.abort_code(), &error.to_string());
            let _ = transport.send(&abort).await;
        }
        let _ = transport.close().await;
        tracing::debug!(%peer, %error, "stream refused");
        ManagerError::Rejected {
            peer,
            source: error,
        }
    }

    async fn refuse<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        failure: DispatchFailure,
    ) -> ManagerError {
        match failure {
            DispatchFailure::Protocol(e) => self.rejected(transport, e).await,
            DispatchFailure::Transport(source) => {
                let _ = transport.close().await;
                ManagerError::Transport {
                    peer: transport.peer().to_owned(),
                    phase: "dispatch",
                    source,
                }
            }
        }
    }
}

/// Why the first message could not be read.
#[derive(Debug)]
enum DispatchFailure {
    Protocol(ProtocolError),
    Transport(TransportError),
}

impl From<ProtocolError> for DispatchFailure {
    fn from(e: ProtocolError) -> Self {
        DispatchFailure::Protocol(e)
    }
}

impl From<TransportError> for DispatchFailure {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Decode(_) => {
                DispatchFailure::Protocol(ProtocolError::UnknownInit("undecodable frame"))
            }
            TransportError::FrameTooLarge { len, max }
            | TransportError::ForeignProtocol { len, max, .. } => {
                DispatchFailure::Protocol(ProtocolError::too_many("frame bytes", max, len))
            }
            other => DispatchFailure::Transport(other),
        }
    }
}
