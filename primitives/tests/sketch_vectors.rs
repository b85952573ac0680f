//! Test vectors of the sketch item, item hash, index mapping and coded symbols,
//! as published in docs/PROTOCOL.md ("Sketch items and coded symbols").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use synctree_primitives::sketch::{CodedSymbol, IndexMapping, SketchItem, encode};
use synctree_primitives::{Entry, NodeId, Version};

fn alpha() -> SketchItem {
    let e = Entry::put("alpha", "1", Version::new(1, NodeId(1)));
    SketchItem::new(&e.key_hash(), &e.digest())
}

fn beta() -> SketchItem {
    let e = Entry::put("beta", "2", Version::new(2, NodeId(2)));
    SketchItem::new(&e.key_hash(), &e.digest())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn items_hashes_and_indices() {
    let cases = [
        (
            alpha(),
            "8ed3f6ad685b959e2f5a1981d103d5d3",
            0xe620_504c_b0e9_dba9u64,
            [0u64, 2, 3, 4, 30, 41, 46, 55],
        ),
        (
            beta(),
            "f44e64e75f3948e9d4ebecfcc9204180",
            0x1ba8_046e_514e_412e,
            [0, 1, 2, 4, 15, 29, 130, 214],
        ),
    ];
    for (item, want_item, want_hash, want_indices) in cases {
        assert_eq!(hex(&item.0), want_item);
        assert_eq!(item.hash(), want_hash);
        let mut m = IndexMapping::new(item.hash());
        let mut indices = vec![m.index()];
        indices.extend((0..7).map(|_| m.advance()));
        assert_eq!(indices, want_indices);
    }
}

#[test]
fn the_first_four_symbols_of_alpha_and_beta() {
    let want = [
        "7a9d924a3762dd77fbb1f57d18239453fd885422e1a79a87",
        "f44e64e75f3948e9d4ebecfcc92041801ba8046e514e412e",
        "7a9d924a3762dd77fbb1f57d18239453fd885422e1a79a87",
        "8ed3f6ad685b959e2f5a1981d103d5d3e620504cb0e9dba9",
    ];
    let symbols = encode([&alpha(), &beta()], 4);
    let got: Vec<String> = symbols.iter().map(|s| hex(&s.to_bytes())).collect();
    assert_eq!(got, want);
    assert_eq!(symbols[1].pure_item(), Some(beta()));
    assert_eq!(symbols[3].pure_item(), Some(alpha()));
    assert_eq!(symbols[0].pure_item(), None);
    assert_ne!(symbols[0], CodedSymbol::EMPTY);
}
