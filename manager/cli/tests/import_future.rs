//! `synctree import` applies sync's clock rule: a version more than
//! `MAX_CLOCK_SKEW_MS` ahead of the local clock is refused by line number unless
//! `--accept-future-versions` is given, and `u64::MAX` is refused always.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use synctree_primitives::hlc::HLC_LOGICAL_BITS;
use tempfile::TempDir;

mod common;
use common::{fails, ok};

const FLAG: &str = "--accept-future-versions";

fn line(key: &str, hlc: u64) -> String {
    format!(
        r#"{{"key":"{key}","value":"v","encoding":"utf8","hlc":{hlc},"node":1,"tombstone":false}}"#
    )
}

/// An `hlc` for wall time `ahead_ms` from now.
fn hlc_ahead(ahead_ms: u64) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (u64::try_from(now.as_millis()).unwrap() + ahead_ms) << HLC_LOGICAL_BITS
}

/// A store holding one entry, and a file of `lines` next to it.
fn setup(lines: &[String]) -> (TempDir, std::path::PathBuf, String) {
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("node");
    ok(&store, &["put", "ctx", "held", "x"]);
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let file = file.to_str().unwrap().to_owned();
    (dir, store, file)
}

#[test]
fn a_version_a_year_ahead_is_refused_by_line_unless_accepted() {
    let year_ms = 365 * 24 * 3600 * 1000;
    let lines = [line("now", hlc_ahead(0)), line("later", hlc_ahead(year_ms))];
    let (_dir, store, file) = setup(&lines);
    let before = ok(&store, &["export", "ctx"]);
    let error = fails(&store, &["import", "ctx", &file]);
    assert!(
        error.contains("line 2") && error.contains("ahead"),
        "{error}"
    );
    assert!(error.contains(FLAG), "the error names the way out: {error}");
    assert_eq!(ok(&store, &["export", "ctx"]), before, "nothing applied");

    ok(&store, &["import", "ctx", &file, FLAG]);
    assert_eq!(ok(&store, &["get", "ctx", "later"]), "v\n");
    assert_eq!(ok(&store, &["export", "ctx"]).lines().count(), 3);
}

#[test]
fn the_top_of_the_range_is_refused_even_with_the_flag() {
    let lines = [
        line("fine", 5),
        line("top", u64::MAX - 1),
        line("max", u64::MAX),
    ];
    let (_dir, store, file) = setup(&lines);
    let before = ok(&store, &["export", "ctx"]);
    for args in [
        &["import", "ctx", &file][..],
        &["import", "ctx", &file, FLAG],
    ] {
        let error = fails(&store, args);
        let refused_line = if args.len() == 3 { "line 2" } else { "line 3" };
        assert!(error.contains(refused_line), "{args:?}: {error}");
        assert_eq!(ok(&store, &["export", "ctx"]), before, "nothing applied");
    }
}
