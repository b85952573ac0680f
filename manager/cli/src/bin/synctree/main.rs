//! `synctree`: a node of a synctree network with its data on disk, and a demo.
//!
//! ```text
//!  put / del / gen / import ──► Node (DIR/synctree.redb, DIR/node-id, DIR/node.key) ◄── get / root / export / id
//!                                  ▲                      ▲
//!      serve: SyncManager::serve_with(TlsAcceptor)     sync: SyncManager::sync ──► ID@peer (TLS / QUIC)
//! ```

#![forbid(unsafe_code)]

mod api;
mod config;
mod connector;
mod data;
mod demo;
mod error;
mod identity;
mod jsonl;
mod net;
mod node;
mod output;
mod peers;
mod progress;
mod protocol_arg;
mod quic_serve;
mod root;
mod serve;
mod simulate;
mod status;
mod sweeper;

use std::io::{ErrorKind, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::error::CliError;
use crate::node::{Node, Open};

/// Keep replicas of a Merkle-indexed key-value store in sync.
///
/// A node keeps its data in a store directory (`--store`). Logs go to stderr,
/// filtered by `RUST_LOG` (default `warn`; `RUST_LOG=synctree=debug` logs every
/// committed batch).
#[derive(Debug, Parser)]
#[command(name = "synctree", version, about)]
struct Cli {
    /// Store directory [default: `synctree` under the per-user data directory,
    /// e.g. ~/.local/share/synctree]; created by the commands that write.
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
enum Command {
    /// Build two in-memory nodes with diverged data and sync them over TLS on
    /// real TCP (ephemeral identities that allow each other).
    Demo(demo::DemoArgs),
    /// Simulate a cluster on a virtual network with faults, then check that every
    /// replica converged (exit 0 only then).
    Simulate(simulate::SimulateArgs),
    /// The commands that work on the store directory.
    #[command(flatten)]
    Node(NodeCommand),
}

/// Commands that open the store directory (or, while `serve` holds it, go
/// through the running node's API).
#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Print this node's ID (created with its key, `DIR/node.key`, at first
    /// use): give it to the peers that should `--allow` this node.
    Id(identity::IdArgs),
    /// Write a value, with a version newer than any the key had.
    Put(data::PutArgs),
    /// Print a key's value (fails when the key is missing or deleted).
    Get(data::KeyArgs),
    /// Delete a key (writes a tombstone, which syncs like any write).
    Del(data::KeyArgs),
    /// List the contexts holding at least one entry.
    Contexts(data::ContextsArgs),
    /// Write deterministic entries: the same seed gives the same entries on any node.
    Gen(data::GenArgs),
    /// Print a context's Merkle root, entry count and tree depth.
    Root(root::RootArgs),
    /// Run the node until SIGINT or SIGTERM: answer sync sessions, keep every
    /// context in sync with `--peer`s, and serve the client API.
    Serve(config::ServeArgs),
    /// Reconcile one context (or every context this node holds) with a serving peer.
    Sync(net::SyncArgs),
    /// The node's contexts and, while it serves, its peers.
    Status(status::StatusArgs),
    /// Print the config `serve` would run with (DIR/config.toml and the defaults).
    Config(config::ConfigArgs),
    /// Write a context's entries to stdout as JSON Lines.
    #[command(after_long_help = jsonl::FORMAT_HELP)]
    Export(jsonl::ExportArgs),
    /// Merge entries from a JSON Lines file (as written by `export`).
    #[command(after_long_help = jsonl::FORMAT_HELP)]
    Import(jsonl::ImportArgs),
}

/// Parses the command line, sets up logging and the runtime, runs the command.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let stderr_is_terminal = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_ansi(stderr_is_terminal)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let outcome = match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(args)),
        // turmoil drives its own runtimes: run outside ours.
        Command::Simulate(args) => simulate::run(args),
        Command::Node(command) => {
            let json = command.json();
            return match runtime.block_on(run(cli.store, command)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail_node(&e, json),
            };
        }
    };
    match outcome {
        Ok(code) => code,
        Err(e) => fail(e.as_ref()),
    }
}

/// Runs a node command on the store directory, or through the API of the
/// running node that holds it.
async fn run(store: Option<PathBuf>, command: NodeCommand) -> Result<(), CliError> {
    let dir = node::store_dir(store)?;
    let how = match &command {
        NodeCommand::Get(_)
        | NodeCommand::Contexts(_)
        | NodeCommand::Root(_)
        | NodeCommand::Export(_)
        | NodeCommand::Status(_) => Open::Existing,
        // Read only the config file or the node key, never the store.
        NodeCommand::Config(args) => return config::print(&dir, args),
        NodeCommand::Id(args) => return identity::run(&dir, args),
        _ => Open::Create,
    };
    let outcome = match Node::open(&dir, how) {
        Ok(node) => run_local(node, &dir, command).await,
        Err(CliError::InUse(held)) => match api::endpoint::find(&dir)? {
            Some(at) => api::remote::run(&dir, at, command).await,
            None => Err(CliError::InUse(held)),
        },
        Err(e) => Err(e),
    };
    match outcome {
        // A reader that went away (`export | head`) is not an error.
        Err(CliError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs a node command on the store, opened by this process.
async fn run_local(node: Node, dir: &Path, command: NodeCommand) -> Result<(), CliError> {
    match command {
        NodeCommand::Put(args) => data::put(&node, args),
        NodeCommand::Get(args) => data::get(&node, args),
        NodeCommand::Del(args) => data::del(&node, args),
        NodeCommand::Contexts(args) => data::contexts(&node, &args),
        NodeCommand::Gen(args) => data::gen_entries(&node, args),
        NodeCommand::Root(args) => root::run(&node, args),
        NodeCommand::Serve(args) => serve::serve(node, dir, args).await,
        NodeCommand::Sync(args) => net::sync(node, args).await,
        NodeCommand::Status(args) => status::run(&node, args),
        NodeCommand::Config(args) => config::print(dir, &args),
        NodeCommand::Id(args) => identity::run(dir, &args),
        NodeCommand::Export(args) => jsonl::export(&node, args),
        NodeCommand::Import(args) => jsonl::import(&node, args),
    }
}

impl NodeCommand {
    /// Whether the command was asked for JSON output (its errors are JSON too).
    fn json(&self) -> bool {
        match self {
            NodeCommand::Put(a) => a.json,
            NodeCommand::Get(a) | NodeCommand::Del(a) => a.json,
            NodeCommand::Contexts(a) => a.json,
            NodeCommand::Gen(a) => a.json,
            NodeCommand::Root(a) => a.json,
            NodeCommand::Serve(a) => a.json,
            NodeCommand::Sync(a) => a.json,
            NodeCommand::Status(a) => a.json,
            NodeCommand::Config(a) => a.json,
            NodeCommand::Id(a) => a.json,
            NodeCommand::Import(a) => a.json,
            NodeCommand::Export(_) => false,
        }
    }
}

/// A node command's failure: one `error:` line on stderr, or with `--json` one
/// `{"error", "kind"}` object on stdout; exit status 3 for "not found", else 1.
fn fail_node(error: &CliError, json: bool) -> ExitCode {
    let failure = error.failure();
    let message = synctree_primitives::error::error_chain(error);
    if json {
        let object = serde_json::json!({ "error": message, "kind": failure.name() });
        let _ = crate::output::emit(&format!("{object}\n"));
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::from(failure.exit_code())
}

/// One clear line on stderr, never a backtrace.
fn fail(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("error: {}", synctree_primitives::error::error_chain(error));
    ExitCode::FAILURE
}
