//! Three real `synctree serve` processes peering each other, written to through
//! the CLI on all three while they run (the CLI goes through each node's API),
//! one of them SIGKILLed and restarted mid-way: afterwards all three hold the
//! same root and every acknowledged put is readable on every node.
//!
//! `SYNCTREE_CLUSTER_SECS` sets how long the writers run (default 10).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{BIN, id, synctree};

/// Nodes in the cluster.
const NODES: usize = 3;
/// Anti-entropy interval of every node, in seconds.
const INTERVAL: &str = "0.3";
/// Longest the roots may take to agree once the writers stop.
const SETTLE_BOUND: Duration = Duration::from_secs(60);

fn write_time() -> Duration {
    let secs = std::env::var("SYNCTREE_CLUSTER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

/// A free loopback port (released again: the node binds it a moment later).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

struct Node {
    store: PathBuf,
    listen: String,
    /// The other nodes, `ID@ADDR`.
    peers: Vec<String>,
    /// The other nodes' IDs, allowed to connect.
    allowed: Vec<String>,
    child: Option<Child>,
}

impl Node {
    /// Starts `serve`, retrying while a CLI command holds the store for a moment.
    fn start(&mut self) {
        for _ in 0..100 {
            let mut command = Command::new(BIN);
            command.arg("--store").arg(&self.store).args([
                "serve",
                "--listen",
                &self.listen,
                "--interval",
                INTERVAL,
            ]);
            for peer in &self.peers {
                command.args(["--peer", peer]);
            }
            for allowed in &self.allowed {
                command.args(["--allow", allowed]);
            }
            let mut child = command
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            if common::listening_addr(child.stderr.as_mut().unwrap()).is_some() {
                self.child = Some(child);
                return;
            }
            let _ = child.wait();
            thread::sleep(Duration::from_millis(50));
        }
        panic!("{} would not start", self.listen);
    }

    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        assert!(
            child.wait().unwrap().success(),
            "{} shut down cleanly",
            self.listen
        );
    }
}

/// Puts `w{node}-{i}` on `store` until `stop`; returns the acknowledged keys.
fn writer(store: PathBuf, node: usize, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut acknowledged = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("w{node}-{i:06}");
        let out = synctree(&store, &["put", "ctx", &key, &format!("v-{key}")]);
        if out.status.success() {
            acknowledged.push(key);
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
        i += 1;
    }
    acknowledged
}

/// The keys and values `export` prints for `ctx` on `store`.
fn exported(store: &Path) -> BTreeSet<(String, String)> {
    let out = synctree(store, &["export", "ctx"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (field("key"), field("value"))
        })
        .collect()
}

fn root(store: &Path) -> Option<String> {
    let out = synctree(store, &["root", "ctx", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["root"].as_str().map(str::to_owned)
}

#[test]
fn three_serving_nodes_written_through_the_cli_converge_and_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let stores: Vec<PathBuf> = (0..NODES)
        .map(|i| dir.path().join(format!("node{i}")))
        .collect();
    let ids: Vec<String> = stores.iter().map(|s| id(s)).collect();
    let others = |i: usize| (0..NODES).filter(move |&j| j != i);
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|i| Node {
            store: stores[i].clone(),
            listen: addr(i),
            peers: others(i)
                .map(|j| format!("{}@{}", ids[j], addr(j)))
                .collect(),
            allowed: others(i).map(|j| ids[j].clone()).collect(),
            child: None,
        })
        .collect();
    for node in &mut nodes {
        node.start();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let (store, stop) = (node.store.clone(), Arc::clone(&stop));
            thread::spawn(move || writer(store, i, stop))
        })
        .collect();
    let total = write_time();
    thread::sleep(total * 2 / 5);
    nodes[2].kill();
    thread::sleep(Duration::from_secs(1));
    nodes[2].start();
    thread::sleep(total.saturating_sub(total * 2 / 5));
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        acknowledged.len() > NODES * 10,
        "writers made progress: {}",
        acknowledged.len()
    );

    let started = Instant::now();
    loop {
        let roots: BTreeSet<_> = nodes.iter().map(|n| root(&n.store)).collect();
        if roots.len() == 1 && roots.iter().all(Option::is_some) {
            break;
        }
        assert!(
            started.elapsed() < SETTLE_BOUND,
            "roots never agreed: {roots:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    for node in &nodes {
        let held = exported(&node.store);
        for key in &acknowledged {
            let want = (key.clone(), format!("v-{key}"));
            assert!(held.contains(&want), "{} lost {key}", node.listen);
        }
    }
    for node in &mut nodes {
        node.stop();
    }
}
