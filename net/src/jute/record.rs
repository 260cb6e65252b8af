//! `Record`: a jute record, and the records shared by every op.
//!
//! A record is its fields in declaration order, with no tag, padding or count of fields
//! (jute's `BinaryOutputArchive`). The grammar of each record is the field list written next
//! to it, in `zookeeper.jute`'s notation; field names are ZooKeeper's in snake case
//! (`lastZxidSeen` is `last_zxid_seen`, a record's `type` is `op`/`event_type`).
//!
//! ```text
//! Id             = scheme:ustring id:ustring            ; a null id reads as ""
//! ACL            = perms:int id:Id
//! Stat           = czxid:long mzxid:long ctime:long mtime:long version:int cversion:int
//!                  aversion:int ephemeralOwner:long dataLength:int numChildren:int pzxid:long
//! ClientInfo     = authScheme:ustring user:ustring
//! RequestHeader  = xid:int type:int
//! ReplyHeader    = xid:int zxid:long err:int
//! MultiHeader    = type:int done:boolean err:int
//! WatcherEvent   = type:int state:int path:ustring
//! ErrorResponse  = err:int
//! ```
//!
//! Fields stay signed (`int`/`long`), as in Java, because ZooKeeper gives negative values
//! meaning (version -1 matches any version, err codes are negative). A `buffer` that holds
//! znode data keeps null (-1) apart from empty, because ZooKeeper returns a node created with
//! null data as length -1; other buffers read null as empty. A `ustring` ZooKeeper requires
//! is an error when null; a `vector` reads null as empty.

use super::reader::Reader;
use super::writer::Writer;
use crate::error::Result;

/// A jute record: encodes into a [`Writer`], decodes from a [`Reader`].
pub trait Record: Sized {
    /// The fewest bytes an encoding can take; bounds a vector's count before allocation.
    const WIRE_BYTES_MIN: usize;

    /// Appends the record's fields.
    fn write(&self, writer: &mut Writer);

    /// Reads the record's fields.
    ///
    /// # Errors
    /// Any decoding error of its fields.
    fn read(reader: &mut Reader<'_>) -> Result<Self>;

    /// Decodes a record from the start of `bytes`, ignoring anything after it (as ZooKeeper
    /// ignores trailing bytes of a request).
    ///
    /// # Errors
    /// As [`Record::read`].
    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::read(&mut Reader::new(bytes))
    }

    /// Encodes the record alone into a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        self.write(&mut writer);
        writer.into_vec()
    }
}

/// Rust type of a jute field kind.
macro_rules! jute_type {
    (int) => { i32 };
    (long) => { i64 };
    (boolean) => { bool };
    (ustring) => { String };
    (ustring_opt) => { Option<String> };
    (ustring_nullable) => { String };
    (buffer) => { Vec<u8> };
    (buffer_opt) => { Option<Vec<u8>> };
    (vector ustring) => { Vec<String> };
    (vector $record:ident) => { Vec<$record> };
    (record $record:ident) => { $record };
}

/// Smallest encoding of a jute field kind, in bytes.
macro_rules! jute_bytes_min {
    (int) => {
        4
    };
    (long) => {
        8
    };
    (boolean) => {
        1
    };
    (record $record:ident) => {
        <$record as $crate::jute::Record>::WIRE_BYTES_MIN
    };
    ($kind:ident $($record:ident)?) => {
        $crate::constants::LENGTH_PREFIX_BYTES
    };
}

/// Reads one field.
macro_rules! jute_read {
    ($reader:ident, int) => {
        $reader.read_int()?
    };
    ($reader:ident, long) => {
        $reader.read_long()?
    };
    ($reader:ident, boolean) => {
        $reader.read_bool()?
    };
    ($reader:ident, ustring) => {
        $reader.read_ustring()?
    };
    ($reader:ident, ustring_opt) => {
        $reader.read_ustring_opt()?
    };
    ($reader:ident, ustring_nullable) => {
        $reader.read_ustring_opt()?.unwrap_or_default()
    };
    ($reader:ident, buffer) => {
        $reader.read_buffer()?
    };
    ($reader:ident, buffer_opt) => {
        $reader.read_buffer_opt()?
    };
    ($reader:ident, vector ustring) => {
        $reader.read_ustring_vector()?
    };
    ($reader:ident, vector $record:ident) => {
        $reader.read_vector(
            <$record as $crate::jute::Record>::WIRE_BYTES_MIN,
            <$record as $crate::jute::Record>::read,
        )?
    };
    ($reader:ident, record $record:ident) => {
        <$record as $crate::jute::Record>::read($reader)?
    };
}

/// Writes one field.
macro_rules! jute_write {
    ($writer:ident, $value:expr, int) => {
        $writer.write_int($value)
    };
    ($writer:ident, $value:expr, long) => {
        $writer.write_long($value)
    };
    ($writer:ident, $value:expr, boolean) => {
        $writer.write_bool($value)
    };
    ($writer:ident, $value:expr, ustring) => {
        $writer.write_ustring(&$value)
    };
    ($writer:ident, $value:expr, ustring_nullable) => {
        $writer.write_ustring(&$value)
    };
    ($writer:ident, $value:expr, ustring_opt) => {
        $writer.write_ustring_opt($value.as_deref())
    };
    ($writer:ident, $value:expr, buffer) => {
        $writer.write_buffer(&$value)
    };
    ($writer:ident, $value:expr, buffer_opt) => {
        $writer.write_buffer_opt($value.as_deref())
    };
    ($writer:ident, $value:expr, vector ustring) => {
        $writer.write_ustring_vector(&$value)
    };
    ($writer:ident, $value:expr, vector $record:ident) => {
        $writer.write_vector(&$value, |writer, element| {
            <$record as $crate::jute::Record>::write(element, writer)
        })
    };
    ($writer:ident, $value:expr, record $record:ident) => {
        <$record as $crate::jute::Record>::write(&$value, $writer)
    };
}

/// A proptest strategy for one field (tests only).
#[cfg(test)]
macro_rules! jute_strategy {
    (int) => {
        ::proptest::prelude::any::<i32>()
    };
    (long) => {
        ::proptest::prelude::any::<i64>()
    };
    (boolean) => {
        ::proptest::prelude::any::<bool>()
    };
    (ustring) => {
        "\\PC{0,12}"
    };
    (ustring_opt) => {
        ::proptest::option::of("\\PC{0,12}")
    };
    (ustring_nullable) => {
        "\\PC{0,12}"
    };
    (buffer) => {
        ::proptest::collection::vec(::proptest::prelude::any::<u8>(), 0..24)
    };
    (buffer_opt) => {
        ::proptest::option::of(::proptest::collection::vec(::proptest::prelude::any::<u8>(), 0..24))
    };
    (vector ustring) => {
        ::proptest::collection::vec("\\PC{0,12}", 0..4)
    };
    (vector $record:ident) => {
        ::proptest::collection::vec($record::arbitrary(), 0..4)
    };
    (record $record:ident) => {
        $record::arbitrary()
    };
}

/// Defines a record struct with its `Record` impl (and a proptest strategy under test).
macro_rules! jute_record {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$field_meta:meta])* $field:ident : $kind:ident $(<$arg:ident>)?,)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $crate::jute::record::jute_type!($kind $($arg)?),)*
        }

        impl $crate::jute::Record for $name {
            const WIRE_BYTES_MIN: usize =
                0 $(+ $crate::jute::record::jute_bytes_min!($kind $($arg)?))*;

            #[allow(unused_variables)]
            fn write(&self, writer: &mut $crate::jute::Writer) {
                $($crate::jute::record::jute_write!(writer, self.$field, $kind $($arg)?);)*
            }

            #[allow(unused_variables)]
            fn read(reader: &mut $crate::jute::Reader<'_>) -> $crate::error::Result<Self> {
                Ok($name { $($field: $crate::jute::record::jute_read!(reader, $kind $($arg)?),)* })
            }
        }

        #[cfg(test)]
        impl $name {
            #[allow(dead_code)]
            pub(crate) fn arbitrary() -> ::proptest::strategy::BoxedStrategy<Self> {
                use ::proptest::strategy::Strategy;
                ($($crate::jute::record::jute_strategy!($kind $($arg)?),)*)
                    .prop_map(|($($field,)*)| $name { $($field,)* })
                    .boxed()
            }
        }
    };
}

#[cfg(test)]
pub(crate) use jute_strategy;
pub(crate) use {jute_bytes_min, jute_read, jute_record, jute_type, jute_write};

jute_record! {
    /// `Id`: an identity under an auth scheme (`world:anyone`, `digest:user:hash`, `ip:…`).
    /// kazoo writes an empty string as null (its `CREATOR_ALL_ACL` is `auth` with id ""), and
    /// Java's jute reads that as null, so a null `id` decodes as empty here.
    Id { scheme: ustring, id: ustring_nullable, }
}

jute_record! {
    /// `ACL`: the `Perms` bits granted to an `Id`.
    #[allow(clippy::upper_case_acronyms)]
    ACL { perms: int, id: record<Id>, }
}

jute_record! {
    /// `Stat`: a znode's metadata as clients see it.
    Stat {
        czxid: long,
        mzxid: long,
        ctime: long,
        mtime: long,
        version: int,
        cversion: int,
        aversion: int,
        ephemeral_owner: long,
        data_length: int,
        num_children: int,
        pzxid: long,
    }
}

jute_record! {
    /// `ClientInfo`: one identity of a session, as `whoAmI` reports it.
    ClientInfo { auth_scheme: ustring, user: ustring, }
}

jute_record! {
    /// `RequestHeader`: precedes every request after the connect handshake.
    RequestHeader {
        xid: int,
        /// ZooKeeper's `type`: an [`OpCode`](super::OpCode) number.
        op: int,
    }
}

jute_record! {
    /// `ReplyHeader`: precedes every reply and notification.
    ReplyHeader {
        xid: int,
        zxid: long,
        /// An [`ErrorCode`](super::ErrorCode) number; on non-zero, ZooKeeper sends no body
        /// (except for `multi`, whose failures travel in its results).
        err: int,
    }
}

jute_record! {
    /// `MultiHeader`: precedes each op and each result of a multi.
    MultiHeader {
        /// ZooKeeper's `type`: the op code, -1 for an error result or the terminator.
        op: int,
        done: boolean,
        err: int,
    }
}

jute_record! {
    /// `WatcherEvent`: a watch notification, sent with `ReplyHeader.xid` -1.
    WatcherEvent {
        /// ZooKeeper's `type`: an [`EventType`](super::EventType) number.
        event_type: int,
        /// A [`KeeperState`](super::KeeperState) number.
        state: int,
        path: ustring,
    }
}

jute_record! {
    /// `ErrorResponse`: an error result in a multi, and the body of an `addWatch` reply.
    ErrorResponse { err: int, }
}

impl MultiHeader {
    /// The header that ends a multi's op or result list: type -1, done, err -1.
    pub const END: MultiHeader = MultiHeader { op: -1, done: true, err: -1 };
}

impl ACL {
    /// `ZooDefs.Ids.OPEN_ACL_UNSAFE`'s entry: every permission for `world:anyone`.
    #[must_use]
    pub fn open_unsafe() -> Self {
        let id = Id { scheme: "world".to_owned(), id: "anyone".to_owned() };
        ACL { perms: super::Perms::ALL, id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_bytes_min() {
        assert_eq!(Stat::WIRE_BYTES_MIN, 68);
        assert_eq!(ACL::WIRE_BYTES_MIN, 12);
        assert_eq!(ReplyHeader::WIRE_BYTES_MIN, 16);
        assert_eq!(MultiHeader::WIRE_BYTES_MIN, crate::constants::MULTI_HEADER_BYTES);
        assert_eq!(Stat::default().to_bytes().len(), 68);
    }

    #[test]
    fn null_id_reads_as_empty() {
        let bytes = [0, 0, 0, 4, b'a', b'u', b't', b'h', 0xff, 0xff, 0xff, 0xff];
        let id = Id::from_bytes(&bytes).unwrap();
        assert_eq!(id, Id { scheme: "auth".to_owned(), id: String::new() });
    }

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn golden_watcher_event() {
        let event = WatcherEvent { event_type: 3, state: 3, path: "/a".to_owned() };
        let expected = [
            0, 0, 0, 3, // type NodeDataChanged
            0, 0, 0, 3, // state SyncConnected
            0, 0, 0, 2, b'/', b'a', // path "/a"
        ];
        assert_eq!(event.to_bytes(), expected);
    }

    fn round_trip<T: Record + PartialEq + std::fmt::Debug>(value: &T) -> Result<(), TestCaseError> {
        let bytes = value.to_bytes();
        prop_assert_eq!(&T::from_bytes(&bytes).expect("decodes"), value);
        for cut in 0..bytes.len() {
            prop_assert!(T::from_bytes(&bytes[..cut]).is_err());
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn records_round_trip(
            stat in Stat::arbitrary(),
            acl in ACL::arbitrary(),
            info in ClientInfo::arbitrary(),
            header in (RequestHeader::arbitrary(), ReplyHeader::arbitrary(),
                       MultiHeader::arbitrary()),
            event in WatcherEvent::arbitrary(),
        ) {
            round_trip(&stat)?;
            round_trip(&acl)?;
            round_trip(&info)?;
            round_trip(&header.0)?;
            round_trip(&header.1)?;
            round_trip(&header.2)?;
            round_trip(&event)?;
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = Stat::from_bytes(&bytes);
            let _ = ACL::from_bytes(&bytes);
            let _ = WatcherEvent::from_bytes(&bytes);
            let _ = ClientInfo::from_bytes(&bytes);
        }
    }
}
