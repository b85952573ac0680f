//! The sketch protocol's tunables and what its responder learns from the init.

use synctree_primitives::limits::SKETCH_MAX_SYMBOLS;
use synctree_primitives::salt::SessionKey;
use synctree_primitives::wire::SketchInit;
use synctree_primitives::{Hash, ProtocolError};

use crate::tree::{DEFAULT_PUSH_BYTES, HashComparisonConfig};

/// Symbols asked for first when nothing estimates the number of differences:
/// decodes about 80 differences at once.
pub const DEFAULT_SKETCH_WANT: u32 = 128;

/// Symbols asked for first per estimated difference, in tenths: decoding needs
/// about 1.35–1.5 per difference on average, the estimate is good to about ±30%,
/// and asking for too few costs a round trip where too many cost 24 bytes each.
pub const WANT_TENTHS_PER_DIFFERENCE: u64 = 20;

/// Symbols asked for first on top of the per-difference share: small
/// differences decode with more variance.
pub const WANT_SLACK: u64 = 24;

/// The symbols to ask for first for an estimate of `d` differences.
pub fn want_for(d: u64) -> u32 {
    let want = d.saturating_mul(WANT_TENTHS_PER_DIFFERENCE) / 10 + WANT_SLACK;
    want.min(u64::from(SKETCH_MAX_SYMBOLS)) as u32
}

/// Sketch initiator tunables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SketchConfig {
    /// Symbols to ask for first; by default [`DEFAULT_SKETCH_WANT`] (the registry
    /// sizes it with [`want_for`] from the handshake's estimate).
    pub want: u32,
    /// Symbols the responder said it maintains in its handshake (0: unknown, its
    /// first empty window tells).
    pub remote_len: u32,
    /// Byte budget of one push frame; by default [`DEFAULT_PUSH_BYTES`].
    pub push_bytes: usize,
    /// The tree protocol the session falls over to when the sketch does not
    /// decode within the maintained prefix (its `remote_top` and `key` from the
    /// handshake).
    pub fallback: HashComparisonConfig,
}

impl Default for SketchConfig {
    fn default() -> Self {
        SketchConfig {
            want: DEFAULT_SKETCH_WANT,
            remote_len: 0,
            push_bytes: DEFAULT_PUSH_BYTES,
            fallback: HashComparisonConfig::default(),
        }
    }
}

/// What a sketch responder learns from the session's first message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SketchResponderInit {
    /// The initiator's root when it opened the session.
    pub initiator_root: Hash,
    /// Symbols to stream before waiting for more.
    pub want: u32,
    /// The session key of the fallback tree protocol's truncated hashes.
    pub key: SessionKey,
}

impl SketchResponderInit {
    /// The same init, keyed by the handshake that preceded it.
    pub fn with_key(self, key: SessionKey) -> Self {
        SketchResponderInit { key, ..self }
    }
}

impl TryFrom<&SketchInit> for SketchResponderInit {
    type Error = ProtocolError;

    fn try_from(init: &SketchInit) -> Result<Self, ProtocolError> {
        let want = init.want as usize;
        ProtocolError::check_limit("sketch symbols", SKETCH_MAX_SYMBOLS as usize, want)?;
        Ok(SketchResponderInit {
            initiator_root: Hash::from_wire(&init.root, "root")?,
            want: init.want,
            key: SessionKey::without_handshake(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_grows_with_the_estimate_up_to_the_cap() {
        assert_eq!(want_for(0), WANT_SLACK as u32);
        assert_eq!(want_for(1000), 2024);
        assert_eq!(want_for(u64::MAX), SKETCH_MAX_SYMBOLS);
    }

    #[test]
    fn an_init_needs_a_root_and_a_bounded_want() {
        let good = SketchInit {
            root: vec![1; 32].into(),
            want: 100,
        };
        assert_eq!(
            SketchResponderInit::try_from(&good).map(|i| i.want),
            Ok(100)
        );
        let bad = SketchInit {
            want: SKETCH_MAX_SYMBOLS + 1,
            ..good.clone()
        };
        assert!(SketchResponderInit::try_from(&bad).is_err());
        let short = SketchInit {
            root: vec![1; 3].into(),
            ..good
        };
        assert!(SketchResponderInit::try_from(&short).is_err());
    }
}
