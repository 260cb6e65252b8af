//! The numbered constants of ZooKeeper's client protocol, with ZooKeeper's numbers.
//!
//! Each enum mirrors a Java definition and says which: `OpCode` is `ZooDefs.OpCode`,
//! `ErrorCode` is `KeeperException.Code`, `EventType`/`KeeperState` are
//! `Watcher.Event.EventType`/`KeeperState`, `WatcherType` is `Watcher.WatcherType`,
//! `AddWatchMode` is `AddWatchMode`, `CreateMode` is `CreateMode` and `Perms` is
//! `ZooDefs.Perms`. Records keep these fields as raw `i32` (what the wire holds), so an unknown
//! value round-trips and the server decides how to refuse it; `from_code` converts.

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $value:expr,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The number on the wire.
            #[must_use]
            pub const fn code(self) -> i32 {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// The value with number `code`, if ZooKeeper defines one.
            #[must_use]
            pub const fn from_code(code: i32) -> Option<Self> {
                match code {
                    $(x if x == $value => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum! {
    /// `ZooDefs.OpCode`: the `type` of a `RequestHeader` and of a `MultiHeader`.
    OpCode {
        Notification = 0,
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetAcl = 6,
        SetAcl = 7,
        GetChildren = 8,
        Sync = 9,
        Ping = 11,
        GetChildren2 = 12,
        Check = 13,
        Multi = 14,
        Create2 = 15,
        Reconfig = 16,
        CheckWatches = 17,
        RemoveWatches = 18,
        CreateContainer = 19,
        DeleteContainer = 20,
        CreateTtl = 21,
        MultiRead = 22,
        Auth = 100,
        SetWatches = 101,
        Sasl = 102,
        GetEphemerals = 103,
        GetAllChildrenNumber = 104,
        SetWatches2 = 105,
        AddWatch = 106,
        WhoAmI = 107,
        CreateSession = -10,
        CloseSession = -11,
        /// The type of an error result inside a multi response.
        Error = -1,
    }
}

impl OpCode {
    /// Whether ZooKeeper's server accepts this op as a top-level client request
    /// (`Request.isValid`, plus `auth` and `sasl`, which it handles before that check).
    /// `notification`, `check` and `error` are not: the server answers `Unimplemented` and
    /// closes the session.
    #[must_use]
    pub const fn is_valid_request(self) -> bool {
        !matches!(self, OpCode::Notification | OpCode::Check | OpCode::Error)
    }
}

wire_enum! {
    /// `KeeperException.Code`: the `err` of a `ReplyHeader`.
    ErrorCode {
        Ok = 0,
        SystemError = -1,
        RuntimeInconsistency = -2,
        DataInconsistency = -3,
        ConnectionLoss = -4,
        MarshallingError = -5,
        Unimplemented = -6,
        OperationTimeout = -7,
        BadArguments = -8,
        UnknownSession = -12,
        NewConfigNoQuorum = -13,
        ReconfigInProgress = -14,
        ApiError = -100,
        NoNode = -101,
        NoAuth = -102,
        BadVersion = -103,
        NoChildrenForEphemerals = -108,
        NodeExists = -110,
        NotEmpty = -111,
        SessionExpired = -112,
        InvalidCallback = -113,
        InvalidAcl = -114,
        AuthFailed = -115,
        SessionMoved = -118,
        NotReadOnly = -119,
        EphemeralOnLocalSession = -120,
        NoWatcher = -121,
        RequestTimeout = -122,
        ReconfigDisabled = -123,
        SessionClosedRequireSaslAuth = -124,
        QuotaExceeded = -125,
        ThrottledOp = -127,
    }
}

impl ErrorCode {
    /// `RolledBack` in a failed multi's results is `Ok` (0): the op would have succeeded.
    pub const ROLLED_BACK: ErrorCode = ErrorCode::Ok;
}

wire_enum! {
    /// `CreateMode`: the `flags` of a create request.
    CreateMode {
        Persistent = 0,
        Ephemeral = 1,
        PersistentSequential = 2,
        EphemeralSequential = 3,
        Container = 4,
        PersistentWithTtl = 5,
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Whether the node's name gets a sequence suffix.
    #[must_use]
    pub const fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the node dies with its session.
    #[must_use]
    pub const fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    /// Whether the node is a container.
    #[must_use]
    pub const fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }

    /// Whether the node has a time to live.
    #[must_use]
    pub const fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

wire_enum! {
    /// `Watcher.Event.EventType`: the `type` of a `WatcherEvent`.
    EventType {
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

wire_enum! {
    /// `Watcher.Event.KeeperState`: the `state` of a `WatcherEvent`.
    KeeperState {
        Unknown = -1,
        Disconnected = 0,
        NoSyncConnected = 1,
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Expired = -112,
        Closed = 7,
    }
}

wire_enum! {
    /// `AddWatchMode`: the `mode` of an `AddWatchRequest`.
    AddWatchMode {
        Persistent = 0,
        PersistentRecursive = 1,
    }
}

wire_enum! {
    /// `Watcher.WatcherType`: the `type` of `CheckWatchesRequest`/`RemoveWatchesRequest`.
    WatcherType {
        Children = 1,
        Data = 2,
        Any = 3,
        Persistent = 4,
        PersistentRecursive = 5,
    }
}

/// `ZooDefs.Perms`: the bits of an `ACL`'s `perms`.
pub struct Perms;

impl Perms {
    pub const READ: i32 = 1 << 0;
    pub const WRITE: i32 = 1 << 1;
    pub const CREATE: i32 = 1 << 2;
    pub const DELETE: i32 = 1 << 3;
    pub const ADMIN: i32 = 1 << 4;
    pub const ALL: i32 = Self::READ | Self::WRITE | Self::CREATE | Self::DELETE | Self::ADMIN;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_zookeeper() {
        assert_eq!(OpCode::Create2.code(), 15);
        assert_eq!(OpCode::CloseSession.code(), -11);
        assert_eq!(OpCode::from_code(106), Some(OpCode::AddWatch));
        assert_eq!(OpCode::from_code(10), None);
        assert_eq!(ErrorCode::from_code(-127), Some(ErrorCode::ThrottledOp));
        assert_eq!(ErrorCode::from_code(-126), None);
        assert_eq!(ErrorCode::NodeExists.code(), -110);
        assert_eq!(KeeperState::Expired.code(), -112);
        assert_eq!(Perms::ALL, 31);
        assert!(CreateMode::from_code(6).is_some_and(CreateMode::is_sequential));
        assert!(!OpCode::Check.is_valid_request());
    }

    #[test]
    fn codes_are_distinct_and_invert() {
        for &op in OpCode::ALL {
            assert_eq!(OpCode::from_code(op.code()), Some(op));
        }
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ErrorCode::ALL.len(), 32);
    }
}
