//! How [`SyncManager::serve_with`](crate::SyncManager::serve_with) turns an
//! accepted TCP connection into an authenticated byte stream before it decodes
//! any protocol message.
//!
//! ```text
//!  TcpStream ─► Acceptor::accept (TLS handshake, allowlist) ─► Accepted { stream, peer, access }
//!                     │ refused / timed out                          │
//!                     ▼                                              ▼
//!             closed, counted in ServeSummary::handshake_failures   FramedTransport ─► handle_stream_as
//! ```

use std::future::Future;
use std::net::SocketAddr;

use synctree_primitives::StreamMessage;
use synctree_primitives::wire::AbortCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::access::Access;

/// A connection past its acceptor: the stream to frame, who is on the other end,
/// and what that peer may do.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted<S> {
    /// The (decrypted) byte stream.
    pub stream: S,
    /// The peer's label in logs, errors, metrics and per-peer state: its node ID
    /// when it authenticated, its address otherwise.
    pub peer: String,
    /// What the peer may read and write.
    pub access: Access,
}

impl<S> Accepted<S> {
    /// An accepted stream from `peer` with `access`.
    pub fn new(stream: S, peer: impl Into<String>, access: Access) -> Self {
        Accepted {
            stream,
            peer: peer.into(),
            access,
        }
    }
}

/// Why an acceptor refused a connection.
#[derive(Debug, thiserror::Error)]
#[error("connection from {addr} refused during {phase}")]
#[non_exhaustive]
pub struct AcceptError {
    /// The peer's socket address.
    pub addr: SocketAddr,
    /// What the acceptor was doing (`tls handshake`, `allowlist`…).
    pub phase: &'static str,
    /// What went wrong.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl AcceptError {
    /// A refusal of the connection from `addr` during `phase`.
    pub fn new(
        addr: SocketAddr,
        phase: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        AcceptError {
            addr,
            phase,
            source: source.into(),
        }
    }
}

/// Turns accepted TCP connections into authenticated streams.
pub trait Acceptor: Send + Sync + 'static {
    /// The stream a connection becomes.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Authenticates the connection from `addr` (the serve loop bounds how long
    /// this may take with `ManagerConfig::accept_timeout`).
    fn accept(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<Accepted<Self::Stream>, AcceptError>> + Send;

    /// Refuses a connection before `accept` (address cap, pending pool full):
    /// by default it is just closed, since an unauthenticated peer cannot be told
    /// anything on a secure transport.
    fn refuse_early(
        &self,
        stream: TcpStream,
        why: &'static str,
    ) -> impl Future<Output = ()> + Send {
        let _ = why;
        async move { drop(stream) }
    }
}

/// Plain TCP: every connection is accepted as is, labelled with its address and
/// granted [`Access::all`]. For tests and local demos only: nothing is
/// authenticated or encrypted.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainTcp;

impl Acceptor for PlainTcp {
    type Stream = TcpStream;

    async fn accept(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> Result<Accepted<TcpStream>, AcceptError> {
        Ok(Accepted::new(stream, addr.to_string(), Access::all()))
    }

    /// Tells the peer `BUSY` in a frame, as the plaintext protocol always has.
    async fn refuse_early(&self, stream: TcpStream, why: &'static str) {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
        let mut transport = synctree_transport::FramedTransport::new(stream, peer);
        let abort = StreamMessage::abort(AbortCode::Busy, why);
        crate::serve::send_refusal(&mut transport, &abort).await;
    }
}
