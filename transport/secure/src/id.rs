//! [`PeerId`]: a node's identity, the SHA-256 of its Ed25519 public key, written
//! in a checksummed, copy-pasteable base32 form.
//!
//! ```text
//!  SHA-256(public key) ─► base32 (RFC 4648, no padding): 52 characters
//!                     ─► 4 groups of 13, each + 1 Luhn mod 32 check character: 56
//!                     ─► 8 groups of 7 joined by `-`
//!  e.g. EH7DDX5-BKSRGCD-YTL7BKA-I36SE44-NXX3KLN-K7ELKS2-YQ57PI7-4XEG4QI
//!       (the RFC 8032 test 1 key; docs/PROTOCOL.md, "Node identity")
//! ```
//!
//! Parsing accepts lower case and ignores `-` and spaces, and refuses any ID whose
//! check characters do not match, so a mistyped character is caught.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Bytes of a node ID: a SHA-256 digest.
pub const PEER_ID_BYTES: usize = 32;

/// The base32 alphabet (RFC 4648).
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Base32 characters of a digest: ⌈256 / 5⌉.
const DATA_CHARS: usize = 52;
/// Data characters per check character.
const GROUP_DATA: usize = 13;
/// Characters of the written form, check characters included, separators not.
const ID_CHARS: usize = DATA_CHARS + DATA_CHARS / GROUP_DATA;
/// Characters between two `-` in the written form.
const DISPLAY_GROUP: usize = 7;

/// A node's identity: the SHA-256 of its raw 32-byte Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; PEER_ID_BYTES]);

/// Why a written node ID does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not 56 characters once `-` and spaces are removed.
    #[error("a node ID has {ID_CHARS} characters (without dashes), this has {got}")]
    Length {
        /// Characters found.
        got: usize,
    },
    /// A character outside A–Z and 2–7.
    #[error("a node ID holds only A-Z and 2-7, not {0:?}")]
    Character(char),
    /// A group's check character does not match: a typo.
    #[error("check character of group {group} does not match (a typo?)")]
    Check {
        /// The group, 1 to 4.
        group: usize,
    },
    /// The data does not decode to 32 bytes (its last bits are not zero).
    #[error("not a node ID: trailing bits are set")]
    Trailing,
}

impl PeerId {
    /// The ID of the node whose raw Ed25519 public key is `public_key`.
    pub fn from_public_key(public_key: &[u8]) -> Self {
        PeerId(Sha256::digest(public_key).into())
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; PEER_ID_BYTES] {
        &self.0
    }

    /// A short form for humans in logs (the first group); never for matching.
    pub fn short(&self) -> String {
        self.to_string().chars().take(DISPLAY_GROUP).collect()
    }
}

/// Base32 of `bytes`, no padding.
fn base32(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_CHARS);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize]);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize]);
    }
    out
}

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|v| v as u32)
}

/// The Luhn mod 32 check character of `group` (base32 characters).
fn luhn32(group: &[u8]) -> u8 {
    let (mut factor, mut sum) = (2, 0);
    for &c in group.iter().rev() {
        let addend = factor * value_of(c).unwrap_or(0);
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / 32 + addend % 32;
    }
    ALPHABET[((32 - sum % 32) % 32) as usize]
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = Vec::with_capacity(ID_CHARS);
        for group in base32(&self.0).chunks(GROUP_DATA) {
            chars.extend_from_slice(group);
            chars.push(luhn32(group));
        }
        for (i, group) in chars.chunks(DISPLAY_GROUP).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(&String::from_utf8_lossy(group))?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

impl FromStr for PeerId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let chars: Vec<u8> = s
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .map(|c| match c.to_ascii_uppercase() {
                u @ ('A'..='Z' | '2'..='7') => Ok(u as u8),
                _ => Err(IdError::Character(c)),
            })
            .collect::<Result<_, _>>()?;
        if chars.len() != ID_CHARS {
            return Err(IdError::Length { got: chars.len() });
        }
        let mut data = Vec::with_capacity(DATA_CHARS);
        for (i, group) in chars.chunks(GROUP_DATA + 1).enumerate() {
            let (body, check) = group.split_at(GROUP_DATA);
            if luhn32(body) != check[0] {
                return Err(IdError::Check { group: i + 1 });
            }
            data.extend_from_slice(body);
        }
        decode32(&data).map(PeerId)
    }
}

/// Base32 without padding back to the 32 digest bytes.
fn decode32(chars: &[u8]) -> Result<[u8; PEER_ID_BYTES], IdError> {
    let mut out = [0u8; PEER_ID_BYTES];
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0);
    for &c in chars {
        let v = value_of(c).ok_or(IdError::Character(char::from(c)))?;
        acc = ((acc << 5) | v) & 0xFFFF;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if n < PEER_ID_BYTES {
                out[n] = (acc >> bits) as u8;
            }
            n += 1;
        }
    }
    if acc & ((1 << bits) - 1) != 0 {
        return Err(IdError::Trailing);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, section 7.1, test 1: the public key.
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    /// Its node ID, as docs/PROTOCOL.md quotes it.
    const RFC8032_ID: &str = "EH7DDX5-BKSRGCD-YTL7BKA-I36SE44-NXX3KLN-K7ELKS2-YQ57PI7-4XEG4QI";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn test_vector_matches_the_spec() {
        let id = PeerId::from_public_key(&unhex(RFC8032_PUBLIC));
        assert_eq!(id.to_string(), RFC8032_ID);
    }

    #[test]
    fn ids_round_trip_in_any_case_with_or_without_dashes() {
        for seed in 0u8..32 {
            let id = PeerId::from_public_key(&[seed; 32]);
            let text = id.to_string();
            assert_eq!(text.len(), ID_CHARS + ID_CHARS / DISPLAY_GROUP - 1);
            assert_eq!(text.parse::<PeerId>(), Ok(id));
            assert_eq!(text.to_lowercase().replace('-', "").parse(), Ok(id));
        }
    }

    #[test]
    fn every_single_character_typo_is_caught() {
        let text = PeerId::from_public_key(b"key").to_string();
        for (i, c) in text.char_indices().filter(|(_, c)| *c != '-') {
            for sub in ALPHABET.iter().map(|&b| char::from(b)).filter(|s| *s != c) {
                let mut typo = text.clone();
                typo.replace_range(i..i + 1, &sub.to_string());
                assert!(typo.parse::<PeerId>().is_err(), "{typo}");
            }
        }
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        assert_eq!("ABC".parse::<PeerId>(), Err(IdError::Length { got: 3 }));
        assert_eq!("AB1".parse::<PeerId>(), Err(IdError::Character('1')));
    }
}
