//! Identification rate of the sketch: decode (subtract the local symbols, peel)
//! plus the local lookup of every decoded item, on a 10^6-entry store, printed
//! rather than asserted (machines differ):
//!
//! ```sh
//! cargo test --release -p synctree-protocols --test sketch_measure -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use synctree_primitives::riblt::Decoder;
use synctree_primitives::sketch::{SketchItem, encode};
use synctree_primitives::{Entry, Hash, NodeId, Store, StoredEntry, Version};
use synctree_store::MemoryStore;

fn entry(i: u64) -> Entry {
    Entry::put(
        format!("key-{i:010}"),
        vec![b'v'; 100],
        Version::new(1, NodeId(1)),
    )
}

/// This thread's on-CPU time (`/proc/thread-self/schedstat`), so other load on
/// the machine does not inflate the rate.
/// Each decode is repeated this many times: the scheduler's CPU-time accounting
/// is too coarse for one.
const REPEAT: u32 = 20;

fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[test]
#[ignore]
fn differences_identified_per_second() {
    let n = 1_000_000u64;
    let store = MemoryStore::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100_000) {
        store
            .apply(&common::ctx(), chunk.iter().map(|&i| entry(i)).collect())
            .unwrap();
    }
    let len = store.sketch_len(&common::ctx()).unwrap() as usize;
    for d in [100u64, 1_000, 10_000] {
        // The peer holds d entries more (half) and lacks d/2 of ours (the other half).
        let theirs: Vec<SketchItem> = (n..n + d / 2)
            .map(|i| SketchItem::of(&StoredEntry::new(entry(i))))
            .collect();
        let missing: Vec<SketchItem> = (0..d / 2)
            .map(|i| SketchItem::of(&StoredEntry::new(entry(i))))
            .collect();
        let mut symbols = 0;
        let mut remote = store.sketch(&common::ctx(), 0, len).unwrap();
        let delta = encode(theirs.iter().chain(&missing), len);
        remote.iter_mut().zip(&delta).for_each(|(r, x)| r.xor(x));
        let (started, cpu_started) = (Instant::now(), thread_cpu_ns());
        for _ in 0..REPEAT {
            let mut decoder = Decoder::new(len);
            let mut used = 0;
            // Window by window, as the initiator reads its own symbols.
            'windows: for (w, window) in remote.chunks(4096).enumerate() {
                let local = store
                    .sketch(&common::ctx(), (w * 4096) as u32, window.len())
                    .unwrap();
                for (r, l) in window.iter().zip(&local) {
                    let mut diff = *r;
                    diff.xor(l);
                    decoder.add(diff).unwrap();
                    used += 1;
                    if decoder.is_decoded() {
                        break 'windows;
                    }
                }
            }
            let mut found_locally = 0;
            for item in decoder.items() {
                let mut low = Hash::ZERO;
                low.0[..8].copy_from_slice(&item.key_prefix());
                let mut high = Hash::MAX;
                high.0[..8].copy_from_slice(&item.key_prefix());
                let held = store.range(&common::ctx(), &low, &high, 17).unwrap();
                found_locally += usize::from(held.iter().any(|e| item.names(e)));
            }
            assert!(decoder.is_decoded());
            assert_eq!(decoder.items().len() as u64, d);
            assert_eq!(found_locally as u64, d / 2);
            symbols = used;
        }
        let took = started.elapsed() / REPEAT;
        let cpu = thread_cpu_ns()
            .zip(cpu_started)
            .map(|(now, then)| (now - then) / u64::from(REPEAT));
        let used = symbols;
        let cpu_s = cpu.map_or(took.as_secs_f64(), |ns| ns as f64 / 1e9);
        println!(
            "n {n}, d {d}: {used} symbols ({:.2}/difference), decode + lookup {took:.2?} wall, {:.2} ms on-CPU: {:.2} M differences/s/core",
            used as f64 / d as f64,
            cpu_s * 1e3,
            d as f64 / cpu_s / 1e6
        );
    }
}
