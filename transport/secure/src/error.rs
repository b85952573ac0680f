//! [`SecureError`]: what can fail while setting up or opening a secure connection.

use std::path::PathBuf;
use std::time::Duration;

/// A node key, certificate or secure connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecureError {
    /// The system's random generator failed to make a key.
    #[error("could not generate a node key")]
    KeyGeneration,
    /// The key file could not be read or written.
    #[error("node key file {}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file holds no Ed25519 PKCS#8 key.
    #[error("{} is not an Ed25519 PKCS#8 key (move it away to make a new identity)", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
    },
    /// The self-signed certificate could not be made.
    #[error("could not make the node certificate")]
    Certificate(#[source] rcgen::Error),
    /// The TLS configuration was refused (a bug, or an unsupported key).
    #[error("TLS configuration")]
    Config(#[source] rustls::Error),
    /// The QUIC endpoint could not be set up.
    #[error("QUIC setup: {0}")]
    QuicSetup(String),
    /// No connection could be made to the peer.
    #[error("could not connect to {addr}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS or QUIC handshake failed: the peer is not the node expected, or it
    /// refused us (we are not in its allowlist).
    #[error("secure handshake with {peer} at {addr} failed")]
    Handshake {
        /// The node ID expected.
        peer: String,
        /// The address dialled.
        addr: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Connecting or the handshake took too long.
    #[error("no secure connection to {addr} within {timeout:?}")]
    Timeout {
        /// The address dialled.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
}
