//! The frame codec: tokio-util's length-delimited codec, plus an end-of-stream check
//! it lacks.

use std::io;

use bytes::BytesMut;
use synctree_primitives::limits::MAX_FRAME_BYTES;
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

use crate::LENGTH_PREFIX_BYTES;

/// 4-byte big-endian length prefix; the declared length is checked against
/// [`MAX_FRAME_BYTES`] before anything is allocated for the body.
pub(crate) fn length_delimited() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(LENGTH_PREFIX_BYTES)
        .big_endian()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

/// [`LengthDelimitedCodec`] for reading, failing when the stream ends inside a frame.
///
/// The inner codec consumes a frame's prefix before its body arrives, so a stream
/// that ends right after a prefix leaves an empty buffer, which the inner codec
/// would report as a clean end. This decoder remembers that a frame is open.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    inner: LengthDelimitedCodec,
    /// A prefix was consumed and its body is not complete yet.
    mid_frame: bool,
}

impl FrameDecoder {
    pub(crate) fn new() -> Self {
        FrameDecoder {
            inner: length_delimited(),
            mid_frame: false,
        }
    }

    /// Caps the declared length of the next frames (at most [`MAX_FRAME_BYTES`]).
    pub(crate) fn set_max_frame(&mut self, max: usize) {
        self.inner.set_max_frame_length(max.min(MAX_FRAME_BYTES));
    }

    /// The current cap on a frame's declared length.
    pub(crate) fn max_frame(&self) -> usize {
        self.inner.max_frame_length()
    }
}

impl Decoder for FrameDecoder {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let before = src.len();
        let frame = self.inner.decode(src)?;
        // The inner codec only shrinks the buffer without a frame when it takes a prefix.
        self.mid_frame = frame.is_none() && (self.mid_frame || src.len() < before);
        Ok(frame)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && !self.mid_frame => Ok(None),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended inside a frame",
            )),
        }
    }
}

/// What a stream that starts with `src` speaks instead, when its first bytes
/// declare a frame longer than `max` and look like a well-known protocol's greeting.
pub(crate) fn foreign_protocol(src: &[u8], max: usize) -> Option<&'static str> {
    let prefix: [u8; LENGTH_PREFIX_BYTES] = src.get(..LENGTH_PREFIX_BYTES)?.try_into().ok()?;
    if (u32::from_be_bytes(prefix) as usize) <= max {
        return None;
    }
    match prefix {
        [b'H', b'T', b'T', b'P'] => Some("HTTP"),
        [b'S', b'S', b'H', b'-'] => Some("SSH"),
        [0x16, 0x03, ..] | [0x15, 0x03, ..] => Some("TLS"),
        _ if prefix.iter().all(|b| b.is_ascii_graphic() || *b == b' ') => Some("text"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_greeting_is_named() {
        assert_eq!(foreign_protocol(b"HTTP/1.1 400", 1 << 22), Some("HTTP"));
        assert_eq!(foreign_protocol(b"GET / HTTP/1.1", 1 << 22), Some("text"));
        assert_eq!(
            foreign_protocol(&[0x16, 0x03, 0x01, 0x02], 1 << 22),
            Some("TLS")
        );
        assert_eq!(foreign_protocol(&[0, 0, 0, 5], 1 << 22), None);
        assert_eq!(foreign_protocol(b"HT", 1 << 22), None);
    }

    #[test]
    fn end_after_a_prefix_is_an_error_and_after_a_frame_is_not() {
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::from(&[0, 0, 0, 2, 8, 1, 0, 0, 0, 5][..]);
        assert!(matches!(decoder.decode(&mut buf), Ok(Some(frame)) if frame[..] == [8, 1]));
        assert!(matches!(decoder.decode(&mut buf), Ok(None)));
        assert!(buf.is_empty(), "the second prefix was consumed");
        let eof = decoder.decode_eof(&mut buf);
        assert!(matches!(eof, Err(e) if e.kind() == io::ErrorKind::UnexpectedEof));

        let mut clean = FrameDecoder::new();
        let mut buf = BytesMut::from(&[0, 0, 0, 0][..]);
        assert!(matches!(clean.decode_eof(&mut buf), Ok(Some(frame)) if frame.is_empty()));
        assert!(matches!(clean.decode_eof(&mut buf), Ok(None)));
    }
}
