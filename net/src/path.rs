//! Znode path validation, as ZooKeeper's `PathUtils.validatePath`.
//!
//! ```text
//! path    = "/" | ("/" segment)+
//! segment = char+ , not "." and not ".."
//! char    = any UTF-16 code unit except U+0000, U+0001..U+001F, U+007F..U+009F,
//!           U+D800..U+F8FF (surrogates, so every character above U+FFFF, and the private
//!           use area) and U+FFF0..U+FFFF
//! ```
//!
//! ZooKeeper checks Java strings, whose `char`s are UTF-16 code units; this module checks
//! the same units, so a character outside the Basic Multilingual Plane is refused here as it
//! is there, and reported positions are UTF-16 indexes, as in ZooKeeper's messages. The
//! functions are pure and report the first reason found: the server decides when to call them
//! (ZooKeeper looks up the parent before validating a create's name, so `/missing/bad\x01` is
//! `NoNode` but `/existing/bad\x01` is `BadArguments`).

use std::fmt;

/// Why a path is not a valid znode path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidPath {
    /// The path is empty.
    Empty,
    /// The path does not start with `/`.
    NotAbsolute,
    /// The path ends with `/` and is not the root.
    TrailingSlash,
    /// A U+0000 at this UTF-16 index.
    NullCharacter { index: usize },
    /// Two consecutive `/` end at this index.
    EmptySegment { index: usize },
    /// A `.` or `..` segment ends at this index.
    RelativeSegment { index: usize },
    /// A forbidden character (control, surrogate, private use, U+FFF0..) at this index.
    InvalidCharacter { index: usize },
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidPath::Empty => write!(formatter, "Path length must be > 0"),
            InvalidPath::NotAbsolute => write!(formatter, "Path must start with / character"),
            InvalidPath::TrailingSlash => write!(formatter, "Path must not end with / character"),
            InvalidPath::NullCharacter { index } => {
                write!(formatter, "null character not allowed @{index}")
            }
            InvalidPath::EmptySegment { index } => {
                write!(formatter, "empty node name specified @{index}")
            }
            InvalidPath::RelativeSegment { index } => {
                write!(formatter, "relative paths not allowed @{index}")
            }
            InvalidPath::InvalidCharacter { index } => {
                write!(formatter, "invalid character @{index}")
            }
        }
    }
}

impl std::error::Error for InvalidPath {}

const SLASH: u16 = b'/' as u16;
const DOT: u16 = b'.' as u16;

/// Whether `unit` is in one of ZooKeeper's forbidden ranges (U+0000 is reported apart).
fn is_forbidden(unit: u16) -> bool {
    matches!(unit, 0x0001..=0x001f | 0x007f..=0x009f | 0xd800..=0xf8ff | 0xfff0..=0xffff)
}

/// Whether the segment ends at `index` (end of path or a `/` follows).
fn ends_segment(units: &[u16], index: usize) -> bool {
    units.get(index + 1).is_none_or(|&next| next == SLASH)
}

/// Checks the unit at `index` (≥ 1) given the one before it.
fn check_unit(units: &[u16], index: usize) -> Result<(), InvalidPath> {
    let (unit, previous) = (units[index], units[index - 1]);
    let is_relative =
        |segment_start: usize| units[segment_start] == SLASH && ends_segment(units, index);
    match unit {
        0 => Err(InvalidPath::NullCharacter { index }),
        SLASH if previous == SLASH => Err(InvalidPath::EmptySegment { index }),
        DOT if previous == DOT && index >= 2 && is_relative(index - 2) => {
            Err(InvalidPath::RelativeSegment { index })
        }
        DOT if previous != DOT && is_relative(index - 1) => {
            Err(InvalidPath::RelativeSegment { index })
        }
        unit if is_forbidden(unit) => Err(InvalidPath::InvalidCharacter { index }),
        _ => Ok(()),
    }
}

/// Validates a znode path exactly as `PathUtils.validatePath(String)`.
///
/// # Errors
/// The first [`InvalidPath`] reason, in ZooKeeper's order of checks.
pub fn validate_path(path: &str) -> Result<(), InvalidPath> {
    let units: Vec<u16> = path.encode_utf16().collect();
    match units.as_slice() {
        [] => return Err(InvalidPath::Empty),
        [first, ..] if *first != SLASH => return Err(InvalidPath::NotAbsolute),
        [_] => return Ok(()),
        [.., last] if *last == SLASH => return Err(InvalidPath::TrailingSlash),
        _ => {}
    }
    (1..units.len()).try_for_each(|index| check_unit(&units, index))
}

/// Validates the path of a create as `PathUtils.validatePath(path, isSequential)`: a
/// sequential create validates `path + "1"`, standing in for its suffix, so `/p/x/` is a
/// valid sequential path (it creates `/p/x/0000000000`).
///
/// # Errors
/// As [`validate_path`].
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), InvalidPath> {
    if sequential {
        validate_path(&format!("{path}1"))
    } else {
        validate_path(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        use InvalidPath::*;
        let cases: &[(&str, Result<(), InvalidPath>)] = &[
            ("/", Ok(())),
            ("/a", Ok(())),
            ("/a/b/c", Ok(())),
            ("/existing/child", Ok(())),
            ("/a.b/..c/c../...", Ok(())),
            ("/.a/a./..a", Ok(())),
            ("/zookeeper", Ok(())),
            ("/caf\u{e9}/\u{a0}/\u{ffef}", Ok(())),
            ("", Err(Empty)),
            ("a", Err(NotAbsolute)),
            ("a/b", Err(NotAbsolute)),
            ("../a", Err(NotAbsolute)),
            ("/a/", Err(TrailingSlash)),
            ("/p/x/", Err(TrailingSlash)),
            ("//", Err(TrailingSlash)),
            ("//a", Err(EmptySegment { index: 1 })),
            ("/a//b", Err(EmptySegment { index: 3 })),
            ("/.", Err(RelativeSegment { index: 1 })),
            ("/..", Err(RelativeSegment { index: 2 })),
            ("/a/.", Err(RelativeSegment { index: 3 })),
            ("/a/..", Err(RelativeSegment { index: 4 })),
            ("/a/../b", Err(RelativeSegment { index: 4 })),
            ("/a/./b", Err(RelativeSegment { index: 3 })),
            ("/a\u{0}b", Err(NullCharacter { index: 2 })),
            ("/missing/bad\u{1}", Err(InvalidCharacter { index: 12 })),
            ("/existing/bad\u{1}", Err(InvalidCharacter { index: 13 })),
            ("/a\u{1f}", Err(InvalidCharacter { index: 2 })),
            ("/a\u{7f}", Err(InvalidCharacter { index: 2 })),
            ("/a\u{9f}", Err(InvalidCharacter { index: 2 })),
            ("/a\u{e000}", Err(InvalidCharacter { index: 2 })),
            ("/a\u{f8ff}", Err(InvalidCharacter { index: 2 })),
            ("/a\u{fff0}", Err(InvalidCharacter { index: 2 })),
            ("/a\u{fffd}", Err(InvalidCharacter { index: 2 })),
            ("/\u{1f600}", Err(InvalidCharacter { index: 1 })),
            ("/\u{e9}\u{1}", Err(InvalidCharacter { index: 2 })),
        ];
        for (path, expected) in cases {
            assert_eq!(validate_path(path), *expected, "path {path:?}");
        }
    }

    #[test]
    fn sequential_creates_validate_with_a_suffix() {
        assert_eq!(validate_create_path("/p/x/", true), Ok(()));
        assert_eq!(validate_create_path("/p/x-", true), Ok(()));
        assert_eq!(validate_create_path("/p/x/", false), Err(InvalidPath::TrailingSlash));
        assert_eq!(validate_create_path("/", true), Ok(()));
        assert_eq!(validate_create_path("/p//", true), Err(InvalidPath::EmptySegment { index: 3 }));
        assert_eq!(validate_create_path("/p/.", true), Ok(()));
        assert_eq!(
            validate_create_path("/p/bad\u{1}", true),
            Err(InvalidPath::InvalidCharacter { index: 6 })
        );
        let reason = validate_path("/a/..").unwrap_err().to_string();
        assert_eq!(reason, "relative paths not allowed @4");
    }

    proptest! {
        #[test]
        fn never_panics(path in "\\PC{0,12}|[/.a\u{0}\u{1}]{0,8}") {
            let _ = validate_path(&path);
            let _ = validate_create_path(&path, true);
        }
    }
}
