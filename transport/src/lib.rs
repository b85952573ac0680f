//! [`SyncTransport`](synctree_primitives::SyncTransport) adapters for synctree:
//! length-delimited protobuf frames over any `AsyncRead + AsyncWrite` stream (TCP,
//! in-memory pipes).
//!
//! Each frame is a 4-byte big-endian length followed by one encoded
//! [`StreamMessage`](synctree_primitives::StreamMessage). Framing is
//! tokio-util's [`LengthDelimitedCodec`](tokio_util::codec::LengthDelimitedCodec),
//! which checks the declared length against
//! [`MAX_FRAME_BYTES`](synctree_primitives::limits::MAX_FRAME_BYTES) before
//! allocating; prost decodes only whole frames.
//!
//! ```text
//!             ┌──────────────────── FramedTransport ─────────────────────┐
//!  send(msg) ─┼─► encode ─► outbox ──poll_ready+start_send──► FramedWrite ┼─► write half ─┐
//!             │             (waits only above OUTBOX_HIGH_WATER,          │              │
//!             │              reading into the inbox meanwhile)            │          stream S
//!  recv()   ◄─┼── decode ◄─ inbox ◄─────────────────────────── FramedRead ┼◄─ read half ◄─┘
//!             │             (recv flushes the outbox while it reads)      │
//!             └───────────────────────────────────────────────────────────┘
//! ```
//!
//! No task is spawned: the outbox is written whenever the caller waits in `recv`,
//! `close`, or a `send` over the high-water mark, and every wait also reads, so two
//! peers that both send a lot cannot deadlock (within the budget described at
//! [`INBOX_HIGH_WATER`]).
//!
//! With the `sim` feature (off by default; `synctree-sim` turns it on),
//! [`sim::SimTransport`] runs the same framing over turmoil's simulated network,
//! adding seeded cuts, stalls and a bandwidth cap per connection.
//!
//! ```
//! use synctree_primitives::wire::{Finish, stream_message::Body};
//! use synctree_primitives::{StreamMessage, SyncTransport, TransportError};
//! use synctree_transport::FramedTransport;
//!
//! async fn demo() -> Result<(), TransportError> {
//!     let (mut a, mut b) = FramedTransport::memory_pair(64 * 1024);
//!     let finish = StreamMessage::new(Body::Finish(Finish { root: vec![0; 32].into() }));
//!     a.send(&finish).await?;
//!     a.close().await?; // writes what `send` queued
//!     assert_eq!(b.recv().await?, Some(finish));
//!     assert_eq!(b.recv().await?, None); // `a` closed cleanly
//!     assert_eq!(a.stats().bytes_sent, b.stats().bytes_received);
//!     Ok(())
//! }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #     tokio::runtime::Builder::new_current_thread().build()?.block_on(demo())?;
//! #     Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod codec;
mod framed;
mod receiver;
mod sender;
#[cfg(feature = "sim")]
pub mod sim;

pub use framed::FramedTransport;

use tokio::io::DuplexStream;

pub use synctree_primitives::limits::LENGTH_PREFIX_BYTES;

/// Queued outgoing bytes (prefixes included) above which `send` waits for the
/// stream to take them: sixteen full batches of
/// [`BATCH_BYTE_BUDGET`](synctree_primitives::limits::BATCH_BYTE_BUDGET) queue
/// without waiting, while a peer that stops reading can make us hold only about
/// this much (plus one frame in the writer).
pub const OUTBOX_HIGH_WATER: usize = 16 * 1024 * 1024;

/// Incoming bytes (prefixes included) buffered while `send` or `close` waits for the
/// outbox to drain; past it, reading pauses. Two peers can deadlock only if both
/// wait in `send` or `close` while more than this many bytes ahead of what the other
/// has read (a wait in `send` also means more than [`OUTBOX_HIGH_WATER`] queued), so
/// both may, say, send 64 messages of 1 MiB before either receives. A peer can make
/// us hold this much only while we are blocked writing to it.
pub const INBOX_HIGH_WATER: usize = 64 * 1024 * 1024;

/// Two connected in-memory transports; shorthand for
/// [`FramedTransport::memory_pair`].
pub fn memory_pair(
    buffer_bytes: usize,
) -> (FramedTransport<DuplexStream>, FramedTransport<DuplexStream>) {
    FramedTransport::memory_pair(buffer_bytes)
}
