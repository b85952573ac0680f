//! `export` and `import`: a context's entries as JSON Lines, versions preserved.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use clap::Args;
use serde::{Deserialize, Serialize};
use synctree_primitives::{
    ApplyReport, ContextId, Entry, Hash, NodeId, Store, StoredEntry, Version,
};

use crate::data::require_context;
use crate::error::{CliError, context};
use crate::node::Node;
use crate::output::emit;
use crate::progress;

/// The format, as shown by `export --help` and `import --help`.
pub(crate) const FORMAT_HELP: &str = "\
Format (JSON Lines): one entry per line, one JSON object per entry:

  {\"key\":\"user-1\",\"value\":\"alice\",\"encoding\":\"utf8\",\"hlc\":114849562034831360,\"node\":4660,\"tombstone\":false}

  key, value  the key and value: as text when encoding is \"utf8\", as standard
              base64 (with padding) when encoding is \"base64\"
  encoding    \"utf8\" when both key and value are valid UTF-8, \"base64\" otherwise
  hlc, node   the entry's version (hybrid logical clock, writer id): unsigned
              64-bit integers, to be read as integers, not as floating point
  tombstone   true for a deleted key (its value is then empty)

export writes entries in key-hash order. import checks every line before it
applies any (an error names the line), skips blank lines, and merges entries
with their versions: an entry older than the one held for its key is ignored.";

/// Entries read from the store per page while exporting.
const EXPORT_PAGE: usize = 4096;
/// Longest import line: JSON may escape a control byte as six characters, so a
/// maximal UTF-8 value can take six times its length; anything longer is refused
/// before it is buffered.
const MAX_LINE_BYTES: usize = 6
    * (synctree_primitives::limits::MAX_VALUE_BYTES + synctree_primitives::limits::MAX_KEY_BYTES)
    + 1024;
/// Key and value bytes per import batch: amortises commits, bounds a batch.
const IMPORT_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Most entries per import batch, however small they are.
const IMPORT_BATCH_MAX: usize = 20_000;

/// Arguments of `synctree export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Context to export (to stdout).
    context: String,
}

/// Arguments of `synctree import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Context to import into.
    context: String,
    /// JSON Lines file to read; `-` reads stdin.
    file: String,
}

/// How `key` and `value` are written on a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    /// As JSON text.
    Utf8,
    /// As standard base64 text.
    Base64,
}

/// One line of the format.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    /// The key, encoded as `encoding` says.
    #[serde(borrow)]
    key: Cow<'a, str>,
    /// The value, encoded as `encoding` says.
    #[serde(borrow)]
    value: Cow<'a, str>,
    /// How key and value are written.
    encoding: Encoding,
    /// The version's clock.
    hlc: u64,
    /// The version's writer.
    node: u64,
    /// True for a deletion.
    tombstone: bool,
}

/// `export`: writes every entry of the context, tombstones included, to stdout.
pub(crate) fn export(node: &Node, args: ExportArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let store = node.store();
    require_context(&**store, &context)?;
    let bar = progress::bar(store.summary(&context)?.entry_count, "exporting");
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut low = Some(Hash::ZERO);
    while let Some(from) = low {
        let page = store.range(&context, &from, &Hash::MAX, EXPORT_PAGE)?;
        write_page(&mut out, &page)?;
        bar.inc(page.len() as u64);
        low = match page.last() {
            Some(last) if page.len() == EXPORT_PAGE => successor(&last.key_hash),
            _ => None,
        };
    }
    bar.finish_and_clear();
    out.flush().map_err(CliError::Output)
}

/// Writes one line per entry.
fn write_page(out: &mut impl Write, page: &[StoredEntry]) -> Result<(), CliError> {
    let mut line = Vec::new();
    for stored in page {
        line.clear();
        serde_json::to_writer(&mut line, &to_line(&stored.entry))?;
        line.push(b'\n');
        out.write_all(&line).map_err(CliError::Output)?;
    }
    Ok(())
}

/// `import`: reads and checks every line, then applies the entries in batches.
pub(crate) fn import(node: &Node, args: ImportArgs) -> Result<(), CliError> {
    let context = context(&args.context)?;
    let entries = read_entries(&args.file)?;
    let report = apply_in_batches(node, &context, entries.as_slice())?;
    emit(&format!(
        "imported {} entries into `{context}` ({} new or changed, {} already held or older)\n",
        entries.len(),
        report.changed,
        report.unchanged
    ))
}

/// The line form of an entry.
fn to_line(entry: &Entry) -> Line<'_> {
    let text = (
        std::str::from_utf8(&entry.key),
        std::str::from_utf8(&entry.value),
    );
    let (key, value, encoding) = match text {
        (Ok(k), Ok(v)) => (Cow::Borrowed(k), Cow::Borrowed(v), Encoding::Utf8),
        _ => (
            Cow::Owned(BASE64.encode(&entry.key)),
            Cow::Owned(BASE64.encode(&entry.value)),
            Encoding::Base64,
        ),
    };
    Line {
        key,
        value,
        encoding,
        hlc: entry.version.hlc,
        node: entry.version.node.0,
        tombstone: entry.tombstone,
    }
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

/// Every entry of `file` (`-`: stdin), each line checked.
fn read_entries(file: &str) -> Result<Vec<Entry>, CliError> {
    let read_err = |e| CliError::ImportRead(file.to_owned(), e);
    let input: Box<dyn Read> = match file {
        "-" => Box::new(std::io::stdin().lock()),
        path => Box::new(File::open(path).map_err(read_err)?),
    };
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
            entries.push(parse_line(&buf).map_err(line_err)?);
        }
    }
    spinner.finish_and_clear();
    Ok(entries)
}

/// Reads one line into `buf` (at most [`MAX_LINE_BYTES`] + 1 bytes of it, so an
/// overlong line is detected without buffering it whole); false at the end.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    let read = reader
        .by_ref()
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)?;
    if buf.ends_with(b"\n") {
        buf.pop();
    }
    Ok(read > 0)
}

/// Parses and checks one line.
fn parse_line(text: &[u8]) -> Result<Entry, String> {
    let line: Line<'_> = serde_json::from_slice(text).map_err(|e| json_reason(&e))?;
    let (key, value) = match line.encoding {
        Encoding::Utf8 => (text_bytes(line.key), text_bytes(line.value)),
        Encoding::Base64 => (
            base64_field("key", &line.key)?,
            base64_field("value", &line.value)?,
        ),
    };
    let entry = Entry {
        key,
        value,
        version: Version::new(line.hlc, NodeId(line.node)),
        tombstone: line.tombstone,
    };
    entry.validate().map_err(|e| e.to_string())?;
    Ok(entry)
}

/// The bytes of a UTF-8 field.
fn text_bytes(text: Cow<'_, str>) -> Bytes {
    Bytes::from(text.into_owned().into_bytes())
}

/// Decodes a base64 field, naming it in the error.
fn base64_field(field: &str, text: &str) -> Result<Bytes, String> {
    BASE64
        .decode(text)
        .map(Bytes::from)
        .map_err(|e| format!("`{field}` is not valid base64: {e}"))
}

/// A JSON error without serde's "at line 1" (each line is its own document).
fn json_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(reason) => format!("{reason} (column {})", error.column()),
        None => message,
    }
}

/// Applies `entries` in batches bounded by bytes and count, with a progress bar.
fn apply_in_batches(
    node: &Node,
    context: &ContextId,
    mut entries: &[Entry],
) -> Result<ApplyReport, CliError> {
    let bar = progress::bar(entries.len() as u64, "importing");
    let mut total = ApplyReport::default();
    while !entries.is_empty() {
        let take = batch_len(entries);
        let (batch, rest) = entries.split_at(take);
        let report = node.store().apply(context, batch.to_vec())?;
        total.changed += report.changed;
        total.unchanged += report.unchanged;
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

    fn round_trip(entry: &Entry) -> Result<Entry, String> {
        let text = serde_json::to_vec(&to_line(entry)).map_err(|e| e.to_string())?;
        parse_line(&text)
    }

    #[test]
    fn lines_round_trip_as_text_or_base64() {
        let v = Version::new(u64::MAX, NodeId(u64::MAX - 1));
        let text = Entry::put("k\n\"1\"", "välue\u{0}", v);
        let binary = Entry::put(vec![0xff, 0], vec![1, 2, 3], v);
        let tomb = Entry::delete("gone", Version::new(7, NodeId(1)));
        for entry in [&text, &binary, &tomb] {
            assert_eq!(round_trip(entry).as_ref(), Ok(entry));
        }
        assert_eq!(to_line(&binary).encoding, Encoding::Base64);
        assert_eq!(to_line(&text).encoding, Encoding::Utf8);
    }

    #[test]
    fn bad_lines_are_refused_with_a_reason() {
        let bad = [
            &br#"{"key":"k","value":"v","encoding":"utf8","hlc":1,"node":1}"#[..],
            br#"{"key":"k","value":"v","encoding":"utf8","hlc":-1,"node":1,"tombstone":false}"#,
            br#"{"key":"k","value":"!","encoding":"base64","hlc":1,"node":1,"tombstone":false}"#,
            br#"{"key":"k","value":"v","encoding":"utf8","hlc":1,"node":1,"tombstone":true}"#,
            br#"{"key":"k","value":"v","encoding":"hex","hlc":1,"node":1,"tombstone":false}"#,
            br#"{"key":"k","value":"v","encoding":"utf8","hlc":1,"node":1,"tombstone":false,"x":1}"#,
            b"not json",
        ];
        for line in bad {
            let reason = parse_line(line).err();
            assert!(reason.is_some_and(|r| !r.contains("line 1")), "{line:?}");
        }
    }

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
