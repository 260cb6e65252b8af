//! The codec of keyed state: how keys, records, accumulators and user state become the
//! bytes of a checkpoint's state file, and back.
//!
//! [`StateCodec`] is deliberately small: append a value's bytes to a buffer, read one value
//! from the front of a byte slice. Snapshots run on the shard thread, so encoding must be a
//! plain copy into a reused buffer (no allocation per value, no formatting, no
//! self-description); the state file around the values carries the versioning, the
//! checksum and the identity of what it holds (see [`state_file`](super::state_file)).
//!
//! ```text
//! integers, floats    fixed width, little endian (f32/f64: their IEEE 754 bits)
//! bool                one byte, 0 or 1
//! char                u32
//! Option<T>           tag:u8 (0 = None, 1 = Some) | T?
//! (A, B, ..)          A | B | ..                        (tuples of up to six)
//! [T; N]              T × N
//! Vec<T>, String      len:u32 | T × len   (String, &'static str: len bytes of UTF-8)
//! ```
//!
//! Decoding never trusts a length: a count larger than the bytes left is an error, so a
//! damaged file (whose checksum somehow matched) cannot make the decoder allocate without
//! bound. A `&'static str` is decoded by leaking a `String`: the engine's text records are
//! borrowed lines of a file held for the life of the process, and a restored line has no
//! such file, so it gets its own allocation, once, at restore.
//!
//! Users implement the trait for their own aggregates' accumulators and keys (a struct
//! encodes its fields in order).

use super::generator::{Event, Padded};
use super::item::Stamped;
use super::window::{Window, WindowResult};
use crate::records::{AccessEntry, KeyedEvent};
use std::fmt;

/// Why bytes did not decode as a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDecodeError(pub String);

impl fmt::Display for StateDecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for StateDecodeError {}

/// Result of decoding one value.
pub type DecodeResult<T> = Result<T, StateDecodeError>;

/// A value that can be written into a state snapshot and read back.
pub trait StateCodec: Sized {
    /// Appends the value's bytes to `out`.
    fn encode_state(&self, out: &mut Vec<u8>);
    /// Reads one value from the front of `bytes`, advancing it.
    ///
    /// # Errors
    /// [`StateDecodeError`] when the bytes are too short or not a value of this type.
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self>;
}

/// Takes `count` bytes from the front of `bytes`.
///
/// # Errors
/// When fewer are left.
pub fn take_bytes<'a>(bytes: &mut &'a [u8], count: usize) -> DecodeResult<&'a [u8]> {
    if bytes.len() < count {
        return Err(StateDecodeError(format!(
            "truncated state: {count} bytes needed, {} left",
            bytes.len()
        )));
    }
    let (head, rest) = bytes.split_at(count);
    *bytes = rest;
    Ok(head)
}

/// Reads a `len:u32` and checks that at least `len * item_bytes_min` bytes follow.
fn take_len(bytes: &mut &[u8], item_bytes_min: usize) -> DecodeResult<usize> {
    let len = u32::decode_state(bytes)? as usize;
    if len.saturating_mul(item_bytes_min) > bytes.len() {
        return Err(StateDecodeError(format!(
            "length {len} exceeds the {} bytes left",
            bytes.len()
        )));
    }
    Ok(len)
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("a state value of more than 4 Gi items");
    out.extend_from_slice(&len.to_le_bytes());
}

macro_rules! fixed_width_codec {
    ($($type:ty),*) => {$(
        impl StateCodec for $type {
            #[inline]
            fn encode_state(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
                let head = take_bytes(bytes, std::mem::size_of::<$type>())?;
                Ok(<$type>::from_le_bytes(head.try_into().expect("sized by take_bytes")))
            }
        }
    )*};
}

fixed_width_codec!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

impl StateCodec for usize {
    fn encode_state(&self, out: &mut Vec<u8>) {
        (*self as u64).encode_state(out);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        let value = u64::decode_state(bytes)?;
        usize::try_from(value).map_err(|_| StateDecodeError(format!("usize {value}")))
    }
}

impl StateCodec for isize {
    fn encode_state(&self, out: &mut Vec<u8>) {
        (*self as i64).encode_state(out);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        let value = i64::decode_state(bytes)?;
        isize::try_from(value).map_err(|_| StateDecodeError(format!("isize {value}")))
    }
}

impl StateCodec for bool {
    fn encode_state(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        match u8::decode_state(bytes)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(StateDecodeError(format!("bool byte {other}"))),
        }
    }
}

impl StateCodec for char {
    fn encode_state(&self, out: &mut Vec<u8>) {
        u32::from(*self).encode_state(out);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        let value = u32::decode_state(bytes)?;
        char::from_u32(value).ok_or_else(|| StateDecodeError(format!("char {value:#x}")))
    }
}

impl StateCodec for () {
    fn encode_state(&self, _out: &mut Vec<u8>) {}
    fn decode_state(_bytes: &mut &[u8]) -> DecodeResult<Self> {
        Ok(())
    }
}

impl<T: StateCodec> StateCodec for Option<T> {
    fn encode_state(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.encode_state(out);
            }
        }
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        match u8::decode_state(bytes)? {
            0 => Ok(None),
            1 => Ok(Some(T::decode_state(bytes)?)),
            other => Err(StateDecodeError(format!("option tag {other}"))),
        }
    }
}

impl<T: StateCodec, const N: usize> StateCodec for [T; N] {
    fn encode_state(&self, out: &mut Vec<u8>) {
        self.iter().for_each(|value| value.encode_state(out));
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        let mut values = Vec::with_capacity(N);
        for _ in 0..N {
            values.push(T::decode_state(bytes)?);
        }
        Ok(values.try_into().unwrap_or_else(|_| unreachable!("N values were pushed")))
    }
}

impl<T: StateCodec> StateCodec for Vec<T> {
    fn encode_state(&self, out: &mut Vec<u8>) {
        put_len(out, self.len());
        self.iter().for_each(|value| value.encode_state(out));
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        // Zero-sized encodings (unit) cannot be bounded by the bytes left; allow them.
        let len = take_len(bytes, 0)?;
        let mut values = Vec::with_capacity(len.min(bytes.len()));
        for _ in 0..len {
            values.push(T::decode_state(bytes)?);
        }
        Ok(values)
    }
}

impl StateCodec for String {
    fn encode_state(&self, out: &mut Vec<u8>) {
        put_len(out, self.len());
        out.extend_from_slice(self.as_bytes());
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        let len = take_len(bytes, 1)?;
        let text = take_bytes(bytes, len)?;
        String::from_utf8(text.to_vec()).map_err(|_| StateDecodeError("text is not UTF-8".into()))
    }
}

impl StateCodec for &'static str {
    fn encode_state(&self, out: &mut Vec<u8>) {
        put_len(out, self.len());
        out.extend_from_slice(self.as_bytes());
    }
    /// Leaks the decoded text (see the module doc).
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        Ok(String::decode_state(bytes)?.leak())
    }
}

macro_rules! tuple_codec {
    ($($name:ident),+) => {
        impl<$($name: StateCodec),+> StateCodec for ($($name,)+) {
            #[allow(non_snake_case)]
            fn encode_state(&self, out: &mut Vec<u8>) {
                let ($($name,)+) = self;
                $($name.encode_state(out);)+
            }
            fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
                Ok(($($name::decode_state(bytes)?,)+))
            }
        }
    };
}

tuple_codec!(A);
tuple_codec!(A, B);
tuple_codec!(A, B, C);
tuple_codec!(A, B, C, D);
tuple_codec!(A, B, C, D, E);
tuple_codec!(A, B, C, D, E, F);

macro_rules! struct_codec {
    ($type:ty { $($field:ident: $field_type:ty),+ }) => {
        impl StateCodec for $type {
            fn encode_state(&self, out: &mut Vec<u8>) {
                $(self.$field.encode_state(out);)+
            }
            fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
                Ok(Self { $($field: <$field_type>::decode_state(bytes)?),+ })
            }
        }
    };
}

struct_codec!(Event { key: u64, value: u64 });
struct_codec!(KeyedEvent { event_time_ms: u64, key: u64, value: u64 });
struct_codec!(Window { start: u64, end: u64 });

impl<T: StateCodec> StateCodec for Stamped<T> {
    fn encode_state(&self, out: &mut Vec<u8>) {
        self.timestamp.encode_state(out);
        self.record.encode_state(out);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        Ok(Stamped { timestamp: u64::decode_state(bytes)?, record: T::decode_state(bytes)? })
    }
}

impl<K: StateCodec, V: StateCodec> StateCodec for WindowResult<K, V> {
    fn encode_state(&self, out: &mut Vec<u8>) {
        self.key.encode_state(out);
        self.window_start.encode_state(out);
        self.window_end.encode_state(out);
        self.value.encode_state(out);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        Ok(WindowResult {
            key: K::decode_state(bytes)?,
            window_start: u64::decode_state(bytes)?,
            window_end: u64::decode_state(bytes)?,
            value: V::decode_state(bytes)?,
        })
    }
}

impl<const BYTES: usize> StateCodec for Padded<BYTES> {
    fn encode_state(&self, out: &mut Vec<u8>) {
        self.event.encode_state(out);
        out.extend_from_slice(&self.padding);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        let event = Event::decode_state(bytes)?;
        let padding = take_bytes(bytes, BYTES)?.try_into().expect("sized by take_bytes");
        Ok(Padded { event, padding })
    }
}

/// An access-log entry's text fields are decoded as leaked strings (see the module doc).
impl StateCodec for AccessEntry<'static> {
    fn encode_state(&self, out: &mut Vec<u8>) {
        self.timestamp_ms.encode_state(out);
        self.client.encode_state(out);
        self.method.encode_state(out);
        self.url.encode_state(out);
        self.status.encode_state(out);
        self.bytes.encode_state(out);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        Ok(AccessEntry {
            timestamp_ms: u64::decode_state(bytes)?,
            client: <&'static str>::decode_state(bytes)?,
            method: <&'static str>::decode_state(bytes)?,
            url: <&'static str>::decode_state(bytes)?,
            status: u16::decode_state(bytes)?,
            bytes: u64::decode_state(bytes)?,
        })
    }
}

/// Encodes `value` alone (for tests and one-off uses).
pub fn encode_to_vec<T: StateCodec>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode_state(&mut out);
    out
}

/// Decodes one `T` that must fill `bytes` exactly.
///
/// # Errors
/// When the bytes do not decode, or bytes are left over.
pub fn decode_exact<T: StateCodec>(mut bytes: &[u8]) -> DecodeResult<T> {
    let value = T::decode_state(&mut bytes)?;
    if !bytes.is_empty() {
        return Err(StateDecodeError(format!("{} bytes after the value", bytes.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: StateCodec + PartialEq + fmt::Debug>(value: T) {
        let bytes = encode_to_vec(&value);
        assert_eq!(decode_exact::<T>(&bytes).as_ref(), Ok(&value));
        for cut in 0..bytes.len() {
            assert!(decode_exact::<T>(&bytes[..cut]).is_err(), "{value:?} cut at {cut}");
        }
    }

    #[test]
    fn values_round_trip_and_truncations_are_refused() {
        round_trip(42u64);
        round_trip(-7i128);
        round_trip(1.5f64);
        round_trip(true);
        round_trip('λ');
        round_trip(Some((1u32, -2i16, [3u8; 4])));
        round_trip(None::<u64>);
        round_trip(vec![(1u64, 2.5f32), (3, 4.5)]);
        round_trip(String::from("käse"));
        round_trip(("a", 1u64, false, 'x', 2u8, 3u16));
    }

    #[test]
    fn bad_tags_and_lengths_are_refused() {
        assert!(decode_exact::<bool>(&[2]).is_err());
        assert!(decode_exact::<Option<u8>>(&[7, 1]).is_err());
        let huge = u32::MAX.to_le_bytes();
        assert!(decode_exact::<String>(&huge).is_err(), "length beyond the bytes left");
        assert!(decode_exact::<u32>(&[1, 0, 0, 0, 9]).is_err(), "trailing bytes");
    }
}
