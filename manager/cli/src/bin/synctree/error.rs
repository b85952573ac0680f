//! [`CliError`]: every way a command can fail, each rendered as one line.

use std::io;
use std::path::PathBuf;

use synctree_manager::ManagerError;
use synctree_primitives::{ContextId, Hash, ProtocolError, StoreError};

/// Why a `synctree` command failed. `main` prints it with its sources on one line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The Prometheus exporter would not start.
    #[error(transparent)]
    Metrics(#[from] synctree_cli::prometheus::MetricsError),
    /// No `--store` was given and the system has no per-user data directory.
    #[error("this system has no per-user data directory; pass --store DIR")]
    NoDataDir,
    /// A read-only command was pointed at a directory holding no store.
    #[error(
        "no store at {}: create one with put, gen, import, serve or sync",
        .0.display()
    )]
    NoStore(PathBuf),
    /// `--store` names a file, not a directory.
    #[error("{} is a file, not a store directory", .0.display())]
    NotADirectory(PathBuf),
    /// The store directory exists but the database would not open.
    #[error("cannot open the store at {}", path.display())]
    Open {
        /// The store directory.
        path: PathBuf,
        /// The backend's error.
        #[source]
        source: StoreError,
    },
    /// Another process (a running `serve`, say) holds the database.
    #[error(
        "the store at {} is in use by another synctree process (a running `serve`?)",
        .0.display()
    )]
    InUse(PathBuf),
    /// A file of the store directory could not be read or written.
    #[error("{}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// The store's `node-id` file does not hold a node id.
    #[error("{} is corrupt: expected 16 hex digits of a non-zero node id", .0.display())]
    BadNodeId(PathBuf),
    /// A context name on the command line is not a valid context id.
    #[error("invalid context name `{name}`")]
    BadContext {
        /// The name given.
        name: String,
        /// Why it is invalid.
        #[source]
        source: ProtocolError,
    },
    /// An entry given on the command line breaks a limit.
    #[error("invalid entry")]
    BadEntry(#[source] ProtocolError),
    /// The context holds no entry at all.
    #[error("unknown context `{0}`")]
    UnknownContext(ContextId),
    /// The key was never written in the context.
    #[error("no key `{key}` in context `{context}`")]
    NoKey {
        /// The context.
        context: ContextId,
        /// The key.
        key: String,
    },
    /// The key's newest version is a tombstone.
    #[error("key `{key}` in context `{context}` is deleted")]
    Deleted {
        /// The context.
        context: ContextId,
        /// The key.
        key: String,
    },
    /// The key's version is already at the end of the clock's range.
    #[error("key `{0}` holds the largest possible version; no write can supersede it")]
    ClockExhausted(String),
    /// A store operation failed.
    #[error("store error")]
    Store(#[from] StoreError),
    /// A local write failed for a reason not listed above.
    #[error("local write failed")]
    Write(#[source] synctree_primitives::local::WriteLocalError),
    /// The index's root differs from the root recomputed from the entries.
    #[error(
        "root mismatch in `{context}`: the index says {indexed} ({indexed_count} entries), \
         the entries hash to {recomputed} ({recomputed_count} entries)"
    )]
    RootMismatch {
        /// The context.
        context: ContextId,
        /// Root kept by the index.
        indexed: Hash,
        /// Entries counted by the index.
        indexed_count: u64,
        /// Root recomputed from the entries.
        recomputed: Hash,
        /// Entries actually stored.
        recomputed_count: u64,
    },
    /// An import file could not be read.
    #[error("cannot read {0}")]
    ImportRead(String, #[source] io::Error),
    /// A line of an import file is not a valid entry.
    #[error("{file}: line {line}: {reason}")]
    ImportLine {
        /// The file (`-` for stdin).
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing to stdout failed.
    #[error("cannot write the output")]
    Output(#[source] io::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Installing the SIGINT/SIGTERM handlers failed.
    #[error("cannot install signal handlers")]
    Signals(#[source] io::Error),
    /// The peer could not be reached.
    #[error("cannot connect to {peer}")]
    Connect {
        /// The address given.
        peer: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The session with the peer failed.
    #[error("sync of `{context}` with {peer} failed")]
    Sync {
        /// The address given.
        peer: String,
        /// The context.
        context: ContextId,
        /// What went wrong.
        #[source]
        source: ManagerError,
    },
    /// A session ended without both roots equal.
    #[error("session ended with different roots: local {local}, peer {remote}")]
    Diverged {
        /// Local root (hex).
        local: String,
        /// Peer's root (hex).
        remote: String,
    },
    /// Neither this node nor the peer holds the context.
    #[error("neither this node nor {peer} holds context `{context}`")]
    NotHeld {
        /// The peer.
        peer: String,
        /// The context.
        context: ContextId,
    },
    /// `sync` without `--context`, and neither node holds anything.
    #[error("neither this node nor the peer holds any context")]
    NothingToSync,
    /// Asking the peer for its contexts failed.
    #[error("cannot list the contexts of {peer}")]
    Listing {
        /// The peer.
        peer: String,
        /// What went wrong.
        #[source]
        source: ManagerError,
    },
    /// Some of several sessions failed (each was reported above).
    #[error("{failed} of {total} contexts did not sync")]
    SomeSyncsFailed {
        /// Sessions that failed or diverged.
        failed: usize,
        /// Sessions run.
        total: usize,
    },
    /// The config file does not parse.
    #[error("{} is not a valid config: {reason}", path.display())]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong (from the TOML parser, or a limit).
        reason: String,
    },
    /// `serve` without `--listen` and without `listen` in the config file.
    #[error("no address to listen on: pass --listen ADDR or set `listen` in {}", .0.display())]
    NoListen(PathBuf),
    /// `--interval` out of range.
    #[error("--interval {0} is out of range (0.05 to 86400 seconds)")]
    BadInterval(f64),
    /// `--gc-horizon-days` out of range.
    #[error(
        "--gc-horizon-days {0} is out of range (0 to never purge, else 2 minutes to 3650 days)"
    )]
    BadGcHorizon(f64),
    /// `DIR/api.json` does not hold an endpoint.
    #[error("{} is damaged: {reason}", path.display())]
    BadEndpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The system's random source failed.
    #[error("cannot read random bytes: {0}")]
    Random(String),
    /// The running node's API could not be reached or answered badly.
    #[error("cannot reach the running node's API at {addr}")]
    ApiUnreachable {
        /// The API address.
        addr: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The running node refused or failed the request.
    #[error("{message}")]
    Remote {
        /// `not_found`, `bad_request`, `unauthorized` or `failed`.
        kind: String,
        /// The node's one-line reason (escaped).
        message: String,
    },
    /// This command cannot run while `serve` holds the store.
    #[error(
        "the store at {} is held by a running node, and `{command}` cannot go through its API; stop the node first",
        dir.display()
    )]
    NotRemote {
        /// The store directory.
        dir: PathBuf,
        /// The command.
        command: &'static str,
    },
    /// A node key, certificate or secure connection failed.
    #[error(transparent)]
    Secure(#[from] synctree_secure::SecureError),
    /// The peers file does not parse or cannot be read.
    #[error(transparent)]
    Peers(#[from] crate::peers::PeersError),
    /// `--peer` is not `ID@HOST:PORT` (or `quic://ID@HOST:PORT`).
    #[error("bad --peer `{peer}`")]
    BadPeer {
        /// What was given.
        peer: String,
        /// Why it does not parse.
        #[source]
        source: synctree_secure::peer_addr::PeerAddrError,
    },
    /// Encoding the JSON output failed.
    #[error("cannot encode the JSON output")]
    Json(#[from] serde_json::Error),
}

/// What kind of failure an error is: it picks the exit status and the `kind` of
/// the JSON error (`--json`, the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The key, context or store asked for does not exist (exit status 3).
    NotFound,
    /// The input was refused: a bad name, entry, line or config (exit status 1).
    BadRequest,
    /// Anything else (exit status 1).
    Failed,
}

impl Failure {
    /// The name used in JSON errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Failure::NotFound => "not_found",
            Failure::BadRequest => "bad_request",
            Failure::Failed => "failed",
        }
    }

    /// The process exit status.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Failure::NotFound => 3,
            Failure::BadRequest | Failure::Failed => 1,
        }
    }
}

impl CliError {
    /// What kind of failure this is.
    pub(crate) fn failure(&self) -> Failure {
        match self {
            CliError::NoKey { .. }
            | CliError::Deleted { .. }
            | CliError::UnknownContext(_)
            | CliError::NoStore(_)
            | CliError::NotHeld { .. } => Failure::NotFound,
            CliError::Remote { kind, .. } if kind == "not_found" => Failure::NotFound,
            CliError::BadContext { .. }
            | CliError::BadEntry(_)
            | CliError::ImportLine { .. }
            | CliError::ClockExhausted(_)
            | CliError::BadConfig { .. }
            | CliError::BadInterval(_)
            | CliError::BadGcHorizon(_)
            | CliError::BadPeer { .. } => Failure::BadRequest,
            CliError::Remote { kind, .. } if kind == "bad_request" => Failure::BadRequest,
            _ => Failure::Failed,
        }
    }

    /// Wraps an I/O error on a file of the store directory.
    pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::File { path, source }
    }
}

/// Parses a context name given on the command line.
pub(crate) fn context(name: &str) -> Result<ContextId, CliError> {
    ContextId::new(name).map_err(|source| CliError::BadContext {
        name: name.to_owned(),
        source: source.into(),
    })
}
