//! QUIC beside TLS for `serve --listen-quic` and `sync --peer quic://ID@ADDR`.

use std::future::Future;
use std::sync::Arc;

use synctree_manager::{ServeSummary, SyncManager};
use synctree_primitives::Store;
use synctree_secure::quic::QuicServer;
use synctree_secure::{NodeKey, PeerPolicy};
use tokio::sync::watch;

use crate::error::CliError;

/// Binds the QUIC endpoint of `serve --listen-quic ADDR` and prints its address.
pub(crate) fn bind(
    key: &NodeKey,
    policy: Arc<dyn PeerPolicy>,
    addr: &str,
) -> Result<QuicServer, CliError> {
    let listen_err = |source| CliError::Listen {
        addr: addr.to_owned(),
        source,
    };
    let parsed = addr
        .parse()
        .map_err(|e| listen_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let server = QuicServer::bind(key, policy, parsed)?;
    let bound = server.local_addr().map_err(listen_err)?;
    eprintln!("synctree: quic on {bound}");
    Ok(server)
}

/// Runs the TCP serve loop `tcp` (which stops on `shutdown`) and, if there is
/// one, the QUIC endpoint until the same `shutdown`.
pub(crate) async fn alongside<S: Store + 'static>(
    manager: Arc<SyncManager<S>>,
    quic: Option<QuicServer>,
    tcp: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> TcpServe,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<ServeSummary> {
    let Some(quic) = quic else {
        return tcp(Box::pin(shutdown)).await;
    };
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (tcp, quic) = tokio::join!(
        tcp(Box::pin(until(stopped.clone()))),
        quic.serve(manager, until(stopped))
    );
    eprintln!(
        "synctree: quic served {} connections ({} failed the handshake)",
        quic.connections, quic.handshake_failures
    );
    tcp
}

/// The TCP serve loop's future.
pub(crate) type TcpServe =
    std::pin::Pin<Box<dyn Future<Output = std::io::Result<ServeSummary>> + Send>>;
