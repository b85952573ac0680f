//! Connecting to a peer named on the command line: `ID@HOST:PORT` over TLS,
//! `quic://ID@HOST:PORT` over QUIC, or `HOST:PORT` over plain TCP when this node
//! runs with `--insecure-plaintext` (no key). `sync` and anti-entropy both use it.

use std::sync::Arc;
use std::time::Duration;

use synctree_manager::Connector;
use synctree_primitives::SyncTransport;
use synctree_secure::{NodeKey, PeerAddr, SecureConnector};
use synctree_transport::FramedTransport;
use tokio::net::TcpStream;

use crate::error::CliError;

/// Longest wait for a plaintext TCP connection to the peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens transports to peers with this node's key (`None`: plain TCP).
#[derive(Clone)]
pub(crate) struct PeerConnector {
    secure: Option<Arc<SecureConnector>>,
}

impl PeerConnector {
    /// Connects with `key`, or over plain TCP without one.
    pub(crate) fn new(key: Option<Arc<NodeKey>>) -> Self {
        let secure = key.map(|k| Arc::new(SecureConnector::new((*k).clone())));
        PeerConnector { secure }
    }

    /// The transport to `peer`.
    pub(crate) async fn open(&self, peer: &str) -> Result<Box<dyn SyncTransport>, CliError> {
        let Some(secure) = &self.secure else {
            return Ok(Box::new(connect_plain(peer).await?));
        };
        // Parsed first for a clear `bad --peer` error.
        let _: PeerAddr = peer.parse().map_err(|source| CliError::BadPeer {
            peer: peer.to_owned(),
            source,
        })?;
        Ok(Box::new(secure.connect(peer).await?))
    }
}

impl Connector for PeerConnector {
    type Transport = Box<dyn SyncTransport>;
    type Error = CliError;

    async fn connect(&self, peer: &str) -> Result<Self::Transport, CliError> {
        self.open(peer).await
    }
}

/// Connects to `peer` over plain TCP within [`CONNECT_TIMEOUT`].
async fn connect_plain(peer: &str) -> Result<FramedTransport<TcpStream>, CliError> {
    let connect_err = |source| CliError::Connect {
        peer: peer.to_owned(),
        source,
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Ok(connected) => connected.map_err(connect_err)?,
        Err(_) => {
            let timeout = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            );
            return Err(connect_err(timeout));
        }
    };
    FramedTransport::tcp(stream).map_err(connect_err)
}
