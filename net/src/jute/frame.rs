//! `FrameDecoder`: splits a byte stream into jute frames.
//!
//! ```text
//! stream = frame*
//! frame  = length:int body:byte[length]      ; 0 <= length <= packet_bytes_max
//! ```
//!
//! The decoder is stateless: it looks at the bytes a connection has buffered and says whether
//! a whole frame is there. A length outside `0..=packet_bytes_max` (ZooKeeper's
//! `jute.maxbuffer`) is an error as soon as the 4 length bytes are in, so a connection never
//! buffers more than `FRAME_LENGTH_BYTES + packet_bytes_max` bytes for one frame; ZooKeeper
//! drops the connection in that case. The very first 4 bytes of a connection may instead be a
//! four-letter word: check them with `FourLetterWord::from_length_prefix` before decoding.

use crate::constants::{FRAME_LENGTH_BYTES, PACKET_BYTES_MAX_DEFAULT, PACKET_BYTES_MAX_LIMIT};
use crate::error::{Error, Result};

/// Splits buffered bytes into frames no longer than a configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    packet_bytes_max: usize,
}

/// One complete frame found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame's body, without its length prefix.
    pub body: &'a [u8],
    /// Bytes of the buffer the frame occupies (length prefix included): drop them next.
    pub consumed_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder { packet_bytes_max: PACKET_BYTES_MAX_DEFAULT }
    }
}

impl FrameDecoder {
    /// A decoder accepting bodies of up to `packet_bytes_max` bytes (`jute.maxbuffer`).
    ///
    /// # Panics
    /// If `packet_bytes_max` exceeds `PACKET_BYTES_MAX_LIMIT`: a configuration bug.
    #[must_use]
    pub fn new(packet_bytes_max: usize) -> Self {
        assert!(packet_bytes_max <= PACKET_BYTES_MAX_LIMIT, "jute.maxbuffer above i32::MAX");
        FrameDecoder { packet_bytes_max }
    }

    /// The configured body limit in bytes.
    #[must_use]
    pub fn packet_bytes_max(&self) -> usize {
        self.packet_bytes_max
    }

    /// The complete frame at the start of `buffer`, or `None` if more bytes are needed.
    ///
    /// # Errors
    /// [`Error::FrameLength`] when the declared length is negative or above the limit; the
    /// connection cannot be resynchronised and should be closed.
    pub fn decode<'a>(&self, buffer: &'a [u8]) -> Result<Option<Frame<'a>>> {
        let Some(body_bytes) = self.peek_length(buffer)? else {
            return Ok(None);
        };
        let consumed_bytes = FRAME_LENGTH_BYTES + body_bytes;
        if buffer.len() < consumed_bytes {
            return Ok(None);
        }
        Ok(Some(Frame { body: &buffer[FRAME_LENGTH_BYTES..consumed_bytes], consumed_bytes }))
    }

    /// The validated body length of the frame at the start of `buffer`, once its 4 length
    /// bytes have arrived; a driver uses it to size its read.
    ///
    /// # Errors
    /// As [`FrameDecoder::decode`].
    pub fn peek_length(&self, buffer: &[u8]) -> Result<Option<usize>> {
        let Some(prefix) = buffer.first_chunk::<FRAME_LENGTH_BYTES>() else {
            return Ok(None);
        };
        let length = i32::from_be_bytes(*prefix);
        match usize::try_from(length) {
            Ok(body_bytes) if body_bytes <= self.packet_bytes_max => Ok(Some(body_bytes)),
            _ => Err(Error::FrameLength {
                length: i64::from(length),
                packet_bytes_max: self.packet_bytes_max,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partial_then_complete() {
        let decoder = FrameDecoder::default();
        let stream = [0, 0, 0, 2, 0xaa, 0xbb, 0, 0, 0];
        assert_eq!(decoder.decode(&stream[..3]), Ok(None));
        assert_eq!(decoder.decode(&stream[..5]), Ok(None));
        let frame = decoder.decode(&stream).unwrap().unwrap();
        assert_eq!(frame, Frame { body: &[0xaa, 0xbb], consumed_bytes: 6 });
        assert_eq!(decoder.decode(&stream[6..]), Ok(None));
    }

    #[test]
    fn length_limits() {
        let decoder = FrameDecoder::new(16);
        let mut at_limit = 16i32.to_be_bytes().to_vec();
        at_limit.resize(20, 0);
        assert_eq!(decoder.decode(&at_limit).unwrap().unwrap().body.len(), 16);
        let over = 17i32.to_be_bytes();
        let error = Error::FrameLength { length: 17, packet_bytes_max: 16 };
        assert_eq!(decoder.decode(&over), Err(error));
        let negative = (-1i32).to_be_bytes();
        assert!(matches!(decoder.decode(&negative), Err(Error::FrameLength { length: -1, .. })));
        let default = FrameDecoder::default();
        assert!(default.peek_length(&0x000f_ffffi32.to_be_bytes()).is_ok());
        assert!(default.peek_length(&0x0010_0000i32.to_be_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let decoder = FrameDecoder::new(32);
            if let Ok(Some(frame)) = decoder.decode(&bytes) {
                prop_assert!(frame.body.len() <= 32);
                prop_assert_eq!(frame.consumed_bytes, frame.body.len() + FRAME_LENGTH_BYTES);
            }
        }
    }
}
