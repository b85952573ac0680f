//! The handshake both sides exchange, and the decision table that picks a protocol.

use synctree_primitives::limits::MAX_SUPPORTED_PROTOCOLS;
use synctree_primitives::wire::Handshake;
use synctree_primitives::{
    ContextId, Hash, NodeId, ProtocolError, ProtocolKind, Store, StoreError, TreeSummary,
};

/// Protocols this build can run, in order of preference.
pub const SUPPORTED_PROTOCOLS: &[ProtocolKind] = &[ProtocolKind::HashComparison];

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
}

impl PeerSummary {
    /// This node's summary of `context`.
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
        Ok(PeerSummary {
            root,
            entry_count,
            tree_depth: u32::from(depth),
            has_state: entry_count > 0,
            supported: supported.to_vec(),
            node_id,
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
            compression: Vec::new(),
            top_fingerprint: Default::default(),
        }
    }

    /// Checks a peer's handshake. Unknown protocol numbers are ignored (a newer peer
    /// may support more than this node knows).
    pub fn from_wire(h: &Handshake) -> Result<Self, ProtocolError> {
        ProtocolError::check_limit(
            "supported protocols",
            MAX_SUPPORTED_PROTOCOLS,
            h.supported.len(),
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
        })
    }
}

/// What the initiator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Let the decision table pick.
    Auto,
    /// Run this protocol whatever the numbers say.
    Force(ProtocolKind),
}

/// The protocol picked for a session, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// `None` when there is nothing to do.
    pub protocol: Option<ProtocolKind>,
    /// One phrase, reported in stats and the `--json` output.
    pub reason: &'static str,
}

/// The decision table (docs/PROTOCOL.md, "Protocol selection").
pub fn select(
    choice: ProtocolChoice,
    local: &PeerSummary,
    remote: &PeerSummary,
) -> Result<Selection, ProtocolError> {
    let both = |p: ProtocolKind| local.supported.contains(&p) && remote.supported.contains(&p);
    match choice {
        ProtocolChoice::Force(p) if both(p) => Ok(Selection {
            protocol: Some(p),
            reason: "forced",
        }),
        ProtocolChoice::Force(p) => Err(ProtocolError::UnsupportedProtocol(format!(
            "{} is not supported by both sides",
            p.name()
        ))),
        ProtocolChoice::Auto if local.root == remote.root => Ok(Selection {
            protocol: None,
            reason: "roots match",
        }),
        ProtocolChoice::Auto => local
            .supported
            .iter()
            .copied()
            .find(|&p| both(p))
            .map(|p| Selection {
                protocol: Some(p),
                reason: "roots differ",
            })
            .ok_or_else(|| ProtocolError::UnsupportedProtocol("no protocol in common".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(root: u8) -> PeerSummary {
        PeerSummary {
            root: Hash([root; 32]),
            entry_count: 1,
            tree_depth: 4,
            has_state: true,
            supported: SUPPORTED_PROTOCOLS.to_vec(),
            node_id: NodeId(1),
        }
    }

    #[test]
    fn equal_roots_select_nothing_and_different_roots_a_common_protocol() {
        let none = select(ProtocolChoice::Auto, &summary(1), &summary(1));
        assert_eq!(none.map(|s| s.protocol), Ok(None));
        let some = select(ProtocolChoice::Auto, &summary(1), &summary(2));
        assert_eq!(
            some.map(|s| s.protocol),
            Ok(Some(ProtocolKind::HashComparison))
        );
    }

    #[test]
    fn forcing_an_unsupported_protocol_is_an_error() {
        let forced = ProtocolChoice::Force(ProtocolKind::Snapshot);
        assert!(select(forced, &summary(1), &summary(2)).is_err());
        let mut old_peer = summary(2);
        old_peer.supported.clear();
        assert!(select(ProtocolChoice::Auto, &summary(1), &old_peer).is_err());
    }

    #[test]
    fn handshakes_round_trip_and_reject_short_roots() {
        let s = summary(7);
        assert_eq!(PeerSummary::from_wire(&s.to_wire()), Ok(s));
        let mut bad = summary(7).to_wire();
        bad.root = vec![1; 3].into();
        assert!(PeerSummary::from_wire(&bad).is_err());
    }
}
