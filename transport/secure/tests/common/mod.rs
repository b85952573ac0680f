//! Shared helpers of the secure transport tests: a serving node over TLS, and a
//! recording TCP relay.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use synctree_manager::{ManagerConfig, ServeSummary, SyncManager};
use synctree_primitives::{ContextId, Entry, Identity, NodeId, Store, Version};
use synctree_secure::{NodeKey, PeerPolicy, TlsAcceptor};
use synctree_store::MemoryStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn ctx(name: &str) -> ContextId {
    ContextId::new(name).unwrap()
}

pub fn store_with(context: &ContextId, writer: u64, keys: &[&str]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let entries = keys
        .iter()
        .map(|k| {
            Entry::put(
                k.to_string(),
                format!("value of {k}"),
                Version::new(1 << 20, NodeId(writer)),
            )
        })
        .collect();
    store.apply(context, entries).unwrap();
    store
}

pub fn manager(store: Arc<MemoryStore>, writer: u64) -> SyncManager<MemoryStore> {
    SyncManager::new(
        store,
        Identity::new(NodeId(writer)),
        ManagerConfig::default(),
    )
}

/// A node serving `store` over TLS as `key`, admitting whom `policy` allows.
pub struct Server {
    pub addr: SocketAddr,
    pub store: Arc<MemoryStore>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<ServeSummary>>,
}

impl Server {
    pub async fn start(
        key: &NodeKey,
        policy: Arc<dyn PeerPolicy>,
        store: Arc<MemoryStore>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = Arc::new(TlsAcceptor::new(key, policy).unwrap());
        let manager = Arc::new(manager(Arc::clone(&store), 0xB));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(manager.serve_with(listener, acceptor, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            store,
            stop,
            task,
        }
    }

    pub async fn stop(self) -> ServeSummary {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap()
    }
}

/// A TCP relay to `target` that records every byte it forwards, both ways.
pub async fn recording_relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let wire = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&wire);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(target).await.unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, Arc::clone(&recorded)));
            tokio::spawn(pump(sr, cw, Arc::clone(&recorded)));
        }
    });
    (addr, wire)
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    wire: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        wire.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
