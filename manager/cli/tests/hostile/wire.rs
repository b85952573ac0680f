//! The hostile client: raw frames (a 4-byte big-endian length prefix and a
//! prost-encoded `StreamMessage`) over an authenticated TLS stream, or plain TCP
//! for a plaintext fixture, message builders, and reading the server's answer as
//! a typed abort or a close.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    AbortCode, EntryPush, EntryRequest, Handshake, HashComparisonInit, InitPayload, NodeRequest,
    SnapshotInit, WireEntry,
};
use synctree_primitives::{StreamMessage, SyncTransport};
use synctree_secure::{NodeKey, PeerId};
use synctree_transport::FramedTransport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::CTX;

/// "Eventually" bound on waiting for an answer: far above any honest reply, well
/// under the server's 30 s idle timeout. Not a timing threshold: a healthy server
/// answers in milliseconds.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(25);

thread_local! {
    /// One runtime per test thread, so a connection made in one `block_on` still
    /// works in the next.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
}

/// Runs a future on this thread's runtime.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// What the server did in the end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A typed abort frame, then (presumably) a close.
    Abort(AbortCode, String),
    /// End of stream without an abort.
    Closed,
    /// The connection was reset before an abort arrived.
    Reset,
    /// Nothing within [`ANSWER_WAIT`].
    Silent,
}

impl Answer {
    /// The abort code, panicking with the answer otherwise.
    pub(crate) fn code(&self) -> AbortCode {
        match self {
            Answer::Abort(code, _) => *code,
            other => panic!("expected an abort, got {other:?}"),
        }
    }
}

/// A byte stream to the server: TLS, or plain TCP for a plaintext fixture.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// The identity this test process's hostile and legitimate clients present: an
/// allowlisted peer, since the suite tests what an *admitted* peer can do.
pub(crate) fn client_key() -> &'static NodeKey {
    static KEY: OnceLock<NodeKey> = OnceLock::new();
    KEY.get_or_init(|| NodeKey::generate().expect("client key"))
}

/// Serving addresses of TLS fixtures and their node IDs; an address not listed
/// is a plaintext fixture.
fn tls_servers() -> &'static Mutex<HashMap<String, PeerId>> {
    static SERVERS: OnceLock<Mutex<HashMap<String, PeerId>>> = OnceLock::new();
    SERVERS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Records that `addr` serves TLS as the node `id`.
pub(crate) fn register_tls(addr: &str, id: PeerId) {
    tls_servers()
        .lock()
        .expect("servers")
        .insert(addr.to_owned(), id);
}

/// A byte stream to `addr`: TLS as [`client_key`] when it is a TLS fixture.
pub(crate) async fn dial(addr: &str) -> Box<dyn ByteStream> {
    let tls = tls_servers().lock().expect("servers").get(addr).copied();
    match tls {
        Some(id) => {
            let stream = synctree_secure::tls::connect_stream(addr, client_key(), id).await;
            Box::new(stream.expect("TLS to serve"))
        }
        None => {
            let stream = TcpStream::connect(addr).await.expect("connect to serve");
            stream.set_nodelay(true).expect("nodelay");
            Box::new(stream)
        }
    }
}

/// A raw connection that counts the bytes it received.
pub(crate) struct Raw {
    stream: Box<dyn ByteStream>,
    pub(crate) received: u64,
    /// Non-abort messages read while waiting for the answer.
    pub(crate) skipped: Vec<StreamMessage>,
}

impl Raw {
    pub(crate) async fn connect(addr: &str) -> Raw {
        Raw {
            stream: dial(addr).await,
            received: 0,
            skipped: Vec::new(),
        }
    }

    pub(crate) async fn bytes(&mut self, bytes: &[u8]) {
        // The server may already have aborted; what it said is read later.
        let _ = self.stream.write_all(bytes).await;
    }

    pub(crate) async fn send(&mut self, message: &StreamMessage) {
        self.bytes(&frame(message)).await;
    }

    pub(crate) async fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The next frame, or how the stream ended.
    pub(crate) async fn next(&mut self) -> Result<StreamMessage, Answer> {
        next_frame(&mut self.stream, &mut self.received).await
    }

    /// Writes `bytes` while reading the answer concurrently, the reading starting
    /// `delay` later (so the server's output piles up meanwhile).
    pub(crate) async fn pipelined(&mut self, bytes: &[u8], delay: Duration) -> Answer {
        let (mut read, mut write) = tokio::io::split(&mut self.stream);
        let (received, skipped) = (&mut self.received, &mut self.skipped);
        let writing = async move {
            let _ = write.write_all(bytes).await;
        };
        let reading = async move {
            tokio::time::sleep(delay).await;
            read_answer(&mut read, received, skipped).await
        };
        tokio::join!(writing, reading).1
    }

    /// Reads until an abort or the end of the stream, keeping other messages in
    /// `skipped`.
    pub(crate) async fn answer(&mut self) -> Answer {
        read_answer(&mut self.stream, &mut self.received, &mut self.skipped).await
    }

    /// Sends `messages` in one write, then reads the answer.
    pub(crate) async fn exchange(&mut self, messages: &[StreamMessage]) -> Answer {
        let bytes: Vec<u8> = messages.iter().flat_map(frame).collect();
        self.bytes(&bytes).await;
        self.answer().await
    }
}

async fn next_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    received: &mut u64,
) -> Result<StreamMessage, Answer> {
    let mut len = [0u8; 4];
    read_exact(reader, &mut len, received).await?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    read_exact(reader, &mut body, received).await?;
    Ok(StreamMessage::decode(&body[..]).expect("the server sends valid frames"))
}

async fn read_exact<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    received: &mut u64,
) -> Result<(), Answer> {
    match reader.read_exact(buf).await {
        Ok(_) => {
            *received += buf.len() as u64;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Answer::Closed),
        Err(_) => Err(Answer::Reset),
    }
}

/// Reads until an abort or the end of the stream, within [`ANSWER_WAIT`].
async fn read_answer<R: AsyncRead + Unpin>(
    reader: &mut R,
    received: &mut u64,
    skipped: &mut Vec<StreamMessage>,
) -> Answer {
    let wait = tokio::time::timeout(ANSWER_WAIT, async {
        loop {
            match next_frame(reader, received).await {
                Ok(StreamMessage {
                    body: Some(Body::Abort(abort)),
                }) => {
                    let code = AbortCode::try_from(abort.code).unwrap_or(AbortCode::Unspecified);
                    return Answer::Abort(code, abort.message);
                }
                Ok(other) => skipped.push(other),
                Err(end) => return end,
            }
        }
    });
    wait.await.unwrap_or(Answer::Silent)
}

/// One frame: the length prefix and the encoded message.
pub(crate) fn frame(message: &StreamMessage) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Connects with a well-formed `FramedTransport` and checks that a handshake
/// gets a `Handshake` back.
pub(crate) async fn handshake_answered(addr: &str) -> bool {
    let mut transport = FramedTransport::new(dial(addr).await, addr);
    transport.send(&handshake_init(CTX)).await.expect("send");
    let reply = tokio::time::timeout(ANSWER_WAIT, transport.recv()).await;
    let _ = transport.close().await;
    matches!(
        reply,
        Ok(Ok(Some(StreamMessage {
            body: Some(Body::Handshake(_))
        })))
    )
}

pub(crate) fn zero_root() -> Bytes {
    Bytes::from(vec![0u8; 32])
}

pub(crate) fn init(context: &str, kind: Option<Kind>) -> StreamMessage {
    init_version(1, context, kind)
}

pub(crate) fn init_version(version: u32, context: &str, kind: Option<Kind>) -> StreamMessage {
    StreamMessage::new(Body::Init(InitPayload {
        protocol_version: version,
        context_id: context.to_owned(),
        kind,
    }))
}

/// An initiator's handshake summary: an empty replica speaking everything.
pub(crate) fn empty_summary() -> Handshake {
    Handshake {
        root: zero_root(),
        entry_count: 0,
        tree_depth: 4,
        has_state: false,
        supported: vec![1, 2, 3],
        node_id: 77,
        compression: vec![1],
        top_fingerprint: Bytes::new(),
        // A fixed nonce: SESSION_NONCE_BYTES (16), as every handshake carries.
        nonce: Bytes::from(vec![0x11; 16]),
        sketch_len: 0,
        sketch_probe: Default::default(),
        gc_watermark: 0,
    }
}

pub(crate) fn handshake_init(context: &str) -> StreamMessage {
    init(context, Some(Kind::Handshake(empty_summary())))
}

pub(crate) fn hash_comparison() -> Kind {
    Kind::HashComparison(HashComparisonInit { root: zero_root() })
}

/// `Init{v1, ctx, hash_comparison}`.
pub(crate) fn tree_init() -> StreamMessage {
    init(CTX, Some(hash_comparison()))
}

pub(crate) fn snapshot_init(window: u32) -> StreamMessage {
    init(
        CTX,
        Some(Kind::Snapshot(SnapshotInit {
            root: zero_root(),
            window,
            ..SnapshotInit::default()
        })),
    )
}

pub(crate) fn body(body: Body) -> StreamMessage {
    StreamMessage::new(body)
}

pub(crate) fn node_request(request_id: u32, positions: Vec<u32>) -> StreamMessage {
    body(Body::NodeRequest(NodeRequest {
        request_id,
        positions,
        compare: Vec::new(),
    }))
}

pub(crate) fn subtree_request(request_id: u32, subtrees: Vec<u32>) -> StreamMessage {
    body(Body::EntryRequest(EntryRequest {
        request_id,
        subtrees,
        ..EntryRequest::default()
    }))
}

pub(crate) fn push(entries: Vec<WireEntry>) -> StreamMessage {
    body(Body::EntryPush(EntryPush { entries }))
}

pub(crate) fn wire_entry(key: &str, value: &[u8], hlc: u64, node: u64) -> WireEntry {
    WireEntry {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value),
        hlc,
        node,
        tombstone: false,
    }
}

pub(crate) fn finish() -> StreamMessage {
    body(Body::Finish(synctree_primitives::wire::Finish {
        root: zero_root(),
    }))
}

/// An HLC for `ms_from_now` milliseconds past the wall clock.
pub(crate) fn hlc_in(ms_from_now: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    (now + ms_from_now) << synctree_primitives::hlc::HLC_LOGICAL_BITS
}
