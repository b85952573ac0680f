//! Accepting TCP connections and serving them concurrently under a cap.
//!
//! ```text
//!  accept ─► per-address cap ─► pending pool ─► first frame within      ─► session slot ─► handle_stream
//!            (BUSY)             (BUSY)          first_message_timeout      (free, or the     (STREAM_DEADLINE)
//!                                               (closed otherwise)          idlest holder's;
//!                                                                           BUSY otherwise)
//! ```
//!
//! A connection holds a session slot only once it has sent its first frame, so
//! connections that send nothing cost a pending place for a few seconds, never a
//! slot; when every slot is taken, the holder that has gone longest without
//! progress gives way if that is at least `evict_idle_after` (see
//! [`slots`](crate::slots)); every transport charges the manager's [`BufferBudget`].

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use synctree_primitives::limits::{IDLE_TIMEOUT, MAX_FIRST_FRAME_BYTES, SESSION_DEADLINE};
use synctree_primitives::wire::AbortCode;
use synctree_primitives::{Store, StreamMessage, SyncTransport, TransportError};
use synctree_transport::{BufferBudget, FramedTransport};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::accept::{Accepted, Acceptor, PlainTcp};
use crate::access::Access;
use crate::error::ManagerError;
use crate::manager::{Served, SyncManager};
use crate::slots::{Acquired, ProgressHook, Slot, SlotTable};
use synctree_primitives::tap::Tap;

/// How long sessions in progress may run on after shutdown is requested.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Longest one accepted stream may hold a session slot: the handshake wait, a whole
/// session and a final flush. A peer that stops reading cannot pin a slot longer
/// (the session's own deadline does not cover a `close` blocked on a full pipe).
pub const STREAM_DEADLINE: Duration =
    SESSION_DEADLINE.saturating_add(IDLE_TIMEOUT.saturating_mul(2));

/// Default longest wait for a connection's first frame before it is closed: a
/// connecting peer sends its init at once, so seconds cover any honest round trip
/// while idle connections are shed quickly.
pub const DEFAULT_FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default connections waiting for their first frame at once: each costs a socket,
/// a task and at most one [`MAX_FIRST_FRAME_BYTES`] frame, so 1024 cost at most
/// 64 MiB, and idle connections beyond it are refused without touching a slot.
pub const DEFAULT_MAX_PENDING_CONNECTIONS: usize = 1024;

/// Default idle time after which a session gives its slot to a newcomer when every
/// slot is taken: an honest peer answers within a round trip and a local lookup, so
/// a second of silence under slot pressure marks a holder that is not working.
pub const DEFAULT_EVICT_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Default connections (pending or in a session) from one IP address at once:
/// a node syncs a handful of contexts with a peer concurrently; one address cannot
/// take more than a quarter of the default session slots.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 16;

/// Default bytes all served transports together may buffer (outboxes and
/// read-ahead inboxes): past it sends wait for their own outbox and nobody reads
/// ahead, so the node holds about this plus one frame per connection; 64 MiB
/// keeps 64 stalled sessions (and their codec buffers) under 300 MiB in all.
pub const DEFAULT_BUFFER_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// Default longest an [`Acceptor`] may take to authenticate a connection (the TLS
/// handshake: two round trips and two signatures each way), after which it is
/// closed: seconds cover any honest peer, and a connection that stalls its
/// handshake holds a pending place no longer.
pub const DEFAULT_ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a refusal (a `BUSY` abort and a close) may take: a peer that does not
/// read it is dropped.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Counts of what a serve loop did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeSummary {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused with `BUSY`: no session slot, no pending place, or the
    /// address was at its cap.
    pub busy: u64,
    /// Of `busy`: refused because their address (or authenticated peer) was at
    /// its connection cap.
    pub busy_per_address: u64,
    /// Connections closed because their first frame did not arrive in time.
    pub first_message_timeouts: u64,
    /// Sessions ended with `BUSY` to give their slot to a newcomer, after going
    /// at least `evict_idle_after` without progress while every slot was taken.
    pub evicted: u64,
    /// Connections the acceptor refused or that did not finish its handshake in
    /// time (TLS: a peer not in the allowlist, a bad certificate).
    pub handshake_failures: u64,
}

/// The serve loop's counters, shared with its connection tasks.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    busy: AtomicU64,
    busy_per_address: AtomicU64,
    first_message_timeouts: AtomicU64,
    evicted: AtomicU64,
    handshake_failures: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn summary(&self) -> ServeSummary {
        ServeSummary {
            accepted: self.accepted.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            busy_per_address: self.busy_per_address.load(Ordering::Relaxed),
            first_message_timeouts: self.first_message_timeouts.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            handshake_failures: self.handshake_failures.load(Ordering::Relaxed),
        }
    }
}

/// Open connections per key (IP address, or authenticated peer); a [`KeyGuard`]
/// gives its place back on drop.
#[derive(Debug)]
struct PerKey<K> {
    open: Mutex<HashMap<K, usize>>,
    cap: usize,
}

#[derive(Debug)]
struct KeyGuard<K: Hash + Eq> {
    table: Arc<PerKey<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> PerKey<K> {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(PerKey {
            open: Mutex::new(HashMap::new()),
            cap: cap.max(1),
        })
    }

    fn admit(table: &Arc<PerKey<K>>, key: K) -> Option<KeyGuard<K>> {
        let mut open = table.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= table.cap {
            return None;
        }
        *count += 1;
        Some(KeyGuard {
            table: Arc::clone(table),
            key,
        })
    }
}

impl<K: Hash + Eq> Drop for KeyGuard<K> {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Session slots shared by the streams of one serve loop (see
/// [`SyncManager::serve_accepted`]).
#[derive(Clone, Debug)]
pub struct SessionSlots(Arc<SlotTable>);

impl SessionSlots {
    /// `slots` sessions at once (at least one); when all are taken, a holder idle
    /// for `evict_idle_after` gives way to a newcomer.
    pub fn new(slots: usize, evict_idle_after: Duration) -> Self {
        SessionSlots(SlotTable::new(slots, evict_idle_after))
    }
}

/// What every connection task shares.
#[derive(Debug)]
struct Admission {
    slots: Arc<SlotTable>,
    pending: Arc<Semaphore>,
    per_address: Arc<PerKey<IpAddr>>,
    /// Connections per authenticated peer (node ID), so one identity cannot
    /// take more than one address may.
    per_peer: Arc<PerKey<String>>,
    counters: Counters,
}

impl<S: Store + 'static> SyncManager<S> {
    /// [`SyncManager::serve_with`] over plain TCP ([`PlainTcp`]): nothing is
    /// authenticated or encrypted, every peer may read and write everything.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<ServeSummary> {
        self.serve_with(listener, Arc::new(PlainTcp), shutdown)
            .await
    }

    /// Accepts connections on `listener` and serves each on its own task until
    /// `shutdown` completes; then stops accepting and lets running sessions finish
    /// for up to [`DRAIN_GRACE`]. A connection is refused when its address
    /// already has `max_connections_per_ip` open or `max_pending_connections`
    /// are waiting; `acceptor` then authenticates it within `accept_timeout`
    /// (closed otherwise, before any protocol message is decoded); it is refused
    /// with `BUSY` when its peer already has `max_connections_per_ip` open, closed
    /// when its first frame takes longer than `first_message_timeout`, and then
    /// gets one of `max_concurrent_sessions` slots, or `BUSY`.
    pub async fn serve_with<A: Acceptor>(
        self: Arc<Self>,
        listener: TcpListener,
        acceptor: Arc<A>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<ServeSummary> {
        let config = self.config();
        let admission = Arc::new(Admission {
            slots: SlotTable::new(config.max_concurrent_sessions, config.evict_idle_after),
            pending: Arc::new(Semaphore::new(config.max_pending_connections.max(1))),
            per_address: PerKey::new(config.max_connections_per_ip),
            per_peer: PerKey::new(config.max_connections_per_ip),
            counters: Counters::default(),
        });
        let mut sessions = JoinSet::new();
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
            Counters::bump(&admission.counters.accepted);
            let manager = Arc::clone(&self);
            let admission = Arc::clone(&admission);
            let acceptor = Arc::clone(&acceptor);
            sessions.spawn(async move {
                manager.admit(stream, addr, &admission, &*acceptor).await;
            });
        }
        drain(sessions).await;
        Ok(admission.counters.summary())
    }

    /// One accepted connection, from the address cap to the end of its session.
    async fn admit<A: Acceptor>(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        admission: &Admission,
        acceptor: &A,
    ) {
        let counters = &admission.counters;
        let _ = stream.set_nodelay(true);
        let Some(_address) = PerKey::admit(&admission.per_address, addr.ip()) else {
            Counters::bump(&counters.busy_per_address);
            Counters::bump(&counters.busy);
            let why = "too many connections from one address";
            return acceptor.refuse_early(stream, why).await;
        };
        let Ok(pending) = Arc::clone(&admission.pending).try_acquire_owned() else {
            Counters::bump(&counters.busy);
            return acceptor
                .refuse_early(stream, "too many pending connections")
                .await;
        };
        let Some(accepted) = self.authenticate(acceptor, stream, addr, counters).await else {
            return;
        };
        let Accepted {
            stream,
            peer,
            access,
        } = accepted;
        let mut transport = self.framed(stream, &peer);
        let Some(_peer) = PerKey::admit(&admission.per_peer, peer.clone()) else {
            Counters::bump(&counters.busy_per_address);
            let why = "too many connections from one peer";
            return refuse_busy(&mut transport, counters, why).await;
        };
        if !self.first_frame_in_time(&mut transport, &peer).await {
            Counters::bump(&counters.first_message_timeouts);
            return;
        }
        drop(pending);
        let slot = match admission.slots.acquire() {
            Some(Acquired::Free(slot)) => slot,
            Some(Acquired::Evicted(slot)) => {
                Counters::bump(&counters.evicted);
                slot
            }
            None => {
                return refuse_busy(&mut transport, counters, "too many sessions; retry later")
                    .await;
            }
        };
        self.serve_session(&mut transport, (&peer, &access), slot)
            .await;
    }

    /// Serves one stream that is already authenticated (a QUIC stream, say) the
    /// way [`SyncManager::serve_with`] serves a connection past its acceptor:
    /// framed with this manager's buffer budget and send timeout, closed when
    /// its first frame takes longer than `first_message_timeout`, refused with
    /// `BUSY` when `slots` has none free, then served under
    /// [`STREAM_DEADLINE`], recorded and logged.
    pub async fn serve_accepted<T>(&self, accepted: Accepted<T>, slots: &SessionSlots)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let Accepted {
            stream,
            peer,
            access,
        } = accepted;
        let mut transport = self.framed(stream, &peer);
        if !self.first_frame_in_time(&mut transport, &peer).await {
            return;
        }
        let slot = match slots.0.acquire() {
            Some(Acquired::Free(slot) | Acquired::Evicted(slot)) => slot,
            None => {
                let abort = StreamMessage::abort(AbortCode::Busy, "too many sessions; retry later");
                return send_refusal(&mut transport, &abort).await;
            }
        };
        self.serve_session(&mut transport, (&peer, &access), slot)
            .await;
    }

    /// Waits for the connection's first frame (at most `MAX_FIRST_FRAME_BYTES`)
    /// for up to `first_message_timeout`; false (and the connection is to be
    /// closed) when it does not come.
    async fn first_frame_in_time<T>(&self, transport: &mut FramedTransport<T>, peer: &str) -> bool
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let wait = self.config().first_message_timeout;
        let first = tokio::time::timeout(wait, transport.wait_first_frame(MAX_FIRST_FRAME_BYTES));
        let arrived = first.await.is_ok();
        if !arrived {
            tracing::debug!(%peer, "no first frame in time; closed");
        }
        arrived
    }

    /// Runs `acceptor` on the connection within `accept_timeout`; a refusal or a
    /// timeout closes it and is counted.
    async fn authenticate<A: Acceptor>(
        &self,
        acceptor: &A,
        stream: TcpStream,
        addr: SocketAddr,
        counters: &Counters,
    ) -> Option<Accepted<A::Stream>> {
        let wait = self.config().accept_timeout;
        match tokio::time::timeout(wait, acceptor.accept(stream, addr)).await {
            Ok(Ok(accepted)) => return Some(accepted),
            Ok(Err(e)) => tracing::info!(
                %addr, error = %synctree_primitives::error::error_chain(&e), "connection refused"
            ),
            Err(_) => {
                tracing::info!(%addr, timeout = ?wait, "connection refused: handshake too slow")
            }
        }
        Counters::bump(&counters.handshake_failures);
        None
    }

    fn framed<T>(&self, stream: T, peer: &str) -> FramedTransport<T>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        FramedTransport::new(stream, peer)
            .with_budget(Arc::clone(self.buffer_budget()))
            .with_send_timeout(self.config().send_timeout)
    }

    async fn serve_session<T>(
        &self,
        transport: &mut FramedTransport<T>,
        (peer, access): (&str, &Access),
        slot: Slot,
    ) where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let started = tokio::time::Instant::now();
        let mut tracked = Tap::new(&mut *transport, ProgressHook(slot.progress.clone()));
        let handled = self.handle_stream_as(&mut tracked, access);
        let served = tokio::select! {
            served = tokio::time::timeout(STREAM_DEADLINE, handled) => Some(served),
            () = slot.evicted.notified() => None,
        };
        drop(slot);
        let Some(served) = served else {
            tracing::info!(%peer, "session evicted: no progress while every slot was taken");
            crate::metrics::record_evicted(peer);
            let abort = StreamMessage::abort(
                AbortCode::Busy,
                "evicted: no progress while the node was full",
            );
            return send_refusal(transport, &abort).await;
        };
        let outcome = match served {
            Ok(outcome) => outcome,
            Err(_) => Err(ManagerError::Transport {
                peer: peer.to_owned(),
                phase: "serving",
                source: TransportError::Timeout(STREAM_DEADLINE),
            }),
        };
        let stream = crate::metrics::ServedStream {
            peer,
            transport: transport.stats(),
            duration: started.elapsed(),
        };
        crate::metrics::record_served(&outcome, stream);
        log_outcome(peer, outcome);
    }
}

async fn refuse_busy<T: SyncTransport>(transport: &mut T, counters: &Counters, why: &str) {
    Counters::bump(&counters.busy);
    send_refusal(transport, &StreamMessage::abort(AbortCode::Busy, why)).await;
}

/// Sends `abort` and closes, within [`REFUSAL_TIMEOUT`].
pub(crate) async fn send_refusal<T: SyncTransport>(transport: &mut T, abort: &StreamMessage) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        let _ = transport.send(abort).await;
        let _ = transport.close().await;
    })
    .await;
}

/// The budget a manager's served transports share.
pub(crate) fn budget_for(bytes: usize) -> Arc<BufferBudget> {
    BufferBudget::new(bytes)
}

fn log_outcome(peer: &str, outcome: Result<Served, ManagerError>) {
    match outcome {
        Ok(Served::HandshakeOnly { context }) => tracing::info!(%peer, %context, "in sync"),
        Ok(Served::Listed { contexts }) => tracing::info!(%peer, contexts, "contexts listed"),
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
