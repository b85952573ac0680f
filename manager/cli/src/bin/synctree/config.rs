//! The node's config file, `DIR/config.toml`, and the `serve` flags that override
//! it.
//!
//! ```toml
//! listen = "0.0.0.0:7000"          # sync sessions (TLS)
//! listen_quic = "0.0.0.0:7000"     # QUIC beside it, optional
//! api = "127.0.0.1:7001"           # client API (beyond loopback: token required)
//! metrics = "127.0.0.1:9100"       # Prometheus, optional
//! peers = ["ID2@10.0.0.2:7000", "quic://ID3@10.0.0.3:7000"]
//! interval_secs = 30.0             # anti-entropy interval per peer
//! gc_horizon_days = 7.0            # tombstones older than this are purged; 0: never
//! ```
//!
//! Which nodes may connect is the peers file `DIR/peers` (and `--allow`).
//! Every key is optional; a flag given to `serve` wins over the file, and
//! `synctree config` prints what a `serve` without flags would run with.

use std::net::SocketAddr;
use std::path::Path;

use clap::Args;
use serde::{Deserialize, Serialize};
use synctree_primitives::gc::MIN_GC_HORIZON_MS;
use synctree_secure::PeerId;

use crate::error::CliError;
use crate::output::emit;

/// The config file inside a store directory.
pub(crate) const CONFIG_FILE: &str = "config.toml";
/// GC horizon when neither flag nor file sets one: a week.
const DEFAULT_GC_HORIZON_DAYS: f64 = 7.0;
/// Longest GC horizon accepted: ten years (more is a typo).
const MAX_GC_HORIZON_DAYS: f64 = 3_650.0;

/// Largest config file read: a few peers and addresses fit in far less.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Anti-entropy interval when neither flag nor file sets one.
const DEFAULT_INTERVAL_SECS: f64 = 30.0;

/// `serve`'s flags; each overrides the config file's key of the same name.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on, e.g. `127.0.0.1:7000`; port 0 picks a free port. The
    /// bound address is printed on stderr as `synctree: listening on ADDR`.
    /// [config: `listen`]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Allow the node with this ID (from `synctree id` on it) to connect, with
    /// read and write access to every context. Repeatable; adds to the peers
    /// file `DIR/peers` (one `ID [read=CONTEXTS] [write=CONTEXTS]` per line).
    #[arg(long, value_name = "ID")]
    pub(crate) allow: Vec<PeerId>,
    /// Also accept QUIC connections on this UDP address (same identity and
    /// allowlist). The bound address is printed as `synctree: quic on ADDR`.
    /// [config: `listen_quic`]
    #[arg(long, value_name = "ADDR")]
    listen_quic: Option<String>,
    /// Serve plain TCP: no encryption, no authentication, every client may read
    /// and write everything; peers are then `HOST:PORT`. For tests and local
    /// demos only.
    #[arg(long, conflicts_with_all = ["allow", "listen_quic"])]
    pub(crate) insecure_plaintext: bool,
    /// Serve Prometheus metrics (sessions, bytes, rounds, outcomes) over HTTP at
    /// `http://ADDR/metrics`. [config: `metrics`]
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// The client API's address (HTTP/JSON, docs/openapi.yaml); commands like
    /// `put` and `sync` on this store directory use it while the node runs. Beyond
    /// loopback every request needs the token in `DIR/api-token`.
    /// [config: `api`; default 127.0.0.1:0, loopback on any port, published in
    /// `DIR/api.json`]
    #[arg(long, value_name = "ADDR")]
    api: Option<SocketAddr>,
    /// A peer to keep in sync (`ID@HOST:PORT`, `quic://ID@HOST:PORT`, or
    /// `HOST:PORT` with `--insecure-plaintext`; repeatable): every context this
    /// node holds is synced with it every `--interval`. [config: `peers`]
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<String>,
    /// Seconds between anti-entropy rounds with each peer.
    /// [config: `interval_secs`; default 30]
    #[arg(long, value_name = "SECONDS")]
    interval: Option<f64>,
    /// Days a delete is kept before its tombstone is purged (0: never purge);
    /// every peer should use the same value, longer than any partition the
    /// cluster must ride out (docs/PROTOCOL.md, "Tombstone GC").
    /// [config: `gc_horizon_days`; default 7]
    #[arg(long, value_name = "DAYS")]
    gc_horizon_days: Option<f64>,
    /// Print one JSON object on stdout once listening: `{"node", "listen",
    /// "quic", "api", "metrics"}` (stderr keeps the human lines).
    #[arg(long)]
    pub(crate) json: bool,
}

/// `DIR/config.toml`, every key optional.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeConfig {
    /// Where sync sessions are served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) listen: Option<String>,
    /// Where QUIC sessions are served, besides TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) listen_quic: Option<String>,
    /// Where the client API listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api: Option<SocketAddr>,
    /// Where Prometheus metrics are served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Peers kept in sync.
    #[serde(default)]
    pub(crate) peers: Vec<String>,
    /// Anti-entropy interval, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) interval_secs: Option<f64>,
    /// Tombstone GC horizon, days (0: never purge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gc_horizon_days: Option<f64>,
}

/// What `serve` runs with: the file, overridden by the flags, then the defaults.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Effective {
    /// Where sync sessions are served (none: `serve` refuses to start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) listen: Option<String>,
    /// Where QUIC sessions are served, besides TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) listen_quic: Option<String>,
    /// Where the client API listens.
    pub(crate) api: SocketAddr,
    /// Where Prometheus metrics are served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Peers kept in sync.
    pub(crate) peers: Vec<String>,
    /// Anti-entropy interval, seconds.
    pub(crate) interval_secs: f64,
    /// Tombstone GC horizon, days (0: never purge).
    pub(crate) gc_horizon_days: f64,
}

/// Arguments of `synctree config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Print one JSON object instead of TOML.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Reads `DIR/config.toml` (missing: every key unset).
pub(crate) fn load(dir: &Path) -> Result<NodeConfig, CliError> {
    use std::io::Read;
    let path = dir.join(CONFIG_FILE);
    let mut text = String::new();
    match std::fs::File::open(&path) {
        Ok(file) => file
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(CliError::file(&path))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NodeConfig::default()),
        Err(e) => return Err(CliError::file(path)(e)),
    };
    if text.len() as u64 > MAX_CONFIG_BYTES {
        let reason = format!("larger than {MAX_CONFIG_BYTES} bytes");
        return Err(CliError::BadConfig { path, reason });
    }
    toml::from_str(&text).map_err(|e| CliError::BadConfig {
        path,
        reason: e.message().to_owned(),
    })
}

impl NodeConfig {
    /// The file's keys overridden by `flags` (`None`: no flags), then the defaults.
    pub(crate) fn effective(self, flags: Option<&ServeArgs>) -> Result<Effective, CliError> {
        let default_api = SocketAddr::from(([127, 0, 0, 1], 0));
        let api = flags
            .and_then(|f| f.api)
            .or(self.api)
            .unwrap_or(default_api);
        let peers = match flags {
            Some(f) if !f.peers.is_empty() => f.peers.clone(),
            _ => self.peers,
        };
        Ok(Effective {
            listen: flags.and_then(|f| f.listen.clone()).or(self.listen),
            listen_quic: flags
                .and_then(|f| f.listen_quic.clone())
                .or(self.listen_quic),
            api,
            metrics: flags.and_then(|f| f.metrics).or(self.metrics),
            peers,
            interval_secs: flags
                .and_then(|f| f.interval)
                .or(self.interval_secs)
                .unwrap_or(DEFAULT_INTERVAL_SECS),
            gc_horizon_days: flags
                .and_then(|f| f.gc_horizon_days)
                .or(self.gc_horizon_days)
                .unwrap_or(DEFAULT_GC_HORIZON_DAYS),
        })
    }
}

impl Effective {
    /// The GC horizon: `None` for 0 (never purge); an error outside
    /// `MIN_GC_HORIZON_MS` (2 minutes) ..= [`MAX_GC_HORIZON_DAYS`].
    pub(crate) fn gc_horizon(&self) -> Result<Option<std::time::Duration>, CliError> {
        let days = self.gc_horizon_days;
        if days == 0.0 {
            return Ok(None);
        }
        let horizon = std::time::Duration::try_from_secs_f64(days * 86_400.0).ok();
        let min = std::time::Duration::from_millis(MIN_GC_HORIZON_MS);
        match horizon {
            Some(h) if h >= min && days <= MAX_GC_HORIZON_DAYS => Ok(Some(h)),
            _ => Err(CliError::BadGcHorizon(days)),
        }
    }
}

/// `config`: prints the effective config of a `serve` without flags.
pub(crate) fn print(dir: &Path, args: &ConfigArgs) -> Result<(), CliError> {
    let effective = load(dir)?.effective(None)?;
    if args.json {
        return emit(&format!("{}\n", serde_json::to_string(&effective)?));
    }
    let text = toml::to_string(&effective).map_err(|e| CliError::BadConfig {
        path: dir.join(CONFIG_FILE),
        reason: e.to_string(),
    })?;
    emit(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file: NodeConfig = toml::from_str(
            "listen = \"127.0.0.1:7000\"\npeers = [\"127.0.0.1:7001\"]\ninterval_secs = 5.0\n",
        )
        .expect("parse");
        let flags = ServeArgs {
            listen: None,
            allow: Vec::new(),
            listen_quic: None,
            insecure_plaintext: false,
            json: false,
            metrics: None,
            api: None,
            peers: vec!["127.0.0.1:9".to_owned()],
            interval: Some(1.0),
            gc_horizon_days: Some(0.5),
        };
        let effective = file.clone().effective(Some(&flags)).expect("effective");
        assert_eq!(effective.listen.as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(effective.peers, ["127.0.0.1:9"]);
        assert_eq!(effective.interval_secs, 1.0);
        assert_eq!(
            effective.gc_horizon().expect("horizon"),
            Some(std::time::Duration::from_secs(43_200))
        );
        assert!(effective.api.ip().is_loopback());
        let from_file = file.effective(None).expect("effective");
        assert_eq!((from_file.peers.len(), from_file.interval_secs), (1, 5.0));
        assert_eq!(from_file.gc_horizon_days, DEFAULT_GC_HORIZON_DAYS);
    }

    #[test]
    fn gc_horizons_are_checked() {
        let with = |days: f64| {
            let value = if days.is_nan() {
                "nan".to_owned()
            } else {
                format!("{days:?}")
            };
            let file: NodeConfig =
                toml::from_str(&format!("gc_horizon_days = {value}\n")).expect("parse");
            file.effective(None).expect("effective").gc_horizon()
        };
        assert_eq!(with(0.0).expect("off"), None, "0 keeps every tombstone");
        assert!(with(7.0).expect("a week").is_some());
        for bad in [0.0001, -1.0, 1e9, f64::NAN] {
            assert!(
                matches!(with(bad), Err(CliError::BadGcHorizon(_))),
                "{bad} days"
            );
        }
    }

    #[test]
    fn unknown_keys_and_huge_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CONFIG_FILE), "lisen = \"x\"\n").expect("write");
        assert!(matches!(load(dir.path()), Err(CliError::BadConfig { .. })));
        let huge = "#".repeat(MAX_CONFIG_BYTES as usize + 10);
        std::fs::write(dir.path().join(CONFIG_FILE), huge).expect("write");
        assert!(matches!(load(dir.path()), Err(CliError::BadConfig { .. })));
        std::fs::remove_file(dir.path().join(CONFIG_FILE)).expect("rm");
        assert!(load(dir.path()).expect("load").peers.is_empty());
    }
}
