//! [`NodeKey`]: a node's long-term Ed25519 key pair, kept as PKCS#8 in the store
//! directory (`node.key`, owner-only permissions), created at first use.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::error::SecureError;
use crate::id::PeerId;

/// The key file inside a store directory.
pub const KEY_FILE: &str = "node.key";

/// Bytes of a raw Ed25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;

/// A node's Ed25519 key pair and the [`PeerId`] derived from it.
#[derive(Clone)]
pub struct NodeKey {
    pkcs8: Vec<u8>,
    public: [u8; PUBLIC_KEY_BYTES],
    id: PeerId,
}

impl fmt::Debug for NodeKey {
    /// The ID only: the private key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey").field("id", &self.id).finish()
    }
}

impl NodeKey {
    /// A fresh key pair from the system's CSPRNG (ephemeral nodes, tests).
    pub fn generate() -> Result<Self, SecureError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| SecureError::KeyGeneration)?;
        Self::from_pkcs8(pkcs8.as_ref()).ok_or(SecureError::KeyGeneration)
    }

    /// The key pair in the PKCS#8 document `der`, if it is an Ed25519 key.
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?;
        let public: [u8; PUBLIC_KEY_BYTES] = pair.public_key().as_ref().try_into().ok()?;
        Some(NodeKey {
            pkcs8: der.to_vec(),
            public,
            id: PeerId::from_public_key(&public),
        })
    }

    /// Reads `DIR/node.key`, or creates it (mode 0600 on Unix, written to a
    /// temporary file and renamed) when the directory has none yet.
    pub fn load_or_create(dir: &Path) -> Result<Self, SecureError> {
        let path = dir.join(KEY_FILE);
        match fs::read(&path) {
            Ok(der) => {
                warn_if_shared(&path);
                Self::from_pkcs8(&der).ok_or(SecureError::BadKey { path })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                key.save(dir)?;
                tracing::info!(node = %key.id, "new node key");
                Ok(key)
            }
            Err(source) => Err(SecureError::KeyFile { path, source }),
        }
    }

    /// Writes the key to `DIR/node.key` with owner-only permissions.
    fn save(&self, dir: &Path) -> Result<(), SecureError> {
        let tmp = dir.join(format!("{KEY_FILE}.tmp"));
        let file_err = |path: &PathBuf| {
            let path = path.clone();
            move |source| SecureError::KeyFile { path, source }
        };
        let _ = fs::remove_file(&tmp);
        let mut file = private_file(&tmp).map_err(file_err(&tmp))?;
        file.write_all(&self.pkcs8)
            .and_then(|()| file.sync_all())
            .map_err(file_err(&tmp))?;
        let path = dir.join(KEY_FILE);
        fs::rename(&tmp, &path).map_err(file_err(&path))
    }

    /// This node's ID.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_BYTES] {
        &self.public
    }

    /// The PKCS#8 document (secret: for the TLS configuration only).
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Logs a warning when the key file can be read by anyone but its owner.
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "node key is readable by others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeKey::load_or_create(dir.path()).unwrap();
        let again = NodeKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.id(), again.id());
        assert_eq!(first.public_key(), again.public_key());
        assert_ne!(first.id(), NodeKey::generate().unwrap().id());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        NodeKey::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"not a key").unwrap();
        let err = NodeKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, SecureError::BadKey { .. }), "{err}");
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let key = NodeKey::generate().unwrap();
        assert!(!format!("{key:?}").contains(&format!("{:?}", &key.pkcs8[..8])));
    }
}
