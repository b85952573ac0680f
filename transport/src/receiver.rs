//! The receiving half: the codec's reader and an inbox of whole frames.

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;
use futures_util::stream::StreamExt;
use prost::Message;
use synctree_primitives::{StreamMessage, TransportError};
use tokio::io::AsyncRead;
use tokio_util::codec::{FramedRead, LengthDelimitedCodecError};

use crate::budget::{BufferBudget, Charge};
use crate::codec::FrameDecoder;
use crate::{INBOX_HIGH_WATER, LENGTH_PREFIX_BYTES};
use std::sync::Arc;

/// Why reading stopped.
#[derive(Debug)]
enum End {
    /// The peer closed the stream at a frame boundary.
    Eof,
    /// Reading failed; the error is returned once, then a generic one.
    Failed(Option<TransportError>),
}

/// Reads whole frames into an inbox; [`Receiver::take`] decodes them in order.
#[derive(Debug)]
pub(crate) struct Receiver<R> {
    frames: FramedRead<R, FrameDecoder>,
    inbox: VecDeque<Bytes>,
    /// Bytes in `inbox`, length prefixes included, charged to the node's budget.
    inbox_bytes: Charge,
    end: Option<End>,
    messages: u64,
    bytes: u64,
}

impl<R: AsyncRead + Unpin> Receiver<R> {
    pub(crate) fn new(frames: FramedRead<R, FrameDecoder>) -> Self {
        Receiver {
            frames,
            inbox: VecDeque::new(),
            inbox_bytes: Charge::new(BufferBudget::unlimited()),
            end: None,
            messages: 0,
            bytes: 0,
        }
    }

    /// Whether [`Receiver::fill`] may read ahead (while a send waits): the stream
    /// has not ended, the inbox is under [`INBOX_HIGH_WATER`] and a frame of the
    /// largest size still fits in the node's budget.
    pub(crate) fn has_room(&self) -> bool {
        let largest = self.frames.decoder().max_frame() + LENGTH_PREFIX_BYTES;
        self.end.is_none()
            && self.inbox_bytes.bytes() < INBOX_HIGH_WATER
            && self.inbox_bytes.budget().fits(largest)
    }

    /// Whether a frame or the end of the stream is waiting for [`Receiver::take`].
    pub(crate) fn has_next(&self) -> bool {
        !self.inbox.is_empty() || self.end.is_some()
    }

    /// Bytes in the inbox now, and the most it held at once.
    pub(crate) fn inbox(&self) -> (usize, usize) {
        (self.inbox_bytes.bytes(), self.inbox_bytes.peak())
    }

    /// Charges the inbox to `budget` from now on.
    pub(crate) fn rebind(&mut self, budget: Arc<BufferBudget>) {
        self.inbox_bytes.rebind(budget);
    }

    /// Caps the declared length of the frames read from now on.
    pub(crate) fn set_max_frame(&mut self, max: usize) {
        self.frames.decoder_mut().set_max_frame(max);
    }

    /// Reads one frame into the inbox, or records why the stream ended.
    /// Cancel-safe: a partly read frame stays in the codec's buffer.
    pub(crate) async fn fill(&mut self) {
        match self.frames.next().await {
            Some(Ok(frame)) => {
                let wire_len = frame.len() + LENGTH_PREFIX_BYTES;
                self.bytes += wire_len as u64;
                self.inbox_bytes.add(wire_len);
                self.inbox.push_back(frame.freeze());
            }
            Some(Err(error)) => {
                let error = self.classify(error);
                self.end = Some(End::Failed(Some(error)));
            }
            None => self.end = Some(End::Eof),
        }
    }

    /// The next result for `recv`: a decoded inbox frame, or the end of the stream;
    /// `None` when more must be read first.
    pub(crate) fn take(&mut self) -> Option<Result<Option<StreamMessage>, TransportError>> {
        if let Some(frame) = self.inbox.pop_front() {
            self.inbox_bytes.sub(frame.len() + LENGTH_PREFIX_BYTES);
            let decoded = StreamMessage::decode(frame).map_err(TransportError::Decode);
            self.messages += u64::from(decoded.is_ok());
            return Some(decoded.map(Some));
        }
        match self.end.as_mut()? {
            End::Eof => Some(Ok(None)),
            End::Failed(error) => Some(Err(error.take().unwrap_or_else(|| {
                TransportError::Io(io::Error::other("an earlier receive failed"))
            }))),
        }
    }

    /// Maps the codec's oversized-frame error to [`TransportError::FrameTooLarge`]
    /// (with the cap in force, at most `MAX_FRAME_BYTES`), or, when it is the
    /// stream's first frame and looks like another protocol's greeting, to
    /// [`TransportError::ForeignProtocol`].
    fn classify(&self, error: io::Error) -> TransportError {
        let too_large = error.kind() == io::ErrorKind::InvalidData
            && error
                .get_ref()
                .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>());
        let len = self.declared_len().unwrap_or(0);
        let max = self.frames.decoder().max_frame();
        let greeting = match self.messages {
            0 => crate::codec::foreign_protocol(self.frames.read_buffer(), max),
            _ => None,
        };
        if let (true, Some(looks_like)) = (too_large, greeting) {
            TransportError::ForeignProtocol {
                looks_like,
                len,
                max,
            }
        } else if too_large {
            TransportError::FrameTooLarge { len, max }
        } else {
            TransportError::Io(error)
        }
    }

    /// The rejected length prefix: the codec fails before consuming the header, so
    /// it is still at the front of the read buffer.
    fn declared_len(&self) -> Option<usize> {
        let head: [u8; LENGTH_PREFIX_BYTES] = self
            .frames
            .read_buffer()
            .get(..LENGTH_PREFIX_BYTES)?
            .try_into()
            .ok()?;
        let len = usize::try_from(u32::from_be_bytes(head)).ok()?;
        (len > self.frames.decoder().max_frame()).then_some(len)
    }

    /// Messages decoded and bytes read, length prefixes included.
    pub(crate) fn counters(&self) -> (u64, u64) {
        (self.messages, self.bytes)
    }
}
