//! `Reader`: jute's primitive types, decoded from a byte slice.
//!
//! The reader owns nothing and promises two things on any input, however hostile: it never
//! panics, and it never allocates more than the input could justify. Every declared length
//! or count is checked against the bytes that remain *before* anything is allocated, so a
//! count of 10^9 in a 20-byte frame is [`Error::BadLength`], not an out-of-memory abort.
//!
//! ```text
//! int     = i32 big-endian (4 bytes)
//! long    = i64 big-endian (8 bytes)
//! boolean = 1 byte; 0 is false, anything else true (Java's DataInput.readBoolean)
//! buffer  = int length, then length bytes; length -1 is null
//! ustring = buffer holding UTF-8
//! vector  = int count, then count elements; count -1 is null (decoded as empty)
//! ```
//!
//! Invalid UTF-8 in a `ustring` is replaced with U+FFFD, as Java's `new String(b, UTF_8)`
//! does, so that a path ZooKeeper would see as `/a\u{fffd}` is seen the same way here (and is
//! then refused by path validation). Only then can a string's capacity exceed its wire bytes,
//! by at most three times.

use crate::constants::LENGTH_PREFIX_BYTES;
use crate::error::{Error, Result};

/// A cursor over one jute-encoded frame body.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    /// Bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// Bytes read so far.
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }

    /// Takes the next `count` bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than `count` bytes remain.
    pub fn read_bytes(&mut self, count: usize) -> Result<&'a [u8]> {
        let remaining_bytes = self.remaining();
        if count > remaining_bytes {
            return Err(Error::Truncated { needed_bytes: count, remaining_bytes });
        }
        let start = self.position;
        self.position += count;
        Ok(&self.bytes[start..self.position])
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.read_bytes(N)?);
        Ok(array)
    }

    /// Reads a jute `int`.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn read_int(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.read_array()?))
    }

    /// Reads a jute `long`.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn read_long(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.read_array()?))
    }

    /// Reads a jute `boolean`: any non-zero byte is true.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn read_bool(&mut self) -> Result<bool> {
        Ok(self.read_array::<1>()?[0] != 0)
    }

    /// Reads a length prefix and checks that `length * element_bytes_min` bytes remain.
    /// Returns `None` for -1 (null).
    fn read_length(&mut self, element_bytes_min: usize) -> Result<Option<usize>> {
        let length = self.read_int()?;
        if length == -1 {
            return Ok(None);
        }
        let remaining_bytes = self.remaining();
        let fits = usize::try_from(length)
            .ok()
            .filter(|&count| count.saturating_mul(element_bytes_min.max(1)) <= remaining_bytes);
        match fits {
            Some(count) => Ok(Some(count)),
            None => Err(Error::BadLength { length, remaining_bytes }),
        }
    }

    /// Reads a jute `buffer`, borrowing its bytes; `None` is null.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadLength`].
    pub fn read_buffer_slice(&mut self) -> Result<Option<&'a [u8]>> {
        match self.read_length(1)? {
            None => Ok(None),
            Some(length) => self.read_bytes(length).map(Some),
        }
    }

    /// Reads a jute `buffer` that may be null (znode data keeps null apart from empty).
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadLength`].
    pub fn read_buffer_opt(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.read_buffer_slice()?.map(<[u8]>::to_vec))
    }

    /// Reads a jute `buffer`, decoding null as empty.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadLength`].
    pub fn read_buffer(&mut self) -> Result<Vec<u8>> {
        Ok(self.read_buffer_opt()?.unwrap_or_default())
    }

    /// Reads a jute `ustring` that may be null.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadLength`].
    pub fn read_ustring_opt(&mut self) -> Result<Option<String>> {
        Ok(self.read_buffer_slice()?.map(|bytes| String::from_utf8_lossy(bytes).into_owned()))
    }

    /// Reads a jute `ustring` that ZooKeeper requires to be present.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadLength`], [`Error::NullString`].
    pub fn read_ustring(&mut self) -> Result<String> {
        self.read_ustring_opt()?.ok_or(Error::NullString)
    }

    /// Reads a jute `vector`, each element with `read_element`; null decodes as empty.
    /// `element_bytes_min` is the smallest encoding of one element and bounds the count.
    ///
    /// # Errors
    /// [`Error::BadLength`] when the count cannot fit, or any error of `read_element`.
    pub fn read_vector<T>(
        &mut self,
        element_bytes_min: usize,
        mut read_element: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let Some(count) = self.read_length(element_bytes_min)? else {
            return Ok(Vec::new());
        };
        let mut elements = Vec::with_capacity(count);
        for _ in 0..count {
            elements.push(read_element(self)?);
        }
        Ok(elements)
    }

    /// Reads a `vector<ustring>`.
    ///
    /// # Errors
    /// As [`Reader::read_vector`] and [`Reader::read_ustring`].
    pub fn read_ustring_vector(&mut self) -> Result<Vec<String>> {
        self.read_vector(LENGTH_PREFIX_BYTES, Self::read_ustring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_decode_big_endian() {
        let bytes = [0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 2];
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.read_int(), Ok(7));
        assert_eq!(reader.read_long(), Ok(-2));
        assert_eq!(reader.read_bool(), Ok(true));
        assert_eq!(reader.remaining(), 0);
        assert!(matches!(reader.read_bool(), Err(Error::Truncated { .. })));
    }

    #[test]
    fn null_buffer_and_string() {
        let bytes = [0xff; 8];
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.read_buffer_opt(), Ok(None));
        assert_eq!(reader.read_ustring(), Err(Error::NullString));
    }

    #[test]
    fn huge_count_is_an_error_not_an_allocation() {
        let mut bytes = 1_000_000_000i32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let error = Reader::new(&bytes).read_ustring_vector().unwrap_err();
        assert_eq!(error, Error::BadLength { length: 1_000_000_000, remaining_bytes: 16 });
        let error = Reader::new(&bytes).read_buffer().unwrap_err();
        assert!(matches!(error, Error::BadLength { .. }));
        let negative = (-2i32).to_be_bytes();
        assert!(matches!(Reader::new(&negative).read_buffer(), Err(Error::BadLength { .. })));
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        let bytes = [0, 0, 0, 3, b'/', b'a', 0xff];
        assert_eq!(Reader::new(&bytes).read_ustring(), Ok("/a\u{fffd}".to_owned()));
    }
}
