//! Running the `synctree` binary from the CLI's integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;

use synctree_transport::FramedTransport;
use tokio::net::TcpStream;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_synctree");

/// Runs `synctree --store STORE ARGS…` to completion, with no `RUST_LOG`.
pub(crate) fn synctree(store: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run synctree")
}

/// Runs a command that must succeed; returns its stdout (invalid UTF-8, as a
/// binary value, replaced).
pub(crate) fn ok(store: &Path, args: &[&str]) -> String {
    let out = synctree(store, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail with exit status 1 (or 3: not found) and one
/// `error:` line, no panic text; returns that line.
pub(crate) fn fails(store: &Path, args: &[&str]) -> String {
    let out = synctree(store, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        matches!(out.status.code(), Some(1 | 3)),
        "{args:?}: {:?} {stderr}",
        out.status
    );
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

/// A scripted peer on 127.0.0.1: accepts one connection on its own thread and
/// runtime and hands it, framed, to `script`. Returns the address and the thread,
/// which yields what the script returned.
pub(crate) fn one_connection_peer<F, Fut, R>(script: F) -> (String, JoinHandle<R>)
where
    F: FnOnce(FramedTransport<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = R>,
    R: Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            script(FramedTransport::tcp(stream).unwrap()).await
        })
    });
    (addr, peer)
}

/// A `synctree serve` process on a free port, stopped with SIGTERM.
pub(crate) struct Server {
    child: Child,
    /// The address it listens on for sync sessions.
    pub(crate) addr: String,
    /// `ID@ADDR`, what `sync --peer` takes.
    pub(crate) peer: String,
    /// `quic://ID@ADDR`, with `--listen-quic`.
    pub(crate) quic: Option<String>,
    log: Option<JoinHandle<Vec<String>>>,
}

/// The node ID of the store directory `store` (`synctree id`).
pub(crate) fn id(store: &Path) -> String {
    ok(store, &["id"]).trim().to_owned()
}

impl Server {
    /// Serves `store` over TLS to the node of the store directory `client`.
    pub(crate) fn start(store: &Path, client: &Path) -> Server {
        Server::start_with(store, &["--allow", &id(client)])
    }

    pub(crate) fn start_with(store: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("--store")
            .arg(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut quic = None;
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                if let Some(q) = l.strip_prefix("synctree: quic on ") {
                    quic = Some(q.to_owned());
                }
                l.strip_prefix("synctree: listening on ").map(str::to_owned)
            })
            .expect("serve prints its address");
        let log = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        let peer = format!("{}@{addr}", id(store));
        let quic = quic.map(|q| format!("quic://{}@{q}", id(store)));
        Server {
            child,
            addr,
            peer,
            quic,
            log: Some(log),
        }
    }

    /// Sends SIGTERM and waits: the exit status and the rest of stderr.
    pub(crate) fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(killed.expect("run kill").success());
        let status = self.child.wait().expect("wait for serve");
        let log = self.log.take().map(|h| h.join().expect("log reader"));
        (status, log.unwrap_or_default())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a `serve` child's stderr up to its `listening on` line, byte by byte so
/// the rest stays in the pipe; the address, or `None` when serve exited first.
pub(crate) fn listening_addr(stderr: &mut ChildStderr) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    loop {
        match stderr.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => {
                let text = String::from_utf8_lossy(&line);
                if let Some(addr) = text.strip_prefix("synctree: listening on ") {
                    return Some(addr.to_owned());
                }
                line.clear();
            }
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
}
