//! The peers file (`DIR/peers`) and `--allow`: who may connect to `serve`, and
//! what each may read and write.
//!
//! ```text
//!  # one node per line: ID [read=CONTEXTS] [write=CONTEXTS]
//!  # CONTEXTS: * (all, the default), - (none), or names separated by commas
//!  EH7DDX5-BKSRGCD-YTL7BKA-I36SE44-NXX3KLN-K7ELKS2-YQ57PI7-4XEG4QI
//!  MFZWI3D-...  read=notes,photos write=notes
//! ```
//!
//! The file is read again whenever its size or modification time changes, so a
//! peer removed from it is refused from its next connection on. A file that no
//! longer parses allows nobody (from the file) until it is fixed.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use synctree_manager::{Access, ContextSet};
use synctree_primitives::ContextId;
use synctree_secure::{PeerId, PeerPolicy};

/// The peers file inside a store directory.
pub(crate) const PEERS_FILE: &str = "peers";

/// Why the peers file does not parse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PeersError {
    /// A line is not `ID [read=…] [write=…]`.
    #[error("{}: line {line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read.
    #[error("{}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Parses the text of a peers file.
fn parse(path: &Path, text: &str) -> Result<HashMap<PeerId, Access>, PeersError> {
    let mut peers = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| PeersError::Line {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let mut words = line.split_whitespace();
        let id = words.next().unwrap_or("");
        let id: PeerId = id.parse().map_err(|e| bad(format!("{e}")))?;
        let mut access = Access::all();
        for word in words {
            match word.split_once('=') {
                Some(("read", list)) => access.read = contexts(list).map_err(bad)?,
                Some(("write", list)) => access.write = contexts(list).map_err(bad)?,
                _ => return Err(bad(format!("expected read=… or write=…, got `{word}`"))),
            }
        }
        peers.insert(id, access);
    }
    Ok(peers)
}

/// `*`, `-`, or a comma-separated list of context names.
fn contexts(list: &str) -> Result<ContextSet, String> {
    match list {
        "*" => Ok(ContextSet::All),
        "-" => Ok(ContextSet::none()),
        names => {
            let set: Result<BTreeSet<ContextId>, _> = names
                .split(',')
                .map(|n| ContextId::new(n).map_err(|e| format!("context `{n}`: {e}")))
                .collect();
            set.map(ContextSet::Only)
        }
    }
}

/// What the file held when last read, and how it looked then.
#[derive(Debug, Default)]
struct Loaded {
    stamp: Option<(u64, SystemTime)>,
    peers: HashMap<PeerId, Access>,
}

/// `--allow` IDs (full access) plus the peers file, re-read when it changes.
#[derive(Debug)]
pub(crate) struct Peers {
    path: PathBuf,
    allowed: HashMap<PeerId, Access>,
    loaded: Mutex<Loaded>,
}

impl Peers {
    /// The peers of store directory `dir` plus `allow`; fails when the file
    /// exists but does not parse.
    pub(crate) fn open(dir: &Path, allow: &[PeerId]) -> Result<Self, PeersError> {
        let peers = Peers {
            path: dir.join(PEERS_FILE),
            allowed: allow.iter().map(|id| (*id, Access::all())).collect(),
            loaded: Mutex::new(Loaded::default()),
        };
        let mut loaded = Loaded::default();
        peers.refresh(&mut loaded)?;
        *peers.loaded.lock().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(peers)
    }

    /// How many peers are allowed now.
    pub(crate) fn count(&self) -> usize {
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let from_file = loaded
            .peers
            .keys()
            .filter(|id| !self.allowed.contains_key(id));
        self.allowed.len() + from_file.count()
    }

    /// Re-reads the file when its size or modification time changed.
    fn refresh(&self, loaded: &mut Loaded) -> Result<(), PeersError> {
        let stamp = match fs::metadata(&self.path) {
            Ok(meta) => Some((
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return self.failed(loaded, source),
        };
        if stamp == loaded.stamp && stamp.is_some() {
            return Ok(());
        }
        loaded.stamp = stamp;
        loaded.peers = match stamp {
            None => HashMap::new(),
            Some(_) => match fs::read_to_string(&self.path) {
                Ok(text) => {
                    loaded.peers.clear();
                    parse(&self.path, &text)?
                }
                Err(source) => return self.failed(loaded, source),
            },
        };
        Ok(())
    }

    fn failed(&self, loaded: &mut Loaded, source: std::io::Error) -> Result<(), PeersError> {
        loaded.peers.clear();
        Err(PeersError::Read {
            path: self.path.clone(),
            source,
        })
    }
}

impl PeerPolicy for Peers {
    fn access(&self, peer: &PeerId) -> Option<Access> {
        if let Some(access) = self.allowed.get(peer) {
            return Some(access.clone());
        }
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = self.refresh(&mut loaded) {
            // Fail closed: a file being edited allows nobody until it parses.
            loaded.peers.clear();
            tracing::error!(error = %synctree_primitives::error::error_chain(&e), "peers file");
        }
        loaded.peers.get(peer).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seed: u8) -> PeerId {
        PeerId::from_public_key(&[seed; 32])
    }

    #[test]
    fn lines_parse_into_access_rules() {
        let text = format!(
            "# comment\n\n{}\n{} read=a,b write=- # trailing\n",
            id(1),
            id(2)
        );
        let peers = parse(Path::new("peers"), &text).unwrap();
        assert_eq!(peers[&id(1)], Access::all());
        let two = &peers[&id(2)];
        let a = ContextId::new("a").unwrap();
        assert!(two.may_read(&a) && !two.may_write(&a));
        assert!(!two.may_read(&ContextId::new("c").unwrap()));
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for bad in ["NOT-AN-ID", &format!("{} rw=*", id(1))] {
            let err = parse(Path::new("peers"), &format!("\n{bad}\n")).unwrap_err();
            assert!(err.to_string().contains("line 2"), "{err}");
        }
    }

    #[test]
    fn removing_a_peer_from_the_file_takes_effect_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PEERS_FILE);
        fs::write(&path, format!("{}\n{}\n", id(1), id(2))).unwrap();
        let peers = Peers::open(dir.path(), &[id(9)]).unwrap();
        assert_eq!(peers.count(), 3);
        assert!(peers.access(&id(2)).is_some());
        fs::write(&path, format!("{}\n", id(1))).unwrap();
        assert!(peers.access(&id(2)).is_none());
        assert!(peers.access(&id(1)).is_some() && peers.access(&id(9)).is_some());
        fs::write(&path, "garbage\n").unwrap();
        assert!(
            peers.access(&id(1)).is_none(),
            "a broken file allows nobody"
        );
    }
}
