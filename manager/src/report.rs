//! What an initiated session reports, as Rust values and as the `--json` object.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use synctree_primitives::{SyncStats, TransportStats};

use crate::handshake::PeerSummary;
use crate::selection::Selection;

/// The outcome of [`crate::SyncManager::sync`], from the initiator's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionReport {
    /// The protocol picked, and why.
    pub selection: Selection,
    /// This node's handshake.
    pub local: PeerSummary,
    /// The peer's handshake.
    pub remote: PeerSummary,
    /// The protocol's stats (`None` when no protocol ran).
    pub stats: Option<SyncStats>,
    /// Everything the transport moved, handshake included.
    pub transport: TransportStats,
    /// Wall time of the whole session.
    pub duration: Duration,
}

impl SessionReport {
    /// Assembles a report.
    pub fn new(
        selection: Selection,
        local: PeerSummary,
        remote: PeerSummary,
        stats: Option<SyncStats>,
        transport: TransportStats,
        duration: Duration,
    ) -> Self {
        SessionReport {
            selection,
            local,
            remote,
            stats,
            transport,
            duration,
        }
    }

    /// Round trips, the handshake included.
    pub fn rounds(&self) -> u32 {
        1 + self.stats.as_ref().map_or(0, |s| s.rounds)
    }

    /// True when both sides ended with the same root.
    pub fn converged(&self) -> bool {
        match &self.stats {
            Some(stats) => stats.converged(),
            None => self.local.root == self.remote.root,
        }
    }

    /// The machine-readable summary shared by `demo --json` and `sync --json`.
    pub fn json(&self) -> ReportJson {
        let stats = self.stats.as_ref();
        let (local_root, remote_root) = match stats {
            Some(s) => (s.local_root, s.remote_root),
            None => (self.local.root, self.remote.root),
        };
        ReportJson {
            protocol: self
                .selection
                .protocol
                .map_or("none", |p| p.name())
                .to_owned(),
            reason: self.selection.reason.clone(),
            converged: self.converged(),
            root_local: local_root.to_hex(),
            root_remote: remote_root.to_hex(),
            rounds: self.rounds(),
            bytes_sent: self.transport.bytes_sent,
            bytes_received: self.transport.bytes_received,
            messages: self.transport.messages_sent + self.transport.messages_received,
            messages_sent: self.transport.messages_sent,
            messages_received: self.transport.messages_received,
            entries_pulled: stats.map_or(0, |s| s.entries_pulled),
            entries_pushed: stats.map_or(0, |s| s.entries_pushed),
            payload_bytes: stats.map_or(0, |s| s.payload_bytes),
            nodes_compared: stats.map_or(0, |s| s.nodes_compared),
            leaves_compared: stats.map_or(0, |s| s.leaves_compared),
            tree_depth: self.local.tree_depth,
            duration_ms: self.duration.as_secs_f64() * 1000.0,
        }
    }
}

/// The `--json` object of a session.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReportJson {
    /// Protocol that ran (`none` when roots matched).
    pub protocol: String,
    /// Why it was picked.
    pub reason: String,
    /// Both roots equal at the end.
    pub converged: bool,
    /// Local root at the end, hex.
    pub root_local: String,
    /// Peer's root at the end, hex.
    pub root_remote: String,
    /// Round trips, handshake included.
    pub rounds: u32,
    /// Bytes sent, framing included.
    pub bytes_sent: u64,
    /// Bytes received, framing included.
    pub bytes_received: u64,
    /// Messages both ways.
    pub messages: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Entries received and merged.
    pub entries_pulled: u64,
    /// Entries sent.
    pub entries_pushed: u64,
    /// Encoded size of the entries that crossed the wire.
    pub payload_bytes: u64,
    /// Internal nodes compared.
    pub nodes_compared: u64,
    /// Leaf buckets compared.
    pub leaves_compared: u64,
    /// Depth of the trie.
    pub tree_depth: u32,
    /// Wall time in milliseconds.
    pub duration_ms: f64,
}
