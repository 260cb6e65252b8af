//! Record framing: how one payload is laid out in a segment, and how a frame is checked.
//!
//! ```text
//! frame   = len:u32 LE | crc:u32 LE | payload:[u8; len]
//! crc     = crc32c(len bytes ++ payload)
//! ```
//!
//! The CRC covers the length as well as the payload, so a corrupted length is caught, and
//! even an empty payload has a non-zero CRC: an all-zero frame header (the preallocated,
//! never-written part of a segment) therefore always means "end of data", never a record.

use crate::constants::{FRAME_HEADER_BYTES, RECORD_BYTES_MAX};

/// Bytes a frame of `payload_bytes` occupies on disk.
pub fn frame_bytes(payload_bytes: usize) -> u64 {
    FRAME_HEADER_BYTES + payload_bytes as u64
}

/// The CRC stored in a frame whose header carries `len_bytes` and whose payload is `payload`.
pub fn frame_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// Appends the frame of `payload` to `buffer`.
///
/// # Panics
/// If `payload` is longer than [`RECORD_BYTES_MAX`]; callers check sizes first.
pub fn encode_frame(buffer: &mut Vec<u8>, payload: &[u8]) {
    assert!(payload.len() <= RECORD_BYTES_MAX, "record exceeds RECORD_BYTES_MAX");
    let len_bytes = (payload.len() as u32).to_le_bytes();
    buffer.extend_from_slice(&len_bytes);
    buffer.extend_from_slice(&frame_crc(len_bytes, payload).to_le_bytes());
    buffer.extend_from_slice(payload);
}

/// What the bytes at a frame position hold.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameCheck<'a> {
    /// A frame whose CRC matches; the next frame starts `frame_bytes` later.
    Valid { payload: &'a [u8], frame_bytes: u64 },
    /// An all-zero header, or too few bytes left for a header: no record starts here.
    End,
    /// Something that is not a record: a torn write or corruption.
    Invalid(&'static str),
}

/// Checks the frame at the start of `bytes` (which run to the end of the segment).
pub fn check_frame(bytes: &[u8]) -> FrameCheck<'_> {
    let header_bytes = FRAME_HEADER_BYTES as usize;
    if bytes.len() < header_bytes {
        return if bytes.iter().all(|&b| b == 0) {
            FrameCheck::End
        } else {
            FrameCheck::Invalid("partial frame header")
        };
    }
    let len_bytes: [u8; 4] = bytes[0..4].try_into().expect("four bytes");
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("four bytes"));
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 && crc == 0 {
        return FrameCheck::End;
    }
    if len > RECORD_BYTES_MAX {
        return FrameCheck::Invalid("frame length exceeds RECORD_BYTES_MAX");
    }
    if len > bytes.len() - header_bytes {
        return FrameCheck::Invalid("frame runs past the end of the segment");
    }
    let payload = &bytes[header_bytes..header_bytes + len];
    if frame_crc(len_bytes, payload) != crc {
        return FrameCheck::Invalid("frame CRC mismatch");
    }
    FrameCheck::Valid { payload, frame_bytes: frame_bytes(len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_empty_record_has_nonzero_crc() {
        for payload in [&b""[..], b"x", &[7u8; 1000][..]] {
            let mut buffer = Vec::new();
            encode_frame(&mut buffer, payload);
            assert_ne!(&buffer[4..8], &[0, 0, 0, 0]);
            buffer.extend_from_slice(&[0; 16]);
            let check = check_frame(&buffer);
            assert_eq!(
                check,
                FrameCheck::Valid { payload, frame_bytes: frame_bytes(payload.len()) }
            );
        }
    }

    #[test]
    fn zeros_are_end_and_flips_are_invalid() {
        assert_eq!(check_frame(&[0; 32]), FrameCheck::End);
        assert_eq!(check_frame(&[0; 3]), FrameCheck::End);
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, b"hello");
        for index in 0..buffer.len() {
            let mut flipped = buffer.clone();
            flipped[index] ^= 0x10;
            assert!(matches!(check_frame(&flipped), FrameCheck::Invalid(_)), "byte {index}");
        }
        assert!(matches!(check_frame(&buffer[..buffer.len() - 1]), FrameCheck::Invalid(_)));
    }
}
