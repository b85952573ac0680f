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
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    install_prometheus(addr).unwrap();
    metrics::record_attempt();
    metrics::record_backoff(
        "10.0.0.9:7000",
        PeerBackoff {
            failures: 2,
            delay: Duration::from_secs(2),
        },
    );

    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
            stream
                .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            stream.read_to_string(&mut body).await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
}
