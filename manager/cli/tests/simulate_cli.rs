//! `synctree simulate` end to end: the 20-node lossy cluster converges, prints one
//! JSON object, and prints the same object in another process for the same seed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn synctree(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synctree"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

const LOSSY_20: &[&str] = &[
    "simulate", "--nodes", "20", "--seed", "7", "--loss", "0.05", "--json",
];

#[test]
fn twenty_lossy_nodes_converge_and_report_one_json_object() {
    let out = synctree(LOSSY_20);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["converged"], true);
    assert_eq!(report["nodes"], 20);
    assert_eq!(report["seed"], 7);
    assert_eq!(report["mismatches"], 0);
    for field in [
        "sessions",
        "failed_sessions",
        "bytes",
        "virtual_ms",
        "rounds",
    ] {
        assert!(
            report[field].as_u64().is_some_and(|n| n > 0),
            "{field}: {stdout}"
        );
    }

    let again = synctree(LOSSY_20);
    assert_eq!(
        again.stdout, out.stdout,
        "same seed, same report, in another process"
    );
}

#[test]
fn the_human_summary_names_the_outcome_and_bad_arguments_fail() {
    let out = synctree(&[
        "simulate",
        "--nodes",
        "3",
        "--seed",
        "1",
        "--partition-ms",
        "300",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("3 nodes, seed 1: converged"), "{text}");
    assert!(text.contains("partitions"), "{text}");

    let bad = synctree(&["simulate", "--nodes", "1", "--seed", "1"]);
    assert!(!bad.status.success());
    let error = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(
        error.trim(),
        "error: invalid simulation config: at least 2 nodes"
    );
}
