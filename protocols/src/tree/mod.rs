//! The tree protocols, HashComparison and LevelWise: one shared Merkle descent
//! ([`TreeInitiator`], [`TreeResponder`]) that the two protocols run with their own
//! config and [`Schedule`].
//!
//! - `config`: [`TreeConfig`], [`Schedule`] and the defaults;
//! - `hash_comparison`, `level_wise`: each protocol's config and executor;
//! - `run`: the executor bodies both share;
//! - `initiator`, `responder`: the two machines;
//! - `wire`, `leaf`: tree message encoding and leaf-bucket reconciliation.

mod config;
mod hash_comparison;
mod init;
mod initiator;
mod leaf;
mod level_wise;
mod responder;
mod run;
pub(crate) mod wire;

pub use config::{
    DEEP_DESCENT_DIFFERENCES, DEEP_DESCENT_SPREAD, DEFAULT_KEYS_PER_REQUEST,
    DEFAULT_LEVEL_WISE_NODES_PER_REQUEST, DEFAULT_MAX_IN_FLIGHT, DEFAULT_NODES_PER_REQUEST,
    DEFAULT_PUSH_BYTES, Schedule, TreeConfig,
};
pub use hash_comparison::{HashComparison, HashComparisonConfig, HashComparisonResponderInit};
pub use init::TreeResponderInit;
pub use initiator::TreeInitiator;
pub use level_wise::{LevelWise, LevelWiseConfig, LevelWiseResponderInit};
pub use responder::TreeResponder;
