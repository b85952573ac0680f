//! `root`: a context's Merkle root, entry count and depth, optionally verified by
//! recomputing the root from the entries alone.

use clap::Args;
use serde::Serialize;
use synctree_primitives::{ContextId, Store, TreeSummary};

use crate::data::require_context;
use crate::error::{CliError, context};
use crate::node::Node;
use crate::output::emit;

/// Arguments of `synctree root`.
#[derive(Debug, Args)]
pub(crate) struct RootArgs {
    /// Context to describe.
    context: String,
    /// Recompute the root and entry count from the entries alone and fail (exit
    /// status 1) unless they equal the index's.
    #[arg(long)]
    verify: bool,
    /// Print one JSON object: `{"context", "root", "entries", "depth"}`, plus
    /// `"verified"` with `--verify`.
    #[arg(long)]
    json: bool,
}

/// The `--json` object of `root`.
#[derive(Debug, Serialize)]
struct RootJson<'a> {
    /// The context.
    context: &'a str,
    /// Root hash, hex.
    root: String,
    /// Entries, tombstones included.
    entries: u64,
    /// Levels below the root.
    depth: u8,
    /// With `--verify`: whether the recomputed root and count match.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
}

/// `root`: prints the summary; with `--verify`, fails on a mismatch after printing.
pub(crate) fn run(node: &Node, args: RootArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let store = node.store();
    require_context(&**store, &context)?;
    let summary = store.summary(&context)?;
    let mismatch = match args.verify {
        true => verify(node, &context, &summary)?,
        false => None,
    };
    let verified = args.verify.then_some(mismatch.is_none());
    print(&context, &summary, verified, args.json)?;
    mismatch.map_or(Ok(()), Err)
}

/// Recomputes the root from the entries; `Some(error)` on a mismatch.
fn verify(
    node: &Node,
    context: &ContextId,
    summary: &TreeSummary,
) -> Result<Option<CliError>, CliError> {
    let (root, count) = synctree_store::recompute_root(&**node.store(), context)?;
    if root == summary.root && count == summary.entry_count {
        return Ok(None);
    }
    Ok(Some(CliError::RootMismatch {
        context: context.clone(),
        indexed: summary.root,
        indexed_count: summary.entry_count,
        recomputed: root,
        recomputed_count: count,
    }))
}

/// Prints the summary as JSON or as aligned text.
fn print(
    context: &ContextId,
    summary: &TreeSummary,
    verified: Option<bool>,
    json: bool,
) -> Result<(), CliError> {
    if json {
        let object = RootJson {
            context: context.as_str(),
            root: summary.root.to_hex(),
            entries: summary.entry_count,
            depth: summary.depth,
            verified,
        };
        return emit(&format!("{}\n", serde_json::to_string(&object)?));
    }
    let mut text = format!(
        "context   {context}\nroot      {}\nentries   {}\ndepth     {}\n",
        summary.root, summary.entry_count, summary.depth
    );
    if let Some(ok) = verified {
        let verdict = if ok {
            "yes"
        } else {
            "NO: index and entries differ"
        };
        text.push_str(&format!("verified  {verdict}\n"));
    }
    emit(&text)
}
