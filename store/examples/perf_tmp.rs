//! temp
use synctree_primitives::{ContextId, Entry, NodeId, Store, Version};
use synctree_store::MemoryStore;
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse::<f64>().unwrap() / 1e9
}
fn run(store: &MemoryStore, ctx: &ContextId, n: u64, batch: u64, hlc: u64, what: &str) {
    let entries: Vec<Vec<Entry>> = (0..n / batch)
        .map(|b| (b * batch..(b + 1) * batch).map(|i| Entry::put(format!("key-{i:010}"), vec![hlc as u8; 100], Version::new(hlc, NodeId(1)))).collect())
        .collect();
    let t = cpu();
    for b in entries { store.apply(ctx, b).unwrap(); }
    let dt = cpu() - t;
    let r = synctree_store::report(); println!("prepare {:.3} merge {:.3} paths {:.3}", r[0] as f64/1e9, r[1] as f64/1e9, r[2] as f64/1e9);
    println!("{what} n={n} batch={batch}: {:.3}s cpu -> {:.0}/s", dt, n as f64 / dt);
}
fn main() {
    let ctx = ContextId::new("bench").unwrap();
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (n, batch) = (args[0], args[1]);
    let store = MemoryStore::new();
    run(&store, &ctx, n, batch, 1, "insert");
    run(&store, &ctx, n, batch, 2, "update");
}
