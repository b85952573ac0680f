//! What a peer can make a serving node do: connections that send nothing, too many
//! from one address, sessions kept alive with no-op messages, and a peer that stops
//! reading. Each runs against a real `SyncManager` (through `serve` on a loopback
//! listener, or `handle_stream` over an in-memory pipe with tokio's paused clock);
//! no test asserts on wall-clock time.
//!
//! The wall-clock measurements are `#[ignore]`d; run them (release) with
//! `cargo test --release -p synctree-manager --test serve_admission -- --ignored --nocapture --test-threads 1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use synctree_manager::{ManagerConfig, ManagerError, ProtocolChoice, SyncManager};
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    AbortCode, EntryPush, HashComparisonInit, InitPayload, PROTOCOL_VERSION, SnapshotInit,
};
use synctree_primitives::{
    ContextId, Entry, Identity, NodeId, Store, StreamMessage, SyncErrorKind, SyncTransport,
    TransportError, Version,
};
use synctree_store::MemoryStore;
use synctree_transport::{FramedTransport, MAX_BUFFERED_PER_TRANSPORT};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Longest any step may take before the test calls it a hang.
const HANG_GUARD: Duration = Duration::from_secs(20);

fn ctx() -> ContextId {
    ContextId::new("admission").expect("valid context")
}

fn store_with(entries: usize, value_bytes: usize) -> Arc<MemoryStore> {
    let store = MemoryStore::new();
    let value = vec![7u8; value_bytes];
    let batch = (0..entries)
        .map(|i| Entry::put(format!("k{i}"), value.clone(), Version::new(1, NodeId(2))))
        .collect();
    store.apply(&ctx(), batch).expect("apply");
    Arc::new(store)
}

fn init(kind: Kind) -> StreamMessage {
    StreamMessage::new(Body::Init(InitPayload {
        protocol_version: PROTOCOL_VERSION,
        context_id: ctx().as_str().to_owned(),
        kind: Some(kind),
    }))
}

struct Server {
    manager: Arc<SyncManager<MemoryStore>>,
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<synctree_manager::ServeSummary>>,
}

impl Server {
    async fn start(config: ManagerConfig) -> Server {
        let manager = Arc::new(SyncManager::new(
            store_with(50, 16),
            Identity::new(NodeId(2)),
            config,
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(Arc::clone(&manager).serve(listener, async {
            let _ = stopped.await;
        }));
        Server {
            manager,
            addr,
            stop,
            serving,
        }
    }

    async fn stop(self) -> synctree_manager::ServeSummary {
        let _ = self.stop.send(());
        self.serving.await.expect("join").expect("serve")
    }
}

/// Connects to `addr` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind");
    socket.connect(addr).await.expect("connect")
}

/// A full `sync` from a fresh client at `from`; returns how long it took.
async fn legit_sync(addr: SocketAddr, from: Ipv4Addr) -> Duration {
    let started = Instant::now();
    let client = SyncManager::new(
        Arc::new(MemoryStore::new()),
        Identity::new(NodeId(1)),
        ManagerConfig::default(),
    );
    let stream = connect_from(from, addr).await;
    let mut transport = FramedTransport::tcp(stream).expect("tcp");
    let report = client
        .sync(&mut transport, &ctx(), ProtocolChoice::Auto)
        .await
        .expect("the legitimate sync succeeds");
    assert!(report.converged());
    started.elapsed()
}

async fn guard<F: std::future::Future>(step: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, step)
        .await
        .expect("no hang")
}

#[tokio::test]
async fn a_sync_succeeds_while_500_connections_sit_idle() {
    let server = Server::start(ManagerConfig {
        max_connections_per_ip: 10_000,
        first_message_timeout: Duration::from_secs(600),
        ..ManagerConfig::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    guard(legit_sync(server.addr, Ipv4Addr::LOCALHOST)).await;
    // Idle connections buffer nothing: only the one session did.
    let peak = server.manager.buffer_budget().peak();
    assert!(peak <= MAX_BUFFERED_PER_TRANSPORT, "peak {peak}");
    drop(idle);
    let summary = server.stop().await;
    assert_eq!((summary.accepted, summary.busy), (501, 0));
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_first_message_timeout() {
    let server = Server::start(ManagerConfig {
        first_message_timeout: Duration::from_millis(100),
        ..ManagerConfig::default()
    })
    .await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = guard(tokio::io::AsyncReadExt::read(&mut silent, &mut buf)).await;
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "closed without a frame: {read:?}"
    );
    let summary = server.stop().await;
    assert_eq!(summary.first_message_timeouts, 1);
}

/// The next message on a raw connection, framed.
async fn first_message(stream: TcpStream) -> Option<StreamMessage> {
    let mut transport = FramedTransport::tcp(stream).expect("tcp");
    guard(transport.recv()).await.ok().flatten()
}

#[tokio::test]
async fn the_connection_past_the_per_address_cap_is_refused_busy() {
    let server = Server::start(ManagerConfig {
        max_connections_per_ip: 2,
        first_message_timeout: Duration::from_secs(600),
        ..ManagerConfig::default()
    })
    .await;
    let held = [
        TcpStream::connect(server.addr).await.expect("connect"),
        TcpStream::connect(server.addr).await.expect("connect"),
    ];
    let third = TcpStream::connect(server.addr).await.expect("connect");
    let refusal = first_message(third).await;
    assert!(
        matches!(&refusal, Some(StreamMessage { body: Some(Body::Abort(a)) })
            if a.code == AbortCode::Busy as i32),
        "{refusal:?}"
    );
    // Another address is not affected.
    guard(legit_sync(server.addr, Ipv4Addr::new(127, 0, 0, 2))).await;
    drop(held);
    let summary = server.stop().await;
    assert_eq!((summary.busy, summary.busy_per_address), (1, 1));
}

/// Holders from as many addresses as there are slots, each idle after its first
/// frame: a newcomer evicts one instead of waiting out the idle timeout.
#[tokio::test]
async fn idle_slot_holders_from_many_addresses_give_way_to_a_newcomer() {
    let server = Server::start(ManagerConfig {
        max_concurrent_sessions: 4,
        evict_idle_after: Duration::from_millis(200),
        ..ManagerConfig::default()
    })
    .await;
    let mut holders = Vec::new();
    for i in 0..4 {
        let mut stream = connect_from(Ipv4Addr::new(127, 0, 0, 10 + i), server.addr).await;
        let hello = init(Kind::HashComparison(HashComparisonInit {
            root: vec![0; 32].into(),
        }));
        stream
            .write_all(&raw_frame(&hello))
            .await
            .expect("send init");
        holders.push(FramedTransport::tcp(stream).expect("tcp"));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    guard(legit_sync(server.addr, Ipv4Addr::new(127, 0, 0, 2))).await;
    let mut told_busy = 0;
    for holder in &mut holders {
        if let Ok(Ok(Some(StreamMessage {
            body: Some(Body::Abort(a)),
        }))) = tokio::time::timeout(Duration::from_millis(500), holder.recv()).await
        {
            assert_eq!(a.code, AbortCode::Busy as i32);
            told_busy += 1;
        }
    }
    drop(holders);
    let summary = server.stop().await;
    assert_eq!(summary.evicted, 1, "{summary:?}");
    assert_eq!(told_busy, 1);
    assert_eq!(summary.busy, 0);
}

/// The empty pushes arrive every 10 s, a third of the idle timeout: each used to
/// reset it, so the session lived until `STREAM_DEADLINE`.
#[tokio::test(start_paused = true)]
async fn a_peer_trickling_empty_pushes_is_timed_out_by_the_idle_timer() {
    let manager = SyncManager::new(
        store_with(50, 16),
        Identity::new(NodeId(2)),
        ManagerConfig::default(),
    );
    let (mut peer, mut server) = FramedTransport::memory_pair(1 << 16);
    let start = tokio::time::Instant::now();
    let trickle = async {
        let hello = init(Kind::HashComparison(HashComparisonInit {
            root: vec![0; 32].into(),
        }));
        peer.send(&hello).await.expect("send");
        loop {
            let empty = StreamMessage::new(Body::EntryPush(EntryPush { entries: vec![] }));
            if peer.send(&empty).await.is_err() {
                return;
            }
            // Flushes the push; the responder sends nothing back.
            match peer.recv_timeout(Duration::from_secs(10)).await {
                Err(TransportError::Timeout(_)) => {}
                _ => return,
            }
        }
    };
    let (outcome, ()) = tokio::join!(manager.handle_stream(&mut server), trickle);
    let elapsed = start.elapsed();
    let timed_out = matches!(&outcome, Err(ManagerError::Session(e))
        if matches!(e.kind, SyncErrorKind::Transport(TransportError::Timeout(_))));
    assert!(timed_out, "{outcome:?}");
    let idle = synctree_primitives::limits::IDLE_TIMEOUT;
    assert!(
        elapsed < idle + Duration::from_secs(11),
        "ended after {elapsed:?} of virtual time"
    );
}

/// A peer that asks for a whole snapshot, never reads, and pushes large frames
/// meanwhile: the responder's send fails with the send timeout, and what its
/// transport buffered stays under the per-transport bound.
#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_fails_with_the_send_timeout_within_the_buffer_bound() {
    let manager = SyncManager::new(
        store_with(24, 1024 * 1024),
        Identity::new(NodeId(2)),
        ManagerConfig::default(),
    );
    let (mut raw, server) = tokio::io::duplex(64 * 1024);
    let mut server = FramedTransport::new(server, "non-reader");
    let hostile = tokio::spawn(async move {
        let ask = init(Kind::Snapshot(SnapshotInit {
            root: vec![0; 32].into(),
            window: 8,
            ..SnapshotInit::default()
        }));
        let value = vec![1u8; 2 * 1024 * 1024];
        let push = StreamMessage::new(Body::EntryPush(EntryPush {
            entries: vec![(&Entry::put("big", value, Version::new(1, NodeId(9)))).into()],
        }));
        for message in std::iter::once(ask).chain(std::iter::repeat_n(push, 16)) {
            let body = message.encode_to_vec();
            let mut wire = (body.len() as u32).to_be_bytes().to_vec();
            wire.extend_from_slice(&body);
            if raw.write_all(&wire).await.is_err() {
                break;
            }
        }
        // Never reads; keeps its end open until the server gives up.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(raw);
    });
    let outcome = manager.handle_stream(&mut server).await;
    hostile.abort();
    let timed_out = matches!(&outcome, Err(ManagerError::Session(e))
        if matches!(e.kind, SyncErrorKind::Transport(TransportError::Timeout(_))));
    assert!(timed_out, "{outcome:?}");
    let (_, outbox_peak, inbox_peak) = server.buffered();
    assert!(
        outbox_peak + inbox_peak <= MAX_BUFFERED_PER_TRANSPORT,
        "buffered {outbox_peak} + {inbox_peak} bytes"
    );
    assert!(
        outbox_peak > 0 && inbox_peak > 0,
        "both buffers were used: {outbox_peak}, {inbox_peak}"
    );
}

// ---- Wall-clock measurements (ignored; see the module docs for the command) ----

/// VmRSS of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn timed_syncs(addr: SocketAddr, from: Ipv4Addr, count: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..count {
        times.push(guard(legit_sync(addr, from)).await);
    }
    times.sort();
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "wall-clock measurement"]
async fn measure_sync_latency_under_500_idle_connections() {
    // One address holds all 500: the per-address cap is lifted so the pending pool
    // and the first-message deadline are what is measured.
    let server = Server::start(ManagerConfig {
        max_connections_per_ip: 10_000,
        ..ManagerConfig::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    let times = timed_syncs(server.addr, Ipv4Addr::LOCALHOST, 15).await;
    println!(
        "500 idle connections: 15 syncs, min {:?}, median {:?}, max {:?}",
        times[0], times[7], times[14]
    );
    drop(idle);
    let summary = server.stop().await;
    println!("{summary:?}");
}

/// A session kept open from `from` with an empty `EntryPush` every 10 s.
async fn empty_pusher(addr: SocketAddr, from: Ipv4Addr) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind");
    let Ok(stream) = socket.connect(addr).await else {
        return;
    };
    let mut transport = FramedTransport::tcp(stream).expect("tcp");
    let hello = init(Kind::HashComparison(HashComparisonInit {
        root: vec![0; 32].into(),
    }));
    if transport.send(&hello).await.is_err() {
        return;
    }
    loop {
        let empty = StreamMessage::new(Body::EntryPush(EntryPush { entries: vec![] }));
        if transport.send(&empty).await.is_err() {
            return;
        }
        match transport.recv_timeout(Duration::from_secs(10)).await {
            Err(TransportError::Timeout(_)) => {}
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "wall-clock measurement"]
async fn measure_sync_latency_under_64_empty_push_sessions() {
    /// Where pusher `i` connects from.
    type Source = fn(u8) -> Ipv4Addr;
    let one: Source = |_| Ipv4Addr::LOCALHOST;
    let many: Source = |i| Ipv4Addr::new(127, 0, 1, i);
    let per_ip = synctree_manager::DEFAULT_MAX_CONNECTIONS_PER_IP;
    let cases = [
        ("one address", per_ip, one),
        ("one address, no per-address cap", 10_000, one),
        ("64 addresses", per_ip, many),
    ];
    for (name, cap, from) in cases {
        let server = Server::start(ManagerConfig {
            max_connections_per_ip: cap,
            ..ManagerConfig::default()
        })
        .await;
        let pushers: Vec<_> = (0..64u8)
            .map(|i| tokio::spawn(empty_pusher(server.addr, from(i))))
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The legitimate client retries on BUSY, as anti-entropy would.
        let started = Instant::now();
        let mut refusals = 0;
        let took = loop {
            let client = SyncManager::new(
                Arc::new(MemoryStore::new()),
                Identity::new(NodeId(1)),
                ManagerConfig::default(),
            );
            let stream = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr).await;
            let mut transport = FramedTransport::tcp(stream).expect("tcp");
            match client
                .sync(&mut transport, &ctx(), ProtocolChoice::Auto)
                .await
            {
                Ok(_) => break started.elapsed(),
                Err(_) if started.elapsed() < Duration::from_secs(60) => {
                    refusals += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("no sync within 60 s: {e}"),
            }
        };
        println!(
            "64 empty-push sessions, {name}, per-address cap {cap}: first sync after {took:?} ({refusals} refusals)"
        );
        for p in pushers {
            p.abort();
        }
        println!("{:?}", server.stop().await);
    }
}

/// Connects with a tiny receive buffer, asks for a whole snapshot, pushes `frames`
/// and never reads.
async fn non_reader(addr: SocketAddr, frames: Arc<Vec<Vec<u8>>>) {
    let socket = TcpSocket::new_v4().expect("socket");
    let _ = socket.set_recv_buffer_size(4096);
    let Ok(mut stream) = socket.connect(addr).await else {
        return;
    };
    for frame in frames.iter() {
        if stream.write_all(frame).await.is_err() {
            return;
        }
    }
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

fn raw_frame(message: &StreamMessage) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&body);
    wire
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "wall-clock measurement"]
async fn measure_rss_under_64_non_reading_peers() {
    let manager = Arc::new(SyncManager::new(
        store_with(32, 1024 * 1024),
        Identity::new(NodeId(2)),
        ManagerConfig {
            max_connections_per_ip: 10_000,
            ..ManagerConfig::default()
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(Arc::clone(&manager).serve(listener, async {
        let _ = stopped.await;
    }));
    let ask = init(Kind::Snapshot(SnapshotInit {
        root: vec![0; 32].into(),
        window: 8,
        ..SnapshotInit::default()
    }));
    let value = vec![1u8; 2 * 1024 * 1024 - 64];
    let push = StreamMessage::new(Body::EntryPush(EntryPush {
        entries: vec![(&Entry::put("big", value, Version::new(1, NodeId(9)))).into()],
    }));
    let mut frames = vec![raw_frame(&ask)];
    frames.extend(std::iter::repeat_n(raw_frame(&push), 8));
    let frames = Arc::new(frames);
    let before = rss_kib();
    let peers: Vec<_> = (0..64)
        .map(|_| tokio::spawn(non_reader(addr, Arc::clone(&frames))))
        .collect();
    let mut peak_rss = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_kib());
    }
    let after = rss_kib();
    println!(
        "64 non-reading peers: VmRSS before {} MiB, peak {} MiB, after 40 s {} MiB; \
         buffered peak {} MiB (budget {} MiB), now {} MiB",
        before / 1024,
        peak_rss / 1024,
        after / 1024,
        manager.buffer_budget().peak() >> 20,
        manager.buffer_budget().limit() >> 20,
        manager.buffer_budget().used() >> 20,
    );
    for p in peers {
        p.abort();
    }
    let _ = stop.send(());
    println!("{:?}", serving.await.expect("join").expect("serve"));
}
