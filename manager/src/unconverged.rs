//! What a manager remembers of delta sessions that ended apart, for selection's
//! row 1a: the next session between the same roots is a merge snapshot.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use synctree_primitives::{ContextId, NodeId, ProtocolKind, SyncStats};

use crate::selection::Unconverged;

/// (peer node, context) pairs whose unconverged delta session a manager
/// remembers for the selection (row 1a): a few hundred bytes each; past this,
/// further pairs are not remembered and simply run the table as usual.
pub const MAX_REMEMBERED_UNCONVERGED: usize = 4096;

/// How the last delta session with each (peer node, context) ended when it did
/// not converge.
#[derive(Debug, Default)]
pub(crate) struct UnconvergedMemory(Mutex<HashMap<(NodeId, ContextId), Unconverged>>);

impl UnconvergedMemory {
    /// The last delta session with `peer` on `context`, when it did not converge.
    pub(crate) fn get(&self, peer: NodeId, context: &ContextId) -> Option<Unconverged> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(peer, context.clone())).copied()
    }

    /// Remembers how a session ended: an unconverged delta session is kept (at
    /// most [`MAX_REMEMBERED_UNCONVERGED`] pairs), anything else forgets the pair.
    pub(crate) fn remember(&self, peer: NodeId, context: &ContextId, stats: Option<&SyncStats>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (peer, context.clone());
        // Delta sessions: what a merge snapshot settles when they get stuck (a
        // peer refusing entries below its GC watermark, a collision).
        let delta = |s: &&SyncStats| {
            matches!(
                s.protocol,
                ProtocolKind::HashComparison | ProtocolKind::LevelWise | ProtocolKind::Sketch
            )
        };
        match stats.filter(delta).filter(|s| !s.converged()) {
            Some(s) if map.len() < MAX_REMEMBERED_UNCONVERGED || map.contains_key(&key) => {
                let stuck = Unconverged {
                    protocol: s.protocol,
                    local_root: s.local_root,
                    remote_root: s.remote_root,
                };
                map.insert(key, stuck);
            }
            Some(_) => {}
            None => {
                map.remove(&key);
            }
        }
    }
}
