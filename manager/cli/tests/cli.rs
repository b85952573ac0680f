//! The `synctree` binary end to end: local data commands, export/import, bad
//! input, and two nodes syncing over TCP. Every command runs as its own process
//! on a temporary store directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};

use std::path::Path;
use std::thread::JoinHandle;

use serde_json::Value;
use synctree_primitives::wire::AbortCode;
use synctree_primitives::{StreamMessage, SyncTransport};
use tempfile::TempDir;

mod common;
use common::{Server, fails, id, ok, one_connection_peer};

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).expect("one JSON object")
}

#[test]
fn put_get_del_and_contexts_round_trip() {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    ok(&store, &["put", "users", "alice", "admin"]);
    ok(&store, &["put", "users", "bob", "guest"]);
    assert_eq!(ok(&store, &["get", "users", "alice"]), "admin\n");
    ok(&store, &["put", "users", "alice", "owner"]);
    assert_eq!(ok(&store, &["get", "users", "alice"]), "owner\n");
    ok(&store, &["del", "users", "bob"]);
    assert!(fails(&store, &["get", "users", "bob"]).contains("deleted"));
    ok(&store, &["put", "users", "bob", "back"]);
    assert_eq!(ok(&store, &["get", "users", "bob"]), "back\n");
    ok(&store, &["put", "groups", "admins", "alice"]);
    assert_eq!(ok(&store, &["contexts"]), "groups\nusers\n");
    let root = json(&ok(&store, &["root", "users", "--json", "--verify"]));
    assert_eq!(root["entries"], 2);
    assert_eq!(root["verified"], true);
    let node_id = std::fs::read_to_string(store.join("node-id")).unwrap();
    assert_eq!(node_id.len(), 17, "{node_id:?}");
}

#[test]
fn gen_is_deterministic_and_local_writes_beat_it() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for store in [&a, &b] {
        ok(store, &["gen", "ctx", "--entries", "300", "--seed", "9"]);
    }
    let root = |s: &Path| json(&ok(s, &["root", "ctx", "--json"]));
    assert_eq!(root(&a), root(&b));
    assert_eq!(root(&a)["entries"], 300);
    ok(&a, &["put", "ctx", "gen-9-0000000007", "mine"]);
    ok(&a, &["gen", "ctx", "--entries", "300", "--seed", "9"]);
    assert_eq!(ok(&a, &["get", "ctx", "gen-9-0000000007"]), "mine\n");
}

#[test]
fn export_then_import_gives_the_same_root() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&a, &["gen", "ctx", "--entries", "200", "--seed", "4"]);
    ok(&a, &["put", "ctx", "text", "line one\nline \"two\""]);
    ok(&a, &["del", "ctx", "gen-4-0000000003"]);
    let binary = dir.path().join("binary.jsonl");
    let line =
        r#"{"key":"/wA=","value":"AAEC","encoding":"base64","hlc":5,"node":7,"tombstone":false}"#;
    std::fs::write(&binary, format!("{line}\n\n")).unwrap();
    ok(&a, &["import", "ctx", binary.to_str().unwrap()]);

    let exported = ok(&a, &["export", "ctx"]);
    assert_eq!(exported.lines().count(), 202);
    assert!(exported.contains(line), "binary entries export as base64");
    let file = dir.path().join("ctx.jsonl");
    std::fs::write(&file, &exported).unwrap();
    ok(&b, &["import", "ctx", file.to_str().unwrap()]);
    let root = |s: &Path| json(&ok(s, &["root", "ctx", "--json", "--verify"]));
    assert_eq!(root(&a), root(&b));
    assert_eq!(ok(&b, &["export", "ctx"]), exported);
    assert!(fails(&b, &["get", "ctx", "gen-4-0000000003"]).contains("deleted"));

    // Versions are preserved: re-importing an older version changes nothing.
    let old =
        r#"{"key":"text","value":"old","encoding":"utf8","hlc":1,"node":1,"tombstone":false}"#;
    std::fs::write(&file, old).unwrap();
    ok(&b, &["import", "ctx", file.to_str().unwrap()]);
    assert_eq!(root(&a), root(&b));
}

#[test]
fn bad_input_fails_with_one_line() {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    let missing = dir.path().join("missing");
    assert!(fails(&missing, &["get", "ctx", "k"]).contains("no store at"));
    assert!(fails(&missing, &["root", "ctx"]).contains("no store at"));
    ok(&store, &["put", "ctx", "k", "v"]);
    assert!(fails(&store, &["get", "nope", "k"]).contains("unknown context `nope`"));
    assert!(fails(&store, &["root", "nope", "--verify"]).contains("unknown context"));
    assert!(fails(&store, &["export", "nope"]).contains("unknown context"));
    assert!(fails(&store, &["get", "ctx", "other"]).contains("no key `other`"));
    assert!(fails(&store, &["put", "", "k", "v"]).contains("invalid context name"));
    let huge = ["gen", "ctx", "--entries", "1", "--seed", "1"];
    let huge = [&huge[..], &["--value-size", "100000000"]].concat();
    assert!(fails(&store, &huge).contains("value bytes"));

    let before = ok(&store, &["root", "ctx", "--json"]);
    let bad = dir.path().join("bad.jsonl");
    let good = r#"{"key":"a","value":"b","encoding":"utf8","hlc":1,"node":1,"tombstone":false}"#;
    std::fs::write(&bad, format!("{good}\n{{\"key\": 1}}\n")).unwrap();
    let line = fails(&store, &["import", "ctx", bad.to_str().unwrap()]);
    assert!(line.contains("line 2"), "{line}");
    assert_eq!(
        ok(&store, &["root", "ctx", "--json"]),
        before,
        "nothing applied"
    );
    let absent = dir.path().join("absent.jsonl");
    assert!(fails(&store, &["import", "ctx", absent.to_str().unwrap()]).contains("cannot read"));

    std::fs::write(store.join("node-id"), "not an id\n").unwrap();
    assert!(fails(&store, &["put", "ctx", "k", "v"]).contains("node-id is corrupt"));

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join("synctree.redb"), vec![0x5a; 8192]).unwrap();
    assert!(fails(&corrupt, &["root", "ctx"]).contains("cannot open the store"));
}

#[test]
fn unreachable_or_foreign_peers_fail_with_one_line() {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    ok(&store, &["put", "ctx", "k", "v"]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let sync = |addr: &str| {
        let args = ["sync", "--peer", addr, "--context", "ctx"];
        fails(&store, &[&args[..], &["--insecure-plaintext"]].concat())
    };
    assert!(sync(&addr).contains("cannot connect"));

    let (addr, peer) = foreign_peer();
    let line = sync(&addr);
    assert!(line.contains("UnsupportedVersion"), "{line}");
    peer.join().unwrap();
}

/// A peer of a newer wire version: it answers the first frame with the
/// `UNSUPPORTED_VERSION` abort a newer node sends to an older one.
fn foreign_peer() -> (String, JoinHandle<()>) {
    one_connection_peer(|mut transport| async move {
        let _first = transport.recv().await;
        let abort = StreamMessage::abort(AbortCode::UnsupportedVersion, "this node speaks 99");
        let _ = transport.send(&abort).await;
        let _ = transport.close().await;
    })
}

/// The README's "Run two nodes" section, with port 0 instead of a fixed port.
#[test]
fn two_nodes_converge_over_tcp() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("node-a"), dir.path().join("node-b"));
    ok(&a, &["gen", "ctx", "--entries", "5000", "--seed", "1"]);
    ok(&a, &["gen", "ctx", "--entries", "50", "--seed", "2"]);
    ok(&b, &["gen", "ctx", "--entries", "5000", "--seed", "1"]);
    ok(&b, &["gen", "ctx", "--entries", "50", "--seed", "3"]);

    // Each node's ID (from its key, created at first use), given to the other.
    let (id_a, id_b) = (id(&a), id(&b));
    assert_eq!(id(&a), id_a, "the ID is stable");
    assert_ne!(id_a, id_b);
    let server = Server::start_with(&a, &["--allow", &id_b]);
    // While `serve` holds the store, commands go through its API.
    let held = json(&ok(&a, &["root", "ctx", "--json"]));
    assert_eq!(held["entries"], 5050, "{held}");
    assert_eq!(id(&a), id_a, "`id` works while serve holds the store");
    let peer = format!("{id_a}@{}", server.addr);
    let report = json(&ok(
        &b,
        &["sync", "--peer", &peer, "--context", "ctx", "--json"],
    ));
    let (status, log) = server.stop();
    assert!(status.success(), "serve exited with {status}: {log:?}");

    assert_eq!(report["converged"], true, "{report}");
    assert_eq!(report["root_local"], report["root_remote"], "{report}");
    assert_eq!(
        (
            report["entries_pulled"].as_u64(),
            report["entries_pushed"].as_u64()
        ),
        (Some(50), Some(50))
    );
    for key in ["root_a", "root_b", "bytes_sent", "rounds", "duration_ms"] {
        assert_eq!(
            report.get(key).is_some(),
            !key.starts_with("root_"),
            "{key}"
        );
    }
    let root = |s: &Path| json(&ok(s, &["root", "ctx", "--json", "--verify"]));
    let (root_a, root_b) = (root(&a), root(&b));
    assert_eq!(root_a, root_b);
    assert_eq!(root_a["entries"], 5100);
    assert_eq!(root_a["root"], report["root_local"]);
    assert_eq!(root_a["verified"], true);
    // A second sync finds nothing to do.
    let server = Server::start(&a, &b);
    let again = json(&ok(
        &b,
        &["sync", "--peer", &server.peer, "--context", "ctx", "--json"],
    ));
    assert_eq!(again["protocol"], "none", "{again}");
    assert!(server.stop().0.success());
}

#[test]
fn serve_exposes_prometheus_metrics_that_count_served_sessions() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("node-a"), dir.path().join("node-b"));
    ok(&a, &["gen", "ctx", "--entries", "100", "--seed", "1"]);
    ok(&b, &["gen", "ctx", "--entries", "10", "--seed", "2"]);
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let server = Server::start_with(&a, &["--metrics", &metrics, "--allow", &id(&b)]);
    ok(&b, &["sync", "--peer", &server.peer, "--context", "ctx"]);
    let scrape = || {
        let mut stream = std::net::TcpStream::connect(&metrics).expect("metrics listener");
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        body
    };
    // The session is recorded when the server's task finishes it.
    let mut body = scrape();
    for _ in 0..100 {
        if body.contains("synctree_served_sessions_total") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        body = scrape();
    }
    assert!(body.contains("200 OK"), "{body}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("synctree_served_sessions_total")
                && l.contains("outcome=\"session\"")
                && l.ends_with(" 1")),
        "{body}"
    );
    assert!(server.stop().0.success());
}

#[test]
fn id_is_stable_printed_as_json_too_and_its_key_is_owner_only() {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    let first = id(&store);
    assert_eq!(first.len(), 63, "{first}");
    assert_eq!(first.matches('-').count(), 7, "{first}");
    let object = json(&ok(&store, &["id", "--json"]));
    assert_eq!(object["id"], first.as_str());
    assert_eq!(id(&store), first);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(store.join("node.key")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn a_node_not_allowed_or_a_peer_without_its_id_fails_with_one_line() {
    let dir = TempDir::new().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    ok(&a, &["put", "ctx", "k", "from a"]);
    ok(&c, &["put", "ctx", "k2", "from a stranger"]);
    let server = Server::start(&a, &b);
    let line = fails(&c, &["sync", "--peer", &server.peer, "--context", "ctx"]);
    assert!(line.contains("sync of `ctx`"), "{line}");
    let line = fails(&c, &["sync", "--peer", &server.addr, "--context", "ctx"]);
    assert!(line.contains("ID@HOST:PORT"), "{line}");
    // Expecting another node's ID at this address: the server is refused.
    let wrong = format!("{}@{}", id(&b), server.addr);
    let line = fails(&b, &["sync", "--peer", &wrong, "--context", "ctx"]);
    assert!(line.contains("handshake"), "{line}");
    let (status, log) = server.stop();
    assert!(status.success(), "{log:?}");
    assert!(
        log.iter().any(|l| l.contains("2 failed the handshake")),
        "{log:?}"
    );
    assert!(fails(&a, &["get", "ctx", "k2"]).contains("no key"));
}

#[test]
fn two_nodes_sync_over_quic_beside_tcp() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&a, &["gen", "ctx", "--entries", "300", "--seed", "1"]);
    ok(&b, &["gen", "ctx", "--entries", "30", "--seed", "2"]);
    let server = Server::start_with(&a, &["--allow", &id(&b), "--listen-quic", "127.0.0.1:0"]);
    let quic = server.quic.clone().expect("serve prints its QUIC address");
    let report = json(&ok(
        &b,
        &["sync", "--peer", &quic, "--context", "ctx", "--json"],
    ));
    assert_eq!(report["converged"], true, "{report}");
    let again = json(&ok(
        &b,
        &["sync", "--peer", &server.peer, "--context", "ctx", "--json"],
    ));
    assert_eq!(again["protocol"], "none", "{again}");
    assert!(server.stop().0.success());
}

/// The peers file: a read-only peer's push is refused and nothing lands; a peer
/// removed from the file while `serve` runs is refused on its next connection.
#[test]
fn the_peers_file_grants_read_only_access_and_removal_takes_effect() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&a, &["put", "ctx", "on-a", "1"]);
    ok(&b, &["put", "ctx", "on-b", "2"]);
    let peers = a.join("peers");
    std::fs::write(&peers, format!("# b may read only\n{} write=-\n", id(&b))).unwrap();
    let server = Server::start_with(&a, &[]);
    let args = ["sync", "--peer", &server.peer, "--context", "ctx"];
    let forced = [&args[..], &["--protocol", "hash-comparison"]].concat();
    let line = fails(&b, &forced);
    assert!(line.contains("WriteDenied"), "{line}");
    std::fs::write(&peers, "# nobody\n").unwrap();
    let line = fails(&b, &args);
    assert!(line.contains("AccessDenied"), "{line}");
    let (status, log) = server.stop();
    assert!(status.success(), "{log:?}");
    assert!(fails(&a, &["get", "ctx", "on-b"]).contains("no key"));
}
