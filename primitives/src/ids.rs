//! Identifiers: hashes, contexts and nodes.

use std::fmt;

use crate::limits::MAX_CONTEXT_ID_BYTES;

/// An id that does not parse or validate. It sits below the crate's other
/// errors: `?` converts it into the protocol error with the same message and
/// abort code (see `error.rs`).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// A fixed-size field had the wrong length.
    #[error("field `{field}` has {got} bytes, expected {expected}")]
    BadLength {
        /// Field name.
        field: &'static str,
        /// Required length.
        expected: usize,
        /// Received length.
        got: usize,
    },
    /// A context name was empty, too long or not printable.
    #[error("invalid context id ({len} bytes)")]
    InvalidContext {
        /// Length of the rejected name.
        len: usize,
    },
}

/// A 32-byte SHA-256 digest (entry digests, node hashes, key hashes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; Hash::LEN]);

impl Hash {
    /// The next hash in byte order, or `None` after [`Hash::MAX`].
    pub fn successor(&self) -> Option<Hash> {
        let mut out = *self;
        for byte in out.0.iter_mut().rev() {
            let (next, overflow) = byte.overflowing_add(1);
            *byte = next;
            if !overflow {
                return Some(out);
            }
        }
        None
    }

    /// Bytes in a hash: SHA-256's output size.
    pub const LEN: usize = 32;

    /// The hash of an empty subtree.
    pub const ZERO: Hash = Hash([0; Hash::LEN]);

    /// The largest hash: the inclusive upper end of a whole-keyspace range.
    pub const MAX: Hash = Hash([0xff; Hash::LEN]);

    /// True for the empty-subtree hash.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; Hash::LEN]
    }

    /// Parses exactly [`Hash::LEN`] bytes received from a peer.
    pub fn from_wire(bytes: &[u8], field: &'static str) -> Result<Self, IdError> {
        let array: [u8; Hash::LEN] = bytes.try_into().map_err(|_| IdError::BadLength {
            field,
            expected: Hash::LEN,
            got: bytes.len(),
        })?;
        Ok(Hash(array))
    }

    /// Lower-case hex, for logs and JSON output.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; Hash::LEN];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The name of a context (a namespace of entries): 1 to
/// [`MAX_CONTEXT_ID_BYTES`] bytes of UTF-8 without control characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContextId(String);

impl ContextId {
    /// Validates a context name.
    pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= MAX_CONTEXT_ID_BYTES
            && !name.chars().any(char::is_control);
        if valid {
            Ok(ContextId(name))
        } else {
            Err(IdError::InvalidContext { len: name.len() })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContextId({:?})", self.0)
    }
}

impl fmt::Display for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a node (a writer): the tie-breaker of versions with equal clocks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Who is running a session: passed to every protocol for logs and error context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// This node's id.
    pub node_id: NodeId,
}

impl Identity {
    /// An identity for `node_id`.
    pub fn new(node_id: NodeId) -> Self {
        Identity { node_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_ids_are_validated() {
        assert!(ContextId::new("users").is_ok());
        assert!(ContextId::new("").is_err());
        assert!(ContextId::new("a\nb").is_err());
        assert!(ContextId::new("x".repeat(MAX_CONTEXT_ID_BYTES)).is_ok());
        assert!(ContextId::new("x".repeat(MAX_CONTEXT_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn hash_hex_round_trips_and_rejects_bad_lengths() {
        let h = Hash([0xab; Hash::LEN]);
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex("abcd"), None);
        assert!(Hash::from_wire(&[1; Hash::LEN - 1], "root").is_err());
        assert!(Hash::ZERO.is_zero() && !h.is_zero());
    }
}
