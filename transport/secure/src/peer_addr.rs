//! [`PeerAddr`]: how a peer is named on the command line, `ID@HOST:PORT`, with
//! an optional `tcp://` or `quic://` scheme.

use std::fmt;
use std::str::FromStr;

use crate::id::{IdError, PeerId};

/// The transport to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// TLS 1.3 over TCP (the default).
    Tcp,
    /// QUIC (TLS 1.3 inside), over UDP.
    Quic,
}

/// A peer: its expected node ID, the address to dial, and the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    /// The transport.
    pub scheme: Scheme,
    /// The node ID the peer must prove.
    pub id: PeerId,
    /// `HOST:PORT`.
    pub addr: String,
}

/// Why a peer address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerAddrError {
    /// No `@`: the node ID is required.
    #[error("expected ID@HOST:PORT (the peer's node ID, from `synctree id` on it)")]
    MissingId,
    /// A scheme other than `tcp` or `quic`.
    #[error("unknown scheme `{0}` (use tcp:// or quic://)")]
    Scheme(String),
    /// The ID part is not a node ID.
    #[error("bad node ID")]
    Id(#[source] IdError),
    /// Nothing after the `@`.
    #[error("no address after the `@`")]
    MissingAddr,
}

impl FromStr for PeerAddr {
    type Err = PeerAddrError;

    fn from_str(s: &str) -> Result<Self, PeerAddrError> {
        let (scheme, rest) = match s.split_once("://") {
            None => (Scheme::Tcp, s),
            Some(("tcp", rest)) => (Scheme::Tcp, rest),
            Some(("quic", rest)) => (Scheme::Quic, rest),
            Some((other, _)) => return Err(PeerAddrError::Scheme(other.to_owned())),
        };
        let (id, addr) = rest.split_once('@').ok_or(PeerAddrError::MissingId)?;
        if addr.is_empty() {
            return Err(PeerAddrError::MissingAddr);
        }
        Ok(PeerAddr {
            scheme,
            id: id.parse().map_err(PeerAddrError::Id)?,
            addr: addr.to_owned(),
        })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Scheme::Tcp => write!(f, "{}@{}", self.id, self.addr),
            Scheme::Quic => write!(f, "quic://{}@{}", self.id, self.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_parse_with_and_without_a_scheme() {
        let id = PeerId::from_public_key(b"k");
        let tcp: PeerAddr = format!("{id}@127.0.0.1:7000").parse().unwrap();
        assert_eq!(
            (tcp.scheme, tcp.id, tcp.addr.as_str()),
            (Scheme::Tcp, id, "127.0.0.1:7000")
        );
        let quic: PeerAddr = format!("quic://{id}@h:1").parse().unwrap();
        assert_eq!(quic.scheme, Scheme::Quic);
        assert_eq!(quic.to_string().parse(), Ok(quic));
        assert_eq!(
            "127.0.0.1:7000".parse::<PeerAddr>(),
            Err(PeerAddrError::MissingId)
        );
        assert!(matches!(
            format!("udp://{id}@h:1").parse::<PeerAddr>(),
            Err(PeerAddrError::Scheme(_))
        ));
    }
}
