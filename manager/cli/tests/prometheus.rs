//! `install_prometheus` serves what the manager records at `/metrics`. Its own test
//! binary: it installs the process-wide recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use synctree_cli::prometheus::install_prometheus;
use synctree_manager::anti_entropy::PeerBackoff;
use synctree_manager::metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn metrics_are_scraped_over_http() {
    let addr = install_prometheus("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    metrics::record_attempt();
    metrics::record_backoff(
        "10.0.0.9:7000",
        PeerBackoff {
            failures: 2,
            delay: Duration::from_secs(2),
        },
    );

    let body = get(addr, "/metrics").await;
    assert!(body.contains("200 OK"), "{body}");
    assert!(
        body.contains("synctree_anti_entropy_sessions_attempted_total 1"),
        "{body}"
    );
    assert!(
        body.contains(r#"synctree_peer_backoff_seconds{peer="10.0.0.9:7000"} 2"#),
        "{body}"
    );
    assert!(
        body.contains("# HELP synctree_peer_backoff_seconds current backoff of the peer"),
        "{body}"
    );
    // Only /metrics is served.
    let elsewhere = get(addr, "/").await;
    assert!(elsewhere.starts_with("HTTP/1.1 404"), "{elsewhere}");
}

/// One HTTP/1.1 GET; the whole answer.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}
