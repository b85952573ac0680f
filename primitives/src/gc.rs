//! Tombstone garbage collection over any [`Store`] (docs/PROTOCOL.md, "Tombstone
//! GC").
//!
//! A delete is a tombstone entry, kept so that a replica still holding the old
//! value learns of the delete instead of handing the value back. Kept forever,
//! tombstones grow a store without bound. A sweep removes the tombstones older
//! than a cutoff and raises the context's watermark just above the newest one it
//! removed; from then on the store refuses any entry older than the watermark
//! for a key it holds nothing for (the value of a delete it may have purged), so
//! no purged delete comes back.

use std::ops::ControlFlow;

use crate::error::StoreError;
use crate::hlc::{HLC_LOGICAL_BITS, MAX_CLOCK_SKEW_MS};
use crate::ids::{ContextId, Hash};
use crate::store::{PurgeRule, Store};

/// Key hashes one purge step removes at most: bounds a sweep's memory and how
/// long one store commit keeps writers waiting.
pub const PURGE_CHUNK: usize = 4_096;

/// Entries one sweep step reads at most: bounds how long a sweep holds a read.
pub const SWEEP_SCAN_CHUNK: usize = 65_536;

/// Shortest horizon a sweep accepts: a horizon inside the clock-skew window
/// would purge deletes that an honest peer's slow clock still writes around.
pub const MIN_GC_HORIZON_MS: u64 = 2 * MAX_CLOCK_SKEW_MS;

/// The HLC value of wall time `ms` with a zero logical counter (saturating).
pub fn hlc_at(ms: u64) -> u64 {
    ms.saturating_mul(1 << HLC_LOGICAL_BITS)
}

/// The wall time, in milliseconds, of HLC value `hlc`.
pub fn ms_of(hlc: u64) -> u64 {
    hlc >> HLC_LOGICAL_BITS
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Tombstones removed.
    pub purged: u64,
    /// The context's watermark after the sweep.
    pub watermark: u64,
}

/// Removes every tombstone of `context` whose version clock is below `cutoff`
/// (an HLC value), raising its watermark just above each one it removes.
///
/// The context is read in chunks of [`SWEEP_SCAN_CHUNK`] and purged
/// [`PURGE_CHUNK`] tombstones at a time; each [`Store::purge`] raises the
/// watermark past the newest tombstone of its chunk in the same atomic step, so
/// no purged delete is ever unguarded. Writes in between are fine: `purge`
/// re-checks each entry. The watermark rises only as far as the deletes actually
/// purged, so a store that purged nothing refuses nothing.
pub fn purge_tombstones<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    cutoff: u64,
) -> Result<SweepReport, StoreError> {
    let rule = PurgeRule {
        below: cutoff,
        tombstones_only: true,
    };
    let mut purged = 0;
    let mut next = Some(Hash::ZERO);
    while let Some(low) = next {
        let (chunk, resume) = old_tombstones(store, context, low, cutoff)?;
        if !chunk.keys.is_empty() {
            // Refusal is `hlc < W`: one past the newest guards every older value.
            let guard = chunk.newest.saturating_add(1);
            purged += store.purge(context, &chunk.keys, rule, guard)?;
        }
        next = resume;
    }
    let watermark = store.gc_watermark(context)?;
    Ok(SweepReport { purged, watermark })
}

/// Tombstones one sweep step found: their key hashes and the newest clock.
#[derive(Default)]
struct Chunk {
    keys: Vec<Hash>,
    newest: u64,
}

/// Tombstones below `cutoff` from `low` on, at most [`PURGE_CHUNK`] of them
/// within [`SWEEP_SCAN_CHUNK`] entries, and where the next step starts.
fn old_tombstones<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    low: Hash,
    cutoff: u64,
) -> Result<(Chunk, Option<Hash>), StoreError> {
    let mut chunk = Chunk::default();
    let mut last = None;
    let lent = store.visit_range(context, &low, &Hash::MAX, SWEEP_SCAN_CHUNK, &mut |e| {
        last = Some(*e.key_hash);
        if e.tombstone && e.version.hlc < cutoff {
            chunk.keys.push(*e.key_hash);
            chunk.newest = chunk.newest.max(e.version.hlc);
        }
        if chunk.keys.len() == PURGE_CHUNK {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    let more = lent == SWEEP_SCAN_CHUNK || chunk.keys.len() == PURGE_CHUNK;
    let resume = if more {
        last.and_then(|h| h.successor())
    } else {
        None
    };
    Ok((chunk, resume))
}

/// The cutoff of a sweep at wall time `now_ms` with horizon `horizon_ms`
/// (at least [`MIN_GC_HORIZON_MS`]), never later than `settled_ms`: the wall
/// time up to which the node knows it was in sync (the start of its last
/// successful session), so a node cut off from its peers keeps the deletes it
/// may still have to hand on, and still takes the writes it missed.
pub fn sweep_cutoff(now_ms: u64, horizon_ms: u64, settled_ms: u64) -> u64 {
    let horizon = horizon_ms.max(MIN_GC_HORIZON_MS);
    hlc_at(now_ms.saturating_sub(horizon).min(settled_ms))
}
