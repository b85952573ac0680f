//! Sketch items and coded symbols: the rateless invertible Bloom lookup table
//! (RIBLT; Yang, Gilad, Alizadeh, "Practical Rateless Set Reconciliation",
//! SIGCOMM 2024) every store keeps a prefix of, per context, and the `sketch`
//! protocol reconciles with.
//!
//! ```text
//!  entry ──► SketchItem (16 B) = key_hash[..8] ‖ digest[..8]
//!              │ item_hash (64-bit mix)            ┌──── index 0 (every item)
//!              ▼                                   ├──── index 1, 2, ... density ≈ 2/(i+2)
//!            IndexMapping ─── 0, i1, i2, ... ──────┘
//!  CodedSymbol (24 B) = XOR of the items mapped to it ‖ XOR of their item_hash
//! ```
//!
//! A coded symbol is linear: the sketch of a set is the XOR of its items' sketches,
//! so an upsert that replaces item `a` by item `b` XORs `a` and `b` into the
//! O(log m) symbols each maps to, and the difference of two replicas' sketches is
//! the sketch of their symmetric difference. The encodings (with test vectors) are
//! in docs/PROTOCOL.md, "Sketch items and coded symbols".

use crate::ids::Hash;
use crate::limits::SKETCH_MAX_SYMBOLS;
use crate::store::StoredEntry;

/// Bytes of the key hash that lead an item: the key-hash prefix pulls use
/// ([`KEY_PREFIX_BYTES`](crate::limits::KEY_PREFIX_BYTES)), so a decoded item
/// finds its trie bucket, and its entry, without a scan.
pub const ITEM_KEY_BYTES: usize = 8;

/// Bytes of the entry digest that follow: two versions of one key give two
/// different items (old and new) except by a 2^-64 accident.
pub const ITEM_DIGEST_BYTES: usize = 8;

/// Bytes of one item.
pub const ITEM_BYTES: usize = ITEM_KEY_BYTES + ITEM_DIGEST_BYTES;

/// Bytes of one coded symbol on the wire and in a store: the XOR of items, then
/// the XOR of their 64-bit hashes, big-endian.
pub const SYMBOL_BYTES: usize = ITEM_BYTES + 8;

/// Fewest symbols a context keeps: small contexts stay small (1.5 KiB).
pub const SKETCH_MIN_SYMBOLS: u32 = 64;

/// Entries per maintained symbol below the cap: a context of n entries keeps the
/// next power of two above n / 32 symbols, enough to decode about n / 45
/// differences; beyond that a tree protocol costs about as much per difference.
pub const SKETCH_ENTRIES_PER_SYMBOL: u64 = 32;

/// Domain tag mixed into every item hash ("synctree" in ASCII).
const HASH_TAG: u64 = 0x7379_6e63_7472_6565;

/// The multiplier of the index generator (the reference implementation's).
const MAPPING_MULTIPLIER: u64 = 0xda94_2042_e4dd_58b5;

/// One fixed-size item per entry: its key-hash prefix, then its digest prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SketchItem(pub [u8; ITEM_BYTES]);

impl SketchItem {
    /// The item of an entry with key hash `key_hash` and digest `digest`.
    pub fn new(key_hash: &Hash, digest: &Hash) -> Self {
        let mut out = [0u8; ITEM_BYTES];
        out[..ITEM_KEY_BYTES].copy_from_slice(&key_hash.0[..ITEM_KEY_BYTES]);
        out[ITEM_KEY_BYTES..].copy_from_slice(&digest.0[..ITEM_DIGEST_BYTES]);
        SketchItem(out)
    }

    /// The item of a stored entry.
    pub fn of(stored: &StoredEntry) -> Self {
        SketchItem::new(&stored.key_hash, &stored.digest)
    }

    /// The key-hash prefix that leads to the entry.
    pub fn key_prefix(&self) -> [u8; ITEM_KEY_BYTES] {
        let mut out = [0u8; ITEM_KEY_BYTES];
        out.copy_from_slice(&self.0[..ITEM_KEY_BYTES]);
        out
    }

    /// Whether `stored` is the entry this item names.
    pub fn names(&self, stored: &StoredEntry) -> bool {
        SketchItem::of(stored) == *self
    }

    /// The item's 64-bit hash: the checksum of a pure symbol, and the seed of its
    /// index mapping. Not keyed: the items are prefixes of SHA-256 outputs already,
    /// and precomputed symbols cannot depend on a session (docs/PROTOCOL.md,
    /// security notes).
    pub fn hash(&self) -> u64 {
        let (lo, hi) = self.halves();
        mix(mix(lo ^ HASH_TAG) ^ hi)
    }

    fn halves(&self) -> (u64, u64) {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&self.0[..8]);
        hi.copy_from_slice(&self.0[8..]);
        (u64::from_be_bytes(lo), u64::from_be_bytes(hi))
    }
}

/// `x` rounded up, for `x ≥ 0` (saturating at `u64::MAX`): equal to
/// `x.ceil() as u64`, but without SSE4.1 `f64::ceil` is a library call and this
/// is a truncation and a compare.
fn ceil_u64(x: f64) -> u64 {
    let t = x as u64;
    if (t as f64) < x {
        t.saturating_add(1)
    } else {
        t
    }
}

/// The splitmix64 finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The indices an item maps to, increasing from 0: index `i` is hit with
/// probability about 1/(1 + i/2) (the RIBLT mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexMapping {
    prng: u64,
    last: u64,
}

impl IndexMapping {
    /// The mapping of an item whose hash is `hash`; its first index is 0.
    pub fn new(hash: u64) -> Self {
        IndexMapping {
            prng: hash,
            last: 0,
        }
    }

    /// The current index.
    pub fn index(&self) -> u64 {
        self.last
    }

    /// Advances to the next index and returns it.
    pub fn advance(&mut self) -> u64 {
        let r = self.prng.wrapping_mul(MAPPING_MULTIPLIER);
        self.prng = r;
        let gap =
            ((self.last as f64) + 1.5) * ((1u64 << 32) as f64 / ((r as f64) + 1.0).sqrt() - 1.0);
        // Saturates: a gap past u64::MAX leaves the index at the end.
        self.last = self.last.saturating_add(ceil_u64(gap));
        self.last
    }

    /// Calls `f` with every index below `end`, from the current one on, and leaves
    /// the mapping at the first index at or past `end`.
    pub fn walk_below(&mut self, end: u64, mut f: impl FnMut(u64)) {
        while self.last < end {
            f(self.last);
            self.advance();
        }
    }
}

/// One coded symbol: the XOR of the items mapped to it and of their hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CodedSymbol {
    /// XOR of the items.
    pub sum: [u8; ITEM_BYTES],
    /// XOR of the items' [`SketchItem::hash`].
    pub checksum: u64,
}

impl CodedSymbol {
    /// The symbol no item maps to.
    pub const EMPTY: CodedSymbol = CodedSymbol {
        sum: [0; ITEM_BYTES],
        checksum: 0,
    };

    /// XORs `item` (with its precomputed `hash`) into the symbol: adds it when
    /// absent, removes it when present.
    pub fn toggle(&mut self, item: &SketchItem, hash: u64) {
        self.sum.iter_mut().zip(item.0).for_each(|(s, i)| *s ^= i);
        self.checksum ^= hash;
    }

    /// XORs another symbol in: the symbol of the symmetric difference.
    pub fn xor(&mut self, other: &CodedSymbol) {
        self.sum
            .iter_mut()
            .zip(other.sum)
            .for_each(|(s, o)| *s ^= o);
        self.checksum ^= other.checksum;
    }

    /// True when nothing (or a set that cancels) maps here.
    pub fn is_empty(&self) -> bool {
        self.checksum == 0 && self.sum == [0; ITEM_BYTES]
    }

    /// The one item of a symbol that holds exactly one, recognised by its
    /// checksum (a symbol of several passes by a 2^-64 accident).
    pub fn pure_item(&self) -> Option<SketchItem> {
        let item = SketchItem(self.sum);
        (!self.is_empty() && item.hash() == self.checksum).then_some(item)
    }

    /// The wire and storage form ([`SYMBOL_BYTES`]).
    pub fn to_bytes(&self) -> [u8; SYMBOL_BYTES] {
        let mut out = [0u8; SYMBOL_BYTES];
        out[..ITEM_BYTES].copy_from_slice(&self.sum);
        out[ITEM_BYTES..].copy_from_slice(&self.checksum.to_be_bytes());
        out
    }

    /// Reads one symbol of exactly [`SYMBOL_BYTES`]; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != SYMBOL_BYTES {
            return None;
        }
        let mut sum = [0u8; ITEM_BYTES];
        sum.copy_from_slice(&bytes[..ITEM_BYTES]);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&bytes[ITEM_BYTES..]);
        Some(CodedSymbol {
            sum,
            checksum: u64::from_be_bytes(checksum),
        })
    }
}

/// Symbols a context of `entry_count` entries keeps: the next power of two at or
/// above `entry_count / SKETCH_ENTRIES_PER_SYMBOL`, between
/// [`SKETCH_MIN_SYMBOLS`] and [`SKETCH_MAX_SYMBOLS`]. Powers of two, so a
/// growing context recomputes its tail only each time its size doubles.
pub fn sketch_len_for(entry_count: u64) -> u32 {
    let wanted = entry_count
        .div_ceil(SKETCH_ENTRIES_PER_SYMBOL)
        .next_power_of_two();
    let capped = wanted.min(u64::from(SKETCH_MAX_SYMBOLS)) as u32;
    capped.max(SKETCH_MIN_SYMBOLS)
}

/// XORs `item` into every symbol of `symbols` it maps to.
pub fn toggle_into(symbols: &mut [CodedSymbol], item: &SketchItem) {
    toggle_range(symbols, 0, item);
}

/// XORs `item` into the symbols it maps to among `symbols`, which hold indices
/// `start..start + symbols.len()`.
pub fn toggle_range(symbols: &mut [CodedSymbol], start: u64, item: &SketchItem) {
    let hash = item.hash();
    let mut mapping = IndexMapping::new(hash);
    while mapping.index() < start {
        mapping.advance();
    }
    let end = start + symbols.len() as u64;
    mapping.walk_below(end, |i| symbols[(i - start) as usize].toggle(item, hash));
}

/// The first `len` symbols of the sketch of `items`, from scratch.
pub fn encode<'a>(items: impl IntoIterator<Item = &'a SketchItem>, len: usize) -> Vec<CodedSymbol> {
    let mut symbols = vec![CodedSymbol::EMPTY; len];
    for item in items {
        toggle_into(&mut symbols, item);
    }
    symbols
}

/// Symbol indices the handshake probes to estimate the number of differences:
/// 0, 1, …, 16, then about ×1.0625 apart, below `len` (151 indices below the cap).
pub fn probe_indices(len: u32) -> impl Iterator<Item = u32> {
    let mut next = 0u32;
    std::iter::from_fn(move || {
        let here = next;
        next = (here + 1).max(here.saturating_add(here / 16));
        (here < len).then_some(here)
    })
}

/// The number of differences most likely to leave empty (`true`) or not the
/// difference symbols at `probes` (index, empty): each index `i` is empty with
/// probability (1 − 2/(i + 2))^d. Searches d over powers of 2^(1/16) up to
/// `max`; `None` when no probe is empty (more differences than the probes see).
pub fn estimate_differences(probes: &[(u32, bool)], max: u64) -> Option<u64> {
    if probes.iter().all(|&(_, empty)| !empty) {
        return None;
    }
    if probes.iter().all(|&(_, empty)| empty) {
        return Some(0);
    }
    let log_likelihood = |d: f64| -> f64 {
        probes
            .iter()
            .map(|&(i, empty)| {
                let p_empty = (1.0 - 2.0 / (f64::from(i) + 2.0)).powf(d);
                if empty {
                    p_empty.max(1e-300).ln()
                } else {
                    (1.0 - p_empty).max(1e-300).ln()
                }
            })
            .sum()
    };
    let mut best = (1.0f64, f64::NEG_INFINITY);
    let mut d = 1.0f64;
    while d <= max as f64 {
        let l = log_likelihood(d);
        if l > best.1 {
            best = (d, l);
        }
        d *= 2f64.powf(0.0625);
    }
    Some(best.0.round() as u64)
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(n: u8) -> SketchItem {
        SketchItem([n; ITEM_BYTES])
    }

    #[test]
    fn every_item_maps_to_index_zero_and_indices_increase() {
        for n in 0..50u8 {
            let mut m = IndexMapping::new(item(n).hash());
            assert_eq!(m.index(), 0);
            let mut last = 0;
            for _ in 0..20 {
                let next = m.advance();
                assert!(next > last, "{next} after {last}");
                last = next;
            }
        }
    }

    #[test]
    fn index_density_is_about_two_over_i_plus_two() {
        let items: Vec<SketchItem> = (0..20_000u32)
            .map(|i| {
                let mut b = [0u8; ITEM_BYTES];
                b[..4].copy_from_slice(&i.to_be_bytes());
                SketchItem(b)
            })
            .collect();
        let mut hits = [0u32; 64];
        for it in &items {
            IndexMapping::new(it.hash()).walk_below(64, |i| hits[i as usize] += 1);
        }
        assert_eq!(hits[0], 20_000);
        for i in [2usize, 10, 30, 62] {
            let expected = 20_000.0 * 2.0 / (i as f64 + 2.0);
            let got = f64::from(hits[i]);
            assert!(
                (got - expected).abs() < expected * 0.15,
                "{i}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn toggling_twice_cancels_and_symbols_round_trip() {
        let mut s = encode([&item(1), &item(2)], 32);
        for it in [item(1), item(2)] {
            toggle_into(&mut s, &it);
        }
        assert!(s.iter().all(CodedSymbol::is_empty));
        let one = encode([&item(7)], 4);
        assert_eq!(one[0].pure_item(), Some(item(7)));
        assert_eq!(CodedSymbol::from_bytes(&one[0].to_bytes()), Some(one[0]));
        assert_eq!(CodedSymbol::from_bytes(&[0; 23]), None);
    }

    #[test]
    fn a_range_toggle_matches_the_whole_sketch() {
        let whole = encode([&item(3), &item(4)], 256);
        let mut tail = vec![CodedSymbol::EMPTY; 156];
        toggle_range(&mut tail, 100, &item(3));
        toggle_range(&mut tail, 100, &item(4));
        assert_eq!(&whole[100..], &tail[..]);
    }

    #[test]
    fn sketch_length_grows_in_powers_of_two_up_to_the_cap() {
        assert_eq!(sketch_len_for(0), SKETCH_MIN_SYMBOLS);
        assert_eq!(sketch_len_for(100_000), 4096);
        assert_eq!(sketch_len_for(1_000_000), SKETCH_MAX_SYMBOLS);
        assert_eq!(sketch_len_for(u64::MAX), SKETCH_MAX_SYMBOLS);
        let probes: Vec<u32> = probe_indices(SKETCH_MAX_SYMBOLS).collect();
        assert_eq!(probes[..6], [0, 1, 2, 3, 4, 5]);
        assert!(
            probes.len() <= crate::limits::SKETCH_MAX_PROBES,
            "{}",
            probes.len()
        );
    }

    #[test]
    fn the_estimate_is_within_a_factor_of_two() {
        for (seed, d) in [3usize, 30, 100, 300, 1000, 3000, 10_000]
            .into_iter()
            .enumerate()
        {
            let items: Vec<SketchItem> = (0..d as u32)
                .map(|i| {
                    let mut b = [seed as u8; ITEM_BYTES];
                    b[..4].copy_from_slice(&i.to_be_bytes());
                    SketchItem(b)
                })
                .collect();
            let sketch = encode(&items, SKETCH_MAX_SYMBOLS as usize);
            let probes: Vec<(u32, bool)> = probe_indices(SKETCH_MAX_SYMBOLS)
                .map(|i| (i, sketch[i as usize].is_empty()))
                .collect();
            let est = estimate_differences(&probes, 1 << 20).expect("an estimate") as f64;
            assert!(est > d as f64 / 2.0 && est < d as f64 * 2.0, "d {d}: {est}");
        }
    }
}
