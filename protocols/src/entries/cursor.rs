//! Streaming the entries of a subtree in bounded chunks.

use synctree_primitives::{ContextId, Hash, NodePos, Store, StoreError, StoredEntry};

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
        let next = chunk.last().and_then(|last| successor(&last.key_hash));
        let done = match next {
            Some(next) if chunk.len() == limit && next <= high => {
                self.next = next;
                false
            }
            _ => true,
        };
        Ok((chunk, done))
    }
}
