//! Deterministic data: the same seed gives byte-identical entries on any node.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use synctree_primitives::{Entry, NodeId, Version};

/// `count` entries derived from `seed`: keys `"{prefix}{i:010}"`, values of
/// `value_len` pseudo-random bytes, all written by `node` at clock `hlc`.
pub fn generate(
    seed: u64,
    prefix: &str,
    range: std::ops::Range<u64>,
    value_len: usize,
    version: Version,
) -> impl Iterator<Item = Entry> + '_ {
    range.map(move |i| {
        let key = format!("{prefix}{i:010}");
        Entry::put(key, value_bytes(seed, i, value_len), version)
    })
}

/// `len` bytes derived from `(seed, index)` by SHA-256 in counter mode.
pub fn value_bytes(seed: u64, index: u64, len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len);
    let mut block = 0u32;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed.to_be_bytes());
        h.update(index.to_be_bytes());
        h.update(block.to_be_bytes());
        let digest = h.finalize();
        let take = (len - out.len()).min(digest.len());
        out.extend_from_slice(&digest[..take]);
        block += 1;
    }
    Bytes::from(out)
}

/// The version generated data is written with.
pub fn generated_version(hlc: u64, node: u64) -> Version {
    Version::new(hlc, NodeId(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_entries_different_seed_different_values() {
        let v = generated_version(1, 1);
        let a: Vec<_> = generate(7, "k", 0..5, 100, v).collect();
        let b: Vec<_> = generate(7, "k", 0..5, 100, v).collect();
        let c: Vec<_> = generate(8, "k", 0..5, 100, v).collect();
        assert_eq!(a, b);
        assert_ne!(a[0].value, c[0].value);
        assert_eq!(a[0].key, c[0].key);
        assert!(a.iter().all(|e| e.value.len() == 100));
    }
}
