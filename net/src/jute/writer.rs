//! `Writer`: jute's primitive types, encoded into a reusable `Vec<u8>`.
//!
//! The writer appends; it never shrinks or reallocates on its own beyond what the appended
//! bytes need, so a connection can keep one writer and [`Writer::clear`] it between replies.
//! Frames are written in place: [`Writer::begin_frame`] reserves the 4-byte length and
//! [`Writer::end_frame`] fills it in, so no record is encoded twice.

use crate::constants::FRAME_LENGTH_BYTES;

/// An append-only jute encoder.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buffer: Vec<u8>,
}

/// Where a frame started, returned by [`Writer::begin_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "pass it to end_frame to write the frame's length"]
pub struct FrameStart(usize);

impl Writer {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Writer::default()
    }

    /// An empty writer that holds `bytes` before it grows: one allocation for a record whose
    /// size is known up front (or bounded by a typical size).
    #[must_use]
    pub fn with_capacity(bytes: usize) -> Self {
        Writer { buffer: Vec::with_capacity(bytes) }
    }

    /// A writer that reuses `buffer`'s allocation, appending after its contents.
    #[must_use]
    pub fn from_vec(buffer: Vec<u8>) -> Self {
        Writer { buffer }
    }

    /// Forgets the bytes written, keeping the allocation.
    pub fn clear(&mut self) {
        self.buffer.clear();
    }

    /// Bytes the writer holds before it must grow.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buffer.capacity()
    }

    /// The bytes written so far.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer
    }

    /// Gives the buffer back.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        self.buffer
    }

    /// Writes a jute `int`.
    pub fn write_int(&mut self, value: i32) {
        self.buffer.extend_from_slice(&value.to_be_bytes());
    }

    /// Writes a jute `long`.
    pub fn write_long(&mut self, value: i64) {
        self.buffer.extend_from_slice(&value.to_be_bytes());
    }

    /// Writes a jute `boolean` as 0 or 1.
    pub fn write_bool(&mut self, value: bool) {
        self.buffer.push(u8::from(value));
    }

    /// Writes a length prefix.
    ///
    /// # Panics
    /// If `length` exceeds `i32::MAX`: no jute record can hold it, so it is a caller's bug.
    fn write_length(&mut self, length: usize) {
        let length = i32::try_from(length).expect("jute length exceeds i32::MAX");
        self.write_int(length);
    }

    /// Writes a jute `buffer`.
    pub fn write_buffer(&mut self, bytes: &[u8]) {
        self.write_length(bytes.len());
        self.buffer.extend_from_slice(bytes);
    }

    /// Writes a jute `buffer` that may be null (-1).
    pub fn write_buffer_opt(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            Some(bytes) => self.write_buffer(bytes),
            None => self.write_int(-1),
        }
    }

    /// Writes a jute `ustring`.
    pub fn write_ustring(&mut self, value: &str) {
        self.write_buffer(value.as_bytes());
    }

    /// Writes a jute `ustring` that may be null (-1).
    pub fn write_ustring_opt(&mut self, value: Option<&str>) {
        self.write_buffer_opt(value.map(str::as_bytes));
    }

    /// Writes a jute `vector`, each element with `write_element`.
    pub fn write_vector<T>(
        &mut self,
        elements: &[T],
        mut write_element: impl FnMut(&mut Self, &T),
    ) {
        self.write_length(elements.len());
        for element in elements {
            write_element(self, element);
        }
    }

    /// Writes a `vector<ustring>`.
    pub fn write_ustring_vector(&mut self, values: &[String]) {
        self.write_vector(values, |writer, value| writer.write_ustring(value));
    }

    /// Reserves a frame's 4-byte length; write the frame body next.
    pub fn begin_frame(&mut self) -> FrameStart {
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&[0; FRAME_LENGTH_BYTES]);
        FrameStart(start)
    }

    /// Fills in the length of the frame begun at `start` with the bytes written since.
    ///
    /// # Panics
    /// If `start` does not come from this writer's current contents, or the body exceeds
    /// `i32::MAX` bytes: both are caller bugs.
    pub fn end_frame(&mut self, start: FrameStart) {
        let body_start = start.0 + FRAME_LENGTH_BYTES;
        assert!(body_start <= self.buffer.len(), "frame start beyond the written bytes");
        let length = i32::try_from(self.buffer.len() - body_start).expect("frame too long");
        self.buffer[start.0..body_start].copy_from_slice(&length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_encode_big_endian() {
        let mut writer = Writer::new();
        writer.write_int(7);
        writer.write_long(-2);
        writer.write_bool(true);
        writer.write_buffer_opt(None);
        writer.write_ustring("ab");
        let expected = [
            0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 1, 0xff, 0xff, 0xff, 0xff,
            0, 0, 0, 2, b'a', b'b',
        ];
        assert_eq!(writer.as_bytes(), expected);
    }

    #[test]
    fn a_writer_with_capacity_fills_it_without_growing() {
        let mut writer = Writer::with_capacity(16);
        let start = writer.as_bytes().as_ptr();
        writer.write_long(1);
        writer.write_long(2);
        assert_eq!(writer.as_bytes().as_ptr(), start, "16 bytes fit without a reallocation");
        assert_eq!(writer.into_vec().capacity(), 16);
    }

    #[test]
    fn frame_length_is_patched_in_place() {
        let mut writer = Writer::new();
        let start = writer.begin_frame();
        writer.write_int(1);
        writer.write_bool(false);
        writer.end_frame(start);
        assert_eq!(writer.as_bytes(), [0, 0, 0, 5, 0, 0, 0, 1, 0]);
        writer.clear();
        assert!(writer.as_bytes().is_empty());
    }
}
