//! Three real `synctree serve` processes peering each other over TLS, written to
//! through the CLI on all three while they run (the CLI goes through each node's
//! API), one of them SIGKILLed and restarted mid-way: afterwards all three hold
//! the same root and every acknowledged put is readable on every node.
//!
//! `SYNCTREE_CLUSTER_SECS` sets how long the writers run (default 10). The same
//! run in three network namespaces, with `tc netem` latency and loss on every
//! link where the kernel has netem, needs root and iproute2 and is ignored:
//! `cargo test -p synctree-cli --test cluster -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::BIN;

/// Nodes in the cluster.
const NODES: usize = 3;
/// Anti-entropy interval of every node, in seconds.
const INTERVAL: &str = "0.3";
/// Longest the roots may take to agree once the writers stop.
const SETTLE_BOUND: Duration = Duration::from_secs(60);
/// Port every node listens on inside its own network namespace.
const NETNS_PORT: u16 = 7000;

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

/// How a node's processes are started: directly, or inside a network namespace.
#[derive(Clone, Debug, Default)]
struct Launcher(Vec<String>);

impl Launcher {
    fn in_netns(name: &str) -> Self {
        Launcher(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            name.into(),
        ])
    }

    fn command(&self) -> Command {
        match self.0.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(BIN);
                command
            }
            None => Command::new(BIN),
        }
    }

    /// Runs `synctree --store STORE ARGS…` to completion.
    fn run(&self, store: &Path, args: &[&str]) -> Output {
        self.command()
            .arg("--store")
            .arg(store)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

struct Node {
    store: PathBuf,
    launcher: Launcher,
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
            let mut command = self.launcher.command();
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
fn writer(launcher: Launcher, store: PathBuf, node: usize, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut acknowledged = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("w{node}-{i:06}");
        let out = launcher.run(&store, &["put", "ctx", &key, &format!("v-{key}")]);
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

/// The keys and values `export` prints for `ctx` on `node`.
fn exported(node: &Node) -> BTreeSet<(String, String)> {
    let out = node.launcher.run(&node.store, &["export", "ctx"]);
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

fn root(node: &Node) -> Option<String> {
    let out = node.launcher.run(&node.store, &["root", "ctx", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["root"].as_str().map(str::to_owned)
}

/// Nodes in `dir`, node `i` started by `launchers[i]`, listening on `listen[i]`
/// and reached by the others at `reach(j, i)` (node `j`'s address of node `i`).
fn cluster(
    dir: &Path,
    launchers: &[Launcher],
    listen: &[String],
    reach: impl Fn(usize, usize) -> String,
) -> Vec<Node> {
    let stores: Vec<PathBuf> = (0..NODES).map(|i| dir.join(format!("node{i}"))).collect();
    let ids: Vec<String> = stores
        .iter()
        .map(|s| common::ok(s, &["id"]).trim().to_owned())
        .collect();
    let others = |i: usize| (0..NODES).filter(move |&j| j != i);
    (0..NODES)
        .map(|i| Node {
            store: stores[i].clone(),
            launcher: launchers[i].clone(),
            listen: listen[i].clone(),
            peers: others(i)
                .map(|j| format!("{}@{}", ids[j], reach(i, j)))
                .collect(),
            allowed: others(i).map(|j| ids[j].clone()).collect(),
            child: None,
        })
        .collect()
}

/// Writers on every node for the write time, node 2 SIGKILLed and restarted
/// a second later at 40 % of it; then the roots must agree and every
/// acknowledged put be on every node.
fn written_killed_and_converged(nodes: &mut [Node]) {
    for node in nodes.iter_mut() {
        node.start();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let (launcher, store) = (node.launcher.clone(), node.store.clone());
            let stop = Arc::clone(&stop);
            thread::spawn(move || writer(launcher, store, i, stop))
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
        let roots: BTreeSet<_> = nodes.iter().map(root).collect();
        if roots.len() == 1 && roots.iter().all(Option::is_some) {
            break;
        }
        assert!(
            started.elapsed() < SETTLE_BOUND,
            "roots never agreed: {roots:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    println!(
        "{} acknowledged puts; roots agreed {:?} after the writers stopped",
        acknowledged.len(),
        started.elapsed()
    );
    for node in nodes.iter() {
        let held = exported(node);
        for key in &acknowledged {
            let want = (key.clone(), format!("v-{key}"));
            assert!(held.contains(&want), "{} lost {key}", node.listen);
        }
    }
    for node in nodes.iter_mut() {
        node.stop();
    }
}

#[test]
fn three_serving_nodes_written_through_the_cli_converge_and_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let listen: Vec<String> = (0..NODES)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let launchers = vec![Launcher::default(); NODES];
    let mut nodes = cluster(dir.path(), &launchers, &listen, |_, j| listen[j].clone());
    written_killed_and_converged(&mut nodes);
}

/// Three network namespaces joined pairwise by veth links (10.78.P.1/.2 on the
/// link of pair P), each link with netem latency and loss when the kernel has it.
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    fn create() -> Namespaces {
        let names: Vec<String> = (0..NODES).map(|i| format!("synctree-soak-{i}")).collect();
        for name in &names {
            let _ = ip(&["netns", "del", name]);
            assert!(
                ip(&["netns", "add", name]),
                "ip netns add {name} (root needed)"
            );
            ip(&["-n", name, "link", "set", "lo", "up"]);
        }
        for (i, j) in pairs() {
            let (a, b) = (format!("st{i}{j}a"), format!("st{i}{j}b"));
            assert!(ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]));
            for (end, ns, host) in [(&a, &names[i], 1), (&b, &names[j], 2)] {
                assert!(ip(&["link", "set", end, "netns", ns]));
                let addr = format!("{}/24", link_addr(i, j, host));
                assert!(ip(&["-n", ns, "addr", "add", &addr, "dev", end]));
                assert!(ip(&["-n", ns, "link", "set", end, "up"]));
                let netem = [
                    "netns", "exec", ns, "tc", "qdisc", "add", "dev", end, "root", "netem",
                ];
                let delayed = Command::new("ip")
                    .args(netem)
                    .args(["delay", "20ms", "5ms", "loss", "2%"])
                    .status()
                    .is_ok_and(|s| s.success());
                if !delayed {
                    println!("netem unavailable on {end}: this link has no added latency or loss");
                }
            }
        }
        Namespaces { names }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn pairs() -> impl Iterator<Item = (usize, usize)> {
    (0..NODES).flat_map(|i| (i + 1..NODES).map(move |j| (i, j)))
}

/// The address of `host` (1: the lower node, 2: the higher) on the link of `i`–`j`.
fn link_addr(i: usize, j: usize, host: u8) -> String {
    format!("10.78.{}.{host}", i * NODES + j)
}

#[test]
#[ignore = "needs root and iproute2; netem where the kernel has it"]
fn three_nodes_in_network_namespaces_converge_under_latency_and_loss() {
    let dir = tempfile::tempdir().unwrap();
    let namespaces = Namespaces::create();
    let launchers: Vec<Launcher> = namespaces
        .names
        .iter()
        .map(|n| Launcher::in_netns(n))
        .collect();
    let listen = vec![format!("0.0.0.0:{NETNS_PORT}"); NODES];
    let reach = |from: usize, to: usize| {
        let (low, high) = (from.min(to), from.max(to));
        let host = if to == low { 1 } else { 2 };
        format!("{}:{NETNS_PORT}", link_addr(low, high, host))
    };
    let mut nodes = cluster(dir.path(), &launchers, &listen, reach);
    written_killed_and_converged(&mut nodes);
    drop(namespaces);
}
