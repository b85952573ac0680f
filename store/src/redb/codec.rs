//! Byte layouts of every key and value [`super::RedbStore`] keeps (see
//! `schema.rs` for the tables). Everything is big-endian, so composite keys
//! sort the way their parts do: `(context id, key hash)` byte order is context
//! order first, then key-hash order.
//!
//! Decoding trusts nothing: every length is checked before it is used, and a
//! record that does not decode is reported as [`Malformed`], which callers turn
//! into [`StoreError::Corrupt`] with the context it was read for.

use std::fmt;

use bytes::Bytes;
use synctree_primitives::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use synctree_primitives::{ContextId, Entry, Hash, NodeId, NodePos, StoreError, Version};

/// A context's numeric id: entry and node keys carry it instead of the name.
pub(super) type ContextNum = u64;

/// Bytes of a big-endian `u64` field: entry counts, clocks, node ids.
const U64_LEN: usize = size_of::<u64>();
/// Bytes of a big-endian `u32` field: node positions, key lengths, the format version.
const U32_LEN: usize = size_of::<u32>();
/// Bytes of the context number that leads every entry and node key.
const CONTEXT_NUM_LEN: usize = size_of::<ContextNum>();
/// Bytes of an entry value's flags: one, for [`TOMBSTONE`].
const FLAGS_LEN: usize = size_of::<u8>();

/// Length of an entry key: context id, key hash.
pub(super) const ENTRY_KEY_LEN: usize = CONTEXT_NUM_LEN + Hash::LEN;
/// Length of a node key: context id, node position.
pub(super) const NODE_KEY_LEN: usize = CONTEXT_NUM_LEN + U32_LEN;

/// Where a context's entry count starts in its metadata, after its id.
const META_COUNT_AT: usize = CONTEXT_NUM_LEN;
/// Where a context's root starts in its metadata, after its entry count.
const META_ROOT_AT: usize = META_COUNT_AT + U64_LEN;
/// Length of a context's metadata: id, entry count, root.
const META_LEN: usize = META_ROOT_AT + Hash::LEN;

/// Where an entry value's clock starts, after its digest.
const HLC_AT: usize = Hash::LEN;
/// Where an entry value's node id starts, after its clock.
const NODE_AT: usize = HLC_AT + U64_LEN;
/// Where an entry value's flags are, after its node id.
const FLAGS_AT: usize = NODE_AT + U64_LEN;
/// Where an entry value's key length starts, after its flags.
const KEY_LEN_AT: usize = FLAGS_AT + FLAGS_LEN;
/// Fixed part of an entry value: digest, clock, node, flags, key length.
const ENTRY_HEADER_LEN: usize = KEY_LEN_AT + U32_LEN;
/// Flag bit of tombstones; every other bit must be clear.
const TOMBSTONE: u8 = 0x01;

/// A stored record that does not decode. Always corruption: this crate wrote
/// every record it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Malformed {
    /// What was being decoded.
    pub(super) record: &'static str,
    /// Why it does not decode.
    pub(super) reason: String,
}

impl Malformed {
    /// A record that does not decode, and why.
    pub(super) fn new(record: &'static str, reason: impl Into<String>) -> Self {
        Malformed {
            record,
            reason: reason.into(),
        }
    }

    /// Checks that `bytes` is exactly `want` long.
    pub(super) fn check_len(record: &'static str, bytes: &[u8], want: usize) -> Result<(), Self> {
        if bytes.len() == want {
            return Ok(());
        }
        Err(Malformed::new(
            record,
            format!("{} bytes, expected {want}", bytes.len()),
        ))
    }

    /// The store error for this record, read on behalf of `context`.
    pub(super) fn in_context(self, context: &ContextId) -> StoreError {
        StoreError::Corrupt(format!("{self} (context `{context}`)"))
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored {} does not decode: {}", self.record, self.reason)
    }
}

impl From<Malformed> for StoreError {
    fn from(m: Malformed) -> Self {
        StoreError::Corrupt(m.to_string())
    }
}

/// What the store keeps about one context besides its entries and nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ContextMeta {
    /// The numeric id in entry and node keys.
    pub(super) num: ContextNum,
    /// Entries, tombstones included.
    pub(super) entry_count: u64,
    /// The Merkle root (the node table does not hold position 0).
    pub(super) root: Hash,
}

impl ContextMeta {
    /// A context with no entry yet.
    pub(super) fn empty(num: ContextNum) -> Self {
        ContextMeta {
            num,
            entry_count: 0,
            root: Hash::ZERO,
        }
    }

    /// `num ‖ entry_count ‖ root`.
    pub(super) fn encode(&self) -> [u8; META_LEN] {
        let mut out = [0u8; META_LEN];
        out[..META_COUNT_AT].copy_from_slice(&self.num.to_be_bytes());
        out[META_COUNT_AT..META_ROOT_AT].copy_from_slice(&self.entry_count.to_be_bytes());
        out[META_ROOT_AT..].copy_from_slice(&self.root.0);
        out
    }

    /// Decodes [`ContextMeta::encode`].
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        Malformed::check_len("context metadata", bytes, META_LEN)?;
        Ok(ContextMeta {
            num: be_u64(bytes),
            entry_count: be_u64(&bytes[META_COUNT_AT..]),
            root: hash_at(bytes, META_ROOT_AT),
        })
    }
}

/// The key of a context's metadata: its name.
pub(super) fn context_key(context: &ContextId) -> &[u8] {
    context.as_str().as_bytes()
}

/// Decodes a context name read back from the context table.
pub(super) fn decode_context_name(bytes: &[u8]) -> Result<ContextId, Malformed> {
    let name = std::str::from_utf8(bytes)
        .map_err(|e| Malformed::new("context name", format!("not UTF-8 ({e})")))?;
    ContextId::new(name).map_err(|e| Malformed::new("context name", e.to_string()))
}

/// `context ‖ key_hash`: entries of one context are contiguous, in key-hash order.
pub(super) fn entry_key(context: ContextNum, key_hash: &Hash) -> [u8; ENTRY_KEY_LEN] {
    let mut out = [0u8; ENTRY_KEY_LEN];
    out[..CONTEXT_NUM_LEN].copy_from_slice(&context.to_be_bytes());
    out[CONTEXT_NUM_LEN..].copy_from_slice(&key_hash.0);
    out
}

/// The key hash of an entry key read from a scan of context `context`.
pub(super) fn decode_entry_key(context: ContextNum, bytes: &[u8]) -> Result<Hash, Malformed> {
    Malformed::check_len("entry key", bytes, ENTRY_KEY_LEN)?;
    if be_u64(bytes) != context {
        return Err(Malformed::new("entry key", "scan left its context"));
    }
    Ok(hash_at(bytes, CONTEXT_NUM_LEN))
}

/// `context ‖ position`: the 16 children of a node are 16 consecutive keys.
pub(super) fn node_key(context: ContextNum, pos: NodePos) -> [u8; NODE_KEY_LEN] {
    let mut out = [0u8; NODE_KEY_LEN];
    out[..CONTEXT_NUM_LEN].copy_from_slice(&context.to_be_bytes());
    out[CONTEXT_NUM_LEN..].copy_from_slice(&pos.raw().to_be_bytes());
    out
}

/// The position of a node key read from a scan of context `context`.
pub(super) fn decode_node_key(context: ContextNum, bytes: &[u8]) -> Result<NodePos, Malformed> {
    Malformed::check_len("node key", bytes, NODE_KEY_LEN)?;
    if be_u64(bytes) != context {
        return Err(Malformed::new("node key", "scan left its context"));
    }
    let raw = be_u32(&bytes[CONTEXT_NUM_LEN..]);
    NodePos::from_wire(raw)
        .ok_or_else(|| Malformed::new("node key", format!("position {raw} is outside the trie")))
}

/// Decodes a node hash.
pub(super) fn decode_node(bytes: &[u8]) -> Result<Hash, Malformed> {
    Malformed::check_len("node hash", bytes, Hash::LEN)?;
    Ok(hash_at(bytes, 0))
}

/// `digest ‖ hlc ‖ node ‖ flags ‖ key length (u32) ‖ key ‖ value`. The digest
/// leads, so re-hashing a bucket reads [`Hash::LEN`] bytes of each value and decodes
/// nothing else. Fails only for a key too long for its length field, which
/// [`Entry::validate`] rules out long before.
pub(super) fn encode_entry(digest: &Hash, entry: &Entry) -> Result<Vec<u8>, Malformed> {
    let key_len = u32::try_from(entry.key.len())
        .map_err(|_| Malformed::new("entry", "key longer than 4 GiB"))?;
    let mut out = Vec::with_capacity(ENTRY_HEADER_LEN + entry.key.len() + entry.value.len());
    out.extend_from_slice(&digest.0);
    out.extend_from_slice(&entry.version.hlc.to_be_bytes());
    out.extend_from_slice(&entry.version.node.0.to_be_bytes());
    out.push(if entry.tombstone { TOMBSTONE } else { 0 });
    out.extend_from_slice(&key_len.to_be_bytes());
    out.extend_from_slice(&entry.key);
    out.extend_from_slice(&entry.value);
    Ok(out)
}

/// The digest of an encoded entry, without decoding the rest.
pub(super) fn entry_digest(bytes: &[u8]) -> Result<Hash, Malformed> {
    if bytes.len() < ENTRY_HEADER_LEN {
        return Err(Malformed::new(
            "entry",
            format!("{} bytes, shorter than its header", bytes.len()),
        ));
    }
    Ok(hash_at(bytes, 0))
}

/// Decodes [`encode_entry`]: the digest and the entry. Checks every length, the
/// flags, and the limits [`Entry::validate`] enforced when it was written. The
/// key and value share one allocation.
pub(super) fn decode_entry(bytes: &[u8]) -> Result<(Hash, Entry), Malformed> {
    let digest = entry_digest(bytes)?;
    let hlc = be_u64(&bytes[HLC_AT..]);
    let node = be_u64(&bytes[NODE_AT..]);
    let flags = bytes[FLAGS_AT];
    let key_len = be_u32(&bytes[KEY_LEN_AT..]) as usize;
    let body = &bytes[ENTRY_HEADER_LEN..];
    if flags & !TOMBSTONE != 0 {
        return Err(Malformed::new(
            "entry",
            format!("unknown flags {flags:#04x}"),
        ));
    }
    if key_len > MAX_KEY_BYTES || key_len > body.len() {
        let reason = format!("key length {key_len} with {} bytes left", body.len());
        return Err(Malformed::new("entry", reason));
    }
    let value_len = body.len() - key_len;
    let tombstone = flags & TOMBSTONE != 0;
    if value_len > MAX_VALUE_BYTES || (tombstone && value_len > 0) {
        let reason = format!("value of {value_len} bytes (tombstone: {tombstone})");
        return Err(Malformed::new("entry", reason));
    }
    let body = Bytes::copy_from_slice(body);
    let entry = Entry {
        key: body.slice(..key_len),
        value: body.slice(key_len..),
        version: Version::new(hlc, NodeId(node)),
        tombstone,
    };
    Ok((digest, entry))
}

/// A big-endian `u32` value (the format version).
pub(super) fn decode_u32(record: &'static str, bytes: &[u8]) -> Result<u32, Malformed> {
    Malformed::check_len(record, bytes, U32_LEN)?;
    Ok(be_u32(bytes))
}

/// A big-endian `u64` value (the next context id).
pub(super) fn decode_u64(record: &'static str, bytes: &[u8]) -> Result<u64, Malformed> {
    Malformed::check_len(record, bytes, U64_LEN)?;
    Ok(be_u64(bytes))
}

/// The first [`U64_LEN`] bytes of `bytes` as a big-endian `u64`; callers
/// checked the length.
fn be_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; U64_LEN];
    word.copy_from_slice(&bytes[..U64_LEN]);
    u64::from_be_bytes(word)
}

/// The first [`U32_LEN`] bytes of `bytes` as a big-endian `u32`; callers
/// checked the length.
fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; U32_LEN];
    word.copy_from_slice(&bytes[..U32_LEN]);
    u32::from_be_bytes(word)
}

/// The [`Hash::LEN`] bytes at `at`; callers checked the length.
fn hash_at(bytes: &[u8], at: usize) -> Hash {
    let mut out = [0u8; Hash::LEN];
    out.copy_from_slice(&bytes[at..at + Hash::LEN]);
    Hash(out)
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests fail by panicking.
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry::put("key", "value", Version::new(7, NodeId(9)))
    }

    #[test]
    fn entries_round_trip() {
        for entry in [
            sample(),
            Entry::delete("gone", Version::new(u64::MAX, NodeId(u64::MAX))),
            Entry::put("", "", Version::default()),
            Entry::put(
                vec![0xffu8; MAX_KEY_BYTES],
                vec![1u8; 1000],
                Version::default(),
            ),
        ] {
            let bytes = encode_entry(&entry.digest(), &entry).expect("encode");
            assert_eq!(entry_digest(&bytes), Ok(entry.digest()));
            assert_eq!(decode_entry(&bytes), Ok((entry.digest(), entry)));
        }
    }

    #[test]
    fn every_truncation_of_an_entry_is_rejected_or_shorter() {
        let entry = sample();
        let bytes = encode_entry(&entry.digest(), &entry).expect("encode");
        for len in 0..bytes.len() {
            // A cut inside the value still decodes (the value is the rest), but
            // never to the same entry; a cut anywhere else is an error.
            match decode_entry(&bytes[..len]) {
                Ok((_, decoded)) => {
                    assert!(len >= ENTRY_HEADER_LEN + entry.key.len(), "len {len}");
                    assert_ne!(decoded, entry, "len {len}");
                }
                Err(m) => assert_eq!(m.record, "entry"),
            }
        }
    }

    #[test]
    fn bad_entry_fields_are_rejected() {
        let entry = sample();
        let good = encode_entry(&entry.digest(), &entry).expect("encode");
        let with = |at: usize, byte: u8| {
            let mut bytes = good.clone();
            bytes[at] = byte;
            decode_entry(&bytes)
        };
        assert!(with(48, 0x02).is_err(), "unknown flag");
        assert!(with(48, TOMBSTONE).is_err(), "tombstone with a value");
        assert!(with(49, 0xff).is_err(), "key length past the end");
        let huge_key = (MAX_KEY_BYTES as u32 + 1).to_be_bytes();
        let mut bytes = good.clone();
        bytes[49..53].copy_from_slice(&huge_key);
        bytes.resize(ENTRY_HEADER_LEN + MAX_KEY_BYTES + 1, 0);
        assert!(decode_entry(&bytes).is_err(), "key over the limit");
    }

    #[test]
    fn metadata_round_trips_and_checks_its_length() {
        let meta = ContextMeta {
            num: 3,
            entry_count: 1 << 40,
            root: Hash([7; Hash::LEN]),
        };
        assert_eq!(ContextMeta::decode(&meta.encode()), Ok(meta));
        assert!(ContextMeta::decode(&meta.encode()[..47]).is_err());
        assert!(ContextMeta::decode(&[0u8; 49]).is_err());
        assert_eq!(
            ContextMeta::decode(&ContextMeta::empty(5).encode()).map(|m| m.num),
            Ok(5)
        );
    }

    #[test]
    fn keys_round_trip_and_sort_by_context_then_hash() {
        let (low, high) = (Hash([0x00; 32]), Hash::MAX);
        assert!(entry_key(1, &high) < entry_key(2, &low), "context first");
        assert!(entry_key(256, &low) > entry_key(255, &high), "big-endian");
        assert_eq!(decode_entry_key(4, &entry_key(4, &high)), Ok(high));
        assert!(decode_entry_key(5, &entry_key(4, &high)).is_err());
        assert!(decode_entry_key(4, &[0; 39]).is_err());

        let pos = NodePos::new(3, 100);
        assert_eq!(decode_node_key(4, &node_key(4, pos)), Ok(pos));
        let mut outside = node_key(4, pos);
        outside[8..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(
            decode_node_key(4, &outside).is_err(),
            "position outside the trie"
        );
        assert!(node_key(4, pos.child(0)) < node_key(4, pos.child(15)));
        assert!(decode_node(&[1; Hash::LEN - 1]).is_err());
    }

    #[test]
    fn context_names_are_validated() {
        let ctx = ContextId::new("users").expect("valid");
        assert_eq!(decode_context_name(context_key(&ctx)), Ok(ctx));
        assert!(decode_context_name(&[0xff, 0xfe]).is_err(), "not UTF-8");
        assert!(decode_context_name(b"").is_err(), "empty");
        assert!(decode_context_name(b"a\nb").is_err(), "control character");
    }

    #[test]
    fn malformed_records_become_corrupt_errors_naming_the_context() {
        let ctx = ContextId::new("users").expect("valid");
        let err = decode_node(&[]).expect_err("short").in_context(&ctx);
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("node hash") && m.contains("users")),
            "{err}"
        );
    }
}
