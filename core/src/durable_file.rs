//! Small files replaced atomically and durably: the commit files of two-phase sinks, state
//! files, a job worker's saved session, a server's epoch files.
//!
//! [`replace`] writes `<path>.tmp`, fsyncs it, renames it over `path` and fsyncs the
//! directory, so after a crash `path` holds either its old bytes or the new ones, never a
//! mix, and a rename that was reported done survives.

use std::fs::File;
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// Slices given to one `writev` (Linux's `IOV_MAX`).
const WRITE_SLICES_MAX: usize = 1024;

/// Replaces `path` with `bytes`, atomically and durably (see the module docs). The
/// directory must exist.
///
/// # Errors
/// [`Error::Io`] naming the step and the file.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace_parts(path, &[bytes])
}

/// Replaces `path` with the concatenation of `parts`, written one after the other without
/// copying them together first (a state file's head and its key groups' buffers).
///
/// # Errors
/// As [`replace`].
pub fn replace_parts(path: &Path, parts: &[&[u8]]) -> Result<(), Error> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let io = |what: &str, error| Error::io(format!("{what} {}", temporary.display()), error);
    let mut file = File::create(&temporary).map_err(|e| io("create", e))?;
    // Gathering writes, straight from the caller's buffers.
    let mut slices: Vec<IoSlice<'_>> =
        parts.iter().filter(|part| !part.is_empty()).map(|part| IoSlice::new(part)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let batch = rest.len().min(WRITE_SLICES_MAX);
        let written = file.write_vectored(&rest[..batch]).map_err(|e| io("write", e))?;
        if written == 0 {
            return Err(io("write", std::io::ErrorKind::WriteZero.into()));
        }
        IoSlice::advance_slices(&mut rest, written);
    }
    file.sync_all().map_err(|e| io("fsync", e))?;
    std::fs::rename(&temporary, path).map_err(|e| io("rename", e))?;
    sync_parent(path)
}

/// Fsyncs the directory holding `path`, making its creation, rename or deletion durable.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn sync_parent(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(|e| Error::io(format!("fsync directory {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("point");
        replace(&path, b"first").unwrap();
        replace(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("point")]);
        let missing = replace(&dir.path().join("no-such-dir/point"), b"x").unwrap_err();
        assert!(missing.to_string().contains("no-such-dir"), "{missing}");
    }
}
