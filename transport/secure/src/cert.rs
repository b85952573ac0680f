//! The certificate profile: a self-signed X.509 certificate for the node key, and
//! the one thing a verifier reads back out of a peer's certificate, its Ed25519
//! public key.
//!
//! Nothing else in the certificate is trusted or checked (no CA, no names, no
//! validity dates): the TLS 1.3 `CertificateVerify` signature is checked against
//! the very key the [`PeerId`] is computed from, which proves the peer holds it.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::SecureError;
use crate::id::PeerId;
use crate::key::{NodeKey, PUBLIC_KEY_BYTES};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE {
/// SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) }, then the 32 key
/// bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The subject alternative name every certificate carries; never checked
/// (rustls needs a server name to connect).
pub const CERT_NAME: &str = "synctree";

/// A self-signed certificate for `key` (subject CN = its node ID), and the
/// private key in the form rustls takes.
pub fn self_signed(
    key: &NodeKey,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), SecureError> {
    let pkcs8 = PrivatePkcs8KeyDer::from(key.pkcs8().to_vec());
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
        .map_err(SecureError::Certificate)?;
    let mut params = rcgen::CertificateParams::new(vec![CERT_NAME.to_owned()])
        .map_err(SecureError::Certificate)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, key.id().to_string());
    let cert = params
        .self_signed(&signer)
        .map_err(SecureError::Certificate)?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(pkcs8)))
}

/// The Ed25519 SubjectPublicKeyInfo of `cert` (44 bytes), and the ID of its key.
/// Fails (`BadEncoding`) for anything but an X.509 certificate with an
/// Ed25519 key.
pub fn peer_of(cert: &CertificateDer<'_>) -> Result<(PeerId, Vec<u8>), rustls::Error> {
    let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding);
    let spki = spki_of(cert.as_ref()).ok_or_else(bad)?;
    let key = spki
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .filter(|k| k.len() == PUBLIC_KEY_BYTES)
        .ok_or_else(bad)?;
    Ok((PeerId::from_public_key(key), spki.to_vec()))
}

/// One DER element: its tag, the whole element, and its contents.
type Element<'a> = (u8, &'a [u8], &'a [u8]);

/// The first DER element of `der`, and what follows it.
fn element(der: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    let header = der.len() - rest.len();
    let total = header.checked_add(len)?;
    if total > der.len() {
        return None;
    }
    Some(((tag, &der[..total], &der[header..total]), &der[total..]))
}

/// The SubjectPublicKeyInfo element of an X.509 certificate (RFC 5280, 4.1):
/// Certificate → tbsCertificate → [version] serial signature issuer validity
/// subject **subjectPublicKeyInfo**.
fn spki_of(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let ((tag, _, certificate), _) = element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let ((tag, _, mut tbs), _) = element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut skipped = 0;
    loop {
        let ((tag, whole, _), rest) = element(tbs)?;
        tbs = rest;
        if tag == VERSION {
            continue;
        }
        // serial, signature, issuer, validity, subject
        if skipped == 5 {
            return (tag == SEQUENCE).then_some(whole);
        }
        skipped += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_yields_back_the_key_and_its_id() {
        let key = NodeKey::generate().unwrap();
        let (cert, _) = self_signed(&key).unwrap();
        let (id, spki) = peer_of(&cert).unwrap();
        assert_eq!(id, key.id());
        assert_eq!(&spki[ED25519_SPKI_PREFIX.len()..], key.public_key());
    }

    #[test]
    fn garbage_and_truncated_certificates_are_refused() {
        let key = NodeKey::generate().unwrap();
        let (cert, _) = self_signed(&key).unwrap();
        for len in 0..cert.len() {
            let cut = CertificateDer::from(cert[..len].to_vec());
            assert!(peer_of(&cut).is_err(), "{len}");
        }
        assert!(
            peer_of(&CertificateDer::from(vec![
                0x30, 0x84, 0xff, 0xff, 0xff, 0xff
            ]))
            .is_err()
        );
    }
}
