//! Test vectors that pin every hashed format and one wire encoding.
//!
//! The literal values below are the ones published in `docs/PROTOCOL.md`
//! ("Test vectors"). Changing the entry digest, the leaf or internal hash, the
//! bucket rule, the node numbering or the protobuf schema fails a test here.
//! The `*_by_hand` tests recompute the same values with `sha2` straight from the
//! documented byte layouts, so the vectors do not merely check the code against
//! itself.

use std::collections::BTreeMap;

use prost::Message;
use sha2::{Digest, Sha256};
use synctree_primitives::merkle::{
    FANOUT, NodeMap, NodePos, TreeNodes, internal_hash, leaf_hash, leaf_index, root_of,
    update_paths,
};
use synctree_primitives::wire::{
    EntrySummary, HashComparisonInit, InitPayload, StreamMessage, init_payload, stream_message,
};
use synctree_primitives::{Entry, Hash, NodeId, Version, key_hash};

/// SHA-256 of the key `alpha`.
const KEY_HASH_ALPHA: &str = "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8";

/// Digest of the first vector entry (key `alpha`).
const DIGEST_ALPHA: &str = "2f5a1981d103d5d35fab452323306d042ae6178b7b72d53ae60db7702bd02abc";
/// Digest of the second vector entry.
const DIGEST_BETA: &str = "d4ebecfcc920418003a06175bffeb5b00e560240e8b000f3fc8ff4de62a6803c";
/// Digest of the third vector entry.
const DIGEST_GAMMA: &str = "baaf466a42872e2aa5980159b627bd6dee701b80bba807806af6c2e53a7bf36b";

/// Root of the trie of the three vector entries.
const ROOT_OF_THREE: &str = "a197608a61676a49cc0629f84e28710aab5b63c5aa19554a3358758d9d427415";
/// Every non-empty node of the 3-entry trie: (level, index, raw position, hash).
const NODES_OF_THREE: [(u8, u32, u32, &str); 13] = [
    (0, 0, 0, ROOT_OF_THREE),
    (
        1,
        8,
        9,
        "a656355af4e67e663c29a3460ab5da305368f06352f2d8a5af11f74c120d6875",
    ),
    (
        1,
        11,
        12,
        "379bc67722eeb7cec12de1fd2c483efb8762873164221f80a2cfdf3aeaf29db1",
    ),
    (
        1,
        15,
        16,
        "003415883e88386ad01b28ee97bbc29ba4511035a4044dd4d50b7cfe27161b16",
    ),
    (
        2,
        142,
        159,
        "e24e649a4fcaae62fb8523c5a84f7eb8a2b3d651a857d03b552260aafb6ba76f",
    ),
    (
        2,
        190,
        207,
        "175ab12455ab48eac6c9a7dc426fff47ac2ea1e79b2a3fd7724f8d6436b18896",
    ),
    (
        2,
        244,
        261,
        "e67cb09fa74e09e020e018b787f1319d2a26cf911063566c690787a63b1bfc39",
    ),
    (
        3,
        2285,
        2558,
        "9cffa35c9cb61b6490d17df52d6a683a969aa6aaad2397678ea42e4d5957aea4",
    ),
    (
        3,
        3049,
        3322,
        "459c58192a9d19c858ad093d819e9f8ae9ef1e2dbbf3fad44bbac0a3754d8c39",
    ),
    (
        3,
        3908,
        4181,
        "667804e3837a1b5736098228b4ffe230ad2a4f6051d4f907c117a8c447288367",
    ),
    (
        4,
        36563,
        40932,
        "9a21d41d887916153c50a66d8bb372f8c56aac6729e5bb4e5733010f95e01b4c",
    ),
    (
        4,
        48797,
        53166,
        "62a1e9938b5f0f047be5d5c81b77b56fff308f91dd866a8ed8ae07f1c842a5cf",
    ),
    (
        4,
        62542,
        66911,
        "d0e0a8e04ae33a390f3716cd62e20e531420982dfba2a260b23309e179a22d4f",
    ),
];
/// Root of the empty trie: the zero hash.
const ROOT_OF_EMPTY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Leaf hash of two entries sharing one bucket.
const SHARED_BUCKET_LEAF: &str = "f92e76a2d594a18d97f2d3da127b86f583fa4dbdd54a0059c618ea57a84564b6";
/// Root of the trie of those two entries: one non-empty bucket.
const SHARED_BUCKET_ROOT: &str = "98822290a53490bcb368232a770ec01adbe04397cea9a7032293bc5d6eebcfc2";

/// `[u32 BE length = 46] StreamMessage { init: InitPayload { 1, "demo", hash_comparison { root: 0^32 } } }`.
const INIT_FRAME: &str = concat!(
    "0000002e",
    "0a2c",
    "0801",
    "120464656d6f",
    "5a22",
    "0a20",
    "0000000000000000000000000000000000000000000000000000000000000000",
);

/// The three entries of vectors (b)–(d).
fn three() -> [Entry; 3] {
    [
        Entry::put("alpha", "1", Version::new(1, NodeId(1))),
        Entry::put("beta", "2", Version::new(2, NodeId(2))),
        Entry::delete("gamma", Version::new(3, NodeId(1))),
    ]
}

/// Two entries whose key hashes share their first 16 bits (bucket 0xa026), chosen
/// so that key-hash order and digest order differ.
fn shared_bucket() -> [Entry; 2] {
    [
        Entry::put("key-212", "a", Version::new(4, NodeId(1))),
        Entry::put("key-279", "b", Version::new(5, NodeId(2))),
    ]
}

fn hx(hash: Hash) -> String {
    hex::encode(hash.0)
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

/// Entry digest from the documented layout.
fn digest_by_hand(e: &Entry) -> Hash {
    sha256(&[
        &[0x00],
        &(e.key.len() as u32).to_be_bytes(),
        &e.key,
        &(e.value.len() as u32).to_be_bytes(),
        &e.value,
        &e.version.hlc.to_be_bytes(),
        &e.version.node.0.to_be_bytes(),
        &[u8::from(e.tombstone)],
    ])
}

/// Leaf hash from the documented layout (digests already in key-hash order).
fn leaf_by_hand(digests: &[Hash]) -> Hash {
    if digests.is_empty() {
        return Hash::ZERO;
    }
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update((digests.len() as u32).to_be_bytes());
    for d in digests {
        h.update(d.0);
    }
    Hash(h.finalize().into())
}

/// Internal hash from the documented layout.
fn internal_by_hand(children: &[Hash]) -> Hash {
    if children.iter().all(|c| c.0 == [0; Hash::LEN]) {
        return Hash::ZERO;
    }
    let mut h = Sha256::new();
    h.update([0x02]);
    for c in children {
        h.update(c.0);
    }
    Hash(h.finalize().into())
}

/// Whole-trie root from the documented rules only: bucket = first 16 bits of the
/// key hash, digests sorted by key hash, four internal levels of fanout 16.
fn root_by_hand(entries: &[Entry]) -> Hash {
    let mut buckets: BTreeMap<u32, BTreeMap<[u8; 32], Hash>> = BTreeMap::new();
    for e in entries {
        let kh: [u8; Hash::LEN] = Sha256::digest(&e.key).into();
        let bucket = u32::from(kh[0]) << 8 | u32::from(kh[1]);
        buckets
            .entry(bucket)
            .or_default()
            .insert(kh, digest_by_hand(e));
    }
    let mut level: BTreeMap<u32, Hash> = buckets
        .into_iter()
        .map(|(i, b)| (i, leaf_by_hand(&b.into_values().collect::<Vec<_>>())))
        .collect();
    for _ in 0..4 {
        let parents: Vec<u32> = level.keys().map(|i| i / 16).collect();
        let mut next = BTreeMap::new();
        for p in parents {
            let children: Vec<Hash> = (0..16)
                .map(|c| level.get(&(p * 16 + c)).copied().unwrap_or(Hash::ZERO))
                .collect();
            next.insert(p, internal_by_hand(&children));
        }
        level = next;
    }
    level.get(&0).copied().unwrap_or(Hash::ZERO)
}

#[test]
fn a_key_hash() {
    assert_eq!(hx(key_hash(b"alpha")), KEY_HASH_ALPHA);
    assert_eq!(hx(sha256(&[b"alpha"])), KEY_HASH_ALPHA);
}

#[test]
fn b_entry_digests() {
    let [a, b, g] = three();
    assert_eq!(hx(a.digest()), DIGEST_ALPHA);
    assert_eq!(hx(b.digest()), DIGEST_BETA);
    assert_eq!(hx(g.digest()), DIGEST_GAMMA);
}

#[test]
fn c_leaf_indexes_and_positions() {
    // (key, leaf index = first 16 bits of key hash, raw position = 4369 + index)
    let expected = [
        ("alpha", 0x8ed3, 40_932),
        ("beta", 0xf44e, 66_911),
        ("gamma", 0xbe9d, 53_166),
    ];
    for (key, index, raw) in expected {
        let kh = key_hash(key.as_bytes());
        assert_eq!(leaf_index(&kh), index, "{key}");
        let pos = NodePos::leaf_of(&kh);
        assert_eq!(pos.raw(), raw, "{key}");
        assert_eq!((pos.level(), pos.index()), (4, index), "{key}");
        assert_eq!(raw, (16u32.pow(4) - 1) / 15 + index, "{key}");
    }
}

#[test]
fn d_roots() {
    assert_eq!(hx(root_of(three().iter())), ROOT_OF_THREE);
    assert_eq!(hx(root_of(three().iter().rev())), ROOT_OF_THREE);
    assert_eq!(hx(root_of(std::iter::empty())), ROOT_OF_EMPTY);
}

#[test]
fn d_nodes_of_three_by_position() {
    let leaves = three().map(|e| (leaf_index(&e.key_hash()), leaf_hash([e.digest()].iter())));
    let mut map = NodeMap::default();
    let Ok(root) = update_paths(&mut map, leaves);
    assert_eq!(hx(root), ROOT_OF_THREE);
    for (level, index, raw, hash) in NODES_OF_THREE {
        let pos = NodePos::new(level, index);
        assert_eq!(pos.raw(), raw, "level {level} index {index}");
        let Ok(stored) = map.node(pos);
        assert_eq!(hx(stored), hash, "position {raw}");
    }
}

#[test]
fn d_shared_bucket() {
    let entries = shared_bucket();
    let [x, y] = &entries;
    assert_eq!(leaf_index(&x.key_hash()), 0xa026);
    assert_eq!(leaf_index(&y.key_hash()), 0xa026);
    assert!(
        x.key_hash() < y.key_hash() && x.digest() > y.digest(),
        "orders must differ"
    );
    let leaf = leaf_hash([x.digest(), y.digest()].iter());
    assert_eq!(hx(leaf), SHARED_BUCKET_LEAF);
    assert_eq!(hx(root_of(entries.iter().rev())), SHARED_BUCKET_ROOT);
}

#[test]
fn e_init_frame() {
    let msg = StreamMessage::new(stream_message::Body::Init(InitPayload {
        protocol_version: 1,
        context_id: "demo".into(),
        kind: Some(init_payload::Kind::HashComparison(HashComparisonInit {
            root: vec![0u8; Hash::LEN].into(),
        })),
    }));
    let body = msg.encode_to_vec();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    assert_eq!(hex::encode(&frame), INIT_FRAME);
    assert_eq!(StreamMessage::decode(&frame[4..]), Ok(msg));
}

/// `EntrySummary.check` is the digest's first 4 bytes read big-endian, sent as a
/// little-endian protobuf `fixed32`.
#[test]
fn e_summary_check_encoding() {
    let [a, _, _] = three();
    let d = a.digest().0;
    let check = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    assert_eq!(check, 0x2f5a_1981);
    let summary = EntrySummary {
        check,
        ..EntrySummary::default()
    };
    assert_eq!(hex::encode(summary.encode_to_vec()), "2581195a2f");
}

#[test]
fn entry_digest_by_hand() {
    for e in three().iter().chain(&shared_bucket()) {
        assert_eq!(digest_by_hand(e), e.digest(), "{e:?}");
    }
}

#[test]
fn leaf_hash_by_hand() {
    let [a, b, g] = three();
    // key-hash order: alpha (8ed3…) < gamma (be9d…) < beta (f44e…)
    let digests = [a.digest(), g.digest(), b.digest()];
    assert_eq!(leaf_by_hand(&digests), leaf_hash(digests.iter()));
    assert_eq!(leaf_by_hand(&digests[..1]), leaf_hash(digests[..1].iter()));
    assert_eq!(leaf_hash(std::iter::empty()), Hash::ZERO);
    let [x, y] = shared_bucket();
    assert_eq!(
        hx(leaf_by_hand(&[x.digest(), y.digest()])),
        SHARED_BUCKET_LEAF
    );
}

#[test]
fn internal_hash_by_hand() {
    let [a, b, g] = three();
    let mut children = [Hash::ZERO; FANOUT];
    children[0] = a.digest();
    children[7] = b.digest();
    children[15] = g.digest();
    assert_eq!(internal_by_hand(&children), internal_hash(&children));
    assert_eq!(internal_hash(&[Hash::ZERO; FANOUT]), Hash::ZERO);
    assert_eq!(internal_by_hand(&[Hash::ZERO; FANOUT]), Hash::ZERO);
}

#[test]
fn root_by_hand_matches() {
    assert_eq!(hx(root_by_hand(&three())), ROOT_OF_THREE);
    assert_eq!(hx(root_by_hand(&shared_bucket())), SHARED_BUCKET_ROOT);
    assert_eq!(root_by_hand(&[]), Hash::ZERO);
}
