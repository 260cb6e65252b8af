//! `WatchRegistry`: the watches a session holds on the server, as the client knows them.
//!
//! ZooKeeper keeps watches in the server's memory, so a client must remember them itself to
//! re-register them (`setWatches2`) when it reconnects, possibly to another server. The
//! registry learns of a watch from the successful reply to the request that set it, exactly
//! as ZooKeeper's `ZKWatchManager` does: `getData` sets a data watch; `exists` sets a data
//! watch when the node exists and an exist watch when it does not (`NoNode`);
//! `getChildren(2)` sets a child watch; `addWatch` a persistent or persistent-recursive one.
//! A one-shot watch leaves the registry when its event arrives; persistent ones stay until
//! `removeWatches`. The registry is pure: no I/O, no clock.

use std::collections::BTreeSet;

use crate::constants::CLIENT_SET_WATCHES_BYTES_MAX;
use crate::jute::{AddWatchMode, ErrorCode, EventType, Request, SetWatches2, WatcherType};

/// The watch a request sets (or removes) once it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WatchRegistration {
    Data(String),
    Exists(String),
    Child(String),
    Persistent(String),
    PersistentRecursive(String),
    Remove(String, WatcherType),
}

impl WatchRegistration {
    /// The registration `request` asks for, if any.
    pub(crate) fn of(request: &Request) -> Option<WatchRegistration> {
        let registration = match request {
            Request::GetData(get) if get.watch => WatchRegistration::Data(get.path.clone()),
            Request::Exists(exists) if exists.watch => {
                WatchRegistration::Exists(exists.path.clone())
            }
            Request::GetChildren(get) if get.watch => WatchRegistration::Child(get.path.clone()),
            Request::GetChildren2(get) if get.watch => WatchRegistration::Child(get.path.clone()),
            Request::AddWatch(add) => match AddWatchMode::from_code(add.mode)? {
                AddWatchMode::Persistent => WatchRegistration::Persistent(add.path.clone()),
                AddWatchMode::PersistentRecursive => {
                    WatchRegistration::PersistentRecursive(add.path.clone())
                }
            },
            Request::RemoveWatches(remove) => WatchRegistration::Remove(
                remove.path.clone(),
                WatcherType::from_code(remove.watcher_type)?,
            ),
            _ => return None,
        };
        Some(registration)
    }
}

/// Picks one of the watch lists of a `setWatches2` record.
type WatchList = fn(&mut SetWatches2) -> &mut Vec<String>;

/// Paths with a watch of each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WatchRegistry {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    persistent_recursive: BTreeSet<String>,
}

impl WatchRegistry {
    /// Records the outcome of a request that carried `registration`; `err` is its reply's
    /// error code.
    pub(crate) fn on_reply(&mut self, registration: WatchRegistration, err: i32) {
        let ok = err == ErrorCode::Ok.code();
        match registration {
            WatchRegistration::Data(path) if ok => _ = self.data.insert(path),
            WatchRegistration::Exists(path) if ok => _ = self.data.insert(path),
            WatchRegistration::Exists(path) if err == ErrorCode::NoNode.code() => {
                self.exist.insert(path);
            }
            WatchRegistration::Child(path) if ok => _ = self.child.insert(path),
            WatchRegistration::Persistent(path) if ok => _ = self.persistent.insert(path),
            WatchRegistration::PersistentRecursive(path) if ok => {
                self.persistent_recursive.insert(path);
            }
            WatchRegistration::Remove(path, watcher_type) if ok => self.remove(&path, watcher_type),
            _ => {}
        }
    }

    fn remove(&mut self, path: &str, watcher_type: WatcherType) {
        let (children, data, persistent) = match watcher_type {
            WatcherType::Children => (true, false, false),
            WatcherType::Data => (false, true, false),
            WatcherType::Any => (true, true, true),
            WatcherType::Persistent | WatcherType::PersistentRecursive => (false, false, true),
        };
        if children {
            self.child.remove(path);
        }
        if data {
            self.data.remove(path);
            self.exist.remove(path);
        }
        if persistent {
            self.persistent.remove(path);
            self.persistent_recursive.remove(path);
        }
    }

    /// Drops the one-shot watches an event of `event_type` on `path` has fired.
    pub(crate) fn on_event(&mut self, event_type: EventType, path: &str) {
        match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.data.remove(path);
                self.exist.remove(path);
            }
            EventType::NodeDeleted => {
                self.data.remove(path);
                self.exist.remove(path);
                self.child.remove(path);
            }
            EventType::NodeChildrenChanged => _ = self.child.remove(path),
            _ => {}
        }
    }

    /// Whether no watch is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.persistent_recursive.is_empty()
    }

    /// The `setWatches2` records that re-register every watch after changes up to
    /// `relative_zxid`, each under [`CLIENT_SET_WATCHES_BYTES_MAX`] bytes of paths.
    pub(crate) fn set_watches(&self, relative_zxid: i64) -> Vec<SetWatches2> {
        let empty = SetWatches2 { relative_zxid, ..SetWatches2::default() };
        let mut records = vec![empty.clone()];
        let mut record_bytes = 0;
        let lists: [(&BTreeSet<String>, WatchList); 5] = [
            (&self.data, |record| &mut record.data_watches),
            (&self.exist, |record| &mut record.exist_watches),
            (&self.child, |record| &mut record.child_watches),
            (&self.persistent, |record| &mut record.persistent_watches),
            (&self.persistent_recursive, |record| &mut record.persistent_recursive_watches),
        ];
        for (paths, list) in lists {
            for path in paths {
                if record_bytes + path.len() + 4 > CLIENT_SET_WATCHES_BYTES_MAX {
                    records.push(empty.clone());
                    record_bytes = 0;
                }
                record_bytes += path.len() + 4;
                list(records.last_mut().expect("never empty")).push(path.clone());
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::{AddWatchRequest, ExistsRequest, GetDataRequest};

    #[test]
    fn exists_registers_by_outcome_and_one_shot_watches_fire_once() {
        let mut registry = WatchRegistry::default();
        let exists = Request::Exists(ExistsRequest { path: "/a".into(), watch: true });
        let registration = WatchRegistration::of(&exists).unwrap();
        registry.on_reply(registration.clone(), ErrorCode::NoNode.code());
        assert!(registry.exist.contains("/a") && registry.data.is_empty());
        registry.on_event(EventType::NodeCreated, "/a");
        assert!(registry.is_empty());
        registry.on_reply(registration, 0);
        assert!(registry.data.contains("/a"));
        let unwatched = Request::GetData(GetDataRequest { path: "/b".into(), watch: false });
        assert_eq!(WatchRegistration::of(&unwatched), None);
        registry.on_reply(WatchRegistration::Child("/a".into()), ErrorCode::NoNode.code());
        assert!(registry.child.is_empty());
        registry.on_event(EventType::NodeDeleted, "/a");
        assert!(registry.is_empty());
    }

    #[test]
    fn persistent_watches_stay_until_removed() {
        let mut registry = WatchRegistry::default();
        let add = Request::AddWatch(AddWatchRequest { path: "/p".into(), mode: 1 });
        registry.on_reply(WatchRegistration::of(&add).unwrap(), 0);
        registry.on_event(EventType::NodeDeleted, "/p");
        assert!(registry.persistent_recursive.contains("/p"));
        let records = registry.set_watches(7);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].relative_zxid, 7);
        assert_eq!(records[0].persistent_recursive_watches, ["/p"]);
        registry.on_reply(WatchRegistration::Remove("/p".into(), WatcherType::Any), 0);
        assert!(registry.is_empty());
    }

    #[test]
    fn set_watches_splits_large_lists() {
        let mut registry = WatchRegistry::default();
        let path_bytes = 1000;
        let count = 3 * CLIENT_SET_WATCHES_BYTES_MAX / path_bytes;
        for index in 0..count {
            let path = format!("/{index:0width$}", width = path_bytes - 1);
            registry.on_reply(WatchRegistration::Data(path), 0);
        }
        let records = registry.set_watches(1);
        assert!(records.len() >= 3);
        let total: usize = records.iter().map(|record| record.data_watches.len()).sum();
        assert_eq!(total, count);
        for record in &records {
            let bytes: usize = record.data_watches.iter().map(|path| path.len() + 4).sum();
            assert!(bytes <= CLIENT_SET_WATCHES_BYTES_MAX);
        }
    }
}
