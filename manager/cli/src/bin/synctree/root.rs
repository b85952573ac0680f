//! `root`: a context's Merkle root, entry count and depth, optionally verified by
//! recomputing the root from the entries alone.

use clap::Args;
use serde::{Deserialize, Serialize};
use synctree_primitives::{ContextId, Store, TreeSummary};

use crate::data::require_context;
use crate::error::{CliError, context};
use crate::node::Node;
use crate::output::emit;

/// Arguments of `synctree root`.
#[derive(Debug, Args)]
pub(crate) struct RootArgs {
    /// Context to describe.
    pub(crate) context: String,
    /// Recompute the root and entry count from the entries alone and fail (exit
    /// status 1) unless they equal the index's.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Print one JSON object: `{"context", "root", "entries", "depth"}`, plus
    /// `"verified"` with `--verify`.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The `--json` object of `root` (and the API's answer for a context's root).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RootJson {
    /// The context.
    pub(crate) context: String,
    /// Root hash, hex.
    pub(crate) root: String,
    /// Entries, tombstones included.
    pub(crate) entries: u64,
    /// Levels below the root.
    pub(crate) depth: u8,
    /// With `--verify`: whether the recomputed root and count match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) verified: Option<bool>,
}

/// `root`: prints the summary; with `--verify`, fails on a mismatch after printing.
pub(crate) fn run(node: &Node, args: RootArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let (described, mismatch) = describe(node, &context, args.verify)?;
    print(&described, args.json)?;
    mismatch.map_or(Ok(()), Err)
}

/// The context's summary, and with `verify` the mismatch found (if any).
pub(crate) fn describe(
    node: &Node,
    context: &ContextId,
    verify: bool,
) -> Result<(RootJson, Option<CliError>), CliError> {
    let store = node.store();
    require_context(&**store, context)?;
    let summary = store.summary(context)?;
    let mismatch = match verify {
        true => self::verify(node, context, &summary)?,
        false => None,
    };
    let described = RootJson {
        context: context.to_string(),
        root: summary.root.to_hex(),
        entries: summary.entry_count,
        depth: summary.depth,
        verified: verify.then_some(mismatch.is_none()),
    };
    Ok((described, mismatch))
}

/// Recomputes the root from the entries; `Some(error)` on a mismatch.
fn verify(
    node: &Node,
    context: &ContextId,
    summary: &TreeSummary,
) -> Result<Option<CliError>, CliError> {
    let bar = crate::progress::bar(summary.entry_count, "verifying");
    let (root, count) =
        synctree_store::recompute_root_with_progress(&**node.store(), context, |n| bar.inc(n))?;
    bar.finish_and_clear();
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
pub(crate) fn print(described: &RootJson, json: bool) -> Result<(), CliError> {
    if json {
        return emit(&format!("{}\n", serde_json::to_string(described)?));
    }
    let mut text = format!(
        "context   {}\nroot      {}\nentries   {}\ndepth     {}\n",
        described.context, described.root, described.entries, described.depth
    );
    if let Some(ok) = described.verified {
        let verdict = if ok {
            "yes"
        } else {
            "NO: index and entries differ"
        };
        text.push_str(&format!("verified  {verdict}\n"));
    }
    emit(&text)
}
