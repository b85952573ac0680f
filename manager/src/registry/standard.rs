//! The standard protocols, and for each the one place its initiator config is
//! built from the handshake.

use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::init_payload::Kind;
use synctree_primitives::wire::{HashComparisonInit, LevelWiseInit, SketchInit};
use synctree_protocols::{
    DEFAULT_SKETCH_WANT, HashComparison, HashComparisonConfig, LevelWise, LevelWiseConfig, Sketch,
    SketchConfig, SketchResponderInit, TreeResponderInit, want_for,
};

use super::adapter::ExecutorProtocol;
use super::protocol::InitiatorPlan;
use super::snapshot::SnapshotProtocol;
use super::table::ProtocolRegistry;

impl ProtocolRegistry {
    /// HashComparison, LevelWise, Snapshot and Sketch, in that order of
    /// preference (Sketch last: only the decision table's row 4a picks it).
    pub fn standard() -> Self {
        ProtocolRegistry::empty()
            .with(hash_comparison())
            .with(level_wise())
            .with(SnapshotProtocol::default())
            .with(sketch())
    }
}

/// HashComparison's registry entry.
pub(super) fn hash_comparison() -> ExecutorProtocol<HashComparison, HashComparisonInit> {
    ExecutorProtocol::new(hash_comparison_init, hash_comparison_config).with_keyed(keyed)
}

/// LevelWise's registry entry.
pub(super) fn level_wise() -> ExecutorProtocol<LevelWise, LevelWiseInit> {
    ExecutorProtocol::new(level_wise_init, level_wise_config).with_keyed(keyed)
}

/// Sketch's registry entry.
pub(super) fn sketch() -> ExecutorProtocol<Sketch, SketchInit> {
    ExecutorProtocol::new(sketch_init, sketch_config).with_keyed(sketch_keyed)
}

/// A sketch responder's fallback truncates under the stream's session key.
fn sketch_keyed(init: SketchResponderInit, key: &SessionKey) -> SketchResponderInit {
    init.with_key(key.clone())
}

fn sketch_init(kind: &Kind) -> Option<&SketchInit> {
    match kind {
        Kind::Sketch(init) => Some(init),
        _ => None,
    }
}

/// The first request sized from the handshake's estimate, the peer's sketch
/// length, and the fallback configured as HashComparison would be.
fn sketch_config(plan: &InitiatorPlan<'_>) -> SketchConfig {
    let want = plan
        .selection
        .estimated_differences
        .map_or(DEFAULT_SKETCH_WANT, want_for);
    SketchConfig {
        want,
        remote_len: plan.remote.sketch_len,
        fallback: hash_comparison_config(plan),
        ..SketchConfig::default()
    }
}

/// A tree responder truncates under the stream's session key.
fn keyed(init: TreeResponderInit, key: &SessionKey) -> TreeResponderInit {
    init.with_key(key.clone())
}

fn hash_comparison_init(kind: &Kind) -> Option<&HashComparisonInit> {
    match kind {
        Kind::HashComparison(init) => Some(init),
        _ => None,
    }
}

fn level_wise_init(kind: &Kind) -> Option<&LevelWiseInit> {
    match kind {
        Kind::LevelWise(init) => Some(init),
        _ => None,
    }
}

/// The handshake's top fingerprint is the first level of the tree descent, both
/// truncated under the session key; the sketch probe's estimate decides whether
/// the descent goes deep.
fn hash_comparison_config(plan: &InitiatorPlan<'_>) -> HashComparisonConfig {
    HashComparisonConfig {
        remote_top: plan.remote_top(),
        key: plan.key.clone(),
        estimated_differences: plan.selection.tree_estimate(),
        ..HashComparisonConfig::default()
    }
}

/// As [`hash_comparison_config`], from LevelWise's defaults.
fn level_wise_config(plan: &InitiatorPlan<'_>) -> LevelWiseConfig {
    LevelWiseConfig {
        remote_top: plan.remote_top(),
        key: plan.key.clone(),
        estimated_differences: plan.selection.tree_estimate(),
        ..LevelWiseConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::ProtocolKind;
    use synctree_primitives::wire::{Handshake, HashComparisonInit, LevelWiseInit, SnapshotInit};

    #[test]
    fn the_standard_registry_prefers_tree_protocols_and_routes_each_init_to_its_own() {
        let registry = ProtocolRegistry::standard();
        let kinds = [
            ProtocolKind::HashComparison,
            ProtocolKind::LevelWise,
            ProtocolKind::Snapshot,
            ProtocolKind::Sketch,
        ];
        assert_eq!(registry.kinds(), kinds);
        let inits = [
            Kind::HashComparison(HashComparisonInit::default()),
            Kind::LevelWise(LevelWiseInit::default()),
            Kind::Snapshot(SnapshotInit::default()),
            Kind::Sketch(SketchInit::default()),
        ];
        for (init, kind) in inits.iter().zip(kinds) {
            assert_eq!(registry.for_init(init).map(|p| p.kind()), Some(kind));
            assert_eq!(registry.get(kind).map(|p| p.kind()), Some(kind));
        }
        let handshake = Kind::Handshake(Handshake::default());
        assert!(registry.for_init(&handshake).is_none());
    }

    #[test]
    fn registering_a_kind_again_replaces_it_in_place() {
        let mut registry = ProtocolRegistry::empty();
        assert!(registry.kinds().is_empty());
        registry.register(SnapshotProtocol::default());
        registry.register(hash_comparison());
        registry.register(SnapshotProtocol::default());
        let kinds = [ProtocolKind::Snapshot, ProtocolKind::HashComparison];
        assert_eq!(registry.kinds(), kinds);
    }
}
