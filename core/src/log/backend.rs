//! The two ways a log writes: io_uring and plain `pwrite` + `fdatasync`.
//!
//! A backend writes one contiguous run of frames at a position of a segment file and, when
//! asked, makes it durable before returning. The io_uring backend puts the write and an
//! `fdatasync` (`IORING_FSYNC_DATASYNC`) linked behind it (`IOSQE_IO_LINK`) into one
//! submission: one system call per batch, and the sync runs only if the write completed in
//! full. A short write breaks the link (the sync completes with `ECANCELED`); the rest is
//! then submitted again with its own linked sync. Every completion is checked.
//!
//! The kernel may refuse io_uring (`kernel.io_uring_disabled`, seccomp filters, old
//! kernels); [`probe_uring`] finds out by creating a ring, checking the opcodes and running
//! a no-op through it, so `BackendChoice::Auto` can fall back to `pwrite`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;

use io_uring::{opcode, squeue, types, IoUring, Probe};

use super::BackendKind;
use crate::constants::URING_ENTRIES;

/// Writes frames to segment files.
pub(crate) trait Backend: Send {
    fn kind(&self) -> BackendKind;

    /// Writes all of `bytes` at `position` of `file`; with `sync`, also fdatasyncs it.
    fn write_at(&mut self, file: &File, position: u64, bytes: &[u8], sync: bool) -> io::Result<()>;

    /// Fdatasyncs `file`.
    fn sync(&mut self, file: &File) -> io::Result<()>;
}

/// `pwrite` in a loop (short writes continue), then `fdatasync`.
pub(crate) struct PwriteBackend;

impl Backend for PwriteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Pwrite
    }

    fn write_at(&mut self, file: &File, position: u64, bytes: &[u8], sync: bool) -> io::Result<()> {
        file.write_all_at(bytes, position)?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    }

    fn sync(&mut self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
}

const USER_DATA_WRITE: u64 = 1;
const USER_DATA_SYNC: u64 = 2;

/// One io_uring per log, used synchronously: submit, wait, check.
pub(crate) struct UringBackend {
    ring: IoUring,
}

/// Creates a ring if the kernel allows io_uring with the opcodes the log needs.
pub(crate) fn probe_uring() -> io::Result<UringBackend> {
    let mut ring = IoUring::new(URING_ENTRIES)?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    for (code, name) in [(opcode::Write::CODE, "write"), (opcode::Fsync::CODE, "fsync")] {
        if !probe.is_supported(code) {
            let message = format!("io_uring lacks the {name} opcode");
            return Err(io::Error::new(io::ErrorKind::Unsupported, message));
        }
    }
    let nop = opcode::Nop::new().build().user_data(0);
    // SAFETY: a no-op references no memory.
    unsafe { ring.submission().push(&nop) }.map_err(io::Error::other)?;
    let results = submit_and_reap(&mut ring, 1)?;
    if results[0].1 < 0 {
        return Err(io::Error::from_raw_os_error(-results[0].1));
    }
    Ok(UringBackend { ring })
}

/// Submits what is queued and waits for exactly `count` completions: (user_data, result).
fn submit_and_reap(ring: &mut IoUring, count: usize) -> io::Result<Vec<(u64, i32)>> {
    let mut results = Vec::with_capacity(count);
    while results.len() < count {
        match ring.submit_and_wait(count - results.len()) {
            Ok(_) => {}
            Err(error) if error.raw_os_error() == Some(libc::EINTR) => continue,
            Err(error) => return Err(error),
        }
        results.extend(ring.completion().map(|entry| (entry.user_data(), entry.result())));
    }
    assert_eq!(results.len(), count, "more completions than submissions");
    Ok(results)
}

impl UringBackend {
    /// One submission: a write of `bytes` and, if `sync`, a linked fdatasync. Returns the
    /// bytes written (possibly short) once both completions are in.
    fn submit_write(
        &mut self,
        file: &File,
        position: u64,
        bytes: &[u8],
        sync: bool,
    ) -> io::Result<usize> {
        let fd = types::Fd(file.as_raw_fd());
        let length = u32::try_from(bytes.len()).expect("a write never exceeds a segment");
        let mut write = opcode::Write::new(fd, bytes.as_ptr(), length)
            .offset(position)
            .build()
            .user_data(USER_DATA_WRITE);
        if sync {
            write = write.flags(squeue::Flags::IO_LINK);
        }
        let fsync = opcode::Fsync::new(fd)
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(USER_DATA_SYNC);
        let count = if sync { 2 } else { 1 };
        {
            let mut submission = self.ring.submission();
            // SAFETY: `bytes` outlives the operation: `submit_and_reap` below waits for
            // every completion of this submission before this function returns, even on
            // error, so the kernel never reads the buffer after the borrow ends.
            unsafe { submission.push(&write) }.map_err(io::Error::other)?;
            if sync {
                // SAFETY: an fsync references no memory.
                unsafe { submission.push(&fsync) }.map_err(io::Error::other)?;
            }
        }
        let results = submit_and_reap(&mut self.ring, count)?;
        written_bytes(&results, bytes.len())
    }
}

/// Interprets the completions of one write (+ sync) submission.
fn written_bytes(results: &[(u64, i32)], requested: usize) -> io::Result<usize> {
    let write =
        results.iter().find(|(data, _)| *data == USER_DATA_WRITE).expect("write completion").1;
    if write < 0 {
        return Err(io::Error::from_raw_os_error(-write));
    }
    if write == 0 && requested > 0 {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "io_uring write wrote nothing"));
    }
    let written = write as usize;
    assert!(written <= requested, "kernel wrote more than asked");
    if let Some(&(_, sync)) = results.iter().find(|(data, _)| *data == USER_DATA_SYNC) {
        // A short write cancels the linked sync; the caller resubmits the rest with a sync.
        let cancelled_by_short_write = sync == -libc::ECANCELED && written < requested;
        if sync < 0 && !cancelled_by_short_write {
            return Err(io::Error::from_raw_os_error(-sync));
        }
    }
    Ok(written)
}

impl Backend for UringBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }

    fn write_at(&mut self, file: &File, position: u64, bytes: &[u8], sync: bool) -> io::Result<()> {
        if bytes.is_empty() {
            return if sync { self.sync(file) } else { Ok(()) };
        }
        let mut done = 0usize;
        while done < bytes.len() {
            done += self.submit_write(file, position + done as u64, &bytes[done..], sync)?;
        }
        Ok(())
    }

    fn sync(&mut self, file: &File) -> io::Result<()> {
        let fd = types::Fd(file.as_raw_fd());
        let fsync = opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build();
        // SAFETY: an fsync references no memory.
        unsafe { self.ring.submission().push(&fsync.user_data(USER_DATA_SYNC)) }
            .map_err(io::Error::other)?;
        let results = submit_and_reap(&mut self.ring, 1)?;
        match results[0].1 {
            result if result < 0 => Err(io::Error::from_raw_os_error(-result)),
            _ => Ok(()),
        }
    }
}
