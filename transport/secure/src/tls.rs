//! TLS 1.3 over TCP: the rustls configurations for a node key, the serve loop's
//! [`TlsAcceptor`], and [`connect`] for the initiating side.
//!
//! ```text
//!  connect(addr, key, expected ID) ── TCP ── TLS 1.3 (ServerVerifier: expected ID) ──► FramedTransport<TlsStream>
//!  serve_with(listener, TlsAcceptor) ── TLS 1.3 (ClientVerifier: allowlist) ──► Accepted { peer: ID, access }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use synctree_manager::{AcceptError, Accepted, Acceptor};
use synctree_transport::FramedTransport;
use tokio::net::TcpStream;

use crate::cert::{CERT_NAME, peer_of, self_signed};
use crate::error::SecureError;
use crate::id::PeerId;
use crate::key::NodeKey;
use crate::verify::{ClientVerifier, PeerPolicy, ServerVerifier};

/// The ALPN protocol both sides offer: a client of something else (or an older
/// synctree wire) fails the handshake instead of sending frames it cannot parse.
pub const ALPN: &[u8] = b"synctree/1";

/// Longest wait for a TCP connection and the TLS handshake on the initiating
/// side: the serve side's `DEFAULT_ACCEPT_TIMEOUT` plus a few seconds to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration of `key`, accepting only the server `expected`.
pub fn client_config(key: &NodeKey, expected: PeerId) -> Result<ClientConfig, SecureError> {
    let (cert, private) = self_signed(key)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(SecureError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier::new(expected)))
        .with_client_auth_cert(vec![cert], private)
        .map_err(SecureError::Config)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The server configuration of `key`, accepting the clients `policy` knows.
pub fn server_config(
    key: &NodeKey,
    policy: Arc<dyn PeerPolicy>,
) -> Result<ServerConfig, SecureError> {
    let (cert, private) = self_signed(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(SecureError::Config)?
        .with_client_cert_verifier(Arc::new(ClientVerifier::new(policy)))
        .with_single_cert(vec![cert], private)
        .map_err(SecureError::Config)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The server name every client sends; never checked (there are no names).
pub(crate) fn server_name() -> Result<ServerName<'static>, SecureError> {
    ServerName::try_from(CERT_NAME)
        .map_err(|e| SecureError::Config(rustls::Error::General(e.to_string())))
}

/// The ID of the peer on the other end of a finished handshake.
pub(crate) fn peer_id(certs: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> Option<PeerId> {
    let end_entity = certs?.first()?;
    peer_of(end_entity).ok().map(|(id, _)| id)
}

/// Accepts TLS 1.3 connections from the peers its policy allows; every
/// connection is labelled with its node ID and carries that peer's access.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    policy: Arc<dyn PeerPolicy>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// An acceptor presenting `key`, admitting the clients `policy` allows.
    pub fn new(key: &NodeKey, policy: Arc<dyn PeerPolicy>) -> Result<Self, SecureError> {
        let config = server_config(key, Arc::clone(&policy))?;
        Ok(TlsAcceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            policy,
        })
    }
}

impl Acceptor for TlsAcceptor {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;

    async fn accept(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> Result<Accepted<Self::Stream>, AcceptError> {
        let tls = self
            .inner
            .accept(stream)
            .await
            .map_err(|e| AcceptError::new(addr, "tls handshake", e))?;
        let id = peer_id(tls.get_ref().1.peer_certificates())
            .ok_or_else(|| AcceptError::new(addr, "tls handshake", "no client certificate"))?;
        // The policy may have changed since the verifier asked it.
        let access = self
            .policy
            .access(&id)
            .ok_or_else(|| AcceptError::new(addr, "allowlist", format!("{id} is not allowed")))?;
        tracing::debug!(peer = %id, %addr, "authenticated");
        Ok(Accepted::new(tls, id.to_string(), access))
    }
}

/// The client side of a TLS connection over TCP.
pub type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A framed transport over TLS to the node `expected` at `addr`, presenting
/// `key`; labelled with `expected`'s ID. Fails when the server's key is not
/// `expected`'s, or when the server does not allow us.
pub async fn connect(
    addr: &str,
    key: &NodeKey,
    expected: PeerId,
) -> Result<FramedTransport<ClientStream>, SecureError> {
    let tls = connect_stream(addr, key, expected).await?;
    Ok(FramedTransport::new(tls, expected.to_string()))
}

/// The TLS stream under [`connect`], unframed (tests that write raw bytes).
pub async fn connect_stream(
    addr: &str,
    key: &NodeKey,
    expected: PeerId,
) -> Result<ClientStream, SecureError> {
    let config = Arc::new(client_config(key, expected)?);
    let handshake = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| SecureError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(config);
        // TLS 1.3: a client the server refuses learns it on its first read
        // (the server's alert), as a transport error of the first exchange.
        connector
            .connect(server_name()?, tcp)
            .await
            .map_err(|e| handshake_failed(addr, expected, e))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| SecureError::Timeout {
            addr: addr.to_owned(),
            timeout: CONNECT_TIMEOUT,
        })?
}

fn handshake_failed(addr: &str, expected: PeerId, e: std::io::Error) -> SecureError {
    SecureError::Handshake {
        peer: expected.to_string(),
        addr: addr.to_owned(),
        source: Box::new(e),
    }
}
