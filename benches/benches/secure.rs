//! Criterion: what the secure transports cost on loopback.
//!
//! - `handshake/{plain,tls,quic}`: connect and run one handshake-only session
//!   (identical replicas of 10^4 entries: the handshake exchange finds nothing to
//!   do), against a serving `SyncManager` (`serve`, `serve_with(TlsAcceptor)`,
//!   `QuicServer::serve`). TLS and QUIC include the mutual TLS 1.3 handshake
//!   (two Ed25519 signatures and two verifications, X25519).
//! - Before the timings it prints, once per transport, the bytes a session moves
//!   on the wire beside the frame bytes the session counts itself: for TCP the
//!   payload through a counting relay, for QUIC the UDP payload from quinn's
//!   connection stats. Two sessions: handshake only, and 200 scattered
//!   differences over 10^4 shared entries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use synctree_benches::context;
use synctree_benches::workload::{Base, Placement, Workload};
use synctree_manager::{ManagerConfig, ProtocolChoice, SyncManager};
use synctree_primitives::{Identity, NodeId, SyncTransport};
use synctree_secure::quic::{QuicClient, QuicServer};
use synctree_secure::{AllowList, NodeKey, PeerPolicy, TlsAcceptor, tls};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// Shared entries of both replicas.
const BASE: u64 = 10_000;
/// Differences of the second byte count.
const DIFF: u64 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Plain,
    Tls,
    Quic,
}

const WIRES: [(Wire, &str); 3] = [
    (Wire::Plain, "plain"),
    (Wire::Tls, "tls"),
    (Wire::Quic, "quic"),
];

/// Three serving endpoints of one replica, and the client's identity.
struct Servers {
    plain: String,
    tls: String,
    quic: String,
    server_id: synctree_secure::PeerId,
    client_key: NodeKey,
}

fn runtime() -> Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no tokio runtime: {e}"),
    }
}

fn ok<T, E: std::fmt::Debug>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

fn manager(store: Arc<MemoryStore>, id: u64) -> Arc<SyncManager<MemoryStore>> {
    Arc::new(SyncManager::new(
        store,
        Identity::new(NodeId(id)),
        ManagerConfig::default(),
    ))
}

/// Serves `store` on plain TCP, TLS and QUIC (running for the rest of the process).
async fn serve(store: Arc<MemoryStore>) -> Servers {
    let (server_key, client_key) = (
        ok("key", NodeKey::generate()),
        ok("key", NodeKey::generate()),
    );
    let policy: Arc<dyn PeerPolicy> = AllowList::of([client_key.id()]);
    let server = manager(store, 0xB);
    let forever = std::future::pending::<()>;
    let plain = ok("bind", TcpListener::bind("127.0.0.1:0").await);
    let tls_listener = ok("bind", TcpListener::bind("127.0.0.1:0").await);
    let acceptor = Arc::new(ok(
        "acceptor",
        TlsAcceptor::new(&server_key, Arc::clone(&policy)),
    ));
    let quic = ok(
        "quic",
        QuicServer::bind(&server_key, policy, ok("addr", "127.0.0.1:0".parse())),
    );
    let servers = Servers {
        plain: ok("addr", plain.local_addr()).to_string(),
        tls: ok("addr", tls_listener.local_addr()).to_string(),
        quic: ok("addr", quic.local_addr()).to_string(),
        server_id: server_key.id(),
        client_key,
    };
    tokio::spawn(Arc::clone(&server).serve(plain, forever()));
    tokio::spawn(Arc::clone(&server).serve_with(tls_listener, acceptor, forever()));
    tokio::spawn(quic.serve(server, forever()));
    servers
}

/// One session of `client` with the servers over `wire` at `addr`: the time to
/// connect and finish the session, its frame bytes, and the bytes on the wire
/// (QUIC only; TCP counts them in the relay).
async fn session(
    servers: &Servers,
    wire: Wire,
    addr: &str,
    client: &SyncManager<MemoryStore>,
) -> (Duration, u64, Option<u64>) {
    let c = context();
    let started = Instant::now();
    let report = match wire {
        Wire::Plain => {
            let stream = ok("connect", TcpStream::connect(addr).await);
            let mut t = ok("frame", FramedTransport::tcp(stream));
            ok("sync", client.sync(&mut t, &c, ProtocolChoice::Auto).await)
        }
        Wire::Tls => {
            let mut t = ok(
                "tls",
                tls::connect(addr, &servers.client_key, servers.server_id).await,
            );
            ok("sync", client.sync(&mut t, &c, ProtocolChoice::Auto).await)
        }
        Wire::Quic => {
            let quic = ok(
                "quic",
                QuicClient::connect(addr, &servers.client_key, servers.server_id).await,
            );
            let mut t = ok("stream", quic.open().await);
            let report = ok("sync", client.sync(&mut t, &c, ProtocolChoice::Auto).await);
            let elapsed = started.elapsed();
            let _ = t.close().await;
            let udp = quic.udp_bytes();
            quic.close().await;
            let frames = report.stats_bytes();
            return (elapsed, frames, Some(udp));
        }
    };
    (started.elapsed(), report.stats_bytes(), None)
}

/// Frame bytes of a session report, both directions.
trait FrameBytes {
    fn stats_bytes(&self) -> u64;
}

impl FrameBytes for synctree_manager::SessionReport {
    fn stats_bytes(&self) -> u64 {
        let json = self.json();
        json.bytes_sent + json.bytes_received
    }
}

/// A TCP relay to `target` counting the bytes it forwards both ways.
async fn counting_relay(target: String) -> (String, Arc<AtomicU64>) {
    let listener = ok("bind", TcpListener::bind("127.0.0.1:0").await);
    let addr = ok("addr", listener.local_addr()).to_string();
    let count = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, Arc::clone(&counted)));
            tokio::spawn(pump(sr, cw, Arc::clone(&counted)));
        }
    });
    (addr, count)
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}

fn addr_of(servers: &Servers, wire: Wire) -> &str {
    match wire {
        Wire::Plain => &servers.plain,
        Wire::Tls => &servers.tls,
        Wire::Quic => &servers.quic,
    }
}

/// Prints the wire bytes of a handshake-only and a 200-difference session.
fn print_bytes(rt: &Runtime) {
    for (label, d) in [("handshake only", 0), ("200 differences", DIFF)] {
        for (wire, name) in WIRES {
            let work = Workload::new(Base::new(BASE), d, Placement::Scattered);
            let (a, b) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
            ok("fill", work.fill_pair(&*a, &*b));
            let client = manager(a, 0xA);
            let (frames, wire_bytes) = rt.block_on(async {
                let servers = serve(b).await;
                let target = addr_of(&servers, wire).to_owned();
                if wire == Wire::Quic {
                    let (_, frames, udp) = session(&servers, wire, &target, &client).await;
                    return (frames, udp.unwrap_or(0));
                }
                let (relay, count) = counting_relay(target).await;
                let (_, frames, _) = session(&servers, wire, &relay, &client).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                (frames, count.load(Ordering::Relaxed))
            });
            let added = wire_bytes.saturating_sub(frames);
            println!(
                "bytes {label:>16} {name:>5}: {wire_bytes:>7} on the wire, {frames:>7} in frames, +{added} ({:.1} %)",
                100.0 * added as f64 / frames.max(1) as f64
            );
        }
    }
}

fn handshake(c: &mut Criterion) {
    let rt = runtime();
    print_bytes(&rt);
    let (a, b) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    ok(
        "fill",
        Workload::new(Base::new(BASE), 0, Placement::Scattered).fill_pair(&*a, &*b),
    );
    let client = manager(a, 0xA);
    let servers = rt.block_on(serve(b));
    let mut group = c.benchmark_group("handshake");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    for (wire, name) in WIRES {
        let addr = addr_of(&servers, wire).to_owned();
        group.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += session(&servers, wire, &addr, &client).await.0;
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
