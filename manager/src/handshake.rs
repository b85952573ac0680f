//! The handshake both sides exchange: what each side knows about its replica.
//! [`crate::selection`] turns two of them into a protocol choice.

use synctree_primitives::limits::{
    MAX_SUPPORTED_PROTOCOLS, NODE_HASH_BYTES, SKETCH_MAX_PROBES, SKETCH_MAX_SYMBOLS,
    SKETCH_PROBE_BYTES,
};
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::salt::{SessionKey, SessionNonce};
use synctree_primitives::sketch::{estimate_differences, probe_indices};
use synctree_primitives::wire::{Compression, Handshake};
use synctree_primitives::{
    ContextId, Hash, NodeId, NodePos, ProtocolError, ProtocolKind, Store, StoreError, TreeSummary,
};

/// Page encodings this build can read, besides none.
pub const SUPPORTED_COMPRESSION: &[Compression] = &[Compression::Lz4];

/// Bytes of each level-1 child hash in a top fingerprint: the truncation the tree
/// protocols compare with, so the fingerprint doubles as the first level of their
/// descent.
const FINGERPRINT_BYTES: usize = NODE_HASH_BYTES;

/// Each level-1 child hash in the session's salted truncation
/// ([`SessionKey::truncate`], [`NODE_HASH_BYTES`] each): tells which of the 16 top
/// subtrees differ (for the decision table) and lets a tree protocol start its
/// descent one level down. The responder can key it because the initiator's nonce
/// arrived before it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopFingerprint(pub [[u8; NODE_HASH_BYTES]; FANOUT]);

impl TopFingerprint {
    /// The fingerprint of `context`'s level-1 children under `key`.
    pub fn local<S: Store + ?Sized>(
        store: &S,
        context: &ContextId,
        key: &SessionKey,
    ) -> Result<Self, StoreError> {
        let children = store.children(context, NodePos::ROOT)?;
        Ok(TopFingerprint(children.map(|h| key.truncate(&h))))
    }

    /// How many of the 16 top subtrees differ between the two fingerprints.
    pub fn differing(&self, other: &TopFingerprint) -> usize {
        self.0.iter().zip(&other.0).filter(|(a, b)| a != b).count()
    }

    fn to_wire(self) -> Vec<u8> {
        self.0.concat()
    }

    fn from_wire(bytes: &[u8]) -> Result<Option<Self>, ProtocolError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        if bytes.len() != FANOUT * FINGERPRINT_BYTES {
            return Err(ProtocolError::BadLength {
                field: "top_fingerprint",
                expected: FANOUT * FINGERPRINT_BYTES,
                got: bytes.len(),
            });
        }
        let mut out = [[0u8; FINGERPRINT_BYTES]; FANOUT];
        for (slot, chunk) in out.iter_mut().zip(bytes.chunks_exact(FINGERPRINT_BYTES)) {
            slot.copy_from_slice(chunk);
        }
        Ok(Some(TopFingerprint(out)))
    }
}

/// The leading [`SKETCH_PROBE_BYTES`] of the checksum of each sketch symbol at
/// the probe indices ([`probe_indices`]) below the responder's sketch length: two
/// sides' probes agree at an index exactly when the difference symbol there is
/// empty (but by a 2^-32 accident), which estimates the number of differences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SketchProbe(pub Vec<[u8; SKETCH_PROBE_BYTES]>);

impl SketchProbe {
    /// The probe of `context`'s sketch at the probe indices below `len` (and
    /// below the local sketch's length).
    pub fn local<S: Store + ?Sized>(
        store: &S,
        context: &ContextId,
        len: u32,
    ) -> Result<Self, StoreError> {
        let len = len.min(store.sketch_len(context)?);
        let mut out = Vec::new();
        for i in probe_indices(len) {
            let Some(symbol) = store.sketch(context, i, 1)?.first().copied() else {
                break;
            };
            let mut probe = [0u8; SKETCH_PROBE_BYTES];
            probe.copy_from_slice(&symbol.checksum.to_be_bytes()[..SKETCH_PROBE_BYTES]);
            out.push(probe);
        }
        Ok(SketchProbe(out))
    }

    /// The number of differences the two probes suggest, and the length they
    /// cover; `None` when no index agrees (more differences than the probe
    /// tells apart) or a probe is empty.
    pub fn estimate(&self, other: &SketchProbe) -> Option<u64> {
        let pairs: Vec<(u32, bool)> = probe_indices(SKETCH_MAX_SYMBOLS)
            .zip(self.0.iter().zip(&other.0))
            .map(|(i, (a, b))| (i, a == b))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        estimate_differences(&pairs, u64::from(SKETCH_MAX_SYMBOLS) * 4)
    }

    fn to_wire(&self) -> Vec<u8> {
        self.0.concat()
    }

    fn from_wire(bytes: &[u8]) -> Result<Option<Self>, ProtocolError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        if !bytes.len().is_multiple_of(SKETCH_PROBE_BYTES) {
            return Err(ProtocolError::Malformed("sketch probe of a partial symbol"));
        }
        let count = bytes.len() / SKETCH_PROBE_BYTES;
        ProtocolError::check_limit("sketch probes", SKETCH_MAX_PROBES, count)?;
        let probes = bytes.chunks_exact(SKETCH_PROBE_BYTES).map(|c| {
            let mut p = [0u8; SKETCH_PROBE_BYTES];
            p.copy_from_slice(c);
            p
        });
        Ok(Some(SketchProbe(probes.collect())))
    }
}

/// One side's view of a context, as exchanged in the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSummary {
    /// Merkle root.
    pub root: Hash,
    /// Entries, tombstones included.
    pub entry_count: u64,
    /// Levels below the root.
    pub tree_depth: u32,
    /// False when the side holds nothing in the context.
    pub has_state: bool,
    /// Protocols the side can run.
    pub supported: Vec<ProtocolKind>,
    /// The side's node id.
    pub node_id: NodeId,
    /// Page encodings the side can read, besides none.
    pub compression: Vec<Compression>,
    /// The responder's level-1 fingerprint (sent only when the roots differ).
    pub top_fingerprint: Option<TopFingerprint>,
    /// The side's contribution to the session key ([`SessionKey::derive`]).
    pub nonce: SessionNonce,
    /// Coded symbols of the side's sketch it maintains (0: none). On the wire only
    /// beside a probe (a responder whose root differs); read as 0 otherwise.
    pub sketch_len: u32,
    /// The responder's sketch probe (sent only when the roots differ and the
    /// initiator runs the sketch protocol); the initiator's own, computed after.
    pub sketch_probe: Option<SketchProbe>,
    /// The side's tombstone-GC watermark of the context
    /// ([`Store::gc_watermark`]); peer-supplied, so capped before use
    /// ([`crate::gc`]).
    pub gc_watermark: u64,
}

impl PeerSummary {
    /// This node's summary of `context`, with an all-zero nonce: the manager
    /// fills in a fresh one from its CSPRNG before sending.
    pub fn local<S: Store + ?Sized>(
        store: &S,
        context: &ContextId,
        node_id: NodeId,
        supported: &[ProtocolKind],
    ) -> Result<Self, StoreError> {
        let TreeSummary {
            root,
            entry_count,
            depth,
        } = store.summary(context)?;
        let sketch_len = store.sketch_len(context)?;
        let gc_watermark = store.gc_watermark(context)?;
        Ok(PeerSummary {
            root,
            entry_count,
            tree_depth: u32::from(depth),
            has_state: entry_count > 0,
            supported: supported.to_vec(),
            node_id,
            compression: SUPPORTED_COMPRESSION.to_vec(),
            top_fingerprint: None,
            nonce: SessionNonce::NONE,
            sketch_len,
            sketch_probe: None,
            gc_watermark,
        })
    }

    /// The wire form.
    pub fn to_wire(&self) -> Handshake {
        Handshake {
            root: self.root.0.to_vec().into(),
            entry_count: self.entry_count,
            tree_depth: self.tree_depth,
            has_state: self.has_state,
            supported: self.supported.iter().map(|&p| p as i32).collect(),
            node_id: self.node_id.0,
            compression: self.compression.iter().map(|&c| c as i32).collect(),
            top_fingerprint: self
                .top_fingerprint
                .map(TopFingerprint::to_wire)
                .unwrap_or_default()
                .into(),
            nonce: self.nonce.0.to_vec().into(),
            // Only beside a probe: an in-sync check stays as small as before.
            sketch_len: if self.sketch_probe.is_some() {
                self.sketch_len
            } else {
                0
            },
            sketch_probe: self
                .sketch_probe
                .as_ref()
                .map(SketchProbe::to_wire)
                .unwrap_or_default()
                .into(),
            gc_watermark: self.gc_watermark,
        }
    }

    /// Checks a peer's handshake. Unknown protocol and compression numbers are
    /// ignored (a newer peer may support more than this node knows); a nonce of
    /// any length but [`SESSION_NONCE_BYTES`](synctree_primitives::limits::SESSION_NONCE_BYTES),
    /// a missing one included, is refused (`MALFORMED`).
    pub fn from_wire(h: &Handshake) -> Result<Self, ProtocolError> {
        ProtocolError::check_limit(
            "supported protocols",
            MAX_SUPPORTED_PROTOCOLS,
            h.supported.len(),
        )?;
        ProtocolError::check_limit(
            "supported compressions",
            MAX_SUPPORTED_PROTOCOLS,
            h.compression.len(),
        )?;
        Ok(PeerSummary {
            root: Hash::from_wire(&h.root, "root")?,
            entry_count: h.entry_count,
            tree_depth: h.tree_depth,
            has_state: h.has_state,
            supported: h
                .supported
                .iter()
                .filter_map(|&p| ProtocolKind::try_from(p).ok())
                .collect(),
            node_id: NodeId(h.node_id),
            compression: h
                .compression
                .iter()
                .filter_map(|&c| Compression::try_from(c).ok())
                .filter(|&c| c != Compression::None)
                .collect(),
            top_fingerprint: TopFingerprint::from_wire(&h.top_fingerprint)?,
            nonce: SessionNonce::from_wire(&h.nonce, "nonce")?,
            sketch_len: h.sketch_len.min(SKETCH_MAX_SYMBOLS),
            sketch_probe: SketchProbe::from_wire(&h.sketch_probe)?,
            gc_watermark: h.gc_watermark,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::{Entry, NodeId as Node, Version};
    use synctree_store::MemoryStore;

    /// What the standard registry advertises.
    const SUPPORTED_PROTOCOLS: &[ProtocolKind] = &[
        ProtocolKind::HashComparison,
        ProtocolKind::LevelWise,
        ProtocolKind::Snapshot,
    ];

    pub(crate) fn summary(root: u8) -> PeerSummary {
        PeerSummary {
            root: Hash([root; 32]),
            entry_count: 1,
            tree_depth: 4,
            has_state: true,
            supported: SUPPORTED_PROTOCOLS.to_vec(),
            node_id: NodeId(1),
            compression: SUPPORTED_COMPRESSION.to_vec(),
            top_fingerprint: Some(TopFingerprint([[root; NODE_HASH_BYTES]; FANOUT])),
            nonce: SessionNonce([root; 16]),
            sketch_len: 0,
            sketch_probe: None,
            gc_watermark: u64::from(root) << 40,
        }
    }

    #[test]
    fn handshakes_round_trip_and_reject_bad_lengths() {
        let s = summary(7);
        assert_eq!(PeerSummary::from_wire(&s.to_wire()), Ok(s));
        let mut bad = summary(7).to_wire();
        bad.root = vec![1; 3].into();
        assert!(PeerSummary::from_wire(&bad).is_err());
        let mut bad = summary(7).to_wire();
        bad.top_fingerprint = vec![1; 127].into();
        assert!(PeerSummary::from_wire(&bad).is_err());
        for len in [0, 8, 15, 17] {
            let mut bad = summary(7).to_wire();
            bad.nonce = vec![1; len].into();
            let refused = PeerSummary::from_wire(&bad).map_err(|e| e.abort_code());
            assert_eq!(
                refused,
                Err(synctree_primitives::wire::AbortCode::Malformed)
            );
        }
    }

    #[test]
    fn unknown_numbers_are_ignored_but_long_lists_are_refused() {
        let mut wire = summary(1).to_wire();
        wire.supported.push(99);
        wire.compression.push(42);
        let read = PeerSummary::from_wire(&wire).map(|s| (s.supported, s.compression));
        assert_eq!(
            read,
            Ok((SUPPORTED_PROTOCOLS.to_vec(), SUPPORTED_COMPRESSION.to_vec()))
        );
        wire.compression = vec![1; MAX_SUPPORTED_PROTOCOLS + 1];
        assert!(PeerSummary::from_wire(&wire).is_err());
    }

    #[test]
    fn fingerprints_count_differing_top_subtrees() {
        let ctx = ContextId::new("fp").unwrap();
        let (a, b) = (MemoryStore::new(), MemoryStore::new());
        let entries: Vec<Entry> = (0..200)
            .map(|i| Entry::put(format!("k{i}"), "v", Version::new(1, Node(1))))
            .collect();
        a.apply(&ctx, entries.clone()).unwrap();
        b.apply(&ctx, entries).unwrap();
        let key = SessionKey::derive(&SessionNonce([1; 16]), &SessionNonce([2; 16]));
        let fa = TopFingerprint::local(&a, &ctx, &key).unwrap();
        assert_eq!(
            fa.differing(&TopFingerprint::local(&b, &ctx, &key).unwrap()),
            0
        );
        b.apply(
            &ctx,
            vec![Entry::put("k1", "new", Version::new(2, Node(2)))],
        )
        .unwrap();
        assert_eq!(
            fa.differing(&TopFingerprint::local(&b, &ctx, &key).unwrap()),
            1
        );
        let other = SessionKey::derive(&SessionNonce([3; 16]), &SessionNonce([2; 16]));
        let under_other = TopFingerprint::local(&a, &ctx, &other).unwrap();
        assert_eq!(fa.differing(&under_other), FANOUT, "a fingerprint is keyed");
        let wire = TopFingerprint::from_wire(&fa.to_wire());
        assert_eq!(wire, Ok(Some(fa)));
    }
}
