//! A hostile-peer suite against the real `synctree` binary over TLS on TCP.
//!
//! Run it with `cargo test -p synctree-cli --test hostile`; the timing-dependent
//! cases (idle timeouts, stalls; each waits about 30 s) with
//! `cargo test -p synctree-cli --test hostile -- --ignored`. Cases marked
//! `#[ignore = "BUG: ..."]` fail today and describe the bug.
//!
//! Every server-side case starts its own `synctree serve --listen 127.0.0.1:0` on a
//! temporary store filled with `gen`, over mutually authenticated TLS with this
//! test process's client key allowed (so the attacker is an admitted peer, the
//! worst case: a stranger is refused in the handshake; `Served::start_plaintext`
//! serves `--insecure-plaintext` instead), attacks it with raw frames inside the
//! TLS stream (`hostile/wire.rs`: a 4-byte big-endian length and a prost-encoded
//! `StreamMessage`) and asserts (a) the answer, a typed `Abort` with the expected
//! `AbortCode` or a clean close, then, through `Served::survived`
//! (`hostile/harness.rs`): (b) a fresh handshake still gets a `Handshake`, (c) the
//! store holds exactly the expected root (checked by a legitimate sync into a fresh
//! store and by `root --json` after stopping the server), (d) the server's VmRSS is
//! under 300 MiB, (e) that legitimate `synctree sync` converges.
//!
//! Groups:
//! - `framing`: declared length over `MAX_FRAME_BYTES`, a zero-length frame, a
//!   truncated frame, garbage, a frame split at every byte.
//! - `first_message`: what may open a stream: version, context id, kind, a second
//!   handshake.
//! - `entries`: clock poisoning, oversize and over-count pushes, a valid push,
//!   unsolicited messages, log forgery through an abort's text.
//! - `requests`: amplification (duplicates, pipelined whole-store pulls) and the
//!   per-request limits of the tree responder.
//! - `snapshot`: the snapshot responder's window and acknowledgements.
//! - `idle`: silent connections next to a legitimate sync.
//! - `fake_server`: the other direction, a fake server in the test against a real
//!   `synctree sync --protocol snapshot`: oversized pages, forged roots, LZ4
//!   bombs, pages past the window, endless snapshots, huge counts, forged abort
//!   text, garbage. The client must fail with one `error:` line and no panic
//!   text, send the expected abort, and keep its store (`root --json`). The fake
//!   server speaks plaintext (`sync --insecure-plaintext`): what the client's
//!   protocol code accepts does not depend on the transport under it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "hostile/harness.rs"]
mod harness;
#[path = "hostile/wire.rs"]
mod wire;

#[path = "hostile/entries.rs"]
mod entries;
#[path = "hostile/fake_server.rs"]
mod fake_server;
#[path = "hostile/first_message.rs"]
mod first_message;
#[path = "hostile/framing.rs"]
mod framing;
#[path = "hostile/idle.rs"]
mod idle;
#[path = "hostile/requests.rs"]
mod requests;
#[path = "hostile/snapshot.rs"]
mod snapshot;
