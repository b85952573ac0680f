//! [`SyncManager`]: dispatches incoming streams to protocol responders and opens
//! sessions as initiator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use synctree_primitives::limits::IDLE_TIMEOUT;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{InitPayload, PROTOCOL_VERSION};
use synctree_primitives::{
    ContextId, Identity, ProtocolError, ProtocolKind, Store, StreamMessage, SyncProtocolExecutor,
    SyncStats, SyncTransport, TransportError,
};
use synctree_protocols::{
    HashComparison, HashComparisonConfig, HashComparisonResponderInit, LevelWise, LevelWiseConfig,
    LevelWiseResponderInit, Snapshot, SnapshotConfig, SnapshotProgress, SnapshotResponderInit,
    init_message,
};
use tokio::time::Instant;

use crate::error::ManagerError;
use crate::handshake::{PeerSummary, SUPPORTED_PROTOCOLS, TopFingerprint};
use crate::report::SessionReport;
use crate::selection::{ProtocolChoice, Selection, select};

/// Interrupted snapshots kept for resuming: each holds staged entries (up to
/// `MAX_SNAPSHOT_STAGED_BYTES`), so only a few are kept at once.
pub const MAX_PARTIAL_SNAPSHOTS: usize = 4;

/// Manager tunables.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Sessions served at once; streams beyond it get a `BUSY` abort.
    pub max_concurrent_sessions: usize,
    /// Serve contexts this node holds nothing of (a fresh node syncing them in).
    pub accept_unknown_contexts: bool,
    /// Protocols this node runs, in order of preference.
    pub supported: Vec<ProtocolKind>,
    /// Longest wait for a peer's first message or handshake reply.
    pub handshake_timeout: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            max_concurrent_sessions: 64,
            accept_unknown_contexts: true,
            supported: SUPPORTED_PROTOCOLS.to_vec(),
            handshake_timeout: IDLE_TIMEOUT,
        }
    }
}

/// How a served stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
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
    /// Interrupted snapshots by (peer, context), resumed by the next session.
    partial_snapshots: Mutex<HashMap<(String, ContextId), SnapshotProgress>>,
}

impl<S: Store + 'static> SyncManager<S> {
    /// A manager for `store`, acting as `identity`.
    pub fn new(store: Arc<S>, identity: Identity, config: ManagerConfig) -> Self {
        SyncManager {
            store,
            identity,
            config,
            partial_snapshots: Mutex::default(),
        }
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
        let mut handshaken = None;
        loop {
            let first = self.recv_init(transport, handshaken.is_some()).await;
            let init = match first {
                Ok(None) => match handshaken {
                    Some(context) => {
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
            let context = match self.check_init(&init) {
                Ok(context) => context,
                Err(e) => return Err(self.rejected(transport, e).await),
            };
            match init.kind {
                Some(Kind::Handshake(h)) if handshaken.is_none() => {
                    self.reply_handshake(transport, &context, &h).await?;
                    handshaken = Some(context);
                }
                Some(kind) => {
                    let stats = self.respond(transport, &context, kind).await?;
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

    /// Runs the responder of the protocol `kind` names.
    async fn respond<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        context: &ContextId,
        kind: Kind,
    ) -> Result<SyncStats, ManagerError> {
        let (store, id) = (&*self.store, &self.identity);
        let stats = match kind {
            Kind::HashComparison(init) => {
                let init = match HashComparisonResponderInit::try_from(&init) {
                    Ok(init) => init,
                    Err(e) => return Err(self.rejected(transport, e).await),
                };
                HashComparison::run_responder(transport, store, context, id, init).await?
            }
            Kind::LevelWise(init) => {
                let init = match LevelWiseResponderInit::try_from(&init) {
                    Ok(init) => init,
                    Err(e) => return Err(self.rejected(transport, e).await),
                };
                LevelWise::run_responder(transport, store, context, id, init).await?
            }
            Kind::Snapshot(init) => {
                let init = match SnapshotResponderInit::try_from(&init) {
                    Ok(init) => init,
                    Err(e) => return Err(self.rejected(transport, e).await),
                };
                Snapshot::run_responder(transport, store, context, id, init).await?
            }
            // A second handshake: the first was answered above.
            Kind::Handshake(_) => {
                let e = ProtocolError::Unexpected {
                    expected: "protocol init",
                    got: "second handshake",
                };
                return Err(self.rejected(transport, e).await);
            }
        };
        Ok(stats)
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
        let before = transport.stats();
        let peer = transport.peer().to_owned();
        let mut local = self.local_summary(context, &peer, "handshake")?;
        let remote = self.exchange_handshakes(transport, context, &local).await?;
        if remote.top_fingerprint.is_some() {
            local.top_fingerprint = Some(self.fingerprint(context, &peer)?);
        }
        let selection = match select(choice, &local, &remote) {
            Ok(selection) => selection,
            Err(e) => return Err(self.rejected(transport, e).await),
        };
        tracing::debug!(%peer, %context, protocol = ?selection.protocol, reason = %selection.reason, "selected");
        let stats = match selection.protocol {
            None => {
                let _ = transport.close().await;
                None
            }
            Some(protocol) => Some(
                self.initiate(transport, context, protocol, &selection, &remote)
                    .await?,
            ),
        };
        Ok(SessionReport::new(
            selection,
            local,
            remote,
            stats,
            transport.stats().since(&before),
            started.elapsed(),
        ))
    }

    /// Runs the initiator of `protocol`.
    async fn initiate<T: SyncTransport + ?Sized>(
        &self,
        transport: &mut T,
        context: &ContextId,
        protocol: ProtocolKind,
        selection: &Selection,
        remote: &PeerSummary,
    ) -> Result<SyncStats, ManagerError> {
        let (store, id) = (&*self.store, &self.identity);
        // The handshake's top fingerprint is the first level of the tree descent.
        let remote_top = remote.top_fingerprint.map(|top| top.0);
        let stats = match protocol {
            ProtocolKind::HashComparison => {
                let config = HashComparisonConfig {
                    remote_top,
                    ..Default::default()
                };
                HashComparison::run_initiator(transport, store, context, id, config).await?
            }
            ProtocolKind::LevelWise => {
                let config = LevelWiseConfig {
                    remote_top,
                    ..Default::default()
                };
                LevelWise::run_initiator(transport, store, context, id, config).await?
            }
            ProtocolKind::Snapshot => {
                let progress = self.snapshot_progress(transport.peer(), context);
                let config = SnapshotConfig {
                    compression: selection.compression,
                    resume: Some(progress.clone()),
                    ..SnapshotConfig::default()
                };
                let outcome = Snapshot::run_initiator(transport, store, context, id, config).await;
                self.keep_snapshot_progress(transport.peer(), context, progress);
                outcome?
            }
            other => {
                let e = ProtocolError::UnsupportedProtocol(other.name().to_owned());
                return Err(self.rejected(transport, e).await);
            }
        };
        Ok(stats)
    }

    /// The staged pages of an earlier, interrupted snapshot of `context` from
    /// `peer`, or a fresh handle.
    fn snapshot_progress(&self, peer: &str, context: &ContextId) -> SnapshotProgress {
        let key = (peer.to_owned(), context.clone());
        let mut partial = self
            .partial_snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        partial.remove(&key).unwrap_or_default()
    }

    /// Keeps a snapshot's staged pages for the next session with the same peer, so
    /// it resumes instead of starting over (dropped once empty: finished, verified
    /// or moved).
    fn keep_snapshot_progress(&self, peer: &str, context: &ContextId, progress: SnapshotProgress) {
        if progress.is_empty() {
            return;
        }
        let key = (peer.to_owned(), context.clone());
        let mut partial = self
            .partial_snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if partial.len() >= MAX_PARTIAL_SNAPSHOTS {
            tracing::debug!(%peer, %context, "too many partial snapshots kept; this one starts over next time");
            return;
        }
        tracing::debug!(%peer, %context, pages = progress.pages_staged(), "keeping a partial snapshot to resume");
        partial.insert(key, progress);
    }

    fn fingerprint(&self, context: &ContextId, peer: &str) -> Result<TopFingerprint, ManagerError> {
        TopFingerprint::local(&*self.store, context).map_err(|source| ManagerError::Store {
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

    fn check_init(&self, init: &InitPayload) -> Result<ContextId, ProtocolError> {
        if init.protocol_version != PROTOCOL_VERSION {
            return Err(ProtocolError::UnsupportedVersion {
                got: init.protocol_version,
                supported: PROTOCOL_VERSION,
            });
        }
        let context = ContextId::new(init.context_id.clone())?;
        if !self.config.accept_unknown_contexts && !self.holds(&context) {
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
    ) -> Result<(), ManagerError> {
        let theirs = match PeerSummary::from_wire(theirs) {
            Ok(theirs) => theirs,
            Err(e) => return Err(self.rejected(transport, e).await),
        };
        let peer = transport.peer().to_owned();
        let mut local = self.local_summary(context, &peer, "handshake")?;
        if local.root != theirs.root {
            local.top_fingerprint = Some(self.fingerprint(context, &peer)?);
        }
        let reply = StreamMessage::new(Body::Handshake(local.to_wire()));
        transport
            .send(&reply)
            .await
            .map_err(|source| ManagerError::Transport {
                peer,
                phase: "handshake",
                source,
            })
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
            TransportError::FrameTooLarge { len, max } => {
                DispatchFailure::Protocol(ProtocolError::too_many("frame bytes", max, len))
            }
            other => DispatchFailure::Transport(other),
        }
    }
}
