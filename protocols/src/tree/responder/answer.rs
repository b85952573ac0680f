//! Answering one `NodeRequest`: its plain positions and its compare items, streamed
//! one frame at a time under [`BATCH_BYTE_BUDGET`].
//!
//! A compare item carries the initiator's children of one internal node X. Each child
//! c of X whose truncated hash differs from ours is answered exactly as if c had been
//! asked for by position: c's children when c is internal, c's leaf summary when c is
//! a leaf, and an empty answer when we hold nothing under c. Equal children get no
//! answer, so one compare item costs the peer two tree levels in one round trip.

use std::collections::{HashSet, VecDeque};

use prost::Message;
use synctree_primitives::error::SyncErrorKind;
use synctree_primitives::limits::{
    BATCH_BYTE_BUDGET, KEY_PREFIX_BYTES, LEAF_SUMMARY_CHUNK, LENGTH_PREFIX_BYTES,
    MAX_NODES_PER_REQUEST,
};
use synctree_primitives::merkle::FANOUT;
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::{NodeRequest, NodeResponse};
use synctree_primitives::{ContextId, NodePos, ProtocolError, Store, StoreError, SyncStats};

use crate::entries::SubtreeCursor;
use crate::tree::wire::{
    LeafEncoder, ShortChildren, any_position, decode_children, encode_children, short_children,
};

/// Entries a leaf summary makes room for at first: a bucket of a context of a
/// million entries holds about 15; larger ones grow the buffers a few times.
const EXPECTED_LEAF_ENTRIES: usize = 32;

/// Adds our children of internal node `pos` to `resp`; returns their size.
fn children_of<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    (key, pos): (&SessionKey, NodePos),
    resp: &mut NodeResponse,
) -> Result<usize, StoreError> {
    let children = encode_children(key, pos, &store.children(context, pos)?);
    let size = children.encoded_len() + LENGTH_PREFIX_BYTES;
    resp.children.push(children);
    Ok(size)
}

/// One part of a request still to answer.
#[derive(Debug)]
enum Work {
    /// Send this node's children, or this leaf's summary.
    Node(SubtreeCursor),
    /// Compare the initiator's children of `pos` with ours, then answer every
    /// differing child as a [`Work::Node`].
    Compare { pos: NodePos, theirs: ShortChildren },
}

/// A node request being answered.
#[derive(Debug)]
pub(super) struct NodeAnswer {
    request_id: u32,
    work: VecDeque<Work>,
    /// The session's key of truncated hashes.
    key: SessionKey,
}

impl NodeAnswer {
    /// Checks every position and compare item of `req` before anything is read for
    /// it: the item count, positions inside the trie, compared nodes internal and
    /// distinct, well-formed child bitmaps and hashes.
    pub(super) fn new(req: &NodeRequest, key: &SessionKey) -> Result<Self, ProtocolError> {
        let items = req.positions.len().saturating_add(req.compare.len());
        ProtocolError::check_limit("nodes per request", MAX_NODES_PER_REQUEST, items)?;
        let mut work = VecDeque::with_capacity(items);
        for &raw in &req.positions {
            work.push_back(Work::Node(SubtreeCursor::new(any_position(raw)?)));
        }
        let mut compared = HashSet::with_capacity(req.compare.len());
        for item in &req.compare {
            let (pos, theirs) = decode_children(item)?;
            if !compared.insert(pos) {
                return Err(ProtocolError::Malformed(
                    "node compared twice in one request",
                ));
            }
            work.push_back(Work::Compare { pos, theirs });
        }
        Ok(NodeAnswer {
            request_id: req.request_id,
            work,
            key: key.clone(),
        })
    }

    /// True once the final frame was built.
    pub(super) fn is_done(&self) -> bool {
        self.work.is_empty()
    }

    /// The next frame of the answer, with `last` set on the final one. A large leaf
    /// summary ends a frame and continues at the start of the next.
    pub(super) fn frame<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        stats: &mut SyncStats,
    ) -> Result<NodeResponse, SyncErrorKind> {
        let mut resp = NodeResponse {
            request_id: self.request_id,
            ..NodeResponse::default()
        };
        let mut size = 0;
        while size < BATCH_BYTE_BUDGET {
            let Some(work) = self.work.pop_front() else {
                break;
            };
            match work {
                Work::Compare { pos, theirs } => {
                    self.expand(store, context, pos, &theirs)?;
                    stats.nodes_compared += 1;
                }
                Work::Node(cursor) if cursor.pos().is_leaf() => {
                    let (bytes, more) = self.leaf_part(store, context, cursor, &mut resp)?;
                    size += bytes;
                    if more {
                        break;
                    }
                    stats.leaves_compared += 1;
                }
                Work::Node(cursor) => {
                    let node = (&self.key, cursor.pos());
                    size += children_of(store, context, node, &mut resp)?;
                    stats.nodes_compared += 1;
                }
            }
        }
        resp.last = self.work.is_empty();
        Ok(resp)
    }

    /// Adds the next part of a leaf's summary to `resp`; returns its size and
    /// whether more parts follow (the leaf then stays first in line).
    fn leaf_part<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        mut cursor: SubtreeCursor,
        resp: &mut NodeResponse,
    ) -> Result<(usize, bool), StoreError> {
        let mut encoder = LeafEncoder::new(KEY_PREFIX_BYTES, EXPECTED_LEAF_ENTRIES);
        let done = cursor.visit(store, context, LEAF_SUMMARY_CHUNK, &mut |e| encoder.add(e))?;
        let leaf = encoder.finish(cursor.pos(), !done);
        let size = leaf.encoded_len() + LENGTH_PREFIX_BYTES;
        resp.leaves.push(leaf);
        if !done {
            self.work.push_front(Work::Node(cursor));
        }
        Ok((size, !done))
    }

    /// Queues, in child order and ahead of the rest, every child of `pos` whose hash
    /// differs from the initiator's.
    fn expand<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        pos: NodePos,
        theirs: &ShortChildren,
    ) -> Result<(), StoreError> {
        let ours = short_children(&self.key, &store.children(context, pos)?);
        for c in (0..FANOUT).rev().filter(|&c| ours[c] != theirs[c]) {
            self.work
                .push_front(Work::Node(SubtreeCursor::new(pos.child(c))));
        }
        Ok(())
    }
}
