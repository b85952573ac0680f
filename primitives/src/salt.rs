//! Salted truncation of node hashes: the per-session [`SessionKey`] both sides of a
//! handshake contribute to, and the keyed 8-byte form in which `NodeChildren` and
//! the handshake's top fingerprint carry a child hash (docs/PROTOCOL.md, "Salted
//! node-hash truncation").
//!
//! A plain 8-byte prefix lets someone who can choose entries on both replicas
//! build two different subtrees that compare equal with about 2^32 hash
//! evaluations, and that pair would collide in every later session. Keyed by a
//! key neither side can choose alone, a collision found for one session is worth
//! nothing in the next, and no collision can be precomputed.
//!
//! ```text
//! key       = SHA-256( KEY_TAG  || initiator nonce (16) || responder nonce (16) )
//! truncated = SHA-256( HASH_TAG || key (32)             || full hash (32) )[..8]
//! ```
//!
//! `HASH_TAG || key` is exactly one SHA-256 block, so the key's state is absorbed
//! once per session and each truncation costs one compression.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ProtocolError;
use crate::ids::Hash;
use crate::limits::{NODE_HASH_BYTES, SESSION_NONCE_BYTES};

/// Domain tag of the key derivation.
pub const KEY_TAG: &[u8] = b"synctree v1 node-hash session key";

/// Domain tag of a salted truncation: 32 bytes, so that tag and key fill one block.
pub const HASH_TAG: &[u8; 32] = b"synctree v1 node-hash truncation";

/// A node hash as the tree messages carry it: [`NODE_HASH_BYTES`] bytes, all zero
/// exactly for an empty subtree.
pub type ShortHash = [u8; NODE_HASH_BYTES];

/// One side's random contribution to a session's key, sent in its `Handshake`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SessionNonce(pub [u8; SESSION_NONCE_BYTES]);

impl SessionNonce {
    /// The nonce a side without a handshake contributes: sixteen zero bytes.
    pub const NONE: SessionNonce = SessionNonce([0; SESSION_NONCE_BYTES]);

    /// A nonce received from a peer: exactly [`SESSION_NONCE_BYTES`] bytes, else
    /// [`ProtocolError::BadLength`] (a handshake without one is refused).
    pub fn from_wire(bytes: &[u8], field: &'static str) -> Result<Self, ProtocolError> {
        let array = bytes.try_into().map_err(|_| ProtocolError::BadLength {
            field,
            expected: SESSION_NONCE_BYTES,
            got: bytes.len(),
        })?;
        Ok(SessionNonce(array))
    }
}

/// How a [`SessionKey`] truncates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Keyed,
    Colliding,
}

/// The key of one session's truncated node hashes. The machines take it as an
/// input (they stay deterministic); the manager derives it from the handshake's
/// nonces, which come from a CSPRNG at the edge.
#[derive(Clone)]
pub struct SessionKey {
    key: [u8; 32],
    /// SHA-256 state after `HASH_TAG || key`.
    prefix: Sha256,
    mode: Mode,
}

impl SessionKey {
    /// The key of a session whose handshake carried these nonces.
    pub fn derive(initiator: &SessionNonce, responder: &SessionNonce) -> Self {
        let mut h = Sha256::new();
        h.update(KEY_TAG);
        h.update(initiator.0);
        h.update(responder.0);
        SessionKey::from_bytes(h.finalize().into())
    }

    /// The key of a tree session opened without a handshake on its stream: both
    /// nonces [`SessionNonce::NONE`], so a fixed, public key (no better than a
    /// plain prefix against someone who precomputes; see docs/PROTOCOL.md).
    pub fn without_handshake() -> Self {
        SessionKey::derive(&SessionNonce::NONE, &SessionNonce::NONE)
    }

    /// A key given as bytes (tests and vectors).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let mut prefix = Sha256::new();
        prefix.update(HASH_TAG);
        prefix.update(key);
        SessionKey {
            key,
            prefix,
            mode: Mode::Keyed,
        }
    }

    /// **Tests only**: a key under which every non-empty hash truncates to the same
    /// bytes, to force a collision of different subtrees end to end. Both sides
    /// must use it; nothing a peer sends can select it.
    #[doc(hidden)]
    pub fn dangerous_colliding() -> Self {
        SessionKey {
            mode: Mode::Colliding,
            ..SessionKey::without_handshake()
        }
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// `hash` as the tree messages carry it: all zero for the empty subtree, else
    /// the first [`NODE_HASH_BYTES`] of `SHA-256(HASH_TAG || key || hash)`, with an
    /// all-zero result (probability 2^-64) replaced by `00..01` so that only the
    /// empty subtree truncates to zero.
    pub fn truncate(&self, hash: &Hash) -> ShortHash {
        let mut out = [0; NODE_HASH_BYTES];
        if hash.is_zero() {
            return out;
        }
        if self.mode == Mode::Colliding {
            return [0xc0; NODE_HASH_BYTES];
        }
        let digest = self.prefix.clone().chain_update(hash.0).finalize();
        out.copy_from_slice(&digest[..NODE_HASH_BYTES]);
        if out == [0; NODE_HASH_BYTES] {
            out[NODE_HASH_BYTES - 1] = 1;
        }
        out
    }
}

impl Default for SessionKey {
    /// [`SessionKey::without_handshake`].
    fn default() -> Self {
        SessionKey::without_handshake()
    }
}

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.mode == other.mode
    }
}

impl Eq for SessionKey {}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKey")
            .field("key", &Hash(self.key).to_hex())
            .field("mode", &self.mode)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tags_fill_exactly_one_block_with_the_key() {
        assert_eq!(HASH_TAG.len() + 32, 64);
    }

    #[test]
    fn truncation_is_the_prefix_of_the_keyed_hash() {
        let key = SessionKey::derive(&SessionNonce([1; 16]), &SessionNonce([2; 16]));
        let hash = Hash([7; 32]);
        let mut h = Sha256::new();
        h.update(HASH_TAG);
        h.update(key.as_bytes());
        h.update(hash.0);
        let full: [u8; 32] = h.finalize().into();
        assert_eq!(key.truncate(&hash), full[..NODE_HASH_BYTES]);
        assert_eq!(key.truncate(&Hash::ZERO), [0; NODE_HASH_BYTES]);
    }

    /// docs/PROTOCOL.md, "Salted node-hash truncation": the test vector.
    #[test]
    fn the_documented_vector() {
        let initiator = SessionNonce(std::array::from_fn(|i| i as u8));
        let responder = SessionNonce(std::array::from_fn(|i| 16 + i as u8));
        let key = SessionKey::derive(&initiator, &responder);
        let key_hex = "0362d979610b7897a051643b2697f9bcf9a648cc5d7976b847beb236a528baab";
        assert_eq!(Hash(*key.as_bytes()).to_hex(), key_hex);
        let leaf =
            Hash::from_hex("9a21d41d887916153c50a66d8bb372f8c56aac6729e5bb4e5733010f95e01b4c");
        let leaf = leaf.unwrap_or(Hash::ZERO);
        assert_eq!(hex::encode(key.truncate(&leaf)), "5562f3711502b764");
        let fixed = "45572e01c50e7b7b42915ab3edf48fadb312458f7826746d481081dd50ea35fd";
        assert_eq!(
            Hash(*SessionKey::without_handshake().as_bytes()).to_hex(),
            fixed
        );
    }

    #[test]
    fn both_nonces_change_the_key() {
        let (a, b) = (SessionNonce([1; 16]), SessionNonce([2; 16]));
        let key = SessionKey::derive(&a, &b);
        assert_ne!(key, SessionKey::derive(&b, &a));
        assert_ne!(key, SessionKey::derive(&a, &a));
        assert_ne!(key, SessionKey::without_handshake());
    }

    #[test]
    fn nonces_must_have_their_exact_length() {
        assert_eq!(
            SessionNonce::from_wire(&[3; 16], "nonce"),
            Ok(SessionNonce([3; 16]))
        );
        for len in [0, 15, 17, 32] {
            assert!(matches!(
                SessionNonce::from_wire(&vec![3; len], "nonce"),
                Err(ProtocolError::BadLength { expected: 16, .. })
            ));
        }
    }

    #[test]
    fn a_colliding_key_maps_every_nonempty_hash_alike() {
        let key = SessionKey::dangerous_colliding();
        assert_eq!(key.truncate(&Hash([1; 32])), key.truncate(&Hash([2; 32])));
        assert_eq!(key.truncate(&Hash::ZERO), [0; NODE_HASH_BYTES]);
        assert_ne!(key, SessionKey::without_handshake());
    }
}
