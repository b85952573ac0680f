//! The decision table that picks a protocol from two handshakes
//! (docs/PROTOCOL.md, "Protocol selection").
//!
//! | # | What the handshakes say                              | Pick            |
//! |---|------------------------------------------------------|-----------------|
//! | 1 | roots equal                                          | none            |
//! | 2 | initiator empty, responder has state                 | Snapshot        |
//! | 3 | responder empty                                      | HashComparison  |
//! | 4 | initiator holds < 1/[`FAR_BEHIND_RATIO`] of the responder's entries | Snapshot (merge) |
//! | 5 | ≥ [`SPREAD_SUBTREES`] of 16 top subtrees differ      | LevelWise       |
//! | 6 | otherwise                                            | HashComparison  |
//!
//! A pick (or a forced protocol) that one side does not support falls back to the
//! first protocol in the initiator's preference list that both support.

use synctree_primitives::wire::Compression;
use synctree_primitives::{ProtocolError, ProtocolKind};

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

/// Applies the decision table to the two handshakes. `local.top_fingerprint`, when
/// set, is compared with the peer's to estimate how widely the replicas differ.
pub fn select(
    choice: ProtocolChoice,
    local: &PeerSummary,
    remote: &PeerSummary,
) -> Result<Selection, ProtocolError> {
    let compression = local
        .compression
        .iter()
        .copied()
        .find(|c| remote.compression.contains(c))
        .unwrap_or(Compression::None);
    let (wanted, reason) = match choice {
        ProtocolChoice::Force(p) => (p, "forced".to_owned()),
        ProtocolChoice::Auto => match table(local, remote) {
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
fn table(local: &PeerSummary, remote: &PeerSummary) -> Option<(ProtocolKind, String)> {
    if local.root == remote.root {
        return None;
    }
    let pick = |p: ProtocolKind, reason: String| Some((p, reason));
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
        }
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
