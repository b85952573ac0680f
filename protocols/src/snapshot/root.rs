//! [`RootBuilder`]: the Merkle root of entries arriving in increasing key-hash
//! order, in constant memory.
//!
//! Only the open path is kept: the digests of the open leaf bucket, and for each
//! internal level the open node's 16 child hashes. When the stream leaves a node
//! its hash is computed and handed to its parent, so the state is at most
//! `TREE_DEPTH × 16` hashes plus one bucket (about 2 KiB), small enough to persist
//! after every page ([`RootBuilder::encode`]).

use synctree_primitives::merkle::{FANOUT, TREE_DEPTH, internal_hash, leaf_hash, leaf_index};
use synctree_primitives::{Hash, ProtocolError};

/// Internal levels (0 = root) that have an open node.
const LEVELS: usize = TREE_DEPTH as usize;

/// One open internal node: its index in its level and its children so far.
type Open = Option<(u32, [Hash; FANOUT])>;

/// Computes a root from entries pushed in increasing key-hash order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RootBuilder {
    /// The open leaf bucket.
    bucket: Option<u32>,
    digests: Vec<Hash>,
    /// `open[l]`: the open node of internal level `l`.
    open: [Open; LEVELS],
}

impl RootBuilder {
    /// Adds the next entry; key hashes must increase from call to call.
    pub(crate) fn push(&mut self, key_hash: &Hash, digest: Hash) {
        let bucket = leaf_index(key_hash);
        if self.bucket != Some(bucket) {
            self.seal_bucket();
            self.bucket = Some(bucket);
        }
        self.digests.push(digest);
    }

    fn seal_bucket(&mut self) {
        if let Some(bucket) = self.bucket.take() {
            let hash = leaf_hash(self.digests.iter());
            self.digests.clear();
            self.set(LEVELS, bucket, hash);
        }
    }

    /// Sets the hash of node `index` of `level` (`LEVELS` = the leaves), sealing
    /// the open node of the level above when `index` lies past it.
    fn set(&mut self, level: usize, index: u32, hash: Hash) {
        let parent = index / FANOUT as u32;
        let slot = index as usize % FANOUT;
        let above = level - 1;
        if let Some((open, children)) = self.open[above]
            && open != parent
        {
            self.open[above] = None;
            if above > 0 {
                self.set(above, open, internal_hash(&children));
            }
        }
        let (_, children) = self.open[above].get_or_insert((parent, [Hash::ZERO; FANOUT]));
        children[slot] = hash;
    }

    /// The root of everything pushed so far.
    pub(crate) fn root(&self) -> Hash {
        let mut done = self.clone();
        done.seal_bucket();
        for level in (1..LEVELS).rev() {
            if let Some((index, children)) = done.open[level].take() {
                done.set(level, index, internal_hash(&children));
            }
        }
        done.open[0].map_or(Hash::ZERO, |(_, children)| internal_hash(&children))
    }

    /// Appends the state to `out`: the open bucket (flag, index, digest count,
    /// digests), then each level's open node (flag, index, 16 hashes).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_index(out, self.bucket);
        out.extend((self.digests.len() as u32).to_be_bytes());
        self.digests.iter().for_each(|d| out.extend(d.0));
        for open in &self.open {
            put_index(out, open.map(|(i, _)| i));
            if let Some((_, children)) = open {
                children.iter().for_each(|c| out.extend(c.0));
            }
        }
    }

    /// Reads what [`RootBuilder::encode`] wrote, with every length checked
    /// against what is left of `input`.
    pub(crate) fn decode(input: &mut &[u8]) -> Result<Self, ProtocolError> {
        let bucket = take_index(input)?;
        let count = u32::from_be_bytes(take(input)?) as usize;
        if count > input.len() / 32 {
            return Err(ProtocolError::Malformed("saved snapshot digests truncated"));
        }
        let digests = (0..count)
            .map(|_| take(input).map(Hash))
            .collect::<Result<_, _>>()?;
        let mut open: [Open; LEVELS] = Default::default();
        for slot in &mut open {
            if let Some(index) = take_index(input)? {
                let mut children = [Hash::ZERO; FANOUT];
                for child in &mut children {
                    *child = Hash(take(input)?);
                }
                *slot = Some((index, children));
            }
        }
        Ok(RootBuilder {
            bucket,
            digests,
            open,
        })
    }
}

fn put_index(out: &mut Vec<u8>, index: Option<u32>) {
    out.push(u8::from(index.is_some()));
    out.extend(index.unwrap_or(0).to_be_bytes());
}

fn take_index(input: &mut &[u8]) -> Result<Option<u32>, ProtocolError> {
    let [flag] = take::<1>(input)?;
    let index = u32::from_be_bytes(take(input)?);
    match flag {
        0 => Ok(None),
        1 => Ok(Some(index)),
        _ => Err(ProtocolError::Malformed("saved snapshot flag")),
    }
}

/// The next `N` bytes of `input`.
pub(crate) fn take<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], ProtocolError> {
    let Some((head, rest)) = input.split_first_chunk::<N>() else {
        return Err(ProtocolError::Malformed(
            "saved snapshot progress truncated",
        ));
    };
    *input = rest;
    Ok(*head)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use synctree_primitives::merkle::root_of;
    use synctree_primitives::{Entry, NodeId, StoredEntry, Version};

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        // A few thousand keys put several entries in some of the 65,536 buckets.
        #[test]
        fn streaming_root_matches_the_reference(
            keys in prop::collection::btree_set(any::<u32>(), 0..3000),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut stored: Vec<StoredEntry> = keys
                .iter()
                .map(|k| Entry::put(format!("key-{k}"), k.to_string(), Version::new(u64::from(*k), NodeId(1))))
                .map(StoredEntry::new)
                .collect();
            stored.sort_by_key(|s| s.key_hash);
            let cut = if stored.is_empty() { 0 } else { cut.index(stored.len()) };
            let mut builder = RootBuilder::default();
            for s in &stored[..cut] {
                builder.push(&s.key_hash, s.digest);
            }
            // A restart in the middle: the state round-trips through its encoding.
            let mut bytes = Vec::new();
            builder.encode(&mut bytes);
            let mut input = bytes.as_slice();
            let mut builder = RootBuilder::decode(&mut input).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(input.is_empty());
            for s in &stored[cut..] {
                builder.push(&s.key_hash, s.digest);
            }
            prop_assert_eq!(builder.root(), root_of(stored.iter().map(|s| &s.entry)));
        }
    }

    #[test]
    fn an_empty_stream_has_the_empty_root() {
        assert_eq!(RootBuilder::default().root(), Hash::ZERO);
    }
}
