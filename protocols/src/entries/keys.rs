//! Walking key hashes in order.

use synctree_primitives::Hash;

/// The smallest hash greater than `h`, or `None` after the largest
/// ([`Hash::successor`]).
pub(crate) fn successor(h: &Hash) -> Option<Hash> {
    h.successor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_carries_and_ends() {
        let mut h = Hash::ZERO;
        h.0[Hash::LEN - 1] = u8::MAX;
        let next = successor(&h).map(|n| (n.0[Hash::LEN - 2], n.0[Hash::LEN - 1]));
        assert_eq!(next, Some((1, 0)));
        assert_eq!(successor(&Hash::MAX), None);
    }
}
