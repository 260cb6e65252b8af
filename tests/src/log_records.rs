//! Self-describing test records for the log tests: a record names its writer and sequence
//! number and its bytes derive from them, so a checker can tell an intact record from a
//! damaged one without remembering what was written.
//!
//! ```text
//! record = writer:u32 LE | sequence:u64 LE | fill:[u8; fill_len(writer, sequence)]
//! fill[i] = (writer * 31 + sequence * 7 + i) as u8
//! ```

use zabflow_core::log::BackendChoice;

/// Every concrete backend; tests run once per entry.
pub const BACKENDS: [BackendChoice; 2] = [BackendChoice::Pwrite, BackendChoice::IoUring];

/// The fill bytes of record (`writer`, `sequence`): 0..=300 bytes.
pub fn fill_len(writer: u32, sequence: u64) -> usize {
    let mixed = (sequence ^ (u64::from(writer) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 55) as usize % 301
}

/// The record (`writer`, `sequence`).
pub fn encode_record(writer: u32, sequence: u64) -> Vec<u8> {
    let fill = fill_len(writer, sequence);
    let mut record = Vec::with_capacity(12 + fill);
    record.extend_from_slice(&writer.to_le_bytes());
    record.extend_from_slice(&sequence.to_le_bytes());
    let seed = (u64::from(writer) * 31 + sequence * 7) as usize;
    record.extend((0..fill).map(|i| (seed + i) as u8));
    record
}

/// The (`writer`, `sequence`) of an intact record, or `None` if the bytes are not one.
pub fn decode_record(bytes: &[u8]) -> Option<(u32, u64)> {
    if bytes.len() < 12 {
        return None;
    }
    let writer = u32::from_le_bytes(bytes[0..4].try_into().ok()?);
    let sequence = u64::from_le_bytes(bytes[4..12].try_into().ok()?);
    (encode_record(writer, sequence) == bytes).then_some((writer, sequence))
}
