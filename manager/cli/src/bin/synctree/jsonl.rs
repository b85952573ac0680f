//! `export` and `import`: a context's entries as JSON Lines, versions preserved.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};

use clap::Args;
use synctree_cli::jsonl::{ImportPolicy, MAX_LINE_BYTES, parse_line, read_line, write_line};
use synctree_primitives::{ContextId, Entry, Hash, Store, StoredEntry, WallClock};

use crate::data::require_context;
use crate::error::{CliError, context};
use crate::node::Node;
use crate::output::emit;
use crate::progress;

pub(crate) use synctree_cli::jsonl::FORMAT_HELP;

/// Entries read from the store per page while exporting.
const EXPORT_PAGE: usize = 4096;
/// Key and value bytes per import batch: amortises commits, bounds a batch.
const IMPORT_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Most entries per import batch, however small they are.
const IMPORT_BATCH_MAX: usize = 20_000;

/// Arguments of `synctree export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Context to export (to stdout).
    pub(crate) context: String,
}

/// Arguments of `synctree import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Context to import into.
    pub(crate) context: String,
    /// JSON Lines file to read; `-` reads stdin.
    pub(crate) file: String,
    /// Import versions that run more than MAX_CLOCK_SKEW_MS (60 s) ahead of this
    /// machine's clock, which sync would refuse: once imported they win over every
    /// write made until the clock catches up. An `hlc` of u64::MAX (the top of the
    /// range) is refused even so: the key could never be written again.
    #[arg(long)]
    pub(crate) accept_future_versions: bool,
    /// Print `{"context", "entries", "changed", "unchanged", "refused"}`.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `export`: writes every entry of the context, tombstones included, to stdout.
pub(crate) fn export(node: &Node, args: ExportArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    export_to(node, &context, &mut out, true)?;
    out.flush().map_err(CliError::Output)
}

/// Writes every entry of `context` to `out` as JSON Lines, with a progress bar
/// when `progress` (and stderr is a terminal).
pub(crate) fn export_to(
    node: &Node,
    context: &ContextId,
    out: &mut impl Write,
    progress: bool,
) -> Result<(), CliError> {
    let store = node.store();
    require_context(&**store, context)?;
    let total = store.summary(context)?.entry_count;
    let bar = match progress {
        true => progress::bar(total, "exporting"),
        false => indicatif::ProgressBar::hidden(),
    };
    let mut low = Some(Hash::ZERO);
    while let Some(from) = low {
        let page = store.range(context, &from, &Hash::MAX, EXPORT_PAGE)?;
        write_page(out, &page)?;
        bar.inc(page.len() as u64);
        low = match page.last() {
            Some(last) if page.len() == EXPORT_PAGE => successor(&last.key_hash),
            _ => None,
        };
    }
    bar.finish_and_clear();
    Ok(())
}

/// Writes one line per entry.
fn write_page(out: &mut impl Write, page: &[StoredEntry]) -> Result<(), CliError> {
    let mut line = Vec::new();
    for stored in page {
        line.clear();
        write_line(&mut line, &stored.entry)?;
        out.write_all(&line).map_err(CliError::Output)?;
    }
    Ok(())
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Imported {
    /// Lines holding an entry.
    pub(crate) entries: u64,
    /// Entries that were new or newer than what the store held.
    pub(crate) changed: u64,
    /// Entries already held, or older.
    pub(crate) unchanged: u64,
    /// Entries refused by tombstone GC: older than the context's watermark for a
    /// key this node holds nothing for (docs/PROTOCOL.md, "Tombstone GC").
    #[serde(default)]
    pub(crate) refused: u64,
}

/// `import`: reads and checks every line, then applies the entries in batches.
pub(crate) fn import(node: &Node, args: ImportArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let entries = read_entries(&args.file, args.accept_future_versions)?;
    let imported = apply_in_batches(node, &context, entries.as_slice())?;
    print_imported(&context, &imported, args.json)
}

/// Imports JSON Lines read from `input` (named `name` in errors).
pub(crate) fn import_from(
    node: &Node,
    context: &ContextId,
    input: impl Read,
    name: &str,
    accept_future_versions: bool,
) -> Result<Imported, CliError> {
    let entries = parse_entries(input, name, accept_future_versions)?;
    apply_in_batches(node, context, entries.as_slice())
}

/// Prints what an import did, as `import` does.
pub(crate) fn print_imported(
    context: &ContextId,
    imported: &Imported,
    json: bool,
) -> Result<(), CliError> {
    if json {
        let object = serde_json::json!({
            "context": context.as_str(),
            "entries": imported.entries,
            "changed": imported.changed,
            "unchanged": imported.unchanged,
            "refused": imported.refused,
        });
        return emit(&format!("{object}\n"));
    }
    let refused = match imported.refused {
        0 => String::new(),
        n => format!(
            ", {n} refused: older than the GC watermark for keys this node holds nothing for"
        ),
    };
    emit(&format!(
        "imported {} entries into `{context}` ({} new or changed, {} already held or older{refused})\n",
        imported.entries, imported.changed, imported.unchanged
    ))
}

/// Reads the whole of `file` (`-`: stdin), bounded by the import limits, for
/// sending to a running node.
pub(crate) fn read_input(file: &str) -> Result<Vec<u8>, CliError> {
    let read_err = |e| CliError::ImportRead(file.to_owned(), e);
    let mut bytes = Vec::new();
    open_input(file)
        .map_err(read_err)?
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    Ok(bytes)
}

fn open_input(file: &str) -> std::io::Result<Box<dyn Read>> {
    Ok(match file {
        "-" => Box::new(std::io::stdin().lock()),
        path => Box::new(File::open(path)?),
    })
}

/// The next key hash in order, `None` after the last one.
fn successor(hash: &Hash) -> Option<Hash> {
    let mut next = hash.0;
    for byte in next.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            return Some(Hash(next));
        }
    }
    None
}

/// Every entry of `file` (`-`: stdin), each line checked, its version against the clock.
fn read_entries(file: &str, accept_future_versions: bool) -> Result<Vec<Entry>, CliError> {
    let input = open_input(file).map_err(|e| CliError::ImportRead(file.to_owned(), e))?;
    parse_entries(input, file, accept_future_versions)
}

/// Every entry of `input`, each line checked, its version against the clock.
fn parse_entries(
    input: impl Read,
    file: &str,
    accept_future_versions: bool,
) -> Result<Vec<Entry>, CliError> {
    let policy = ImportPolicy {
        clock: WallClock::System,
        accept_future_versions,
    };
    let read_err = |e| CliError::ImportRead(file.to_owned(), e);
    let mut reader = BufReader::new(input);
    let spinner = progress::spinner(format!("reading {file}"), false);
    let (mut entries, mut buf, mut number) = (Vec::new(), Vec::new(), 0u64);
    while read_line(&mut reader, &mut buf).map_err(read_err)? {
        number += 1;
        let line_err = |reason| CliError::ImportLine {
            file: file.to_owned(),
            line: number,
            reason,
        };
        if buf.len() > MAX_LINE_BYTES {
            return Err(line_err(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        if !buf.trim_ascii().is_empty() {
            let entry = parse_line(&buf).map_err(line_err)?;
            policy.check(&entry).map_err(line_err)?;
            entries.push(entry);
        }
    }
    spinner.finish_and_clear();
    Ok(entries)
}

/// Applies `entries` in batches bounded by bytes and count, with a progress bar.
fn apply_in_batches(
    node: &Node,
    context: &ContextId,
    mut entries: &[Entry],
) -> Result<Imported, CliError> {
    let bar = progress::bar(entries.len() as u64, "importing");
    let mut total = Imported {
        entries: entries.len() as u64,
        ..Imported::default()
    };
    while !entries.is_empty() {
        let take = batch_len(entries);
        let (batch, rest) = entries.split_at(take);
        let report = node.store().apply(context, batch.to_vec())?;
        total.changed += report.changed;
        total.unchanged += report.unchanged;
        total.refused += report.refused;
        bar.inc(take as u64);
        entries = rest;
    }
    bar.finish_and_clear();
    Ok(total)
}

/// How many leading entries fit in one batch (at least one).
fn batch_len(entries: &[Entry]) -> usize {
    let mut bytes = 0;
    let fitting = entries.iter().take(IMPORT_BATCH_MAX).take_while(|e| {
        bytes += e.key.len() + e.value.len();
        bytes <= IMPORT_BATCH_BYTES
    });
    fitting.count().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_carries_and_ends() {
        let mut h = [0u8; 32];
        h[31] = 0xff;
        let mut want = [0u8; 32];
        want[30] = 1;
        assert_eq!(successor(&Hash(h)), Some(Hash(want)));
        assert_eq!(successor(&Hash::MAX), None);
    }
}
