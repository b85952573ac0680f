//! `synctree id`: this node's identity, from the key in the store directory.

use std::fs;
use std::path::Path;

use clap::Args;
use synctree_secure::NodeKey;

use crate::error::CliError;
use crate::output::emit;

/// Arguments of `synctree id`.
#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// Print `{"id": …, "key_file": …}` on stdout instead of the bare ID.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The node key of the store directory `dir`, created (with the directory) at
/// first use.
pub(crate) fn node_key(dir: &Path) -> Result<NodeKey, CliError> {
    fs::create_dir_all(dir).map_err(CliError::file(dir))?;
    NodeKey::load_or_create(dir).map_err(CliError::Secure)
}

/// `id`: prints the node ID. Works while `serve` holds the database.
pub(crate) fn run(dir: &Path, args: &IdArgs) -> Result<(), CliError> {
    let key = node_key(dir)?;
    if !args.json {
        return emit(&format!("{}\n", key.id()));
    }
    let path = dir.join(synctree_secure::key::KEY_FILE);
    let object = serde_json::json!({
        "id": key.id().to_string(),
        "key_file": path.display().to_string(),
    });
    emit(&format!("{object}\n"))
}
