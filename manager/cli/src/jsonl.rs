//! The JSON Lines format of `synctree export` and `synctree import`: one entry per
//! line, versions preserved. The binary does the file handling and the store; this
//! module turns a line into an [`Entry`] and back, and is what `fuzz/` fuzzes.
//!
//! ```
//! use synctree_cli::jsonl::{ImportPolicy, parse_line};
//! use synctree_primitives::WallClock;
//!
//! let line = br#"{"key":"k","value":"v","encoding":"utf8","hlc":7,"node":1,"tombstone":false}"#;
//! let entry = parse_line(line)?;
//! assert_eq!(&entry.key[..], b"k");
//! ImportPolicy::new(WallClock::Fixed(1_000)).check(&entry)?;
//! # Ok::<(), String>(())
//! ```

use std::borrow::Cow;
use std::io::{BufRead, Read};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use synctree_primitives::hlc::MAX_CLOCK_SKEW_MS;
use synctree_primitives::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use synctree_primitives::{Entry, NodeId, Version, WallClock};

/// The format, as shown by `export --help` and `import --help`.
pub const FORMAT_HELP: &str = "\
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
with their versions: an entry older than the one held for its key is ignored.
import refuses a version whose hlc runs more than MAX_CLOCK_SKEW_MS (60 s) ahead
of this machine's clock, as sync does, unless --accept-future-versions is given;
hlc 18446744073709551615 (u64::MAX) is refused always.";

/// Longest import line: JSON may escape a control byte as six characters, so a
/// maximal UTF-8 value can take six times its length; anything longer is refused
/// before it is buffered.
pub const MAX_LINE_BYTES: usize = 6 * (MAX_VALUE_BYTES + MAX_KEY_BYTES) + 1024;

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

/// Appends `entry` as one line (with its newline) to `out`.
pub fn write_line(out: &mut Vec<u8>, entry: &Entry) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *out, &to_line(entry))?;
    out.push(b'\n');
    Ok(())
}

/// Reads one line into `buf` (at most [`MAX_LINE_BYTES`] + 1 bytes of it, so an
/// overlong line is detected without buffering it whole); false at the end.
pub fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
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

/// Parses and checks one line (without its newline): the reason when it is not a
/// valid entry. The version is not checked against a clock; see [`ImportPolicy`].
pub fn parse_line(text: &[u8]) -> Result<Entry, String> {
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

/// Which versions `import` lets in: the rule sync applies to received entries
/// ([`WallClock::admits`]), unless the user accepts versions from the future.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportPolicy {
    /// The clock versions are checked against.
    pub clock: WallClock,
    /// `--accept-future-versions`: any `hlc` below `u64::MAX` is let in.
    pub accept_future_versions: bool,
}

impl ImportPolicy {
    /// The sync rule against `clock`.
    pub fn new(clock: WallClock) -> Self {
        ImportPolicy {
            clock,
            accept_future_versions: false,
        }
    }

    /// The reason `entry`'s version may not be imported, if it may not. `u64::MAX`
    /// is refused even when future versions are accepted: no later version exists,
    /// so the key could never be written again.
    pub fn check(&self, entry: &Entry) -> Result<(), String> {
        let hlc = entry.version.hlc;
        if hlc == u64::MAX {
            return Err(format!(
                "`hlc` {hlc} is the top of the clock's range: the key could never be \
                 written again (refused even with --accept-future-versions)"
            ));
        }
        if !self.accept_future_versions && !self.clock.admits(hlc) {
            return Err(format!(
                "`hlc` {hlc} runs more than {MAX_CLOCK_SKEW_MS} ms ahead of this machine's \
                 clock (pass --accept-future-versions to import it anyway)"
            ));
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use synctree_primitives::hlc::{HLC_LOGICAL_BITS, max_admissible_hlc};

    fn round_trip(entry: &Entry) -> Result<Entry, String> {
        let mut text = Vec::new();
        write_line(&mut text, entry).map_err(|e| e.to_string())?;
        assert_eq!(text.pop(), Some(b'\n'));
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
    fn future_versions_are_refused_unless_accepted_and_the_top_always() {
        let now_ms = 1_000_000;
        let strict = ImportPolicy::new(WallClock::Fixed(now_ms));
        let lenient = ImportPolicy {
            accept_future_versions: true,
            ..strict
        };
        let at = |hlc| Entry::put("k", "v", Version::new(hlc, NodeId(1)));
        let edge = max_admissible_hlc(now_ms);
        let year_ahead = (now_ms + 365 * 24 * 3600 * 1000) << HLC_LOGICAL_BITS;
        assert_eq!(strict.check(&at(edge)), Ok(()));
        assert!(
            strict
                .check(&at(edge + 1))
                .is_err_and(|r| r.contains("ahead"))
        );
        assert!(strict.check(&at(year_ahead)).is_err());
        assert_eq!(lenient.check(&at(year_ahead)), Ok(()));
        assert_eq!(lenient.check(&at(u64::MAX - 1)), Ok(()));
        for policy in [strict, lenient] {
            assert!(
                policy
                    .check(&at(u64::MAX))
                    .is_err_and(|r| r.contains("top"))
            );
        }
    }
}
