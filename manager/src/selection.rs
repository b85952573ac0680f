//! The decision table that picks a protocol from two handshakes
//! (docs/PROTOCOL.md, "Protocol selection").
//!
//! | # | What the handshakes say                              | Pick            |
//! |---|------------------------------------------------------|-----------------|
//! | 1 | roots equal                                          | none            |
//! | 1a | the last tree session between exactly these roots did not converge | Snapshot (merge) |
//! | 1b | a snapshot from this peer on this context was interrupted (progress kept) | Snapshot (resume) |
//! | 2 | initiator empty, responder has state                 | Snapshot        |
//! | 3 | responder empty                                      | HashComparison  |
//! | 4 | initiator holds < 1/[`FAR_BEHIND_RATIO`] of the responder's entries | Snapshot (merge) |
//! | 5 | ≥ [`SPREAD_SUBTREES`] of 16 top subtrees differ      | LevelWise       |
//! | 6 | otherwise                                            | HashComparison  |
//!
//! A pick (or a forced protocol) that one side does not support falls back to the
//! first protocol in the initiator's preference list that both support.
//!
//! Row 1a is fed by the caller ([`SyncManager`](crate::SyncManager) remembers, per
//! peer node id and context, how its last tree session ended): a tree session that
//! ended "not converged" and left the two roots exactly where this handshake finds
//! them met something the tree protocols cannot resolve (a collision of truncated
//! hashes or key-hash prefixes); nobody wrote since, so running it again would at
//! best repeat it. Snapshot moves whole entries and compares no truncated hash.

use synctree_primitives::wire::Compression;
use synctree_primitives::{Hash, ProtocolError, ProtocolKind};

use crate::handshake::PeerSummary;

/// An initiator holding fewer than 1/`FAR_BEHIND_RATIO` of the responder's entries
/// is far behind: streaming the whole set beats descending into nearly every bucket.
pub const FAR_BEHIND_RATIO: u64 = 10;

/// Differing top subtrees (of 16) from which differences count as spread out: then
/// nearly every node of every level differs, and LevelWise's one large request per
/// level costs fewer messages than HashComparison's eager, pipelined requests.
pub const SPREAD_SUBTREES: usize = 12;

/// What the initiator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Let the decision table pick.
    Auto,
    /// Run this protocol whatever the numbers say (falling back when the peer does
    /// not support it).
    Force(ProtocolKind),
}

/// The protocol picked for a session, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// `None` when there is nothing to do.
    pub protocol: Option<ProtocolKind>,
    /// One phrase, reported in stats and the `--json` output.
    pub reason: String,
    /// Page encoding both sides read (used by Snapshot).
    pub compression: Compression,
}

/// How the previous tree session with a peer on a context ended, when it did not
/// converge: the roots both sides reported at its finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unconverged {
    /// The tree protocol that ran.
    pub protocol: ProtocolKind,
    /// The initiator's root after the session.
    pub local_root: Hash,
    /// The responder's root in its `FinishAck`.
    pub remote_root: Hash,
}

impl Unconverged {
    /// Whether neither root moved since that session ended.
    fn still_stuck(&self, local: &PeerSummary, remote: &PeerSummary) -> bool {
        self.local_root == local.root && self.remote_root == remote.root
    }
}

/// Applies the decision table to the two handshakes. `local.top_fingerprint`, when
/// set, is compared with the peer's to estimate how widely the replicas differ.
pub fn select(
    choice: ProtocolChoice,
    local: &PeerSummary,
    remote: &PeerSummary,
) -> Result<Selection, ProtocolError> {
    select_after(choice, local, remote, None)
}

/// [`select`], knowing how the previous tree session with this peer on this
/// context ended if it did not converge (row 1a).
pub fn select_after(
    choice: ProtocolChoice,
    local: &PeerSummary,
    remote: &PeerSummary,
    previous: Option<&Unconverged>,
) -> Result<Selection, ProtocolError> {
    select_resuming(choice, local, remote, previous, false)
}

/// [`select_after`], also knowing whether an interrupted snapshot from this peer
/// on this context is kept for resuming (row 1b).
pub fn select_resuming(
    choice: ProtocolChoice,
    local: &PeerSummary,
    remote: &PeerSummary,
    previous: Option<&Unconverged>,
    resumable_snapshot: bool,
) -> Result<Selection, ProtocolError> {
    let compression = local
        .compression
        .iter()
        .copied()
        .find(|c| remote.compression.contains(c))
        .unwrap_or(Compression::None);
    let (wanted, reason) = match choice {
        ProtocolChoice::Force(p) => (p, "forced".to_owned()),
        ProtocolChoice::Auto => match table(local, remote, previous, resumable_snapshot) {
            Some(pick) => pick,
            None => {
                return Ok(Selection {
                    protocol: None,
                    reason: "roots match".to_owned(),
                    compression,
                });
            }
        },
    };
    let both = |p: &ProtocolKind| local.supported.contains(p) && remote.supported.contains(p);
    if both(&wanted) {
        return Ok(Selection {
            protocol: Some(wanted),
            reason,
            compression,
        });
    }
    let fallback = local.supported.iter().copied().find(both).ok_or_else(|| {
        ProtocolError::UnsupportedProtocol(format!(
            "{} wanted ({reason}), and no protocol is supported by both sides",
            wanted.name()
        ))
    })?;
    Ok(Selection {
        protocol: Some(fallback),
        reason: format!(
            "{reason}; {} unsupported, fell back to {}",
            wanted.name(),
            fallback.name()
        ),
        compression,
    })
}

/// Rows 1–6 of the table; `None` when there is nothing to do.
fn table(
    local: &PeerSummary,
    remote: &PeerSummary,
    previous: Option<&Unconverged>,
    resumable_snapshot: bool,
) -> Option<(ProtocolKind, String)> {
    if local.root == remote.root {
        return None;
    }
    let pick = |p: ProtocolKind, reason: String| Some((p, reason));
    if let Some(previous) = previous.filter(|p| p.still_stuck(local, remote)) {
        let reason = format!(
            "previous tree session did not converge ({}, roots unchanged since)",
            previous.protocol.name()
        );
        return pick(ProtocolKind::Snapshot, reason);
    }
    if resumable_snapshot && remote.has_state {
        return pick(
            ProtocolKind::Snapshot,
            "resuming an interrupted snapshot".to_owned(),
        );
    }
    if !local.has_state && remote.has_state {
        return pick(ProtocolKind::Snapshot, "initiator empty".to_owned());
    }
    if !remote.has_state {
        return pick(
            ProtocolKind::HashComparison,
            "responder empty: push everything".to_owned(),
        );
    }
    if local.entry_count.saturating_mul(FAR_BEHIND_RATIO) < remote.entry_count {
        let reason = format!(
            "initiator far behind ({} of {} entries)",
            local.entry_count, remote.entry_count
        );
        return pick(ProtocolKind::Snapshot, reason);
    }
    match (&local.top_fingerprint, &remote.top_fingerprint) {
        (Some(ours), Some(theirs)) => {
            let k = ours.differing(theirs);
            if k >= SPREAD_SUBTREES {
                pick(
                    ProtocolKind::LevelWise,
                    format!("differences spread over {k}/16 top subtrees"),
                )
            } else {
                pick(
                    ProtocolKind::HashComparison,
                    format!("differences in {k}/16 top subtrees"),
                )
            }
        }
        _ => pick(ProtocolKind::HashComparison, "roots differ".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{SUPPORTED_COMPRESSION, TopFingerprint};
    use synctree_primitives::limits::NODE_HASH_BYTES;
    use synctree_primitives::merkle::FANOUT;
    use synctree_primitives::{Hash, NodeId};

    fn side(root: u8, entries: u64, differing_top: usize) -> PeerSummary {
        let mut top = [[0u8; NODE_HASH_BYTES]; FANOUT];
        top.iter_mut().take(differing_top).for_each(|t| t[0] = 1);
        PeerSummary {
            root: Hash([root; 32]),
            entry_count: entries,
            tree_depth: 4,
            has_state: entries > 0,
            supported: vec![
                ProtocolKind::HashComparison,
                ProtocolKind::LevelWise,
                ProtocolKind::Snapshot,
            ],
            node_id: NodeId(1),
            compression: SUPPORTED_COMPRESSION.to_vec(),
            top_fingerprint: Some(TopFingerprint(top)),
            nonce: Default::default(),
        }
    }

    #[test]
    fn an_unconverged_tree_session_between_the_same_roots_is_followed_by_a_snapshot() {
        let (local, remote) = (side(1, 990, 2), side(2, 1_000, 0));
        let stuck = Unconverged {
            protocol: ProtocolKind::HashComparison,
            local_root: local.root,
            remote_root: remote.root,
        };
        let s = select_after(ProtocolChoice::Auto, &local, &remote, Some(&stuck));
        let s = s.expect("selection");
        assert_eq!(s.protocol, Some(ProtocolKind::Snapshot));
        assert_eq!(
            s.reason,
            "previous tree session did not converge (hash-comparison, roots unchanged since)"
        );
        // A root that moved since (a write) explains the miss: the table as usual.
        let moved = Unconverged {
            remote_root: Hash([9; 32]),
            ..stuck
        };
        let s = select_after(ProtocolChoice::Auto, &local, &remote, Some(&moved));
        assert_eq!(
            s.map(|s| s.protocol),
            Ok(Some(ProtocolKind::HashComparison))
        );
        // Equal roots still mean nothing to do; a forced protocol is still forced.
        let s = select_after(ProtocolChoice::Auto, &remote, &remote, Some(&stuck));
        assert_eq!(s.map(|s| s.protocol), Ok(None));
        let forced = ProtocolChoice::Force(ProtocolKind::LevelWise);
        let s = select_after(forced, &local, &remote, Some(&stuck));
        assert_eq!(s.map(|s| s.protocol), Ok(Some(ProtocolKind::LevelWise)));
    }

    fn auto(local: &PeerSummary, remote: &PeerSummary) -> Option<ProtocolKind> {
        select(ProtocolChoice::Auto, local, remote)
            .expect("a selection")
            .protocol
    }

    #[test]
    fn every_row_of_the_table() {
        let remote = side(2, 1_000, 0);
        assert_eq!(auto(&side(2, 1_000, 0), &remote), None);
        assert_eq!(auto(&side(0, 0, 0), &remote), Some(ProtocolKind::Snapshot));
        assert_eq!(
            auto(&side(1, 1_000, 0), &side(0, 0, 0)),
            Some(ProtocolKind::HashComparison)
        );
        assert_eq!(auto(&side(1, 50, 0), &remote), Some(ProtocolKind::Snapshot));
        assert_eq!(
            auto(&side(1, 990, SPREAD_SUBTREES), &remote),
            Some(ProtocolKind::LevelWise)
        );
        assert_eq!(
            auto(&side(1, 990, SPREAD_SUBTREES - 1), &remote),
            Some(ProtocolKind::HashComparison)
        );
    }

    #[test]
    fn reasons_carry_the_numbers() {
        let s = select(ProtocolChoice::Auto, &side(1, 50, 0), &side(2, 1_000, 0));
        assert_eq!(
            s.map(|s| s.reason),
            Ok("initiator far behind (50 of 1000 entries)".to_owned())
        );
    }

    #[test]
    fn unsupported_picks_fall_back_to_a_common_protocol() {
        let mut old_peer = side(2, 1_000, 0);
        old_peer.supported = vec![ProtocolKind::HashComparison];
        let s = select(ProtocolChoice::Auto, &side(0, 0, 0), &old_peer).expect("selection");
        assert_eq!(s.protocol, Some(ProtocolKind::HashComparison));
        assert!(s.reason.contains("fell back"), "{}", s.reason);
        let forced = ProtocolChoice::Force(ProtocolKind::LevelWise);
        let s = select(forced, &side(1, 9, 0), &old_peer).expect("selection");
        assert_eq!(s.protocol, Some(ProtocolKind::HashComparison));
        old_peer.supported.clear();
        assert!(select(ProtocolChoice::Auto, &side(1, 9, 0), &old_peer).is_err());
    }

    #[test]
    fn forcing_runs_even_when_roots_match_and_compression_needs_both_sides() {
        let forced = ProtocolChoice::Force(ProtocolKind::Snapshot);
        let mut remote = side(1, 9, 0);
        let s = select(forced, &side(1, 9, 0), &remote).expect("selection");
        assert_eq!(
            (s.protocol, s.compression),
            (Some(ProtocolKind::Snapshot), Compression::Lz4)
        );
        remote.compression.clear();
        let s = select(forced, &side(1, 9, 0), &remote).expect("selection");
        assert_eq!(s.compression, Compression::None);
    }
}
