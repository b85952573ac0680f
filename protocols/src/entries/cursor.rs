//! Streaming the entries of a subtree in bounded chunks.

use std::ops::ControlFlow;

use synctree_primitives::{ContextId, EntryRef, Hash, NodePos, Store, StoreError, StoredEntry};

use super::keys::successor;

/// Entries read from the store per range scan while streaming a subtree.
pub(crate) const SCAN_CHUNK: usize = 256;

/// A subtree being streamed: the next key hash to read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SubtreeCursor {
    pos: NodePos,
    next: Hash,
}

impl SubtreeCursor {
    /// A cursor at the start of the subtree under `pos`.
    pub(crate) fn new(pos: NodePos) -> Self {
        SubtreeCursor {
            pos,
            next: pos.key_hash_range().0,
        }
    }

    /// The subtree's root.
    pub(crate) fn pos(&self) -> NodePos {
        self.pos
    }

    /// Reads up to `limit` more entries; `done` is true once the subtree is exhausted.
    pub(crate) fn read<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        limit: usize,
    ) -> Result<(Vec<StoredEntry>, bool), StoreError> {
        let high = self.pos.key_hash_range().1;
        let chunk = store.range(context, &self.next, &high, limit)?;
        let last = chunk.last().map(|last| last.key_hash);
        let done = self.advance(last, chunk.len() == limit, &high);
        Ok((chunk, done))
    }

    /// Lends up to `limit` more entries to `visit` ([`Store::visit_range`], no
    /// copies); returns true once the subtree is exhausted.
    pub(crate) fn visit<S: Store + ?Sized>(
        &mut self,
        store: &S,
        context: &ContextId,
        limit: usize,
        visit: &mut dyn FnMut(EntryRef<'_>),
    ) -> Result<bool, StoreError> {
        let high = self.pos.key_hash_range().1;
        let mut last = None;
        let lent = store.visit_range(context, &self.next, &high, limit, &mut |entry| {
            last = Some(*entry.key_hash);
            visit(entry);
            ControlFlow::Continue(())
        })?;
        Ok(self.advance(last, lent == limit, &high))
    }

    /// Moves past `last` (the last key hash read) when the read was `full`;
    /// returns true once nothing is left below `high`.
    fn advance(&mut self, last: Option<Hash>, full: bool, high: &Hash) -> bool {
        match last.and_then(|last| successor(&last)) {
            Some(next) if full && next <= *high => {
                self.next = next;
                false
            }
            _ => true,
        }
    }
}
