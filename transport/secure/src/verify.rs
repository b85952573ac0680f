//! The custom rustls verifiers: no CA and no names, only node IDs.
//!
//! - [`ServerVerifier`] (a client's view of the server) accepts exactly one
//!   expected [`PeerId`].
//! - [`ClientVerifier`] (a server's view of its clients) requires a client
//!   certificate and accepts the IDs its [`PeerPolicy`] knows (the allowlist).
//!
//! Both take the Ed25519 key out of the end-entity certificate, compute its ID,
//! and check the TLS 1.3 handshake signature against that same key, so the peer
//! proves it holds the key the ID names. Only TLS 1.3 and Ed25519 are offered.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use synctree_manager::Access;

use crate::cert::peer_of;
use crate::id::PeerId;

/// Who may connect to a serving node, and with what access.
pub trait PeerPolicy: Send + Sync + fmt::Debug + 'static {
    /// The access of `peer`, or `None` when it is not allowed at all.
    fn access(&self, peer: &PeerId) -> Option<Access>;
}

/// An in-memory allowlist; peers can be added and removed while serving, and a
/// removed peer is refused from its next handshake on.
#[derive(Debug, Default)]
pub struct AllowList {
    peers: RwLock<HashMap<PeerId, Access>>,
}

impl AllowList {
    /// An allowlist of `peers`, each with full access.
    pub fn of(peers: impl IntoIterator<Item = PeerId>) -> Arc<Self> {
        let list = AllowList::default();
        for peer in peers {
            list.allow(peer, Access::all());
        }
        Arc::new(list)
    }

    /// Allows `peer` with `access` (replacing what it had).
    pub fn allow(&self, peer: PeerId, access: Access) {
        let mut peers = self.peers.write().unwrap_or_else(PoisonError::into_inner);
        peers.insert(peer, access);
    }

    /// Removes `peer`; sessions already running finish.
    pub fn remove(&self, peer: &PeerId) {
        let mut peers = self.peers.write().unwrap_or_else(PoisonError::into_inner);
        peers.remove(peer);
    }
}

impl PeerPolicy for AllowList {
    fn access(&self, peer: &PeerId) -> Option<Access> {
        let peers = self.peers.read().unwrap_or_else(PoisonError::into_inner);
        peers.get(peer).cloned()
    }
}

/// The only signature scheme offered and accepted.
const SCHEMES: [SignatureScheme; 1] = [SignatureScheme::ED25519];

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Checks a TLS 1.3 signature against the Ed25519 key in `cert`.
fn check_signature(
    algorithms: &WebPkiSupportedAlgorithms,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let (_, spki) = peer_of(cert)?;
    let spki = SubjectPublicKeyInfoDer::from(spki.as_slice());
    verify_tls13_signature_with_raw_key(message, &spki, dss, algorithms)
}

fn tls12_refused() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls12NotOffered,
    ))
}

/// A client's verifier: the server must present the key of `expected`.
#[derive(Debug)]
pub struct ServerVerifier {
    expected: PeerId,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerVerifier {
    /// Accepts only a server whose key has the ID `expected`.
    pub fn new(expected: PeerId) -> Self {
        ServerVerifier {
            expected,
            algorithms: algorithms(),
        }
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (id, _) = peer_of(end_entity)?;
        if id != self.expected {
            tracing::debug!(expected = %self.expected, presented = %id, "server is not the expected node");
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.algorithms, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// A server's verifier: a client certificate is required, and its ID must be
/// known to the policy.
#[derive(Debug)]
pub struct ClientVerifier {
    policy: Arc<dyn PeerPolicy>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    /// Accepts the clients `policy` grants any access.
    pub fn new(policy: Arc<dyn PeerPolicy>) -> Self {
        ClientVerifier {
            policy,
            algorithms: algorithms(),
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let (id, _) = peer_of(end_entity)?;
        if self.policy.access(&id).is_none() {
            tracing::info!(peer = %id, "refused a node not in the allowlist");
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.algorithms, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::self_signed;
    use crate::key::NodeKey;

    #[test]
    fn the_server_verifier_accepts_only_the_expected_id() {
        let (good, bad) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
        let verifier = ServerVerifier::new(good.id());
        let name = ServerName::try_from("synctree").unwrap();
        let check = |key: &NodeKey| {
            let (cert, _) = self_signed(key).unwrap();
            verifier.verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
        };
        assert!(check(&good).is_ok());
        assert!(check(&bad).is_err());
    }

    #[test]
    fn the_client_verifier_follows_the_allowlist_as_it_changes() {
        let key = NodeKey::generate().unwrap();
        let (cert, _) = self_signed(&key).unwrap();
        let list = AllowList::of([key.id()]);
        let verifier = ClientVerifier::new(Arc::clone(&list) as Arc<dyn PeerPolicy>);
        assert!(
            verifier
                .verify_client_cert(&cert, &[], UnixTime::now())
                .is_ok()
        );
        list.remove(&key.id());
        assert!(
            verifier
                .verify_client_cert(&cert, &[], UnixTime::now())
                .is_err()
        );
        assert!(verifier.client_auth_mandatory());
    }
}
