//! Running the `synctree` binary from the CLI's integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::Path;
use std::process::{Command, Output, Stdio};
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

/// Runs a command that must succeed; returns its stdout.
pub(crate) fn ok(store: &Path, args: &[&str]) -> String {
    let out = synctree(store, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs a command that must fail with exit status 1 and one `error:` line, no
/// panic text; returns that line.
pub(crate) fn fails(store: &Path, args: &[&str]) -> String {
    let out = synctree(store, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
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
