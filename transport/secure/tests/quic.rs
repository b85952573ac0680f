//! Two nodes over QUIC: the same identity and allowlist as TLS over TCP, one
//! connection, several contexts syncing at once on their own streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{ctx, manager, store_with};
use synctree_manager::{ProtocolChoice, SyncManager};
use synctree_primitives::{Store, SyncTransport};
use synctree_secure::quic::{self, QuicClient, QuicServer, QuicSummary};
use synctree_secure::{AllowList, NodeKey, PeerPolicy};
use synctree_store::MemoryStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Server {
    addr: String,
    manager: Arc<SyncManager<MemoryStore>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<QuicSummary>,
}

fn start(key: &NodeKey, policy: Arc<dyn PeerPolicy>, store: Arc<MemoryStore>) -> Server {
    let server = QuicServer::bind(key, policy, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let manager = Arc::new(manager(store, 0xB));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(Arc::clone(&manager), async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        manager,
        stop,
        task,
    }
}

impl Server {
    async fn stop(self) -> QuicSummary {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_contexts_sync_concurrently_over_one_quic_connection() {
    let (client_key, server_key) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
    let contexts: Vec<_> = (0..4).map(|i| ctx(&format!("c{i}"))).collect();
    let (server_store, client_store) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    for (i, c) in contexts.iter().enumerate() {
        let on_server = format!("server-{i}");
        let on_client = format!("client-{i}");
        server_store
            .apply(c, store_with(c, 0xB, &["shared", &on_server]).entries(c))
            .unwrap();
        client_store
            .apply(c, store_with(c, 0xA, &["shared", &on_client]).entries(c))
            .unwrap();
    }
    let server = start(&server_key, AllowList::of([client_key.id()]), server_store);
    let client = Arc::new(manager(client_store, 0xA));
    let connection = Arc::new(
        QuicClient::connect(&server.addr, &client_key, server_key.id())
            .await
            .unwrap(),
    );

    let mut sessions = Vec::new();
    for c in contexts.clone() {
        let (client, connection) = (Arc::clone(&client), Arc::clone(&connection));
        sessions.push(tokio::spawn(async move {
            let mut transport = connection.open().await.unwrap();
            let report = client.sync(&mut transport, &c, ProtocolChoice::Auto).await;
            transport.close().await.unwrap();
            report.unwrap().converged()
        }));
    }
    for session in sessions {
        assert!(session.await.unwrap());
    }
    for c in &contexts {
        let (a, b) = (
            client.store().summary(c).unwrap(),
            server.manager.store().summary(c).unwrap(),
        );
        assert_eq!((a.root, a.entry_count), (b.root, 3));
    }
    Arc::into_inner(connection).unwrap().close().await;
    let summary = server.stop().await;
    assert_eq!(summary.connections, 1, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_refuses_strangers_and_impostors_like_tls() {
    let (client_key, server_key) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
    let c = ctx("c");
    let server_store = store_with(&c, 0xB, &["k"]);
    let before = server_store.summary(&c).unwrap().root;
    let server = start(
        &server_key,
        AllowList::of([NodeKey::generate().unwrap().id()]),
        server_store,
    );

    // A stranger: refused in the handshake, or at the latest on its first read.
    let stranger = manager(store_with(&c, 0xA, &["overwrite"]), 0xA);
    if let Ok(mut transport) = quic::connect(&server.addr, &client_key, server_key.id()).await {
        assert!(
            stranger
                .sync(&mut transport, &c, ProtocolChoice::Auto)
                .await
                .is_err()
        );
    }
    // An impostor: the client expects another ID than the server's.
    let other = NodeKey::generate().unwrap().id();
    assert!(
        quic::connect(&server.addr, &client_key, other)
            .await
            .is_err()
    );

    assert_eq!(server.manager.store().summary(&c).unwrap().root, before);
    let summary = server.stop().await;
    assert_eq!(summary.connections, 0, "{summary:?}");
}
