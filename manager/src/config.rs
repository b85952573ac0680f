//! [`ManagerConfig`]: the manager's tunables and their defaults.

use std::time::Duration;

use synctree_primitives::ProtocolKind;
use synctree_primitives::limits::IDLE_TIMEOUT;
use synctree_transport::DEFAULT_SEND_TIMEOUT;

use crate::gc::GcConfig;
use crate::registry::ProtocolRegistry;
use crate::serve::{
    DEFAULT_ACCEPT_TIMEOUT, DEFAULT_BUFFER_BUDGET_BYTES, DEFAULT_EVICT_IDLE_AFTER,
    DEFAULT_FIRST_MESSAGE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_PENDING_CONNECTIONS,
};

/// Sessions served at once by default: enough for a node with dozens of peers,
/// few enough that their buffers and store reads stay bounded.
pub const DEFAULT_MAX_CONCURRENT_SESSIONS: usize = 64;

/// Default longest wait for a peer's first message or handshake reply: a
/// protocol's idle timeout, since a handshake is one more idle-bounded exchange.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = IDLE_TIMEOUT;

/// Manager tunables.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Sessions served at once; streams beyond it get a `BUSY` abort.
    pub max_concurrent_sessions: usize,
    /// Serve contexts this node holds nothing of (a fresh node syncing them in).
    pub accept_unknown_contexts: bool,
    /// Protocols this node advertises, in order of preference (by default every
    /// protocol of [`ProtocolRegistry::standard`]). Each must be registered with
    /// the manager's registry.
    pub supported: Vec<ProtocolKind>,
    /// Longest wait for a peer's first message or handshake reply.
    pub handshake_timeout: Duration,
    /// Longest a served connection may take to send its first frame, before it
    /// gets a session slot (it is closed otherwise).
    pub first_message_timeout: Duration,
    /// Longest an acceptor may take to authenticate a served connection (the
    /// TLS handshake); it is closed otherwise.
    pub accept_timeout: Duration,
    /// Served connections waiting for their first frame at once; more get `BUSY`.
    pub max_pending_connections: usize,
    /// When every session slot is taken, a holder that has received nothing that
    /// makes progress for this long gives its slot to a newcomer (and gets `BUSY`).
    pub evict_idle_after: Duration,
    /// Served connections (pending or in a session) from one IP address at once;
    /// more get `BUSY`.
    pub max_connections_per_ip: usize,
    /// Bytes all served transports together may buffer (see [`BufferBudget`](synctree_transport::BufferBudget)).
    pub buffer_budget_bytes: usize,
    /// Longest a served transport's `send` or `close` waits for the peer to take
    /// bytes; then the session fails with `TransportError::Timeout`.
    pub send_timeout: Duration,
    /// Tombstone GC: the horizon (off by default) and its clock ([`crate::gc`]).
    pub gc: GcConfig,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            max_concurrent_sessions: DEFAULT_MAX_CONCURRENT_SESSIONS,
            accept_unknown_contexts: true,
            supported: ProtocolRegistry::standard().kinds(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            first_message_timeout: DEFAULT_FIRST_MESSAGE_TIMEOUT,
            accept_timeout: DEFAULT_ACCEPT_TIMEOUT,
            max_pending_connections: DEFAULT_MAX_PENDING_CONNECTIONS,
            evict_idle_after: DEFAULT_EVICT_IDLE_AFTER,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            buffer_budget_bytes: DEFAULT_BUFFER_BUDGET_BYTES,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            gc: GcConfig::default(),
        }
    }
}
