//! `synctree`: run a demo sync, and (as the project grows) nodes with data on disk.

#![forbid(unsafe_code)]

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use synctree_manager::ProtocolChoice;
use synctree_primitives::ProtocolKind;
use tracing_subscriber::EnvFilter;

/// Keep replicas of a Merkle-indexed key-value store in sync.
#[derive(Debug, Parser)]
#[command(name = "synctree", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build two in-memory nodes with diverged data and sync them over real TCP.
    Demo(demo::DemoArgs),
}

/// Protocol names accepted on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    /// Let the handshake's decision table choose.
    Auto,
    /// Merkle descent that skips equal subtrees.
    HashComparison,
    /// One batched round trip per tree level.
    LevelWise,
    /// Paged full transfer, verified against the pinned root.
    Snapshot,
}

impl ProtocolArg {
    fn choice(self) -> ProtocolChoice {
        match self {
            ProtocolArg::Auto => ProtocolChoice::Auto,
            ProtocolArg::HashComparison => ProtocolChoice::Force(ProtocolKind::HashComparison),
            ProtocolArg::LevelWise => ProtocolChoice::Force(ProtocolKind::LevelWise),
            ProtocolArg::Snapshot => ProtocolChoice::Force(ProtocolKind::Snapshot),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => fail(e.as_ref()),
    }
}

/// One clear line on stderr, never a backtrace.
fn fail(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("error: {}", synctree_primitives::error::error_chain(error));
    ExitCode::FAILURE
}
