//! Library half of the `synctree` command-line tool: what the binary needs beyond
//! [`synctree_manager`] and its tests reach too.
//!
//! ```text
//!  synctree (src/bin/synctree) ─┬─ demo · put/get/gen/import/export · root ─► synctree-store
//!                               ├─ serve / sync ─► synctree-manager ─► synctree-transport (TCP)
//!                               ├─ simulate ─► synctree-sim (turmoil)
//!                               └─ --metrics ─► prometheus::install_prometheus
//! ```
//!
//! - [`generate`]: deterministic entries (the same seed gives the same data on any node).
//! - [`jsonl`]: the JSON Lines format of `export` and `import` (line ↔ entry).
//! - [`prometheus`]: the Prometheus exporter behind `serve --metrics ADDR`.

#![forbid(unsafe_code)]

pub mod generate;
pub mod jsonl;
pub mod prometheus;
