//! Helpers of the conformance suite: the merge oracle, a seeded generator of
//! entries, and shorthands for store calls that must succeed.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use synctree_primitives::merkle::{self, TREE_DEPTH};
use synctree_primitives::sketch::{SketchItem, encode, sketch_len_for};
use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, NodeId, Store, StoredEntry, Version, key_hash, merge,
};

/// The largest key hash: the upper bound of a full range.
pub(super) const MAX_HASH: Hash = Hash::MAX;

/// The merge oracle: for each key, the winner of every entry applied so far.
#[derive(Clone, Debug, Default)]
pub struct Model(BTreeMap<Hash, Entry>);

impl Model {
    /// The merge of `entries`.
    pub fn of(entries: &[Entry]) -> Self {
        let mut model = Model::default();
        model.apply(entries);
        model
    }

    /// Merges `batch` into the oracle.
    pub fn apply(&mut self, batch: &[Entry]) {
        for entry in batch {
            let kh = entry.key_hash();
            let winner = match self.0.remove(&kh) {
                Some(held) => merge(held, entry.clone()),
                None => entry.clone(),
            };
            self.0.insert(kh, winner);
        }
    }

    /// Every entry, in key-hash order.
    pub fn entries(&self) -> Vec<Entry> {
        self.0.values().cloned().collect()
    }

    /// The root recomputed from scratch with [`merkle::root_of`].
    pub fn root(&self) -> Hash {
        merkle::root_of(self.0.values())
    }

    /// Number of entries, tombstones included.
    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }

    /// True when no entry was applied.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Asserts that `context` of `store` holds exactly the oracle's entries, in
/// key-hash order, with its entry count and with a root equal both to the
/// oracle's and to [`merkle::root_of`] over the entries read back.
pub fn assert_matches_model<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    model: &Model,
    what: &str,
) {
    let stored: Vec<Entry> = all(store, context).into_iter().map(|e| e.entry).collect();
    assert_eq!(stored, model.entries(), "{what}: entries in key-hash order");
    let summary = store.summary(context).expect("summary");
    assert_eq!(summary.entry_count, model.len(), "{what}: entry count");
    assert_eq!(summary.depth, TREE_DEPTH, "{what}: depth");
    assert_eq!(
        summary.root,
        model.root(),
        "{what}: root equals the oracle's"
    );
    assert_eq!(
        summary.root,
        merkle::root_of(&stored),
        "{what}: root equals root_of(entries)"
    );
    assert_sketch_recomputes(store, context, what);
}

/// Asserts that the maintained sketch of `context` has the length its entry count
/// calls for and equals the sketch recomputed from the entries.
pub fn assert_sketch_recomputes<S: Store + ?Sized>(store: &S, context: &ContextId, what: &str) {
    let count = store.summary(context).expect("summary").entry_count;
    let len = store.sketch_len(context).expect("sketch length");
    assert_eq!(len, sketch_len_for(count), "{what}: sketch length");
    let maintained = store.sketch(context, 0, len as usize).expect("sketch");
    let items: Vec<SketchItem> = all(store, context)
        .iter()
        .map(|e| SketchItem::new(&e.entry.key_hash(), &e.entry.digest()))
        .collect();
    let recomputed = encode(&items, len as usize);
    let first_wrong = maintained.iter().zip(&recomputed).position(|(a, b)| a != b);
    assert_eq!(
        maintained.len(),
        recomputed.len(),
        "{what}: symbols read back"
    );
    assert_eq!(
        first_wrong, None,
        "{what}: maintained sketch equals the recomputed one"
    );
}

/// SplitMix64's increment: 2^64 / φ, odd, so the state walks every `u64`.
const SPLITMIX_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
/// SplitMix64's first and second output multipliers (Stafford's mix 13).
const SPLITMIX_MULS: [u64; 2] = [0xbf58_476d_1ce4_e5b9, 0x94d0_49bb_1331_11eb];
/// SplitMix64's xor-shifts before each multiplier and after the last one.
const SPLITMIX_SHIFTS: [u32; 3] = [30, 27, 31];

/// Clocks of random entries lie below this: small, so versions tie.
const RANDOM_CLOCKS: u64 = 6;
/// Node ids of random entries lie below this: few, so equal clocks tie too.
const RANDOM_NODES: u64 = 3;
/// One random entry in this many is a delete.
const RANDOM_DELETE_ONE_IN: u64 = 5;
/// Distinct values of random puts: few, so equal versions compare values.
const RANDOM_VALUES: u64 = 3;
/// Keys of the random alphabet that share buckets, and as many that likely do not.
const ALPHABET_HALF: usize = 40;

/// A small seeded generator (SplitMix64): the suite needs no `rand`.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2] = SPLITMIX_SHIFTS;
        let [m0, m1] = SPLITMIX_MULS;
        self.0 = self.0.wrapping_add(SPLITMIX_GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> s0)).wrapping_mul(m0);
        z = (z ^ (z >> s1)).wrapping_mul(m1);
        z ^ (z >> s2)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Fisher–Yates shuffle.
    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }

    /// Cuts `items` into consecutive batches of 1 to `max` items.
    pub(super) fn split<T>(&mut self, items: Vec<T>, max: usize) -> Vec<Vec<T>> {
        let mut batches = Vec::new();
        let mut rest = items.into_iter().peekable();
        while rest.peek().is_some() {
            let len = 1 + self.below(max.max(1) as u64) as usize;
            batches.push(rest.by_ref().take(len).collect());
        }
        batches
    }
}

/// `n` random entries over a small key alphabet (so keys repeat, and some share
/// a bucket), with small clocks and values (so versions tie) and some deletes.
pub(super) fn random_entries(rng: &mut Rng, n: usize) -> Vec<Entry> {
    let keys = alphabet();
    (0..n)
        .map(|_| {
            let key = keys[rng.below(keys.len() as u64) as usize].clone();
            let version = v(rng.below(RANDOM_CLOCKS), rng.below(RANDOM_NODES));
            if rng.below(RANDOM_DELETE_ONE_IN) == 0 {
                Entry::delete(key, version)
            } else {
                Entry::put(key, format!("value-{}", rng.below(RANDOM_VALUES)), version)
            }
        })
        .collect()
}

/// The keys random entries use: [`ALPHABET_HALF`] that share buckets, as many
/// that likely do not.
fn alphabet() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = collide(ALPHABET_HALF);
        keys.extend((0..ALPHABET_HALF).map(|i| format!("key-{i}")));
        keys
    })
}

/// Candidate keys [`collide`] hashes: over [`merkle::LEAF_COUNT`] (65536)
/// buckets, about 500 buckets hold two or more.
const COLLIDE_CANDIDATES: usize = 8192;

/// Up to `n` keys, grouped so that each group shares one leaf bucket.
pub(super) fn collide(n: usize) -> Vec<String> {
    static GROUPS: OnceLock<Vec<String>> = OnceLock::new();
    let keys = GROUPS.get_or_init(|| {
        let mut buckets: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for i in 0..COLLIDE_CANDIDATES {
            let key = format!("collide-{i}");
            buckets
                .entry(merkle::leaf_index(&key_hash(key.as_bytes())))
                .or_default()
                .push(key);
        }
        buckets
            .into_values()
            .filter(|keys| keys.len() > 1)
            .flatten()
            .collect()
    });
    keys.iter().take(n).cloned().collect()
}

/// A valid context id.
pub(super) fn ctx(name: &str) -> ContextId {
    ContextId::new(name).expect("valid context name")
}

/// A version at clock `hlc` by node `node`.
pub(super) fn v(hlc: u64, node: u64) -> Version {
    Version::new(hlc, NodeId(node))
}

/// Applies a batch that must succeed.
pub(super) fn apply<S: Store + ?Sized>(store: &S, c: &ContextId, batch: Vec<Entry>) -> ApplyReport {
    store.apply(c, batch).expect("apply")
}

/// The entry stored for `key`.
pub(super) fn get<S: Store + ?Sized>(store: &S, c: &ContextId, key: &str) -> Option<Entry> {
    store.get(c, &key_hash(key.as_bytes())).expect("get")
}

/// Every stored entry of `c`, through `range`.
pub(super) fn all<S: Store + ?Sized>(store: &S, c: &ContextId) -> Vec<StoredEntry> {
    store
        .range(c, &Hash::ZERO, &MAX_HASH, usize::MAX)
        .expect("range")
}

/// The root of `c`.
pub(super) fn root<S: Store + ?Sized>(store: &S, c: &ContextId) -> Hash {
    store.summary(c).expect("summary").root
}

/// The next key hash after `h` (saturating at [`MAX_HASH`]).
pub(super) fn successor(mut h: Hash) -> Hash {
    for byte in h.0.iter_mut().rev() {
        let (next, carry) = byte.overflowing_add(1);
        *byte = next;
        if !carry {
            return h;
        }
    }
    MAX_HASH
}
