//! [`ProtocolArg`]: the `--protocol` values and the choice each one makes.

use clap::ValueEnum;
use synctree_manager::ProtocolChoice;
use synctree_primitives::ProtocolKind;

/// Protocol names accepted on the command line.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ProtocolArg {
    /// Let the handshake's decision table choose.
    #[default]
    Auto,
    /// Merkle descent that skips equal subtrees.
    HashComparison,
    /// One batched round trip per pair of tree levels.
    LevelWise,
    /// Paged full transfer, verified against the pinned root.
    Snapshot,
    /// Rateless sketch (RIBLT) decoding, falling over to hash comparison.
    Sketch,
}

impl ProtocolArg {
    pub(crate) fn choice(self) -> ProtocolChoice {
        match self {
            ProtocolArg::Auto => ProtocolChoice::Auto,
            ProtocolArg::HashComparison => ProtocolChoice::Force(ProtocolKind::HashComparison),
            ProtocolArg::LevelWise => ProtocolChoice::Force(ProtocolKind::LevelWise),
            ProtocolArg::Snapshot => ProtocolChoice::Force(ProtocolKind::Snapshot),
            ProtocolArg::Sketch => ProtocolChoice::Force(ProtocolKind::Sketch),
        }
    }
}
