//! The running node's client API and config: commands on a store held by `serve`
//! go through the API; beyond loopback it requires the token; `sync` of a context
//! neither side holds fails; `config` prints the file merged with the defaults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{Server, fails, id, ok};
use tempfile::TempDir;

/// Sends one raw HTTP/1.1 request; the status line of the answer.
fn status_line(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// The API address `serve` published in `DIR/api.json`.
fn api_addr(store: &std::path::Path) -> String {
    let text = std::fs::read_to_string(store.join("api.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["addr"].as_str().unwrap().replace("0.0.0.0", "127.0.0.1")
}

#[test]
fn a_held_store_is_written_and_read_through_the_api() {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    ok(&store, &["put", "ctx", "before", "1"]);
    let server = Server::start_with(&store, &[]);
    ok(&store, &["put", "ctx", "during", "2"]);
    ok(&store, &["put", "other", "a/b c", "3"]);
    assert_eq!(ok(&store, &["get", "ctx", "during"]), "2\n");
    assert_eq!(ok(&store, &["get", "other", "a/b c"]), "3\n");
    ok(&store, &["del", "ctx", "before"]);
    assert!(fails(&store, &["get", "ctx", "before"]).contains("deleted"));
    assert!(fails(&store, &["get", "ctx", "nothing"]).contains("no key `nothing`"));
    assert_eq!(ok(&store, &["contexts"]), "ctx\nother\n");
    let exported = ok(&store, &["export", "ctx"]);
    assert_eq!(exported.lines().count(), 2, "{exported}");
    let status = ok(&store, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    assert_eq!(status["serving"], true);
    assert_eq!(status["contexts"].as_array().map(Vec::len), Some(2));
    let (code, _) = server.stop();
    assert!(code.success());
    // The node is gone: the same commands open the store directly.
    assert_eq!(ok(&store, &["get", "ctx", "during"]), "2\n");
    assert!(!store.join("api.json").exists());
}

#[test]
fn beyond_loopback_the_api_requires_the_token() {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    ok(&store, &["put", "ctx", "k", "v"]);
    let server = Server::start_with(&store, &["--api", "0.0.0.0:0"]);
    let addr = api_addr(&store);
    let request = |auth: &str| {
        format!("GET /v1/contexts HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
    };
    assert!(status_line(&addr, &request("")).contains(" 401 "));
    assert!(status_line(&addr, &request("Authorization: Bearer wrong\r\n")).contains(" 401 "));
    let token = std::fs::read_to_string(store.join("api-token")).unwrap();
    let good = format!("Authorization: Bearer {}\r\n", token.trim());
    assert!(status_line(&addr, &request(&good)).contains(" 200 "));
    // The CLI reads the token from the store directory.
    assert_eq!(ok(&store, &["get", "ctx", "k"]), "v\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.join("api-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(server.stop().0.success());
}

#[test]
fn syncing_a_context_neither_node_holds_fails() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&a, &["put", "ctx", "k", "v"]);
    ok(&b, &["put", "ctx", "k", "v"]);
    let server = Server::start(&a, &b);
    let line = fails(&b, &["sync", "--peer", &server.peer, "--context", "nosuch"]);
    assert!(line.contains("neither this node nor"), "{line}");
    // Without --context every context either node holds is synced: `only-a`
    // comes from the peer's list.
    ok(&a, &["put", "only-a", "k", "v"]);
    let reports = ok(&b, &["sync", "--peer", &server.peer, "--json"]);
    let contexts: Vec<String> = reports
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["context"].to_string())
        .collect();
    assert_eq!(contexts, [r#""ctx""#, r#""only-a""#], "{reports}");
    assert!(server.stop().0.success());
    assert_eq!(ok(&b, &["get", "only-a", "k"]), "v\n");
}

#[test]
fn a_peer_lists_only_the_contexts_it_may_read() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&a, &["put", "open", "k", "v"]);
    ok(&a, &["put", "secret", "k", "v"]);
    std::fs::write(a.join("peers"), format!("{} read=open\n", id(&b))).unwrap();
    let server = Server::start_with(&a, &[]);
    let reports = ok(&b, &["sync", "--peer", &server.peer, "--json"]);
    assert_eq!(reports.lines().count(), 1, "{reports}");
    assert!(!reports.contains("secret"), "{reports}");
    assert!(server.stop().0.success());
    assert_eq!(ok(&b, &["contexts"]), "open\n");
}

#[test]
fn config_prints_the_file_merged_with_the_defaults_and_refuses_unknown_keys() {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    std::fs::create_dir_all(&store).unwrap();
    let file = "listen = \"127.0.0.1:7000\"\npeers = [\"127.0.0.1:7001\"]\n";
    std::fs::write(store.join("config.toml"), file).unwrap();
    let printed = ok(&store, &["config", "--json"]);
    let v: serde_json::Value = serde_json::from_str(printed.trim()).unwrap();
    assert_eq!(v["listen"], "127.0.0.1:7000");
    assert_eq!(v["peers"][0], "127.0.0.1:7001");
    assert_eq!(v["interval_secs"], 30.0);
    std::fs::write(store.join("config.toml"), "lisen = 1\n").unwrap();
    assert!(fails(&store, &["config"]).contains("unknown field `lisen`"));
    assert!(fails(&store, &["serve"]).contains("not a valid config"));
}

#[test]
fn errors_name_what_to_fix_and_not_found_has_its_own_exit_status() {
    let dir = TempDir::new().unwrap();
    // A store path that is a file; an empty database file (refused, left as is).
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    assert!(fails(&file, &["put", "c", "k", "v"]).contains("is a file, not a store directory"));
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("synctree.redb"), "").unwrap();
    assert!(fails(&empty, &["put", "c", "k", "v"]).contains("is an empty file, not a store"));
    assert_eq!(
        std::fs::metadata(empty.join("synctree.redb"))
            .unwrap()
            .len(),
        0
    );
    // `demo` checks its value size before building anything.
    assert!(fails(&empty, &["demo", "--value-size", "100000000"]).contains("exceeds the limit"));

    // Not found: exit status 3, and under --json the error is JSON on stdout.
    let store = dir.path().join("node");
    ok(&store, &["put", "c", "k", "v"]);
    let out = common::synctree(&store, &["get", "c", "missing", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["kind"], "not_found", "{error}");
    assert!(out.stderr.is_empty());
    let written = ok(&store, &["put", "c", "k2", "v2", "--json"]);
    let entry: serde_json::Value = serde_json::from_str(written.trim()).unwrap();
    assert_eq!(
        (entry["key"].as_str(), entry["value"].as_str()),
        (Some("k2"), Some("v2"))
    );
    assert_eq!(
        ok(&store, &["contexts", "--json"]).trim(),
        r#"{"contexts":["c"]}"#
    );
}

#[test]
fn a_peer_that_does_not_speak_synctree_is_named() {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    ok(&store, &["put", "c", "k", "v"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let http = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let args = [
        "sync",
        "--peer",
        &addr,
        "--insecure-plaintext",
        "--context",
        "c",
    ];
    let line = fails(&store, &args);
    assert!(line.contains("not a synctree node (got HTTP?)"), "{line}");
    http.join().unwrap();
}
