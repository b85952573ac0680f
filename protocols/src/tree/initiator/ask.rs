//! What one node request asked, and which answers may still arrive for it.
//!
//! A plain position is answered exactly once. A compare item of node X may be
//! answered for any subset of X's children (those whose hashes differ), each child at
//! most once. The parts of one leaf summary are consecutive. Anything else is refused
//! before any of the frame is acted on.

use std::collections::HashSet;

use synctree_primitives::{NodePos, ProtocolError};

/// A node the initiator still has to learn about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Work {
    /// Ask by position: the peer's children of an internal node, or a leaf's summary.
    Fetch(NodePos),
    /// Send our children of an internal node for the peer to compare (two levels in
    /// one round trip).
    Compare(NodePos),
}

/// An unanswered node request.
#[derive(Debug, Default)]
pub(super) struct NodeAsk {
    /// Plain positions not answered yet.
    waiting: HashSet<NodePos>,
    /// Nodes whose children the peer was asked to compare.
    compared: HashSet<NodePos>,
    /// Children of compared nodes answered so far.
    answered: HashSet<NodePos>,
    /// The leaf whose summary is arriving in parts.
    open_leaf: Option<NodePos>,
}

impl NodeAsk {
    /// A request for `positions` and for comparing the children of `compared`.
    pub(super) fn new(positions: &[NodePos], compared: &[NodePos]) -> Self {
        NodeAsk {
            waiting: positions.iter().copied().collect(),
            compared: compared.iter().copied().collect(),
            ..NodeAsk::default()
        }
    }

    /// Admits the children of `pos`.
    pub(super) fn admit_children(&mut self, pos: NodePos) -> Result<(), ProtocolError> {
        self.admit(pos)
    }

    /// Admits one part of the summary of leaf `pos`; `partial` = more parts follow.
    pub(super) fn admit_leaf(&mut self, pos: NodePos, partial: bool) -> Result<(), ProtocolError> {
        match self.open_leaf {
            Some(open) if open == pos => {}
            Some(_) => return Err(ProtocolError::Malformed("leaf summary parts interleaved")),
            None => self.admit(pos)?,
        }
        self.open_leaf = partial.then_some(pos);
        Ok(())
    }

    /// Checks the request's final frame left nothing open.
    pub(super) fn check_complete(&self) -> Result<(), ProtocolError> {
        if !self.waiting.is_empty() {
            return Err(ProtocolError::Malformed(
                "node response left positions unanswered",
            ));
        }
        if self.open_leaf.is_some() {
            return Err(ProtocolError::Malformed(
                "node response ended inside a leaf summary",
            ));
        }
        Ok(())
    }

    /// A first answer about `pos`: a position asked for, or a child of a compared node.
    fn admit(&mut self, pos: NodePos) -> Result<(), ProtocolError> {
        if self.waiting.remove(&pos) {
            return Ok(());
        }
        let compared = pos.parent().is_some_and(|p| self.compared.contains(&p));
        if !compared {
            return Err(ProtocolError::Unsolicited("node that was not asked for"));
        }
        if !self.answered.insert(pos) {
            return Err(ProtocolError::Unsolicited("second answer for one node"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsolicited(result: Result<(), ProtocolError>) -> bool {
        matches!(result, Err(ProtocolError::Unsolicited(_)))
    }

    #[test]
    fn positions_are_answered_once() {
        let leaf = NodePos::new(4, 9);
        let mut ask = NodeAsk::new(&[NodePos::ROOT, leaf], &[]);
        assert!(ask.check_complete().is_err());
        assert_eq!(ask.admit_children(NodePos::ROOT), Ok(()));
        assert!(unsolicited(ask.admit_children(NodePos::ROOT)));
        assert_eq!(ask.admit_leaf(leaf, false), Ok(()));
        assert!(unsolicited(ask.admit_leaf(leaf, false)));
        assert_eq!(ask.check_complete(), Ok(()));
    }

    #[test]
    fn compared_nodes_admit_each_child_at_most_once_and_nothing_else() {
        let x = NodePos::new(2, 5);
        let mut ask = NodeAsk::new(&[], &[x]);
        assert_eq!(
            ask.check_complete(),
            Ok(()),
            "no difference is a valid answer"
        );
        assert_eq!(ask.admit_children(x.child(3)), Ok(()));
        assert!(unsolicited(ask.admit_children(x.child(3))));
        assert!(unsolicited(ask.admit_children(x)));
        assert!(unsolicited(ask.admit_children(x.child(3).child(0))));
        assert!(unsolicited(ask.admit_children(NodePos::new(3, 0))));
    }

    #[test]
    fn leaf_parts_are_consecutive_and_must_end() {
        let x = NodePos::new(3, 7);
        let mut ask = NodeAsk::new(&[], &[x]);
        assert_eq!(ask.admit_leaf(x.child(1), true), Ok(()));
        assert!(ask.check_complete().is_err(), "last frame inside a summary");
        assert_eq!(
            ask.admit_leaf(x.child(2), false),
            Err(ProtocolError::Malformed("leaf summary parts interleaved"))
        );
        assert_eq!(ask.admit_leaf(x.child(1), true), Ok(()));
        assert_eq!(ask.admit_leaf(x.child(1), false), Ok(()));
        assert!(unsolicited(ask.admit_leaf(x.child(1), false)));
        assert_eq!(ask.admit_leaf(x.child(2), false), Ok(()));
        assert_eq!(ask.check_complete(), Ok(()));
    }
}
