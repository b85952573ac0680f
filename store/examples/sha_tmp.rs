//! temp
use std::time::Instant;
use synctree_primitives::{Entry, NodeId, Version, merkle, Hash};
fn main() {
    let es: Vec<Entry> = (0..1_000_000u64).map(|i| Entry::put(format!("key-{i:010}"), vec![7u8; 100], Version::new(1, NodeId(1)))).collect();
    let t = Instant::now();
    let mut x = 0u8;
    for e in &es { x ^= e.key_hash().0[0]; }
    println!("key_hash {:?}/entry", t.elapsed() / 1_000_000);
    let t = Instant::now();
    for e in &es { x ^= e.digest().0[0]; }
    println!("digest {:?}/entry", t.elapsed() / 1_000_000);
    let d = vec![Hash([3; 32]); 15];
    let t = Instant::now();
    for _ in 0..100_000 { x ^= merkle::leaf_hash(d.iter()).0[0]; }
    println!("leaf_hash(15) {:?}", t.elapsed() / 100_000);
    let c = [Hash([3; 32]); 16];
    let t = Instant::now();
    for _ in 0..100_000 { x ^= merkle::internal_hash(&c).0[0]; }
    println!("internal_hash {:?} {x}", t.elapsed() / 100_000);
}
