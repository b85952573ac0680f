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
//! | 4a | both run Sketch and the sketch probe estimates d̂ with [`SKETCH_SYMBOLS_PER_DIFFERENCE`] × d̂ ≤ the symbols both keep | Sketch |
//! | 5 | ≥ [`SPREAD_SUBTREES`] of 16 top subtrees differ      | LevelWise       |
//! | 6 | otherwise                                            | HashComparison  |
//!
//! Rows 4a–6 name the sketch estimate in their reason when there is one.
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

/// Symbols per estimated difference a session may need for row 4a to pick
/// Sketch: decoding takes about 1.35–1.5 per difference, the estimate is good to
/// about ±30%; beyond that the session would likely fall over to the tree.
pub const SKETCH_SYMBOLS_PER_DIFFERENCE: u64 = 2;

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
    /// Differences the handshakes' sketch probes estimate (`None`: no probe, or
    /// more than it tells apart); sizes a Sketch session's first request.
    pub estimated_differences: Option<u64>,
    /// True when both sides sent a sketch probe and every probed symbol differed:
    /// more differences than the probe tells apart (a tree protocol then descends
    /// deep, see `TreeConfig::estimated_differences`).
    pub beyond_estimate: bool,
}

impl Selection {
    /// The estimate a tree protocol's descent is planned by: `u64::MAX` beyond
    /// what the probe tells apart, `None` without a probe.
    pub fn tree_estimate(&self) -> Option<u64> {
        if self.beyond_estimate {
            return Some(u64::MAX);
        }
        self.estimated_differences
    }
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
                    estimated_differences: None,
                    beyond_estimate: false,
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
            estimated_differences: sketch_estimate(local, remote).flatten(),
            beyond_estimate: sketch_estimate(local, remote) == Some(None),
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
        estimated_differences: sketch_estimate(local, remote).flatten(),
        beyond_estimate: sketch_estimate(local, remote) == Some(None),
    })
}

/// The sketch probes' estimate: `None` without probes, `Some(None)` when every
/// probed symbol differs (more differences than the probe tells apart).
fn sketch_estimate(local: &PeerSummary, remote: &PeerSummary) -> Option<Option<u64>> {
    let (ours, theirs) = (local.sketch_probe.as_ref()?, remote.sketch_probe.as_ref()?);
    Some(ours.estimate(theirs))
}

/// Row 4a, or the estimate to name in the reason of the rows after it.
fn sketch_row(local: &PeerSummary, remote: &PeerSummary) -> Result<(ProtocolKind, String), String> {
    let both = local.supported.contains(&ProtocolKind::Sketch)
        && remote.supported.contains(&ProtocolKind::Sketch);
    let usable = u64::from(local.sketch_len.min(remote.sketch_len));
    match sketch_estimate(local, remote) {
        Some(Some(d)) if both && d.saturating_mul(SKETCH_SYMBOLS_PER_DIFFERENCE) <= usable => Ok((
            ProtocolKind::Sketch,
            format!("sketch estimate ~{d} differences, within {usable} symbols kept"),
        )),
        Some(Some(d)) => Err(format!(
            "; sketch estimate ~{d} differences, {usable} symbols kept"
        )),
        Some(None) => Err(format!("; sketch estimate beyond {usable} symbols")),
        None => Err(String::new()),
    }
}

/// Rows 1–6 of the table (4a included); `None` when there is nothing to do.
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
    let estimate = match sketch_row(local, remote) {
        Ok((kind, reason)) => return pick(kind, reason),
        Err(estimate) => estimate,
    };
    match (&local.top_fingerprint, &remote.top_fingerprint) {
        (Some(ours), Some(theirs)) => {
            let k = ours.differing(theirs);
            if k >= SPREAD_SUBTREES {
                pick(
                    ProtocolKind::LevelWise,
                    format!("differences spread over {k}/16 top subtrees{estimate}"),
                )
            } else {
                pick(
                    ProtocolKind::HashComparison,
                    format!("differences in {k}/16 top subtrees{estimate}"),
                )
            }
        }
        _ => pick(
            ProtocolKind::HashComparison,
            format!("roots differ{estimate}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{SUPPORTED_COMPRESSION, SketchProbe, TopFingerprint};
    use synctree_primitives::limits::{NODE_HASH_BYTES, SKETCH_PROBE_BYTES};
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
            sketch_len: 0,
            sketch_probe: None,
            gc_watermark: 0,
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

    /// Both sides with sketches of `len` symbols and probes of 151 indices, the
    /// first `differing` of which differ.
    fn with_probes(len: u32, differing: usize) -> (PeerSummary, PeerSummary) {
        let (mut local, mut remote) = (side(1, 1_000_000, 1), side(2, 1_000_000, 0));
        for s in [&mut local, &mut remote] {
            s.supported.push(ProtocolKind::Sketch);
            s.sketch_len = len;
        }
        let ours = vec![[0u8; SKETCH_PROBE_BYTES]; 151];
        let mut theirs = ours.clone();
        theirs.iter_mut().take(differing).for_each(|p| p[0] = 1);
        local.sketch_probe = Some(SketchProbe(ours));
        remote.sketch_probe = Some(SketchProbe(theirs));
        (local, remote)
    }

    #[test]
    fn row_4a_picks_sketch_from_the_estimate_and_tree_rows_name_it() {
        let (local, remote) = with_probes(32_768, 1);
        let s = select(ProtocolChoice::Auto, &local, &remote).expect("selection");
        assert_eq!(s.protocol, Some(ProtocolKind::Sketch));
        assert!(
            s.reason.starts_with("sketch estimate ~1 differences"),
            "{}",
            s.reason
        );
        assert_eq!(s.estimated_differences, Some(1));
        // An estimate too large for the symbols kept: the tree, with the estimate.
        let (local, remote) = with_probes(64, 90);
        let s = select(ProtocolChoice::Auto, &local, &remote).expect("selection");
        assert_eq!(s.protocol, Some(ProtocolKind::HashComparison));
        assert!(s.reason.contains("; sketch estimate ~"), "{}", s.reason);
        let (local, remote) = with_probes(32_768, 151);
        let s = select(ProtocolChoice::Auto, &local, &remote).expect("selection");
        assert_eq!(s.protocol, Some(ProtocolKind::HashComparison));
        assert!(
            s.reason.ends_with("; sketch estimate beyond 32768 symbols"),
            "{}",
            s.reason
        );
    }

    #[test]
    fn a_probe_that_saw_too_many_differences_plans_a_deep_tree_descent() {
        let (local, remote) = with_probes(32_768, 151);
        let s = select(ProtocolChoice::Auto, &local, &remote).expect("selection");
        assert!(s.beyond_estimate && s.estimated_differences.is_none());
        assert_eq!(s.tree_estimate(), Some(u64::MAX));
        let (local, remote) = with_probes(64, 90);
        let s = select(ProtocolChoice::Auto, &local, &remote).expect("selection");
        assert!(!s.beyond_estimate);
        assert_eq!(s.tree_estimate(), s.estimated_differences);
        assert!(s.tree_estimate().is_some());
        let s = select(ProtocolChoice::Auto, &side(1, 990, 2), &side(2, 1_000, 0));
        assert_eq!(
            s.map(|s| s.tree_estimate()),
            Ok(None),
            "no probe, no estimate"
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
