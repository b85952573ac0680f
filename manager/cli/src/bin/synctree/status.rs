//! `status`: the node's contexts (entries, roots) and, while `serve` runs, its
//! peers: per (peer, context) the last successful sync, the lag, the last error,
//! sessions and bytes.

use clap::Args;
use serde_json::Value;
use synctree_primitives::Store;

use crate::error::CliError;
use crate::node::Node;
use crate::output::emit;
use crate::root;

/// Arguments of `synctree status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print one JSON object (`node`, `contexts`, and while serving `listen`,
    /// `peers`, `anti_entropy` and `pairs`).
    #[arg(long)]
    pub(crate) json: bool,
}

/// `status` of a store no node is running on: its contexts only.
pub(crate) fn run(node: &Node, args: StatusArgs) -> Result<(), CliError> {
    let mut contexts = Vec::new();
    for context in node.store().contexts()? {
        contexts.push(serde_json::to_value(
            root::describe(node, &context, false)?.0,
        )?);
    }
    let status = serde_json::json!({
        "node": node.node_id()?.to_string(),
        "serving": false,
        "contexts": contexts,
    });
    print(&status, args.json)
}

/// Prints the running node's status page (`body`, as the API answered it).
pub(crate) fn print_remote(body: &[u8], json: bool) -> Result<(), CliError> {
    let mut status: Value = serde_json::from_slice(body)?;
    if let Some(object) = status.as_object_mut() {
        object.insert("serving".to_owned(), Value::Bool(true));
    }
    print(&status, json)
}

fn print(status: &Value, json: bool) -> Result<(), CliError> {
    if json {
        return emit(&format!("{}\n", serde_json::to_string(status)?));
    }
    let field = |v: &Value, k: &str| v.get(k).map(text).unwrap_or_default();
    let mut out = format!("node      {}\n", field(status, "node"));
    match status.get("listen") {
        Some(listen) => out.push_str(&format!("serving   on {}\n", text(listen))),
        None => out.push_str("serving   no\n"),
    }
    for context in list(status, "contexts") {
        out.push_str(&format!(
            "context   {}  {} entries  root {}\n",
            field(context, "context"),
            field(context, "entries"),
            field(context, "root"),
        ));
    }
    for pair in list(status, "pairs") {
        let lag = match pair.get("lag_ms").and_then(Value::as_u64) {
            Some(ms) => format!("{:.1} s ago", ms as f64 / 1000.0),
            None => "never".to_owned(),
        };
        out.push_str(&format!(
            "peer      {} `{}`: last sync {lag}, {} sessions ({} failed), {} B sent, {} B received{}\n",
            field(pair, "peer"),
            field(pair, "context"),
            field(pair, "sessions"),
            field(pair, "failures"),
            field(pair, "bytes_sent"),
            field(pair, "bytes_received"),
            match pair.get("last_error").map(text) {
                Some(e) if !e.is_empty() => format!(", last error: {e}"),
                _ => String::new(),
            }
        ));
    }
    emit(&out)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A JSON value as text: strings without quotes, escaped for the terminal.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => synctree_primitives::wire::escape_untrusted(s),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
