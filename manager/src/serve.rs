//! Accepting TCP connections and serving them concurrently under a cap.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use synctree_primitives::limits::{IDLE_TIMEOUT, SESSION_DEADLINE};
use synctree_primitives::wire::AbortCode;
use synctree_primitives::{Store, StreamMessage, SyncTransport};
use synctree_transport::FramedTransport;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::ManagerError;
use crate::manager::{Served, SyncManager};

/// How long sessions in progress may run on after shutdown is requested.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Longest one accepted stream may hold a session slot: the handshake wait, a whole
/// session and a final flush. A peer that stops reading cannot pin a slot longer
/// (the session's own deadline does not cover a `close` blocked on a full pipe).
pub const STREAM_DEADLINE: Duration =
    SESSION_DEADLINE.saturating_add(IDLE_TIMEOUT.saturating_mul(2));

/// Counts of what a serve loop did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused with `BUSY` because the cap was reached.
    pub busy: u64,
}

impl<S: Store + 'static> SyncManager<S> {
    /// Accepts connections on `listener` and serves each on its own task, at most
    /// `max_concurrent_sessions` at once, until `shutdown` completes; then stops
    /// accepting and lets running sessions finish for up to [`DRAIN_GRACE`].
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<ServeSummary> {
        let slots = Arc::new(Semaphore::new(self.config().max_concurrent_sessions.max(1)));
        let mut sessions = JoinSet::new();
        let mut summary = ServeSummary::default();
        tokio::pin!(shutdown);
        loop {
            let (stream, addr) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            };
            summary.accepted += 1;
            let mut transport = FramedTransport::new(stream, addr.to_string());
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                summary.busy += 1;
                sessions.spawn(async move { refuse_busy(&mut transport).await });
                continue;
            };
            let manager = Arc::clone(&self);
            sessions.spawn(async move {
                let served =
                    tokio::time::timeout(STREAM_DEADLINE, manager.handle_stream(&mut transport))
                        .await;
                let outcome = match served {
                    Ok(outcome) => outcome,
                    Err(_) => Err(ManagerError::Transport {
                        peer: addr.to_string(),
                        phase: "serving",
                        source: synctree_primitives::TransportError::Timeout(STREAM_DEADLINE),
                    }),
                };
                crate::metrics::record_served(&outcome);
                log_outcome(&addr.to_string(), outcome);
                drop(permit);
            });
        }
        drain(sessions).await;
        Ok(summary)
    }
}

async fn refuse_busy<T: SyncTransport>(transport: &mut T) {
    let abort = StreamMessage::abort(AbortCode::Busy, "too many sessions; retry later");
    let _ = transport.send(&abort).await;
    let _ = transport.close().await;
}

fn log_outcome(peer: &str, outcome: Result<Served, ManagerError>) {
    match outcome {
        Ok(Served::HandshakeOnly { context }) => tracing::info!(%peer, %context, "in sync"),
        Ok(Served::Session { context, stats }) => tracing::info!(
            %peer, %context, protocol = stats.protocol.name(),
            pulled = stats.entries_pulled, pushed = stats.entries_pushed, "session served"
        ),
        Err(e) => {
            tracing::warn!(%peer, error = %synctree_primitives::error::error_chain(&e), "session failed")
        }
    }
}

async fn drain(mut sessions: JoinSet<()>) {
    let all_done = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_GRACE, all_done).await.is_err() {
        tracing::warn!("sessions still running after the drain grace period; aborting them");
    }
}
