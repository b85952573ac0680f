//! The `riblt` crate (crates.io, 0.1), a from-scratch RIBLT: both sides encode
//! their whole set for every block of coded symbols, the initiator collapses the
//! responder's symbols against its own and peels. Same items as our sketch
//! ([`SketchItem`]) and the same item hash, so the number of symbols matches ours
//! and the time shows what incremental maintenance saves.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use riblt::{RatelessIBLT, UnmanagedRatelessIBLT};
use synctree_primitives::sketch::{ITEM_BYTES, SketchItem};

use crate::meter::thread_cpu;

/// Bytes of one of the crate's coded symbols on a wire: sum, hash, count.
pub const CRATE_SYMBOL_BYTES: u64 = ITEM_BYTES as u64 + 8 + 8;

/// Symbols after which the initiator tries to peel again: every eighth more
/// (at least 16), so a search costs at most 1/8 extra symbols.
const CHECK_EVERY_DIVISOR: usize = 8;

/// Gives up past this many symbols.
const MAX_SYMBOLS: usize = 1 << 17;

/// One item as the crate sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Item([u8; ITEM_BYTES]);

impl riblt::Symbol for Item {
    const BYTE_ARRAY_LENGTH: usize = ITEM_BYTES;

    fn encode_to_bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    fn decode_from_bytes(bytes: &Vec<u8>) -> Self {
        let mut out = [0u8; ITEM_BYTES];
        out.iter_mut().zip(bytes).for_each(|(o, b)| *o = *b);
        Item(out)
    }

    fn hash_(&self) -> u64 {
        SketchItem(self.0).hash()
    }
}

/// What a from-scratch reconciliation took.
#[derive(Clone, Debug, PartialEq)]
pub struct RibltOutcome {
    /// Coded symbols streamed before the difference peeled.
    pub symbols: usize,
    /// Their bytes at [`CRATE_SYMBOL_BYTES`] each (no framing).
    pub bytes: u64,
    /// Wall time, both sides' encoding and the decoding.
    pub wall: Duration,
    /// On-CPU time of the same.
    pub cpu: Option<Duration>,
    /// The difference peeled to empty with as many items as A and B differ by
    /// (the crate does not export its peel result type, so the items themselves
    /// cannot be compared).
    pub exact: bool,
}

/// Reconciles `a` (initiator) with `b` from scratch.
pub fn from_scratch(a: &[SketchItem], b: &[SketchItem]) -> RibltOutcome {
    let started = Instant::now();
    let cpu_before = thread_cpu();
    let items = |s: &[SketchItem]| s.iter().map(|i| Item(i.0)).collect::<Vec<_>>();
    let (ia, ib) = (items(a), items(b));
    let mut local = RatelessIBLT::new(ia.iter().cloned());
    let mut remote = RatelessIBLT::new(ib.iter().cloned());
    let mut received: UnmanagedRatelessIBLT<Item> = UnmanagedRatelessIBLT::new();
    let (mut next_check, mut found, mut empty) = (1usize, 0, false);
    let mut symbols = 0;
    while symbols < MAX_SYMBOLS {
        received.add_coded_symbol(&remote.get_coded_symbol(symbols));
        symbols += 1;
        if symbols < next_check {
            continue;
        }
        next_check = symbols + (symbols / CHECK_EVERY_DIVISOR).max(16);
        let mut collapsed = local.collapse(&received);
        found = collapsed.peel_all_symbols().len();
        empty = collapsed.is_empty();
        if empty {
            break;
        }
    }
    let cpu = thread_cpu()
        .zip(cpu_before)
        .map(|(now, then)| now.saturating_sub(then));
    let exact = empty && found == difference(a, b);
    RibltOutcome {
        symbols,
        bytes: symbols as u64 * CRATE_SYMBOL_BYTES,
        wall: started.elapsed(),
        cpu,
        exact,
    }
}

/// |A Δ B|.
fn difference(a: &[SketchItem], b: &[SketchItem]) -> usize {
    let set = |s: &[SketchItem]| s.iter().map(|i| i.0).collect::<HashSet<_>>();
    let (sa, sb) = (set(a), set(b));
    sa.symmetric_difference(&sb).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crate_finds_the_same_difference() {
        let item = |i: u32| {
            let mut b = [0u8; ITEM_BYTES];
            b[..4].copy_from_slice(&i.to_be_bytes());
            SketchItem(b)
        };
        let a: Vec<SketchItem> = (0..1_000).map(item).collect();
        let b: Vec<SketchItem> = (20..1_030).map(item).collect();
        let out = from_scratch(&a, &b);
        assert!(out.exact, "{out:?}");
        assert!(
            out.symbols < 200,
            "{} symbols for 50 differences",
            out.symbols
        );
    }
}
