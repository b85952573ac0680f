//! The peeling decoder of a RIBLT difference: coded symbols of the symmetric
//! difference of two sets come in one at a time, in index order; pure symbols
//! (one item, recognised by its checksum) are peeled, which XORs their item out
//! of every symbol it maps to, received or still to come.
//!
//! ```
//! use synctree_primitives::riblt::Decoder;
//! use synctree_primitives::sketch::{encode, SketchItem};
//!
//! let ours = [SketchItem([1; 16]), SketchItem([2; 16])];
//! let theirs = [SketchItem([2; 16]), SketchItem([3; 16])];
//! let (a, b) = (encode(&ours, 16), encode(&theirs, 16));
//! let mut decoder = Decoder::new(16);
//! for (x, y) in a.iter().zip(&b) {
//!     let mut diff = *x;
//!     diff.xor(y);
//!     decoder.add(diff).unwrap();
//!     if decoder.is_decoded() { break; }
//! }
//! let mut found = decoder.items().to_vec();
//! found.sort();
//! assert_eq!(found, [SketchItem([1; 16]), SketchItem([3; 16])]);
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::error::ProtocolError;
use crate::sketch::{CodedSymbol, IndexMapping, SketchItem};

/// A peeling decoder for a difference of at most `max_items` items.
#[derive(Debug)]
pub struct Decoder {
    symbols: Vec<CodedSymbol>,
    items: Vec<SketchItem>,
    /// Each decoded item's hash and mapping, advanced past the symbols received.
    mappings: Vec<(u64, IndexMapping)>,
    /// (next index, item) of every decoded item, soonest first.
    pending: BinaryHeap<Reverse<(u64, usize)>>,
    /// Received symbols that may be pure.
    candidates: Vec<usize>,
    nonempty: usize,
    max_items: usize,
}

impl Decoder {
    /// A decoder that refuses to peel more than `max_items` items: a difference
    /// from a hostile peer can decode into garbage, this bounds what it costs.
    pub fn new(max_items: usize) -> Self {
        Decoder {
            symbols: Vec::new(),
            items: Vec::new(),
            mappings: Vec::new(),
            pending: BinaryHeap::new(),
            candidates: Vec::new(),
            nonempty: 0,
            max_items,
        }
    }

    /// Symbols received so far.
    pub fn received(&self) -> usize {
        self.symbols.len()
    }

    /// Items peeled so far (the whole difference once [`Decoder::is_decoded`]).
    pub fn items(&self) -> &[SketchItem] {
        &self.items
    }

    /// True when every received symbol is empty after peeling: every item maps
    /// to symbol 0, so none is left (but by a 2^-64 checksum accident).
    pub fn is_decoded(&self) -> bool {
        !self.symbols.is_empty() && self.nonempty == 0
    }

    /// Adds the next difference symbol (index [`Decoder::received`]) and peels
    /// what becomes pure. Fails when the difference peels into more than
    /// `max_items` items.
    pub fn add(&mut self, mut symbol: CodedSymbol) -> Result<(), ProtocolError> {
        let index = self.symbols.len() as u64;
        while let Some(&Reverse((next, item))) = self.pending.peek() {
            if next != index {
                break;
            }
            self.pending.pop();
            let (hash, mapping) = &mut self.mappings[item];
            symbol.toggle(&self.items[item], *hash);
            let after = mapping.advance();
            self.pending.push(Reverse((after, item)));
        }
        self.symbols.push(symbol);
        if !symbol.is_empty() {
            self.nonempty += 1;
            self.candidates.push(index as usize);
        }
        self.peel()
    }

    fn peel(&mut self) -> Result<(), ProtocolError> {
        while let Some(at) = self.candidates.pop() {
            let Some(item) = self.symbols[at].pure_item() else {
                continue;
            };
            ProtocolError::check_limit(
                "decoded sketch items",
                self.max_items,
                self.items.len() + 1,
            )?;
            let hash = item.hash();
            let mut mapping = IndexMapping::new(hash);
            let end = self.symbols.len() as u64;
            let (symbols, candidates, nonempty) =
                (&mut self.symbols, &mut self.candidates, &mut self.nonempty);
            mapping.walk_below(end, |i| {
                let s = &mut symbols[i as usize];
                let was_empty = s.is_empty();
                s.toggle(&item, hash);
                match (was_empty, s.is_empty()) {
                    (false, true) => *nonempty -= 1,
                    (true, false) => *nonempty += 1,
                    _ => {}
                }
                if !s.is_empty() {
                    candidates.push(i as usize);
                }
            });
            self.pending
                .push(Reverse((mapping.index(), self.items.len())));
            self.items.push(item);
            self.mappings.push((hash, mapping));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sketch::{ITEM_BYTES, encode};
    use proptest::prelude::*;

    fn items(seed: u32, n: u32) -> Vec<SketchItem> {
        (0..n)
            .map(|i| {
                let mut b = [0u8; ITEM_BYTES];
                b[..4].copy_from_slice(&seed.to_be_bytes());
                b[4..8].copy_from_slice(&i.to_be_bytes());
                b[8..12].copy_from_slice(&(i.wrapping_mul(2_654_435_761)).to_be_bytes());
                SketchItem(b)
            })
            .collect()
    }

    /// Symbols needed to decode `a` Δ `b`, and what was decoded.
    fn decode(a: &[SketchItem], b: &[SketchItem], len: usize) -> (usize, Vec<SketchItem>) {
        let (sa, sb) = (encode(a, len), encode(b, len));
        let mut decoder = Decoder::new(len);
        for (x, y) in sa.iter().zip(&sb) {
            let mut d = *x;
            d.xor(y);
            decoder.add(d).expect("within limits");
            if decoder.is_decoded() {
                break;
            }
        }
        let mut found = decoder.items().to_vec();
        found.sort();
        (decoder.received(), found)
    }

    #[test]
    fn equal_sets_decode_from_one_symbol() {
        let a = items(1, 100);
        assert_eq!(decode(&a, &a, 64), (1, vec![]));
    }

    #[test]
    fn about_one_and_a_half_symbols_per_difference() {
        let mut total = 0;
        let mut diffs = 0;
        for seed in 0..20 {
            let common = items(seed, 500);
            let only_a = items(1000 + seed, 300);
            let only_b = items(2000 + seed, 200);
            let a: Vec<_> = common.iter().chain(&only_a).copied().collect();
            let b: Vec<_> = common.iter().chain(&only_b).copied().collect();
            let (used, found) = decode(&a, &b, 4096);
            let mut want: Vec<_> = only_a.iter().chain(&only_b).copied().collect();
            want.sort();
            assert_eq!(found, want);
            total += used;
            diffs += 500;
        }
        let ratio = total as f64 / diffs as f64;
        assert!(ratio > 1.2 && ratio < 1.6, "{ratio} symbols per difference");
    }

    #[test]
    fn too_many_items_is_a_limit_error() {
        let a = items(5, 50);
        let sa = encode(&a, 200);
        let mut decoder = Decoder::new(10);
        let failed = sa.iter().any(|s| decoder.add(*s).is_err());
        assert!(failed);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_differences_decode(seed in 0u32..1000, common in 0u32..300, da in 0u32..60, db in 0u32..60) {
            let c = items(seed, common);
            let only_a = items(seed + 10_000, da);
            let only_b = items(seed + 20_000, db);
            let a: Vec<_> = c.iter().chain(&only_a).copied().collect();
            let b: Vec<_> = c.iter().chain(&only_b).copied().collect();
            let (used, found) = decode(&a, &b, 1024);
            let mut want: Vec<_> = only_a.iter().chain(&only_b).copied().collect();
            want.sort();
            prop_assert_eq!(found, want);
            prop_assert!(used <= 1024);
        }
    }
}
