//! `Der`: a minimal reader of ASN.1 DER, for the few structures the TLS code must look
//! into itself: the key wrapper of a JKS keystore and the fields of an X.509 certificate
//! that rustls' verifier cannot read (version 1 certificates, see [`crate::tls`]).
//!
//! ```text
//! element = tag length contents
//! tag     = one byte (no multi-byte tags: none of the structures read here has one)
//! length  = 0xxxxxxx                       ; short form, 0..=127
//!         | 1nnnnnnn byte{n}                ; long form, n in 1..=4, big-endian
//! ```
//!
//! Only definite lengths (DER has no other); every read is bounds-checked and a bad input is
//! an `Err` with what was expected, never a panic.

/// Universal tags used by the readers of this crate.
pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_BIT_STRING: u8 = 0x03;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub const TAG_UTC_TIME: u8 = 0x17;
pub const TAG_GENERALIZED_TIME: u8 = 0x18;
pub const TAG_SEQUENCE: u8 = 0x30;
/// `[0]` constructed, explicit: the version field of a `TBSCertificate`.
pub const TAG_CONTEXT_0: u8 = 0xa0;

/// Longest length field read (4 bytes: 4 GiB, far beyond any key or certificate).
const LENGTH_BYTES_MAX: usize = 4;

/// A cursor over DER bytes.
#[derive(Debug, Clone, Copy)]
pub struct Der<'a> {
    bytes: &'a [u8],
}

/// One element: its tag, its contents and the whole encoding (tag, length and contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
    pub encoded: &'a [u8],
}

impl<'a> Der<'a> {
    /// A reader over `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Der { bytes }
    }

    /// Whether every byte was read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The tag of the next element, if any.
    #[must_use]
    pub fn peek_tag(&self) -> Option<u8> {
        self.bytes.first().copied()
    }

    /// Reads the next element, whatever its tag.
    ///
    /// # Errors
    /// A truncated element or a length form DER does not allow.
    pub fn any(&mut self) -> Result<Element<'a>, String> {
        let (&tag, rest) = self.bytes.split_first().ok_or("DER: unexpected end")?;
        let (&first, mut rest) = rest.split_first().ok_or("DER: no length")?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > LENGTH_BYTES_MAX || rest.len() < count {
                return Err(format!("DER: bad length form 0x{first:02x}"));
            }
            let length = rest[..count].iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
            rest = &rest[count..];
            length
        };
        if rest.len() < length {
            return Err(format!("DER: element of {length} bytes, {} left", rest.len()));
        }
        let header = self.bytes.len() - rest.len();
        let encoded = &self.bytes[..header + length];
        self.bytes = &rest[length..];
        Ok(Element { tag, contents: &rest[..length], encoded })
    }

    /// Reads the next element, which must have tag `tag`.
    ///
    /// # Errors
    /// As [`Der::any`], or another tag.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Element<'a>, String> {
        let element = self.any().map_err(|error| format!("{what}: {error}"))?;
        if element.tag != tag {
            return Err(format!("{what}: tag 0x{:02x}, expected 0x{tag:02x}", element.tag));
        }
        Ok(element)
    }

    /// Reads a SEQUENCE and returns a reader over its contents.
    ///
    /// # Errors
    /// As [`Der::expect`].
    pub fn sequence(&mut self, what: &str) -> Result<Der<'a>, String> {
        Ok(Der::new(self.expect(TAG_SEQUENCE, what)?.contents))
    }
}

/// Encodes one element: `tag`, the DER length of `contents`, `contents`.
#[must_use]
pub fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = contents.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// Seconds since the Unix epoch of a UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), the two forms X.509 validity uses.
///
/// # Errors
/// Another tag or form.
pub fn time_seconds(element: &Element<'_>) -> Result<u64, String> {
    let text = std::str::from_utf8(element.contents).map_err(|_| "time: not ASCII")?;
    let digits = text.strip_suffix('Z').ok_or("time: not UTC (no Z)")?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("time: {text:?} is not a DER time"));
    }
    let field = |range: std::ops::Range<usize>| -> u64 {
        digits[range].bytes().fold(0, |n, b| n * 10 + u64::from(b - b'0'))
    };
    let (year, rest) = match (element.tag, digits.len()) {
        (TAG_UTC_TIME, 12) => {
            let year = field(0..2);
            (if year >= 50 { 1900 + year } else { 2000 + year }, 2)
        }
        (TAG_GENERALIZED_TIME, 14) => (field(0..4), 4),
        _ => return Err(format!("time: {text:?} is not a DER time")),
    };
    let (month, day) = (field(rest..rest + 2), field(rest + 2..rest + 4));
    let (hour, minute, second) =
        (field(rest + 4..rest + 6), field(rest + 6..rest + 8), field(rest + 8..rest + 10));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return Err(format!("time: {text:?} is out of range"));
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`, for years from 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![TAG_OCTET_STRING, 0x81, 200];
        long.extend_from_slice(&[7; 200]);
        long.extend_from_slice(&[TAG_INTEGER, 1, 5]);
        let mut der = Der::new(&long);
        let element = der.expect(TAG_OCTET_STRING, "octets").unwrap();
        assert_eq!((element.contents.len(), element.encoded.len()), (200, 203));
        assert_eq!(der.expect(TAG_INTEGER, "integer").unwrap().contents, [5]);
        assert!(der.is_empty());
    }

    #[test]
    fn encodes_what_it_reads() {
        for length in [0, 5, 127, 128, 255, 256, 70_000] {
            let contents = vec![1u8; length];
            let encoded = encode(TAG_OCTET_STRING, &contents);
            let element = Der::new(&encoded).expect(TAG_OCTET_STRING, "octets").unwrap();
            assert_eq!((element.contents, element.encoded), (&contents[..], &encoded[..]));
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Der::new(&[TAG_SEQUENCE, 5, 1]).any().unwrap_err().contains("5 bytes"));
        assert!(Der::new(&[TAG_SEQUENCE, 0x80]).any().unwrap_err().contains("length form"));
        assert!(Der::new(&[TAG_SEQUENCE]).any().is_err());
        assert!(Der::new(&[TAG_INTEGER, 0]).expect(TAG_SEQUENCE, "s").unwrap_err().contains("s:"));
    }

    #[test]
    fn times_are_unix_seconds() {
        let utc = Element { tag: TAG_UTC_TIME, contents: b"700101000000Z", encoded: &[] };
        assert_eq!(time_seconds(&utc).unwrap(), 0);
        let utc = Element { tag: TAG_UTC_TIME, contents: b"260301120000Z", encoded: &[] };
        assert_eq!(time_seconds(&utc).unwrap(), 1_772_366_400);
        let general =
            Element { tag: TAG_GENERALIZED_TIME, contents: b"20500101000000Z", encoded: &[] };
        assert_eq!(time_seconds(&general).unwrap(), 2_524_608_000);
        let local = Element { tag: TAG_UTC_TIME, contents: b"260301120000", encoded: &[] };
        assert!(time_seconds(&local).is_err());
    }
}
