//! `TxnLog`: ZooKeeper's transaction log (`FileTxnLog`), one record per txn on zabflow's
//! durable segmented log.
//!
//! ```text
//! txn-log  = segmented log (zabflow_core::log) in dataLogDir/version-2/log
//! record   = TxnHeader body                      ; txn::write_entry, jute big-endian
//! TxnHeader= clientId:long cxid:int zxid:long time:long type:int
//! order    = zxids strictly increase with offsets ; asserted on append and on replay
//! ```
//!
//! Unlike ZooKeeper's log there is no per-record checksum or padding here: the segmented log
//! frames every record with its own CRC and preallocates segments. With `forceSync=no` the
//! log is opened `Buffered` (acknowledged once in the page cache, as ZooKeeper's forceSync).
//! Offsets are the segmented log's record offsets; a snapshot remembers the offset after
//! its last txn, so replay starts there and purge cuts the log below the oldest snapshot
//! kept.

use std::ops::Range;
use std::path::Path;

use zabflow_core::log::{BackendChoice, Durability, Log, LogOptions};
use zabflow_net::jute::Writer;

use crate::constants::TXN_LOG_SEGMENT_BYTES;
use crate::error::{Error, Result};
use crate::txn::{read_entry, write_entry, Txn, TxnHeader};

/// The txn log of one server.
pub struct TxnLog {
    log: Log,
    last_zxid: i64,
}

fn log_error(error: zabflow_core::Error) -> Error {
    Error::Log(error.to_string())
}

/// The log record of one txn.
#[must_use]
pub fn encode(header: &TxnHeader, txn: &Txn) -> Vec<u8> {
    let mut writer = Writer::new();
    write_entry(header, txn, &mut writer);
    writer.into_vec()
}

impl TxnLog {
    /// Opens (creating if needed) the log in `dir`; `force_sync` false is `Buffered`.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be made, [`Error::Log`] when the log does not
    /// open (e.g. corruption that recovery refuses to cut).
    pub fn open(dir: &Path, force_sync: bool) -> Result<TxnLog> {
        std::fs::create_dir_all(dir)
            .map_err(|error| Error::io(format!("create {}", dir.display()), &error))?;
        let durability = if force_sync { Durability::Durable } else { Durability::Buffered };
        let options = LogOptions {
            segment_bytes: TXN_LOG_SEGMENT_BYTES,
            durability,
            // Small durable appends: every fdatasync should flush data only (see zero_fill).
            zero_fill: true,
            // The sync thread appends one group at a time and waits for it: io_uring gains it
            // nothing, and its fdatasync runs on a kernel worker thread, two more wake-ups on
            // every write's path than a plain fdatasync on the sync thread itself.
            backend: BackendChoice::Pwrite,
            ..LogOptions::default()
        };
        let log = Log::open(dir, options).map_err(log_error)?;
        Ok(TxnLog { log, last_zxid: 0 })
    }

    /// The offset the next record gets.
    #[must_use]
    pub fn next_offset(&self) -> u64 {
        self.log.next_offset()
    }

    /// The first offset still in the log.
    #[must_use]
    pub fn first_offset(&self) -> u64 {
        self.log.first_offset()
    }

    /// Calls `apply` for every txn from `offset` on (or from the log's start, if purged past
    /// it) whose zxid is above `after_zxid`; returns the highest zxid seen.
    ///
    /// # Errors
    /// [`Error::Log`] on a read failure, [`Error::Decode`] for a record that does not decode.
    ///
    /// # Panics
    /// If zxids do not increase along the log.
    pub fn replay(
        &mut self,
        offset: u64,
        after_zxid: i64,
        mut apply: impl FnMut(&TxnHeader, &Txn),
    ) -> Result<i64> {
        let start = offset.max(self.log.first_offset()).min(self.log.next_offset());
        let mut last_zxid = after_zxid;
        for record in self.log.reader().iter_from(start).map_err(log_error)? {
            let record = record.map_err(log_error)?;
            let (header, txn) = read_entry(record.payload())?;
            if header.zxid <= after_zxid {
                continue;
            }
            assert!(header.zxid > last_zxid, "txn log zxids go back at offset {}", record.offset());
            last_zxid = header.zxid;
            apply(&header, &txn);
        }
        self.last_zxid = last_zxid;
        Ok(last_zxid)
    }

    /// Appends encoded txns as one batch (one fdatasync when durable); `last_zxid` is the
    /// zxid of the batch's last txn.
    ///
    /// # Errors
    /// [`Error::Log`] when the write fails.
    ///
    /// # Panics
    /// If `last_zxid` does not move forward.
    pub fn append(&mut self, records: &[&[u8]], last_zxid: i64) -> Result<Range<u64>> {
        assert!(last_zxid > self.last_zxid, "txn log zxid {last_zxid:#x} not increasing");
        let range = self.log.append(records).map_err(log_error)?;
        self.last_zxid = last_zxid;
        Ok(range)
    }

    /// Makes everything appended durable (shutdown with `forceSync=no`).
    ///
    /// # Errors
    /// [`Error::Log`] when the sync fails.
    pub fn sync(&mut self) -> Result<()> {
        self.log.sync().map_err(log_error)
    }

    /// TRUNC: drops every txn with a zxid above `after` (durably).
    ///
    /// # Errors
    /// [`Error::Log`] on a read or truncate failure, [`Error::Decode`] for a bad record.
    pub fn truncate_after_zxid(&mut self, after: i64) -> Result<()> {
        let mut end = self.log.next_offset();
        for record in self.log.reader().iter_from(self.log.first_offset()).map_err(log_error)? {
            let record = record.map_err(log_error)?;
            let (header, _) = read_entry(record.payload())?;
            if header.zxid > after {
                end = record.offset();
                break;
            }
        }
        self.log.truncate_after(end).map_err(log_error)?;
        self.last_zxid = self.last_zxid.min(after);
        Ok(())
    }

    /// SNAP: drops every txn (durably); the offsets go on from where they were cut.
    ///
    /// # Errors
    /// [`Error::Log`] when the truncation fails.
    pub fn clear(&mut self) -> Result<()> {
        self.log.truncate_after(self.log.first_offset()).map_err(log_error)?;
        self.last_zxid = 0;
        Ok(())
    }

    /// Purge: drops segments whose records all lie below `offset`.
    ///
    /// # Errors
    /// [`Error::Log`] when a segment cannot be removed.
    pub fn truncate_before(&mut self, offset: u64) -> Result<()> {
        self.log.truncate_before(offset).map_err(log_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{CreateTxn, DeleteTxn};

    fn header(zxid: i64, txn: &Txn) -> TxnHeader {
        TxnHeader { client_id: 1, cxid: 2, zxid, time_ms: 3, txn_type: txn.op_code().code() }
    }

    #[test]
    fn appends_and_replays_after_a_zxid() {
        let dir = tempfile::tempdir().unwrap();
        let create = Txn::Create(CreateTxn { path: "/a".into(), ..CreateTxn::default() });
        let delete = Txn::Delete(DeleteTxn { path: "/a".into() });
        {
            let mut log = TxnLog::open(dir.path(), true).unwrap();
            let records =
                [encode(&header(1, &create), &create), encode(&header(2, &delete), &delete)];
            let batch: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            assert_eq!(log.append(&batch, 2).unwrap(), 0..2);
        }
        let mut log = TxnLog::open(dir.path(), true).unwrap();
        let mut seen = Vec::new();
        let last = log.replay(0, 1, |header, txn| seen.push((header.zxid, txn.clone()))).unwrap();
        assert_eq!(last, 2);
        assert_eq!(seen, vec![(2, delete)]);
    }
}
