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
//! [`INBOX_HIGH_WATER`]). A transport buffers at most
//! [`MAX_BUFFERED_PER_TRANSPORT`]; transports sharing a [`BufferBudget`] stop
//! reading ahead and queueing past it; a `send` that waits longer than its send
//! timeout ([`DEFAULT_SEND_TIMEOUT`]) fails, so a peer that stops reading
//! cannot hold our memory or our task.
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
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(demo())?;
//! #     Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod budget;
mod codec;
mod framed;
mod receiver;
mod sender;
#[cfg(feature = "sim")]
pub mod sim;

pub use budget::BufferBudget;
pub use framed::FramedTransport;

use std::time::Duration;

use tokio::io::DuplexStream;

pub use synctree_primitives::limits::LENGTH_PREFIX_BYTES;

/// Queued outgoing bytes (prefixes included) above which `send` waits for the
/// stream to take them: two full batches of
/// [`BATCH_BYTE_BUDGET`](synctree_primitives::limits::BATCH_BYTE_BUDGET) queue
/// without waiting (one being written, one ready), while a peer that stops reading
/// can make us hold only this much plus one frame.
pub const OUTBOX_HIGH_WATER: usize = 2 * 1024 * 1024;

/// Incoming bytes (prefixes included) read ahead into the inbox while `send` or
/// `close` waits for the outbox to drain; reading ahead stops at it, so the inbox
/// holds at most this plus one frame (a frame of up to
/// [`MAX_FRAME_BYTES`](synctree_primitives::limits::MAX_FRAME_BYTES) is always
/// read whole when under it). Two peers can deadlock only if both wait in `send`
/// or `close` while more than this plus [`OUTBOX_HIGH_WATER`] (plus the pipe)
/// ahead of what the other has read; the send timeout then ends both sessions
/// instead of hanging them. The tree protocols bound what a side sends unread
/// (`MAX_UNANSWERED_REQUESTS`, `MAX_SNAPSHOT_PAGES_IN_FLIGHT`).
pub const INBOX_HIGH_WATER: usize = 2 * 1024 * 1024;

/// Most bytes one transport buffers (outbox plus read-ahead inbox): each high-water
/// mark plus the one frame that may cross it. The codec's read buffer (one partial
/// frame) and the writer's (one frame) come on top.
pub const MAX_BUFFERED_PER_TRANSPORT: usize = OUTBOX_HIGH_WATER
    + INBOX_HIGH_WATER
    + 2 * (synctree_primitives::limits::MAX_FRAME_BYTES + LENGTH_PREFIX_BYTES);

/// Default longest a `send` or `close` waits for the peer to take bytes before it
/// fails with [`TransportError::Timeout`](synctree_primitives::TransportError::Timeout)
/// and the transport stops writing: a peer's idle timeout, since a peer that
/// reads nothing for that long is as gone as one that sends nothing.
pub const DEFAULT_SEND_TIMEOUT: Duration = synctree_primitives::limits::IDLE_TIMEOUT;

/// Two connected in-memory transports; shorthand for
/// [`FramedTransport::memory_pair`].
pub fn memory_pair(
    buffer_bytes: usize,
) -> (FramedTransport<DuplexStream>, FramedTransport<DuplexStream>) {
    FramedTransport::memory_pair(buffer_bytes)
}
