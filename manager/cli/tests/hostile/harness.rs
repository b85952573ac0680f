//! The fixture every server-side case uses: a real `synctree serve` on a
//! generated store, and [`Served::survived`], the checks (b)–(e) run after each
//! attack: the server still answers a handshake, its RSS is bounded, a legitimate
//! `synctree sync` from a fresh store converges to the expected root, and the
//! server's own store (read after stopping it) holds exactly that root.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use serde_json::Value;
use tempfile::TempDir;

use super::wire::{self, Raw};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_synctree");

/// The context every fixture serves.
pub(crate) use crate::common::{ok, synctree};

pub(crate) const CTX: &str = "ctx";

/// Generous bound on the server's resident memory after an attack.
pub(crate) const RSS_LIMIT_BYTES: u64 = 300 * 1024 * 1024;

/// `root ctx --json` of a store, parsed.
pub(crate) fn root(store: &Path) -> Value {
    serde_json::from_str(ok(store, &["root", CTX, "--json"]).trim()).expect("root json")
}

/// Resident set size of a process, from `/proc/<pid>/status`.
pub(crate) fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// How the fixture's store is generated.
#[derive(Clone, Copy)]
pub(crate) struct Gen {
    pub(crate) entries: u64,
    pub(crate) value_size: usize,
}

impl Default for Gen {
    fn default() -> Self {
        Gen {
            entries: 500,
            value_size: 64,
        }
    }
}

/// How a fixture serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// TLS 1.3, the attacker an allowlisted peer.
    Tls,
    /// `--insecure-plaintext`.
    Plaintext,
}

/// A store filled with `gen`, served by a running `synctree serve`.
pub(crate) struct Served {
    pub(crate) dir: TempDir,
    pub(crate) store: PathBuf,
    pub(crate) addr: String,
    /// What `sync --peer` takes: `ID@ADDR` over TLS, the address in plaintext.
    pub(crate) peer: String,
    mode: Mode,
    pub(crate) root_before: Value,
    child: Child,
    log: Option<JoinHandle<Vec<u8>>>,
}

impl Served {
    /// The default fixture: 500 entries of 64 bytes, logging at `warn`.
    pub(crate) fn start() -> Served {
        Served::start_with(Gen::default(), None)
    }

    /// The default fixture over plain TCP (`serve --insecure-plaintext`).
    pub(crate) fn start_plaintext() -> Served {
        Served::launch(Gen::default(), None, Mode::Plaintext)
    }

    /// A fixture with its own data and `RUST_LOG` (None: the CLI default).
    pub(crate) fn start_with(data: Gen, rust_log: Option<&str>) -> Served {
        Served::launch(data, rust_log, Mode::Tls)
    }

    /// Generates the store and starts `serve`: over TLS, allowing this test
    /// process's client and the fresh store of the legitimate sync, or plaintext.
    fn launch(data: Gen, rust_log: Option<&str>, mode: Mode) -> Served {
        let dir = TempDir::new().expect("temp dir");
        let store = dir.path().join("server");
        let (entries, size) = (data.entries.to_string(), data.value_size.to_string());
        let args = ["gen", CTX, "--entries", &entries, "--seed", "1"];
        ok(&store, &[&args[..], &["--value-size", &size]].concat());
        let root_before = root(&store);
        let fresh = dir.path().join("fresh-client");
        let security = match mode {
            Mode::Plaintext => vec!["--insecure-plaintext".to_owned()],
            Mode::Tls => {
                let client = wire::client_key().id().to_string();
                let legit = ok(&fresh, &["id"]).trim().to_owned();
                vec!["--allow".into(), client, "--allow".into(), legit]
            }
        };
        let mut command = Command::new(BIN);
        command
            .arg("--store")
            .arg(&store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&security)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let mut child = command.spawn().expect("start serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let addr = read_listening_line(&mut stderr);
        let peer = match mode {
            Mode::Plaintext => addr.clone(),
            Mode::Tls => {
                let id = ok(&store, &["id"]).trim().to_owned();
                wire::register_tls(&addr, id.parse().expect("server id"));
                format!("{id}@{addr}")
            }
        };
        let log = std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = stderr.read_to_end(&mut rest);
            rest
        });
        Served {
            dir,
            store,
            addr,
            peer,
            mode,
            root_before,
            child,
            log: Some(log),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A raw hostile connection to the server.
    pub(crate) fn raw(&self) -> Raw {
        wire::block_on(Raw::connect(&self.addr))
    }

    /// Checks (b)–(e) with the store expected unchanged; returns the server's log.
    pub(crate) fn survived(&mut self) -> Vec<u8> {
        let expected = self.root_before.clone();
        self.survived_with(&expected)
    }

    /// Checks (b)–(e) against an expected root; returns the server's log
    /// (everything it wrote on stderr after its `listening on` line).
    pub(crate) fn survived_with(&mut self, expected: &Value) -> Vec<u8> {
        assert!(
            wire::block_on(wire::handshake_answered(&self.addr)),
            "(b) the server no longer answers a handshake"
        );
        let rss = rss_bytes(self.pid());
        assert!(rss < RSS_LIMIT_BYTES, "(d) server RSS {rss} bytes");
        let fresh = self.dir.path().join("fresh-client");
        let args = ["sync", "--peer", &self.peer, "--context", CTX, "--json"];
        let plaintext: &[&str] = match self.mode {
            Mode::Plaintext => &["--insecure-plaintext"],
            Mode::Tls => &[],
        };
        let report = ok(&fresh, &[&args[..], plaintext].concat());
        let report: Value = serde_json::from_str(report.trim()).expect("sync report");
        assert_eq!(report["converged"], true, "(e) {report}");
        assert_eq!(&root(&fresh), expected, "(e) the fresh client's root");
        let log = self.stop();
        assert_eq!(&root(&self.store), expected, "(c) the server's store");
        log
    }

    /// Sends SIGTERM, waits for a clean exit, returns the rest of stderr.
    pub(crate) fn stop(&mut self) -> Vec<u8> {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(killed.expect("run kill").success());
        let status = self.child.wait().expect("wait for serve");
        let log = self.log.take().map(|h| h.join().expect("log reader"));
        let log = log.unwrap_or_default();
        assert!(
            status.success(),
            "serve exited with {status}: {}",
            String::from_utf8_lossy(&log)
        );
        log
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_listening_line(stderr: &mut impl BufRead) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let read = stderr.read_line(&mut line).expect("serve stderr");
        assert!(read > 0, "serve exited before listening");
        if let Some(addr) = line.trim_end().strip_prefix("synctree: listening on ") {
            return addr.to_owned();
        }
    }
}
