//! QUIC on quinn, with the same identity and verifiers as TLS over TCP: one
//! connection per peer, one bidirectional stream per session, each stream a
//! [`FramedTransport`] with the usual framing, so several contexts sync
//! concurrently over one connection.
//!
//! ```text
//!  QuicClient::connect(addr, key, expected ID) ─► open() ─► QuicTransport (bidi stream) ─► SyncManager::sync
//!  QuicServer::bind(key, policy, addr) ─► serve(manager): per connection, the peer's ID and access;
//!        per stream: policy checked again ─► SyncManager::serve_accepted (first frame, slot, deadline)
//! ```
//!
//! Neither 0-RTT nor connection migration is used.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use synctree_manager::{
    Accepted, DEFAULT_MAX_CONNECTIONS_PER_IP, DRAIN_GRACE, SessionSlots, SyncManager,
};
use synctree_primitives::{Store, StreamMessage, SyncTransport, TransportError, TransportStats};
use synctree_transport::FramedTransport;
use tokio::io::Join;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::SecureError;
use crate::id::PeerId;
use crate::key::NodeKey;
use crate::tls::{CONNECT_TIMEOUT, client_config, peer_id, server_config};
use crate::verify::PeerPolicy;

/// Sessions (bidirectional streams) one QUIC connection may run at once: as many
/// as one address may open TCP connections, so QUIC grants a peer no more.
pub const MAX_STREAMS_PER_CONNECTION: u32 = DEFAULT_MAX_CONNECTIONS_PER_IP as u32;

/// Longest `close` waits for the peer to acknowledge the stream's last bytes, so
/// closing the connection right after does not discard them.
pub const CLOSE_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Application close code of a connection that ended normally.
const CLOSE_DONE: u32 = 0;
/// Application close code of a connection whose peer is no longer allowed.
const CLOSE_NOT_ALLOWED: u32 = 1;

/// The byte stream of one session: a QUIC stream's two halves.
pub type QuicStream = Join<RecvStream, SendStream>;

type Acked = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A [`SyncTransport`] over one bidirectional QUIC stream. `close` finishes the
/// stream and waits (up to [`CLOSE_ACK_TIMEOUT`]) until the peer acknowledged
/// everything; a transport from [`connect`] then closes its connection too.
pub struct QuicTransport {
    inner: FramedTransport<QuicStream>,
    acked: Option<Acked>,
    /// Set when this transport owns its connection (one-session use).
    owned: Option<(Endpoint, Connection)>,
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("peer", &self.inner.peer())
            .finish_non_exhaustive()
    }
}

impl QuicTransport {
    fn new(send: SendStream, recv: RecvStream, peer: &PeerId) -> Self {
        let stopped = send.stopped();
        QuicTransport {
            inner: FramedTransport::new(tokio::io::join(recv, send), peer.to_string()),
            acked: Some(Box::pin(async move {
                let _ = stopped.await;
            })),
            owned: None,
        }
    }
}

#[async_trait]
impl SyncTransport for QuicTransport {
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        self.inner.send(message).await
    }

    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
        self.inner.recv().await
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.inner.close().await?;
        if let Some(acked) = self.acked.take() {
            let _ = tokio::time::timeout(CLOSE_ACK_TIMEOUT, acked).await;
        }
        if let Some((endpoint, connection)) = self.owned.take() {
            connection.close(VarInt::from_u32(CLOSE_DONE), b"done");
            let _ = tokio::time::timeout(CLOSE_ACK_TIMEOUT, endpoint.wait_idle()).await;
        }
        Ok(())
    }

    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }

    fn peer(&self) -> &str {
        self.inner.peer()
    }
}

fn setup(e: impl std::fmt::Display) -> SecureError {
    SecureError::QuicSetup(e.to_string())
}

/// Resolves `addr` (`HOST:PORT`) to its first socket address.
async fn resolve(addr: &str) -> Result<SocketAddr, SecureError> {
    let connect_err = |source| SecureError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let mut found = tokio::net::lookup_host(addr).await.map_err(connect_err)?;
    found.next().ok_or_else(|| {
        connect_err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        ))
    })
}

/// A QUIC connection to one peer, on which each session opens its own stream.
#[derive(Debug)]
pub struct QuicClient {
    endpoint: Endpoint,
    connection: Connection,
    peer: PeerId,
}

impl QuicClient {
    /// Connects to the node `expected` at `addr` as `key`, within
    /// [`CONNECT_TIMEOUT`]; fails when the server's key is not `expected`'s.
    pub async fn connect(addr: &str, key: &NodeKey, expected: PeerId) -> Result<Self, SecureError> {
        let target = resolve(addr).await?;
        let tls = QuicClientConfig::try_from(client_config(key, expected)?).map_err(setup)?;
        let local: SocketAddr = match target {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
        };
        let mut endpoint = Endpoint::client(local).map_err(|source| SecureError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(tls)));
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| SecureError::Handshake {
            peer: expected.to_string(),
            addr: addr.to_owned(),
            source: e,
        };
        let connecting = endpoint
            .connect(target, crate::cert::CERT_NAME)
            .map_err(|e| failed(Box::new(e)))?;
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| SecureError::Timeout {
                addr: addr.to_owned(),
                timeout: CONNECT_TIMEOUT,
            })?
            .map_err(|e| failed(Box::new(e)))?;
        Ok(QuicClient {
            endpoint,
            connection,
            peer: expected,
        })
    }

    /// A new session's transport: a new bidirectional stream.
    pub async fn open(&self) -> Result<QuicTransport, SecureError> {
        let (send, recv) = self
            .connection
            .open_bi()
            .await
            .map_err(|e| SecureError::Handshake {
                peer: self.peer.to_string(),
                addr: self.connection.remote_address().to_string(),
                source: Box::new(e),
            })?;
        Ok(QuicTransport::new(send, recv, &self.peer))
    }

    /// UDP payload bytes this connection sent and received so far, QUIC headers,
    /// handshake and acknowledgements included: what it cost on the wire.
    pub fn udp_bytes(&self) -> u64 {
        let stats = self.connection.stats();
        stats.udp_tx.bytes + stats.udp_rx.bytes
    }

    /// Closes the connection and waits (briefly) for the peer to learn it.
    pub async fn close(self) {
        self.connection.close(VarInt::from_u32(CLOSE_DONE), b"done");
        let _ = tokio::time::timeout(CLOSE_ACK_TIMEOUT, self.endpoint.wait_idle()).await;
    }
}

/// One session over QUIC to the node `expected` at `addr`: a connection of its
/// own, closed when the transport is.
pub async fn connect(
    addr: &str,
    key: &NodeKey,
    expected: PeerId,
) -> Result<QuicTransport, SecureError> {
    let client = QuicClient::connect(addr, key, expected).await?;
    let mut transport = client.open().await?;
    transport.owned = Some((client.endpoint, client.connection));
    Ok(transport)
}

/// What a QUIC serve loop did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuicSummary {
    /// Connections that completed the handshake.
    pub connections: u64,
    /// Connections refused during the handshake (not allowed, bad certificate,
    /// too slow).
    pub handshake_failures: u64,
}

/// A QUIC endpoint serving sessions to the peers a policy allows.
#[derive(Debug)]
pub struct QuicServer {
    endpoint: Endpoint,
    policy: Arc<dyn PeerPolicy>,
}

impl QuicServer {
    /// Binds `addr` (UDP) with `key`'s certificate, admitting whom `policy` allows.
    pub fn bind(
        key: &NodeKey,
        policy: Arc<dyn PeerPolicy>,
        addr: SocketAddr,
    ) -> Result<Self, SecureError> {
        let tls = server_config(key, Arc::clone(&policy))?;
        let crypto = QuicServerConfig::try_from(tls).map_err(setup)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS_PER_CONNECTION))
            .max_concurrent_uni_streams(VarInt::from_u32(0));
        config.transport_config(Arc::new(transport));
        config.migration(false);
        let endpoint = Endpoint::server(config, addr).map_err(|source| SecureError::Connect {
            addr: addr.to_string(),
            source,
        })?;
        Ok(QuicServer { endpoint, policy })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Serves until `shutdown` completes, then lets running sessions finish for
    /// up to [`DRAIN_GRACE`] and closes every connection.
    pub async fn serve<S: Store + 'static>(
        self,
        manager: Arc<SyncManager<S>>,
        shutdown: impl Future<Output = ()>,
    ) -> QuicSummary {
        let config = manager.config();
        let slots = SessionSlots::new(config.max_concurrent_sessions, config.evict_idle_after);
        let (stop, stopping) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut summary = QuicSummary::default();
        tokio::pin!(shutdown);
        loop {
            let incoming = tokio::select! {
                () = &mut shutdown => break,
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => incoming,
                    None => break,
                },
                Some(done) = connections.join_next(), if !connections.is_empty() => {
                    match done {
                        Ok(true) => summary.connections += 1,
                        _ => summary.handshake_failures += 1,
                    }
                    continue;
                }
            };
            let peer = PeerConnection {
                manager: Arc::clone(&manager),
                policy: Arc::clone(&self.policy),
                slots: slots.clone(),
                stopping: stopping.clone(),
            };
            connections.spawn(peer.run(incoming));
        }
        let _ = stop.send(true);
        let drained = async {
            while let Some(done) = connections.join_next().await {
                match done {
                    Ok(true) => summary.connections += 1,
                    _ => summary.handshake_failures += 1,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_GRACE, drained).await;
        self.endpoint
            .close(VarInt::from_u32(CLOSE_DONE), b"shutting down");
        let _ = tokio::time::timeout(CLOSE_ACK_TIMEOUT, self.endpoint.wait_idle()).await;
        summary
    }
}

/// The node ID of the certificate the peer of `connection` presented.
fn quic_peer_id(connection: &Connection) -> Option<PeerId> {
    let identity = connection.peer_identity()?;
    let certs = identity.downcast_ref::<Vec<rustls::pki_types::CertificateDer<'static>>>()?;
    peer_id(Some(certs.as_slice()))
}

/// What one connection's task needs.
struct PeerConnection<S> {
    manager: Arc<SyncManager<S>>,
    policy: Arc<dyn PeerPolicy>,
    slots: SessionSlots,
    stopping: watch::Receiver<bool>,
}

impl<S: Store + 'static> PeerConnection<S> {
    /// Completes the handshake, then serves the connection's streams until it
    /// closes or the server stops. Whether the handshake succeeded.
    async fn run(mut self, incoming: quinn::Incoming) -> bool {
        let addr = incoming.remote_address();
        let wait = self.manager.config().accept_timeout;
        let connection = match tokio::time::timeout(wait, incoming).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => {
                tracing::info!(%addr, error = %e, "quic connection refused");
                return false;
            }
            Err(_) => {
                tracing::info!(%addr, "quic connection refused: handshake too slow");
                return false;
            }
        };
        let Some(id) = quic_peer_id(&connection) else {
            connection.close(VarInt::from_u32(CLOSE_NOT_ALLOWED), b"no certificate");
            return false;
        };
        tracing::debug!(peer = %id, %addr, "quic peer authenticated");
        let mut streams = JoinSet::new();
        loop {
            let (send, recv) = tokio::select! {
                _ = self.stopping.wait_for(|stop| *stop) => break,
                accepted = connection.accept_bi() => match accepted {
                    Ok(pair) => pair,
                    Err(_) => break,
                },
                Some(_) = streams.join_next(), if !streams.is_empty() => continue,
            };
            // A peer removed from the allowlist gets no new session.
            let Some(access) = self.policy.access(&id) else {
                tracing::info!(peer = %id, "peer no longer allowed; quic connection closed");
                connection.close(VarInt::from_u32(CLOSE_NOT_ALLOWED), b"not allowed");
                break;
            };
            let stream = tokio::io::join(recv, send);
            let accepted = Accepted::new(stream, id.to_string(), access);
            let (manager, slots) = (Arc::clone(&self.manager), self.slots.clone());
            streams.spawn(async move { manager.serve_accepted(accepted, &slots).await });
        }
        while streams.join_next().await.is_some() {}
        true
    }
}
