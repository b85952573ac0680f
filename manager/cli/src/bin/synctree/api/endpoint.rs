//! How a CLI command finds the running node that holds a store directory.
//!
//! ```text
//!  DIR/
//!    api.json     {"addr": "127.0.0.1:PORT"}: written by `serve` once its API
//!                 listens, removed when it stops (owner-only permissions)
//!    api-token    the bearer token the API requires when it listens beyond
//!                 loopback (created on first need, owner-only permissions)
//! ```

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The file naming the running node's API address.
pub(crate) const ENDPOINT_FILE: &str = "api.json";
/// The file holding the API's bearer token.
pub(crate) const TOKEN_FILE: &str = "api-token";
/// Random bytes in a token (hex-encoded in the file): 256 bits, beyond guessing.
const TOKEN_BYTES: usize = 32;
/// Longest `api.json` read: it holds one address.
const MAX_ENDPOINT_FILE_BYTES: u64 = 4096;

/// The contents of `api.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Where the API listens.
    pub(crate) addr: SocketAddr,
}

/// `api.json` for as long as the API runs: removed on drop.
#[derive(Debug)]
pub(crate) struct Published {
    path: PathBuf,
}

impl Drop for Published {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::debug!(error = %e, "could not remove the API endpoint file");
        }
    }
}

/// Writes `DIR/api.json` naming `addr`.
pub(crate) fn publish(dir: &Path, addr: SocketAddr) -> Result<Published, CliError> {
    let path = dir.join(ENDPOINT_FILE);
    let text = serde_json::to_string(&Endpoint { addr })?;
    write_private(&path, text.as_bytes())?;
    Ok(Published { path })
}

/// The running node's endpoint, if `DIR/api.json` names one.
pub(crate) fn find(dir: &Path) -> Result<Option<Endpoint>, CliError> {
    let path = dir.join(ENDPOINT_FILE);
    let text = match read_small(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::file(path)(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| CliError::BadEndpoint {
            path,
            reason: e.to_string(),
        })
}

/// The token in `DIR/api-token`, created (owner-only) when missing.
pub(crate) fn token(dir: &Path) -> Result<String, CliError> {
    let path = dir.join(TOKEN_FILE);
    match read_small(&path) {
        Ok(text) => return Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::file(path)(e)),
    }
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| CliError::Random(e.to_string()))?;
    let token = hex_encode(&bytes);
    write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// The token in `DIR/api-token`, if there is one (a client reading it).
pub(crate) fn existing_token(dir: &Path) -> Option<String> {
    read_small(&dir.join(TOKEN_FILE))
        .ok()
        .map(|t| t.trim().to_owned())
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    fs::File::open(path)?
        .take(MAX_ENDPOINT_FILE_BYTES)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Writes `bytes` to `path` readable by the owner only: a temporary file, then a rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(CliError::file(&tmp))?;
    fs::rename(&tmp, path).map_err(CliError::file(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_round_trips_and_disappears_when_unpublished() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(find(dir.path()).expect("find"), None);
        let addr: SocketAddr = "127.0.0.1:7001".parse().expect("addr");
        let published = publish(dir.path(), addr).expect("publish");
        assert_eq!(find(dir.path()).expect("find"), Some(Endpoint { addr }));
        drop(published);
        assert_eq!(find(dir.path()).expect("find"), None);
    }

    #[test]
    fn a_token_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = token(dir.path()).expect("token");
        assert_eq!(first.len(), 2 * TOKEN_BYTES);
        assert_eq!(token(dir.path()).expect("token"), first);
        assert_eq!(existing_token(dir.path()), Some(first));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(dir.path().join(TOKEN_FILE)).expect("meta");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }
}
