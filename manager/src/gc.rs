//! Tombstone GC policy of a node (docs/PROTOCOL.md, "Tombstone GC"): when
//! tombstones are purged, how far a peer's watermark is believed, and when this
//! node has fallen so far behind that it adopts a peer's settled state.
//!
//! Three numbers per context drive it, all HLC values or wall milliseconds:
//! - the store's watermark `W` ([`Store::gc_watermark`]), below which it refuses
//!   entries for keys it holds nothing for;
//! - the *settled* time `S`: the start of the last session with a peer on the
//!   context that ended without error (kept with [`Store::save_sync_state`]);
//! - the horizon `H` ([`GcConfig::horizon`]).
//!
//! A sweep purges below `min(now − H, S)` (a node with no peers: `now − H`), so
//! `W ≤ S` on a node with peers: one cut off keeps the deletes it may still
//! have to hand on, and keeps taking the writes it missed. A node whose `S`
//! lies below a peer's watermark (capped at `now − H`) was out of touch longer
//! than the horizon: its next automatic session with that peer is a merge
//! snapshot that adopts the peer's state below the peer's watermark.

use std::time::Duration;

use synctree_primitives::gc::{self, MIN_GC_HORIZON_MS, SweepReport, hlc_at};
use synctree_primitives::{ContextId, ProtocolKind, Store, StoreError, WallClock};

use crate::handshake::PeerSummary;
use crate::selection::{ProtocolChoice, Selection};

/// Default horizon: deletes are kept a week, longer than any partition a
/// deployment should ride out without an operator.
pub const DEFAULT_GC_HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);

/// Prefix of the settled-time records in [`Store::save_sync_state`].
const SETTLED_PREFIX: &str = "gc/settled/";

/// Tombstone GC settings of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcConfig {
    /// Tombstones older than this are purged; `None` keeps every tombstone
    /// (and never adopts a peer's state). At least [`MIN_GC_HORIZON_MS`].
    pub horizon: Option<Duration>,
    /// Wall time of the sweeps and of the settled records.
    pub clock: WallClock,
    /// A node without peers: its sweeps purge below `now − H`, and it tells
    /// initiators it is settled now (it is its own reference).
    pub standalone: bool,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            horizon: None,
            clock: WallClock::System,
            standalone: false,
        }
    }
}

impl GcConfig {
    /// The horizon in milliseconds, raised to [`MIN_GC_HORIZON_MS`].
    fn horizon_ms(&self) -> Option<u64> {
        let ms = |h: Duration| u64::try_from(h.as_millis()).unwrap_or(u64::MAX);
        self.horizon.map(|h| ms(h).max(MIN_GC_HORIZON_MS))
    }

    /// The newest watermark this node believes from a peer: `now − H`.
    fn believable(&self, now_ms: u64) -> Option<u64> {
        Some(hlc_at(now_ms.saturating_sub(self.horizon_ms()?)))
    }
}

/// Wall milliseconds up to which `context` is known settled (0: never).
pub fn settled_ms<S: Store + ?Sized>(store: &S, context: &ContextId) -> Result<u64, StoreError> {
    let bytes = store.load_sync_state(&settled_key(context))?;
    let decoded = bytes.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok());
    Ok(decoded.map_or(0, u64::from_be_bytes))
}

/// Records that a session on `context` that started at `started_ms` ended
/// without error (the settled time only moves forward).
pub fn record_settled<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    started_ms: u64,
) -> Result<(), StoreError> {
    if settled_ms(store, context)? >= started_ms {
        return Ok(());
    }
    store.save_sync_state(&settled_key(context), Some(&started_ms.to_be_bytes()))
}

fn settled_key(context: &ContextId) -> String {
    format!("{SETTLED_PREFIX}{context}")
}

/// The watermark below which this node should adopt the peer's state when it is
/// stale against a peer reporting `peer_watermark`: its settled time lies below
/// the peer's watermark, capped at `now − H`.
/// `None`: not stale, or GC is off here.
pub fn adopt_below<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    config: &GcConfig,
    peer_watermark: u64,
) -> Result<Option<u64>, StoreError> {
    let Some(below) = believed(config, peer_watermark) else {
        return Ok(None);
    };
    Ok(is_stale(store, context, below)?.then_some(below))
}

/// True when `context` was last settled before the (believed) watermark `below`.
fn is_stale<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    below: u64,
) -> Result<bool, StoreError> {
    Ok(hlc_at(settled_ms(store, context)?) < below)
}

/// The peer's watermark as far as this node believes it (at most `now − H`);
/// `None` when it is 0 or GC is off here.
fn believed(config: &GcConfig, peer_watermark: u64) -> Option<u64> {
    let cap = config.believable(config.clock.now_ms())?;
    let below = peer_watermark.min(cap);
    (below > 0).then_some(below)
}

/// What GC asks of an automatic session, decided after the handshakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Adoption {
    /// Not stale: the session runs as selected.
    NotStale,
    /// Stale: the session is a merge snapshot adopting the peer's state below
    /// this watermark.
    Adopting(u64),
    /// Stale, but the peer cannot serve the snapshot (or the protocol was forced):
    /// the session runs as selected and does not count as settling.
    Blocked,
}

impl Adoption {
    /// The watermark the snapshot adopts below, if any.
    pub(crate) fn below(self) -> Option<u64> {
        match self {
            Adoption::Adopting(below) => Some(below),
            _ => None,
        }
    }
}

/// Decides [`Adoption`] for a session on `context` with a peer whose handshake
/// is `remote`. Every snapshot adopts below the peer's believed watermark (its
/// pages list the peer's whole state, so what it lacks below that is known); a
/// stale node's automatic session becomes such a snapshot.
pub(crate) fn plan_adoption<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
    config: &GcConfig,
    (remote, choice): (&PeerSummary, ProtocolChoice),
    selection: &mut Selection,
) -> Result<Adoption, StoreError> {
    let Some(below) = believed(config, remote.gc_watermark) else {
        return Ok(Adoption::NotStale);
    };
    let snapshot = ProtocolKind::Snapshot;
    if selection.protocol == Some(snapshot) {
        return Ok(Adoption::Adopting(below));
    }
    if selection.protocol.is_none() || !is_stale(store, context, below)? {
        return Ok(Adoption::NotStale);
    }
    if choice != ProtocolChoice::Auto || !remote.supported.contains(&snapshot) {
        tracing::warn!(%context, "stale against the peer's GC watermark but cannot adopt its state in this session");
        return Ok(Adoption::Blocked);
    }
    selection.protocol = Some(snapshot);
    selection.reason =
        "stale: not in sync within the GC horizon; adopting the peer's state below its watermark"
            .to_owned();
    Ok(Adoption::Adopting(below))
}

/// Sweeps every context of `store`: purges its tombstones older than
/// `min(now − H, S)` (`now − H` for a [standalone](GcConfig::standalone) node).
/// Returns what each sweep did; nothing when GC is off.
pub fn sweep<S: Store + ?Sized>(
    store: &S,
    config: &GcConfig,
) -> Result<Vec<(ContextId, SweepReport)>, StoreError> {
    let standalone = config.standalone;
    let Some(horizon_ms) = config.horizon_ms() else {
        return Ok(Vec::new());
    };
    let now_ms = config.clock.now_ms();
    let mut done = Vec::new();
    for context in store.contexts()? {
        let settled = if standalone {
            now_ms
        } else {
            settled_ms(store, &context)?
        };
        let cutoff = gc::sweep_cutoff(now_ms, horizon_ms, settled);
        if cutoff == 0 {
            continue; // never settled: nothing is old enough yet
        }
        let report = gc::purge_tombstones(store, &context, cutoff)?;
        crate::metrics::record_purged(report.purged);
        if report.purged > 0 {
            tracing::info!(%context, purged = report.purged, watermark = report.watermark, "tombstones purged");
        }
        done.push((context, report));
    }
    Ok(done)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use synctree_primitives::{Entry, NodeId, Version};
    use synctree_store::MemoryStore;

    const DAY_MS: u64 = 24 * 3600 * 1000;

    fn config(now_ms: u64) -> GcConfig {
        GcConfig {
            horizon: Some(Duration::from_millis(DAY_MS)),
            clock: WallClock::Fixed(now_ms),
            standalone: false,
        }
    }

    fn at(ms: u64) -> Version {
        Version::new(hlc_at(ms), NodeId(1))
    }

    #[test]
    fn a_sweep_stops_at_the_settled_time_unless_standalone() {
        let store = MemoryStore::new();
        let c = ContextId::new("gc").expect("context");
        store
            .apply(
                &c,
                vec![
                    Entry::delete("a", at(DAY_MS)),
                    Entry::delete("b", at(5 * DAY_MS)),
                ],
            )
            .expect("apply");
        let now = 10 * DAY_MS;
        assert!(
            sweep(&store, &config(now)).expect("sweep").is_empty(),
            "never synced: nothing"
        );
        record_settled(&store, &c, 2 * DAY_MS).expect("settled");
        let swept = sweep(&store, &config(now)).expect("sweep");
        assert_eq!(swept[0].1.purged, 1, "below the settled time only");
        assert_eq!(store.gc_watermark(&c).expect("w"), hlc_at(DAY_MS) + 1);
        let alone = GcConfig {
            standalone: true,
            ..config(now)
        };
        let swept = sweep(&store, &alone).expect("sweep");
        assert_eq!(swept[0].1.purged, 1, "standalone: below now − H");
        assert_eq!(store.gc_watermark(&c).expect("w"), hlc_at(5 * DAY_MS) + 1);
    }

    #[test]
    fn a_node_adopts_when_it_fell_behind_the_peer() {
        let store = MemoryStore::new();
        let c = ContextId::new("gc").expect("context");
        let now = 10 * DAY_MS;
        let peer = hlc_at(9 * DAY_MS);
        assert_eq!(
            adopt_below(&store, &c, &config(now), peer).expect("a"),
            Some(peer),
            "never synced: a fresh node adopts (it holds nothing to lose)"
        );
        record_settled(&store, &c, 3 * DAY_MS).expect("settled");
        assert_eq!(
            adopt_below(&store, &c, &config(now), peer).expect("a"),
            Some(peer)
        );
        let far = hlc_at(now + DAY_MS);
        assert_eq!(
            adopt_below(&store, &c, &config(now), far).expect("a"),
            Some(hlc_at(9 * DAY_MS)),
            "a peer's watermark is believed up to now − H"
        );
        record_settled(&store, &c, 9 * DAY_MS + 1).expect("settled");
        assert_eq!(
            adopt_below(&store, &c, &config(now), peer).expect("a"),
            None,
            "in touch"
        );
        let off = GcConfig::default();
        assert_eq!(
            adopt_below(&store, &c, &off, peer).expect("a"),
            None,
            "GC off"
        );
    }
}
