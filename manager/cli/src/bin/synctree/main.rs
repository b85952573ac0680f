//! `synctree`: a node of a synctree network with its data on disk, and a demo.
//!
//! ```text
//!  put / del / gen / import ──► Node (DIR/synctree.redb, DIR/node-id, DIR/node.key) ◄── get / root / export / id
//!                                  ▲                      ▲
//!      serve: SyncManager::serve_with(TlsAcceptor)     sync: SyncManager::sync ──► ID@peer (TLS / QUIC)
//! ```

#![forbid(unsafe_code)]

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
mod simulate;

use std::io::{ErrorKind, IsTerminal};
use std::path::PathBuf;
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

/// Commands that open the store directory.
#[derive(Debug, Subcommand)]
enum NodeCommand {
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
    Contexts,
    /// Write deterministic entries: the same seed gives the same entries on any node.
    Gen(data::GenArgs),
    /// Print a context's Merkle root, entry count and tree depth.
    Root(root::RootArgs),
    /// Answer sync sessions until SIGINT or SIGTERM.
    Serve(net::ServeArgs),
    /// Reconcile one context with a serving peer.
    Sync(net::SyncArgs),
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
        Command::Node(command) => runtime
            .block_on(run(cli.store, command))
            .map(|()| ExitCode::SUCCESS),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => fail(e.as_ref()),
    }
}

/// Runs a node command on the store directory.
async fn run(
    store: Option<PathBuf>,
    command: NodeCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = node::store_dir(store)?;
    let open = |how| Node::open(&dir, how);
    let outcome = match command {
        NodeCommand::Id(args) => identity::run(&dir, args),
        NodeCommand::Put(args) => data::put(&open(Open::Create)?, args),
        NodeCommand::Get(args) => data::get(&open(Open::Existing)?, args),
        NodeCommand::Del(args) => data::del(&open(Open::Create)?, args),
        NodeCommand::Contexts => data::contexts(&open(Open::Existing)?),
        NodeCommand::Gen(args) => data::gen_entries(&open(Open::Create)?, args),
        NodeCommand::Root(args) => root::run(&open(Open::Existing)?, args),
        NodeCommand::Serve(args) => net::serve(open(Open::Create)?, args).await,
        NodeCommand::Sync(args) => net::sync(open(Open::Create)?, args).await,
        NodeCommand::Export(args) => jsonl::export(&open(Open::Existing)?, args),
        NodeCommand::Import(args) => jsonl::import(&open(Open::Create)?, args),
    };
    match outcome {
        // A reader that went away (`export | head`) is not an error.
        Err(CliError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// One clear line on stderr, never a backtrace.
fn fail(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("error: {}", synctree_primitives::error::error_chain(error));
    ExitCode::FAILURE
}
