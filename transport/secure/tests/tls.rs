//! Two nodes over mutually authenticated TLS: the allowlist, the expected server
//! ID, access rules, and what an observer of the wire sees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Server, contains, ctx, manager, recording_relay, store_with};
use synctree_manager::{Access, ContextSet, ManagerError, ProtocolChoice};
use synctree_primitives::wire::AbortCode;
use synctree_primitives::{Entry, NodeId, ProtocolError, ProtocolKind, Store, Version};
use synctree_secure::{AllowList, NodeKey, PeerPolicy, SecureError, tls};

fn keys() -> (NodeKey, NodeKey) {
    (NodeKey::generate().unwrap(), NodeKey::generate().unwrap())
}

fn policy(list: &Arc<AllowList>) -> Arc<dyn PeerPolicy> {
    Arc::clone(list) as Arc<dyn PeerPolicy>
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_nodes_sync_over_tls_and_the_wire_shows_no_key_or_value() {
    let (client_key, server_key) = keys();
    let c = ctx("secret-context");
    let server_store = store_with(&c, 0xB, &["shared", "only-on-server-7f3a"]);
    let allow = AllowList::of([client_key.id()]);
    let server = Server::start(&server_key, policy(&allow), server_store).await;
    let (relay, wire) = recording_relay(server.addr).await;

    let client = manager(store_with(&c, 0xA, &["shared", "only-on-client-91c2"]), 0xA);
    let mut transport = tls::connect(&relay.to_string(), &client_key, server_key.id())
        .await
        .unwrap();
    let report = client
        .sync(&mut transport, &c, ProtocolChoice::Auto)
        .await
        .unwrap();
    assert!(report.converged());
    let root = client.store().summary(&c).unwrap().root;
    assert_eq!(server.store.summary(&c).unwrap().root, root);
    drop(transport);
    server.stop().await;

    let wire = wire.lock().unwrap().clone();
    assert!(
        wire.len() > 1000,
        "the relay saw the session ({} B)",
        wire.len()
    );
    for secret in [
        &b"only-on-server-7f3a"[..],
        b"only-on-client-91c2",
        b"value of shared",
        b"value of only",
        b"secret-context",
    ] {
        assert!(
            !contains(&wire, secret),
            "{:?} in clear",
            String::from_utf8_lossy(secret)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_not_in_the_allowlist_is_refused_during_the_handshake() {
    let (stranger_key, server_key) = keys();
    let c = ctx("c");
    let server_store = store_with(&c, 0xB, &["k"]);
    let before = server_store.summary(&c).unwrap().root;
    let allow = AllowList::of([NodeKey::generate().unwrap().id()]);
    let server = Server::start(&server_key, policy(&allow), server_store).await;

    let stranger = manager(store_with(&c, 0xA, &["overwrite", "k"]), 0xA);
    let addr = server.addr.to_string();
    let refused = match tls::connect(&addr, &stranger_key, server_key.id()).await {
        // TLS 1.3: the client's handshake completes before the server checks its
        // certificate; the refusal (an alert) arrives on the first read.
        Ok(mut transport) => {
            let err = stranger
                .sync(&mut transport, &c, ProtocolChoice::Auto)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    ManagerError::Transport {
                        phase: "handshake",
                        ..
                    }
                ),
                "{err:?}"
            );
            true
        }
        Err(_) => true,
    };
    assert!(refused);
    let store = Arc::clone(&server.store);
    let summary = server.stop().await;
    assert_eq!(summary.handshake_failures, 1, "{summary:?}");
    assert_eq!(store.summary(&c).unwrap().root, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_expecting_one_id_refuses_a_server_presenting_another() {
    let (client_key, impostor_key) = keys();
    let genuine = NodeKey::generate().unwrap();
    let allow = AllowList::of([client_key.id()]);
    let c = ctx("c");
    // The impostor allows the client and sits where the client expects `genuine`.
    let impostor = Server::start(&impostor_key, policy(&allow), store_with(&c, 0xB, &["k"])).await;
    let err = tls::connect(&impostor.addr.to_string(), &client_key, genuine.id())
        .await
        .unwrap_err();
    assert!(matches!(err, SecureError::Handshake { .. }), "{err}");
    let chain = synctree_primitives::error::error_chain(&err);
    assert!(chain.contains(&genuine.id().to_string()), "{chain}");
    impostor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_removed_from_the_allowlist_is_refused_on_its_next_connection() {
    let (client_key, server_key) = keys();
    let c = ctx("c");
    let allow = AllowList::of([client_key.id()]);
    let server = Server::start(&server_key, policy(&allow), store_with(&c, 0xB, &["k"])).await;
    let client = manager(store_with(&c, 0xA, &["k"]), 0xA);
    let addr = server.addr.to_string();

    let mut first = tls::connect(&addr, &client_key, server_key.id())
        .await
        .unwrap();
    assert!(
        client
            .sync(&mut first, &c, ProtocolChoice::Auto)
            .await
            .is_ok()
    );
    allow.remove(&client_key.id());
    let second = match tls::connect(&addr, &client_key, server_key.id()).await {
        Ok(mut transport) => client
            .sync(&mut transport, &c, ProtocolChoice::Auto)
            .await
            .is_ok(),
        Err(_) => false,
    };
    assert!(!second, "a removed peer was served");
    let summary = server.stop().await;
    assert_eq!(summary.handshake_failures, 1, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_peers_push_is_refused_and_leaves_the_store_unchanged() {
    let (client_key, server_key) = keys();
    let c = ctx("c");
    let server_store = store_with(&c, 0xB, &["a", "b"]);
    let before = server_store.summary(&c).unwrap();
    let allow = Arc::new(AllowList::default());
    allow.allow(client_key.id(), Access::read_only());
    let server = Server::start(&server_key, policy(&allow), server_store).await;

    let client = manager(
        store_with(&c, 0xA, &["a", "b", "pushed-1", "pushed-2"]),
        0xA,
    );
    let mut transport = tls::connect(&server.addr.to_string(), &client_key, server_key.id())
        .await
        .unwrap();
    let force = ProtocolChoice::Force(ProtocolKind::HashComparison);
    let err = client.sync(&mut transport, &c, force).await.unwrap_err();
    assert!(
        matches!(
            err.protocol_error(),
            Some(ProtocolError::Aborted {
                code: AbortCode::WriteDenied,
                ..
            })
        ),
        "{err:?}"
    );
    let store = Arc::clone(&server.store);
    server.stop().await;
    let after = store.summary(&c).unwrap();
    assert_eq!(
        (after.root, after.entry_count),
        (before.root, before.entry_count)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_a_peer_may_not_read_is_refused_like_one_that_does_not_exist() {
    let (client_key, server_key) = keys();
    let (open, hidden) = (ctx("open"), ctx("hidden"));
    let server_store = store_with(&hidden, 0xB, &["private"]);
    let x = Entry::put("x", "value of x", Version::new(1 << 20, NodeId(0xB)));
    server_store.apply(&open, vec![x]).unwrap();
    let allow = Arc::new(AllowList::default());
    let only_open = Access {
        read: ContextSet::Only([open.clone()].into()),
        write: ContextSet::All,
    };
    allow.allow(client_key.id(), only_open);
    let server = Server::start(&server_key, policy(&allow), server_store).await;
    let client = manager(store_with(&open, 0xA, &["x"]), 0xA);
    let addr = server.addr.to_string();

    let mut refusals = Vec::new();
    for context in [&hidden, &ctx("never-existed")] {
        let mut transport = tls::connect(&addr, &client_key, server_key.id())
            .await
            .unwrap();
        let err = client
            .sync(&mut transport, context, ProtocolChoice::Auto)
            .await
            .unwrap_err();
        match err.protocol_error() {
            Some(ProtocolError::Aborted { code, .. }) => refusals.push(*code),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        refusals,
        [AbortCode::UnknownContext, AbortCode::UnknownContext]
    );
    let mut transport = tls::connect(&addr, &client_key, server_key.id())
        .await
        .unwrap();
    assert!(
        client
            .sync(&mut transport, &open, ProtocolChoice::Auto)
            .await
            .is_ok()
    );
    server.stop().await;
}

/// The control for the wire test: the same relay does see keys in a plaintext
/// session, so the TLS test's absence of them means something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_sees_keys_in_clear_over_plain_tcp() {
    let c = ctx("c");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let server = Arc::new(manager(store_with(&c, 0xB, &["only-on-server-7f3a"]), 0xB));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let (relay, wire) = recording_relay(target).await;
    let client = manager(store_with(&c, 0xA, &["only-on-client-91c2"]), 0xA);
    let stream = tokio::net::TcpStream::connect(relay).await.unwrap();
    let mut transport = synctree_transport::FramedTransport::tcp(stream).unwrap();
    let report = client.sync(&mut transport, &c, ProtocolChoice::Auto).await;
    assert!(report.unwrap().converged());
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    let wire = wire.lock().unwrap().clone();
    assert!(contains(&wire, b"only-on-server-7f3a") && contains(&wire, b"only-on-client-91c2"));
}

/// Anti-entropy over the secure connector: peers are `ID@ADDR` and
/// `quic://ID@ADDR`, and the records carry that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_syncs_over_the_secure_connector() {
    use synctree_manager::{AntiEntropy, AntiEntropyConfig};
    use synctree_secure::SecureConnector;
    use synctree_secure::quic::QuicServer;

    let (client_key, server_key) = keys();
    let c = ctx("c");
    let allow = AllowList::of([client_key.id()]);
    let server_store = store_with(&c, 0xB, &["on-server"]);
    let server = Server::start(&server_key, policy(&allow), Arc::clone(&server_store)).await;
    let quic =
        QuicServer::bind(&server_key, policy(&allow), "127.0.0.1:0".parse().unwrap()).unwrap();
    let quic_addr = quic.local_addr().unwrap();
    let (stop_quic, quic_stopped) = tokio::sync::oneshot::channel::<()>();
    let quic_task = tokio::spawn(quic.serve(Arc::new(manager(server_store, 0xB)), async {
        let _ = quic_stopped.await;
    }));

    let client = Arc::new(manager(store_with(&c, 0xA, &["on-client"]), 0xA));
    let tls_peer = format!("{}@{}", server_key.id(), server.addr);
    let quic_peer = format!("quic://{}@{quic_addr}", server_key.id());
    let anti_entropy = AntiEntropy::new(
        Arc::clone(&client),
        SecureConnector::new(client_key),
        [tls_peer.clone(), quic_peer.clone()],
        AntiEntropyConfig::default(),
    );
    for peer in [&tls_peer, &quic_peer] {
        let record = anti_entropy.sync_once(&c, peer).await;
        assert_eq!(
            record.outcome,
            synctree_manager::anti_entropy::Outcome::Converged,
            "{record:?}"
        );
        assert_eq!(&record.peer, peer);
    }
    assert_eq!(client.store().summary(&c).unwrap().entry_count, 2);
    server.stop().await;
    let _ = stop_quic.send(());
    quic_task.await.unwrap();
}
