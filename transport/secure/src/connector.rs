//! [`SecureConnector`]: anti-entropy's [`Connector`] over TLS or QUIC, so the
//! scheduler syncs only with peers that prove their node ID. Its peers are
//! written `ID@HOST:PORT` or `quic://ID@HOST:PORT` ([`PeerAddr`]), so the
//! anti-entropy peer table, its backoff and its metrics labels carry the node ID.

use async_trait::async_trait;
use synctree_manager::Connector;
use synctree_primitives::{StreamMessage, SyncTransport, TransportError, TransportStats};
use synctree_transport::FramedTransport;

use crate::error::SecureError;
use crate::key::NodeKey;
use crate::peer_addr::{PeerAddr, Scheme};
use crate::quic::QuicTransport;
use crate::tls::ClientStream;

/// Connects to `[quic://]ID@HOST:PORT` peers as one node key.
#[derive(Debug, Clone)]
pub struct SecureConnector {
    key: NodeKey,
}

impl SecureConnector {
    /// A connector presenting `key`.
    pub fn new(key: NodeKey) -> Self {
        SecureConnector { key }
    }
}

/// A session's transport to a peer: TLS over TCP, or a QUIC stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum SecureTransport {
    /// TLS 1.3 over TCP.
    Tls(FramedTransport<ClientStream>),
    /// One QUIC stream (its connection closes with it).
    Quic(QuicTransport),
}

impl Connector for SecureConnector {
    type Transport = SecureTransport;
    type Error = SecureError;

    async fn connect(&self, peer: &str) -> Result<SecureTransport, SecureError> {
        let target: PeerAddr = peer.parse().map_err(|e| SecureError::Connect {
            addr: peer.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        match target.scheme {
            Scheme::Quic => Ok(SecureTransport::Quic(
                crate::quic::connect(&target.addr, &self.key, target.id).await?,
            )),
            _ => Ok(SecureTransport::Tls(
                crate::tls::connect(&target.addr, &self.key, target.id).await?,
            )),
        }
    }
}

#[async_trait]
impl SyncTransport for SecureTransport {
    async fn send(&mut self, message: &StreamMessage) -> Result<(), TransportError> {
        match self {
            SecureTransport::Tls(t) => t.send(message).await,
            SecureTransport::Quic(t) => t.send(message).await,
        }
    }

    async fn recv(&mut self) -> Result<Option<StreamMessage>, TransportError> {
        match self {
            SecureTransport::Tls(t) => t.recv().await,
            SecureTransport::Quic(t) => t.recv().await,
        }
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        match self {
            SecureTransport::Tls(t) => t.close().await,
            SecureTransport::Quic(t) => t.close().await,
        }
    }

    fn stats(&self) -> TransportStats {
        match self {
            SecureTransport::Tls(t) => t.stats(),
            SecureTransport::Quic(t) => t.stats(),
        }
    }

    fn peer(&self) -> &str {
        match self {
            SecureTransport::Tls(t) => t.peer(),
            SecureTransport::Quic(t) => t.peer(),
        }
    }
}
