//! [`Connector`]: how the scheduler reaches a peer, and [`TcpConnector`], its TCP
//! implementation.

use std::future::Future;
use std::io;
use std::time::Duration;

use synctree_primitives::SyncTransport;
use synctree_transport::FramedTransport;
use tokio::net::TcpStream;

/// Opens connections to peers; TCP and the simulator implement it, so the
/// scheduler runs unchanged over both.
pub trait Connector: Send + Sync + 'static {
    /// The transport a connection gives.
    type Transport: SyncTransport + 'static;
    /// Why connecting failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Connects to `peer` (an address such as `host:port`).
    fn connect(
        &self,
        peer: &str,
    ) -> impl Future<Output = Result<Self::Transport, Self::Error>> + Send;
}

/// Default TCP connect timeout: far above a LAN or WAN round trip, short enough
/// that an unreachable peer fails well inside a session deadline.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects over TCP, giving up after `connect_timeout`.
#[derive(Clone, Copy, Debug)]
pub struct TcpConnector {
    /// Longest wait for the TCP handshake.
    pub connect_timeout: Duration,
}

impl Default for TcpConnector {
    /// A [`DEFAULT_CONNECT_TIMEOUT`] connect timeout.
    fn default() -> Self {
        TcpConnector {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl Connector for TcpConnector {
    type Transport = FramedTransport<TcpStream>;
    type Error = io::Error;

    async fn connect(&self, peer: &str) -> io::Result<Self::Transport> {
        let connecting = TcpStream::connect(peer);
        let stream = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        FramedTransport::tcp(stream)
    }
}
