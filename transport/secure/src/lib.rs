//! Node identities and mutually authenticated transports for synctree.
//!
//! ```text
//!  NodeKey (DIR/node.key, Ed25519 PKCS#8, 0600) ─► PeerId = SHA-256(public key), base32 + Luhn checks
//!        │
//!        └─► self-signed certificate (cert.rs) ─► rustls configs (tls.rs), TLS 1.3 only, ring provider
//!                 ServerVerifier: exactly the expected PeerId     ClientVerifier: the PeerPolicy (allowlist)
//!                        │                                                │
//!               tls::connect ─► FramedTransport<TlsStream>      TlsAcceptor ─► SyncManager::serve_with
//!               QuicClient::connect ─► one bidi stream per session ─► QuicTransport
//!               SecureConnector: anti-entropy's Connector for `[quic://]ID@ADDR` peers
//! ```
//!
//! The protocols and the manager do not change: a secure connection is a
//! [`FramedTransport`](synctree_transport::FramedTransport) over a decrypted
//! stream, labelled with the peer's node ID. Certificates carry nothing a
//! verifier trusts except their Ed25519 key; docs/PROTOCOL.md ("Node identity")
//! specifies the ID format, the certificate profile and the access rules.
//!
//! The crypto provider is *ring*: it builds with the system C compiler (aws-lc-rs
//! needs cmake), and synctree needs only Ed25519, X25519 and AES-GCM/ChaCha20.

#![forbid(unsafe_code)]

pub mod cert;
mod connector;
mod error;
pub mod id;
pub mod key;
pub mod peer_addr;
pub mod quic;
pub mod tls;
pub mod verify;

pub use connector::{SecureConnector, SecureTransport};
pub use error::SecureError;
pub use id::{IdError, PeerId};
pub use key::NodeKey;
pub use peer_addr::{PeerAddr, Scheme};
pub use tls::TlsAcceptor;
pub use verify::{AllowList, PeerPolicy};
