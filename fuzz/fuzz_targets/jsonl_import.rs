//! The `synctree import` line parser (`synctree_cli::jsonl`): any bytes, split into
//! lines as import splits them. Never panics; a line that parses writes back to a
//! line that parses to the same entry; the clock check never panics either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use synctree_cli::jsonl::{ImportPolicy, MAX_LINE_BYTES, parse_line, read_line, write_line};
use synctree_primitives::WallClock;

fuzz_target!(|data: &[u8]| {
    let mut reader = std::io::BufReader::new(data);
    let mut line = Vec::new();
    let policy = ImportPolicy::new(WallClock::Fixed(1_700_000_000_000));
    while read_line(&mut reader, &mut line).expect("reading a slice") {
        if line.len() > MAX_LINE_BYTES {
            return;
        }
        let Ok(entry) = parse_line(&line) else {
            continue;
        };
        let _ = policy.check(&entry);
        let mut again = Vec::new();
        write_line(&mut again, &entry).expect("an entry serialises");
        assert_eq!(again.pop(), Some(b'\n'));
        assert_eq!(parse_line(&again), Ok(entry));
    }
});
