//! Local data commands: `put`, `get`, `del`, `contexts` and `gen`.

use std::io::Write;
use std::time::SystemTime;

use bytes::Bytes;
use clap::Args;
use synctree_cli::generate::{generate, generated_version};
use synctree_primitives::local::{LocalWrites, WriteLocalError, is_ahead_of_clock};
use synctree_primitives::{ContextId, Entry, Store, key_hash};

use crate::error::{CliError, context};
use crate::node::Node;
use crate::output::emit;
use crate::progress;

/// Clock value of generated entries: one millisecond after the epoch, so any real
/// local write supersedes them.
const GEN_HLC: u64 = 1 << synctree_primitives::hlc::HLC_LOGICAL_BITS;
/// Writer id of generated entries: the same on every node, so the same seed gives
/// byte-identical entries everywhere.
const GEN_NODE: u64 = 1;
/// Bytes of values per `gen` batch: large enough to amortise each commit, small
/// enough to keep a batch's memory modest.
const GEN_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Most entries per `gen` batch, whatever the value size.
const GEN_BATCH_MAX: usize = 20_000;

/// Arguments of `synctree put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// Context to write in.
    pub(crate) context: String,
    /// Key.
    pub(crate) key: String,
    /// Value (UTF-8; use `import` for binary data).
    pub(crate) value: String,
    /// Print the written entry as one JSON object (an `export` line).
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `synctree get` and `synctree del`.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// Context of the key.
    pub(crate) context: String,
    /// Key.
    pub(crate) key: String,
    /// Print the entry (`get`: the live one; `del`: the tombstone written) as one
    /// JSON object (an `export` line).
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `synctree contexts`.
#[derive(Debug, Args)]
pub(crate) struct ContextsArgs {
    /// Print `{"contexts": [...]}`.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `synctree gen`.
#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// Context to fill.
    context: String,
    /// Entries to generate: keys `gen-{SEED}-{i:010}` for i in 0..N.
    #[arg(long)]
    entries: u64,
    /// Seed: the same seed gives byte-identical keys, values and versions on any node.
    #[arg(long)]
    seed: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Print `{"context", "entries", "changed"}`.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `put`: writes `value` under `key` with a version newer than any the key had.
pub(crate) fn put(node: &Node, args: PutArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let value = Bytes::from(args.value.into_bytes());
    let written = write_local(node, &context, &args.key, Some(value))?;
    print_written(&written, args.json)
}

/// `del`: writes a tombstone for `key`, newer than any version the key had.
pub(crate) fn del(node: &Node, args: KeyArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let written = write_local(node, &context, &args.key, None)?;
    print_written(&written, args.json)
}

/// After `put` or `del`: nothing, or with `--json` the entry as an export line.
pub(crate) fn print_written(entry: &Entry, json: bool) -> Result<(), CliError> {
    match json {
        true => print_entry(entry),
        false => Ok(()),
    }
}

/// Prints `entry` as one JSON object, an `export` line.
pub(crate) fn print_entry(entry: &Entry) -> Result<(), CliError> {
    let mut line = Vec::new();
    synctree_cli::jsonl::write_line(&mut line, entry)?;
    crate::output::emit_bytes(&line)
}

/// `get`: prints the live value of `key`, or fails when it is missing or deleted.
pub(crate) fn get(node: &Node, args: KeyArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let entry = lookup(node, &context, &args.key)?;
    match args.json {
        true => print_entry(&entry),
        false => print_value(&entry.value),
    }
}

/// The live entry of `key`: fails when the context is empty or the key is
/// missing or deleted.
pub(crate) fn lookup(node: &Node, context: &ContextId, key: &str) -> Result<Entry, CliError> {
    let store = node.store();
    require_context(&**store, context)?;
    let entry = store.get(context, &key_hash(key.as_bytes()))?;
    let (context, key) = (context.clone(), key.to_owned());
    match entry {
        None => Err(CliError::NoKey { context, key }),
        Some(e) if e.tombstone => Err(CliError::Deleted { context, key }),
        Some(e) => Ok(e),
    }
}

/// Prints a value and a newline, as `get` does.
pub(crate) fn print_value(value: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(value)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// `contexts`: prints every context holding at least one entry, one per line.
pub(crate) fn contexts(node: &Node, args: &ContextsArgs) -> Result<(), CliError> {
    let names: Vec<String> = node
        .store()
        .contexts()?
        .iter()
        .map(|c| c.to_string())
        .collect();
    print_contexts(&names, args.json)
}

/// Prints context names, one per line or as `{"contexts": [...]}`.
pub(crate) fn print_contexts(names: &[String], json: bool) -> Result<(), CliError> {
    if json {
        let object = serde_json::json!({ "contexts": names });
        return crate::output::emit(&format!("{object}\n"));
    }
    let mut out = std::io::stdout().lock();
    for name in names {
        writeln!(out, "{name}").map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)
}

/// `gen`: applies `--entries` generated entries in batches, with a progress bar.
pub(crate) fn gen_entries(node: &Node, args: GenArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    check_value_size(args.value_size)?;
    let prefix = format!("gen-{}-", args.seed);
    let version = generated_version(GEN_HLC, GEN_NODE);
    let per_batch = (GEN_BATCH_BYTES / (args.value_size + 64)).clamp(1, GEN_BATCH_MAX) as u64;
    let bar = progress::bar(args.entries, "generating");
    let (mut start, mut changed) = (0, 0);
    while start < args.entries {
        let end = args.entries.min(start.saturating_add(per_batch));
        let batch = generate(args.seed, &prefix, start..end, args.value_size, version);
        changed += node.store().apply(&context, batch.collect())?.changed;
        bar.inc(end - start);
        start = end;
    }
    bar.finish_and_clear();
    if args.json {
        let object = serde_json::json!({
            "context": context.as_str(), "entries": args.entries, "changed": changed,
        });
        return emit(&format!("{object}\n"));
    }
    emit(&format!(
        "generated {} entries in `{context}` ({changed} new or changed)\n",
        args.entries
    ))
}

/// Fails with [`CliError::UnknownContext`] when `context` holds no entry.
pub(crate) fn require_context<S: Store + ?Sized>(
    store: &S,
    context: &ContextId,
) -> Result<(), CliError> {
    if store.summary(context)?.entry_count == 0 {
        return Err(CliError::UnknownContext(context.clone()));
    }
    Ok(())
}

/// Writes one local entry (`None`: a tombstone) with a version that supersedes the
/// key's current one ([`LocalWrites::write_local`]).
pub(crate) fn write_local(
    node: &Node,
    context: &ContextId,
    key: &str,
    value: Option<Bytes>,
) -> Result<Entry, CliError> {
    let key_bytes = Bytes::copy_from_slice(key.as_bytes());
    let (store, now) = (node.store(), now_ms());
    if let Some(current) = store.get(context, &key_hash(&key_bytes))?
        && is_ahead_of_clock(current.version, now)
    {
        tracing::warn!(
            hlc = current.version.hlc,
            "current version is far ahead of this clock"
        );
    }
    match store.write_local(context, key_bytes, value, node.node_id()?, now) {
        Ok(entry) => Ok(entry),
        Err(WriteLocalError::ClockExhausted { .. }) => {
            Err(CliError::ClockExhausted(key.to_owned()))
        }
        Err(WriteLocalError::InvalidEntry(e)) => Err(CliError::BadEntry(e)),
        Err(WriteLocalError::Store(e)) => Err(e.into()),
        Err(e) => Err(CliError::Write(e)),
    }
}

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Checks `--value-size` against the value limit.
pub(crate) fn check_value_size(len: usize) -> Result<(), CliError> {
    let max = synctree_primitives::limits::MAX_VALUE_BYTES;
    synctree_primitives::ProtocolError::check_limit("value bytes", max, len)
        .map_err(CliError::BadEntry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::NodeId;
    use synctree_primitives::local::next_version;

    #[test]
    fn local_writes_supersede_generated_versions() {
        let gen_entry = Entry::put("k", "v", generated_version(GEN_HLC, GEN_NODE));
        let over_gen = next_version(Some(&gen_entry), NodeId(5), 1_000);
        assert!(over_gen.is_ok_and(|v| v > gen_entry.version));
    }
}
