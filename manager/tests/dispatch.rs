//! The manager's dispatch of every kind of first message: good ones reach the right
//! handler; bad ones get an abort frame back, a typed error locally, and never
//! change the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use synctree_manager::{ManagerConfig, ManagerError, ProtocolChoice, Served, SyncManager};
use synctree_primitives::limits::MAX_FRAME_BYTES;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::stream_message::Body;
use synctree_primitives::wire::{
    AbortCode, Handshake, HashComparisonInit, InitPayload, NodeRequest, PROTOCOL_VERSION,
};
use synctree_primitives::{
    ContextId, Entry, Identity, NodeId, ProtocolError, ProtocolKind, Store, StreamMessage,
    SyncTransport, Version,
};
use synctree_store::MemoryStore;
use synctree_transport::FramedTransport;
use tokio::io::AsyncWriteExt;

fn ctx() -> ContextId {
    ContextId::new("dispatch").expect("valid context")
}

fn manager(config: ManagerConfig) -> SyncManager<MemoryStore> {
    let store = MemoryStore::new();
    let entries = (0..50).map(|i| Entry::put(format!("k{i}"), "v", Version::new(1, NodeId(2))));
    store.apply(&ctx(), entries.collect()).expect("apply");
    SyncManager::new(Arc::new(store), Identity::new(NodeId(2)), config)
}

fn init(version: u32, context: &str, kind: Option<Kind>) -> StreamMessage {
    StreamMessage::new(Body::Init(InitPayload {
        protocol_version: version,
        context_id: context.into(),
        kind,
    }))
}

fn handshake() -> Option<Kind> {
    Some(Kind::Handshake(Handshake {
        root: vec![0; 32].into(),
        nonce: vec![5; 16].into(),
        sketch_len: 0,
        sketch_probe: Default::default(),
        ..Handshake::default()
    }))
}

/// Sends `messages` to a fresh manager, returns what it did and what came back.
async fn dispatch(
    config: ManagerConfig,
    messages: Vec<StreamMessage>,
) -> (Result<Served, ManagerError>, Vec<StreamMessage>, bool) {
    let m = manager(config);
    let before = m.store().summary(&ctx()).expect("summary");
    let (mut peer, mut server) = FramedTransport::memory_pair(1 << 16);
    for msg in &messages {
        peer.send(msg).await.expect("send");
    }
    peer.close().await.expect("close");
    let outcome = m.handle_stream(&mut server).await;
    let mut replies = Vec::new();
    while let Ok(Some(msg)) = peer.recv().await {
        replies.push(msg);
    }
    let unchanged = m.store().summary(&ctx()).expect("summary") == before;
    (outcome, replies, unchanged)
}

fn abort_code(replies: &[StreamMessage]) -> Option<AbortCode> {
    replies.iter().find_map(|m| match &m.body {
        Some(Body::Abort(a)) => AbortCode::try_from(a.code).ok(),
        _ => None,
    })
}

fn rejected(outcome: &Result<Served, ManagerError>) -> &ProtocolError {
    match outcome {
        Err(ManagerError::Rejected { source, .. }) => source,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_first_message_that_is_not_an_init_is_refused() {
    let request = StreamMessage::new(Body::NodeRequest(NodeRequest {
        request_id: 0,
        positions: vec![0],
        ..Default::default()
    }));
    let (outcome, replies, unchanged) = dispatch(ManagerConfig::default(), vec![request]).await;
    assert!(matches!(rejected(&outcome), ProtocolError::UnknownInit(_)));
    assert_eq!(abort_code(&replies), Some(AbortCode::UnknownInit));
    assert!(unchanged);
}

#[tokio::test]
async fn an_init_without_a_known_kind_is_refused() {
    let (outcome, replies, unchanged) =
        dispatch(ManagerConfig::default(), vec![init(1, "dispatch", None)]).await;
    assert!(matches!(rejected(&outcome), ProtocolError::UnknownInit(_)));
    assert_eq!(abort_code(&replies), Some(AbortCode::UnknownInit));
    assert!(unchanged);
}

#[tokio::test]
async fn an_empty_message_is_refused() {
    let empty = StreamMessage { body: None };
    let (outcome, replies, _) = dispatch(ManagerConfig::default(), vec![empty]).await;
    assert!(matches!(rejected(&outcome), ProtocolError::UnknownInit(_)));
    assert_eq!(abort_code(&replies), Some(AbortCode::UnknownInit));
}

#[tokio::test]
async fn another_protocol_version_is_refused() {
    let (outcome, replies, unchanged) = dispatch(
        ManagerConfig::default(),
        vec![init(PROTOCOL_VERSION + 1, "dispatch", handshake())],
    )
    .await;
    assert!(matches!(
        rejected(&outcome),
        ProtocolError::UnsupportedVersion { .. }
    ));
    assert_eq!(abort_code(&replies), Some(AbortCode::UnsupportedVersion));
    assert!(unchanged);
}

#[tokio::test]
async fn invalid_and_unknown_contexts_are_refused() {
    let (outcome, replies, _) =
        dispatch(ManagerConfig::default(), vec![init(1, "", handshake())]).await;
    assert!(matches!(
        rejected(&outcome),
        ProtocolError::InvalidContext { .. }
    ));
    assert_eq!(abort_code(&replies), Some(AbortCode::InvalidContext));

    let strict = ManagerConfig {
        accept_unknown_contexts: false,
        ..ManagerConfig::default()
    };
    let (outcome, replies, _) =
        dispatch(strict.clone(), vec![init(1, "elsewhere", handshake())]).await;
    assert!(matches!(
        rejected(&outcome),
        ProtocolError::UnknownContext(_)
    ));
    assert_eq!(abort_code(&replies), Some(AbortCode::UnknownContext));

    let (outcome, _, _) = dispatch(strict, vec![init(1, "dispatch", handshake())]).await;
    assert!(
        matches!(outcome, Ok(Served::HandshakeOnly { .. })),
        "a held context is served"
    );
}

#[tokio::test]
async fn a_handshake_is_answered_and_a_second_one_refused() {
    let (outcome, replies, unchanged) = dispatch(
        ManagerConfig::default(),
        vec![init(1, "dispatch", handshake())],
    )
    .await;
    assert_eq!(outcome.ok(), Some(Served::HandshakeOnly { context: ctx() }));
    assert!(
        matches!(replies.first().and_then(|m| m.body.as_ref()), Some(Body::Handshake(h)) if h.entry_count == 50)
    );
    assert!(unchanged);

    let twice = vec![
        init(1, "dispatch", handshake()),
        init(1, "dispatch", handshake()),
    ];
    let (outcome, replies, _) = dispatch(ManagerConfig::default(), twice).await;
    assert!(matches!(
        rejected(&outcome),
        ProtocolError::Unexpected { .. }
    ));
    assert_eq!(abort_code(&replies), Some(AbortCode::UnexpectedMessage));
}

#[tokio::test]
async fn a_malformed_handshake_or_protocol_init_is_refused() {
    let short_root = Some(Kind::Handshake(Handshake {
        root: vec![1; 3].into(),
        ..Handshake::default()
    }));
    let (outcome, replies, _) = dispatch(
        ManagerConfig::default(),
        vec![init(1, "dispatch", short_root)],
    )
    .await;
    assert!(matches!(
        rejected(&outcome),
        ProtocolError::BadLength { .. }
    ));
    assert_eq!(abort_code(&replies), Some(AbortCode::Malformed));

    let bad = Some(Kind::HashComparison(HashComparisonInit {
        root: vec![0; 31].into(),
    }));
    let (outcome, replies, unchanged) =
        dispatch(ManagerConfig::default(), vec![init(1, "dispatch", bad)]).await;
    assert!(matches!(
        rejected(&outcome),
        ProtocolError::BadLength { .. }
    ));
    assert_eq!(abort_code(&replies), Some(AbortCode::Malformed));
    assert!(unchanged);
}

#[tokio::test]
async fn a_protocol_init_runs_that_protocol() {
    let hc = Some(Kind::HashComparison(HashComparisonInit {
        root: vec![0; 32].into(),
    }));
    let finish = StreamMessage::new(Body::Finish(synctree_primitives::wire::Finish {
        root: vec![0; 32].into(),
    }));
    let (outcome, replies, unchanged) = dispatch(
        ManagerConfig::default(),
        vec![init(1, "dispatch", hc), finish],
    )
    .await;
    match outcome {
        Ok(Served::Session { stats, .. }) => {
            assert_eq!(stats.protocol, ProtocolKind::HashComparison)
        }
        other => panic!("expected a session, got {other:?}"),
    }
    assert!(matches!(
        replies.last().and_then(|m| m.body.as_ref()),
        Some(Body::FinishAck(_))
    ));
    assert!(unchanged);
}

#[tokio::test]
async fn an_empty_stream_is_refused() {
    let (outcome, _, unchanged) = dispatch(ManagerConfig::default(), vec![]).await;
    assert!(matches!(rejected(&outcome), ProtocolError::UnknownInit(_)));
    assert!(unchanged);
}

/// Writes raw bytes to a manager's stream and returns what the manager did.
async fn dispatch_raw(bytes: Vec<u8>) -> (Result<Served, ManagerError>, Option<AbortCode>) {
    let m = manager(ManagerConfig::default());
    let (mut raw, server_end) = tokio::io::duplex(1 << 16);
    let mut server = FramedTransport::new(server_end, "raw");
    raw.write_all(&bytes).await.expect("write");
    let outcome = m.handle_stream(&mut server).await;
    drop(server);
    let mut peer = FramedTransport::new(raw, "peer");
    let mut code = None;
    while let Ok(Some(msg)) = peer.recv().await {
        if let Some(Body::Abort(a)) = msg.body {
            code = AbortCode::try_from(a.code).ok();
        }
    }
    (outcome, code)
}

#[tokio::test]
async fn an_undecodable_frame_is_refused() {
    let garbage = [0xff_u8, 0xff, 0xff, 0x0f, 0x01];
    let mut frame = (garbage.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&garbage);
    let (outcome, code) = dispatch_raw(frame).await;
    assert!(matches!(rejected(&outcome), ProtocolError::UnknownInit(_)));
    assert_eq!(code, Some(AbortCode::UnknownInit));
}

#[tokio::test]
async fn an_oversized_frame_is_refused_before_its_body_arrives() {
    let prefix = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes().to_vec();
    let (outcome, code) = dispatch_raw(prefix).await;
    assert!(matches!(
        rejected(&outcome),
        ProtocolError::LimitExceeded { .. }
    ));
    assert_eq!(code, Some(AbortCode::LimitExceeded));
}

#[tokio::test]
async fn two_managers_converge_over_tcp_and_report_it() {
    let server = Arc::new(manager(ManagerConfig::default()));
    let client = SyncManager::new(
        Arc::new(MemoryStore::new()),
        Identity::new(NodeId(1)),
        ManagerConfig::default(),
    );
    client
        .store()
        .apply(
            &ctx(),
            vec![Entry::put("only-client", "x", Version::new(5, NodeId(1)))],
        )
        .expect("apply");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(Arc::clone(&server).serve(listener, async {
        let _ = stopped.await;
    }));

    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut transport = FramedTransport::tcp(stream).expect("tcp");
    let report = client
        .sync(&mut transport, &ctx(), ProtocolChoice::Auto)
        .await
        .expect("sync");
    assert!(report.converged());
    // 1 entry against 50: far behind, so a snapshot in merge mode.
    assert_eq!(report.selection.protocol, Some(ProtocolKind::Snapshot));
    let stats = report.stats.as_ref().expect("a protocol ran");
    assert_eq!((stats.entries_pulled, stats.entries_pushed), (50, 1));
    assert_eq!(report.json().protocol, "snapshot");

    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut transport = FramedTransport::tcp(stream).expect("tcp");
    let again = client
        .sync(&mut transport, &ctx(), ProtocolChoice::Auto)
        .await
        .expect("sync");
    assert_eq!(
        (
            again.selection.protocol,
            again.selection.reason.clone(),
            again.rounds()
        ),
        (None, "roots match".to_owned(), 1)
    );

    let _ = stop.send(());
    let summary = serving.await.expect("join").expect("serve");
    assert_eq!(summary.accepted, 2);
    let server_root = server.store().summary(&ctx()).expect("summary").root;
    assert_eq!(
        server_root,
        client.store().summary(&ctx()).expect("summary").root
    );
}

#[tokio::test]
async fn an_initiator_facing_a_refusal_gets_a_typed_error() {
    let (mut client_end, mut server_end) = FramedTransport::memory_pair(1 << 16);
    let responder = async {
        let _ = server_end.recv().await;
        let abort = StreamMessage::abort(AbortCode::UnsupportedVersion, "speaks version 9");
        server_end.send(&abort).await.expect("send");
        server_end.close().await.expect("close");
    };
    let client = manager(ManagerConfig::default());
    let context = ctx();
    let (outcome, ()) = tokio::join!(
        client.sync(&mut client_end, &context, ProtocolChoice::Auto),
        responder
    );
    match outcome.map(|_| ()).map_err(|e| e.protocol_error().cloned()) {
        Err(Some(ProtocolError::Aborted {
            code: AbortCode::UnsupportedVersion,
            ..
        })) => {}
        other => panic!("expected the peer's abort, got {other:?}"),
    }
}
