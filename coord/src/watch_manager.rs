//! `WatchManager`: which sessions watch which paths, and who to notify when a node changes.
//!
//! Two tables, as in ZooKeeper's `DataTree`: data watches (set by getData and exists) and
//! child watches (set by getChildren). Each entry is (path, session) with a mode:
//!
//! ```text
//! mode      = standard              ; one-shot: removed when it fires
//!           | persistent            ; addWatch PERSISTENT: stays, fires for this path only
//!           | persistent-recursive  ; addWatch PERSISTENT_RECURSIVE: stays, fires for this
//!                                   ; path and every descendant, never NodeChildrenChanged
//! op         events (table ← path)
//! create     NodeCreated (data ← path), NodeChildrenChanged (child ← parent)
//! delete     NodeDeleted (data ← path), NodeDeleted (child ← path, not twice to a session
//!            the data table already notified), NodeChildrenChanged (child ← parent)
//! setData    NodeDataChanged (data ← path)
//! ```
//!
//! `addWatch` puts the entry in both tables. As in ZooKeeper 3.8, a session has one mode per
//! path and table: the last watch added on that path sets it. Each trigger notifies a
//! session at most once. Notifications come out ordered by trigger, then by session id, so
//! runs are deterministic; the driver sends them. Removing a session removes its watches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zabflow_net::jute::{AddWatchMode, EventType, KeeperState, WatcherEvent, WatcherType};

/// A session id (ZooKeeper's `long sessionId`).
pub type SessionId = i64;

/// How a watch behaves when it fires (`WatcherMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherMode {
    Standard,
    Persistent,
    PersistentRecursive,
}

impl From<AddWatchMode> for WatcherMode {
    fn from(mode: AddWatchMode) -> Self {
        match mode {
            AddWatchMode::Persistent => WatcherMode::Persistent,
            AddWatchMode::PersistentRecursive => WatcherMode::PersistentRecursive,
        }
    }
}

/// One event for one session, for the driver to send with xid -1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub session_id: SessionId,
    pub event: WatcherEvent,
}

/// A `WatcherEvent` of a connected session.
#[must_use]
pub fn event(event_type: EventType, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type: event_type.code(),
        state: KeeperState::SyncConnected.code(),
        path: path.to_owned(),
    }
}

/// One table: path → (session → mode), and its reverse index.
#[derive(Debug, Default, Clone)]
struct WatchTable {
    by_path: HashMap<String, BTreeMap<SessionId, WatcherMode>>,
    by_session: HashMap<SessionId, BTreeSet<String>>,
    recursive_count: usize,
}

impl WatchTable {
    fn add(&mut self, path: &str, session_id: SessionId, mode: WatcherMode) {
        let watchers = self.by_path.entry(path.to_owned()).or_default();
        let previous = watchers.insert(session_id, mode);
        if previous == Some(WatcherMode::PersistentRecursive) {
            self.recursive_count -= 1;
        }
        if mode == WatcherMode::PersistentRecursive {
            self.recursive_count += 1;
        }
        self.by_session.entry(session_id).or_default().insert(path.to_owned());
    }

    fn mode(&self, path: &str, session_id: SessionId) -> Option<WatcherMode> {
        self.by_path.get(path).and_then(|watchers| watchers.get(&session_id)).copied()
    }

    fn remove(&mut self, path: &str, session_id: SessionId) -> bool {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(mode) = watchers.remove(&session_id) else {
            return false;
        };
        if watchers.is_empty() {
            self.by_path.remove(path);
        }
        if mode == WatcherMode::PersistentRecursive {
            self.recursive_count -= 1;
        }
        self.forget(session_id, path);
        true
    }

    fn remove_session(&mut self, session_id: SessionId) {
        for path in self.by_session.remove(&session_id).unwrap_or_default() {
            if let Some(watchers) = self.by_path.get_mut(&path) {
                if watchers.remove(&session_id) == Some(WatcherMode::PersistentRecursive) {
                    self.recursive_count -= 1;
                }
                if watchers.is_empty() {
                    self.by_path.remove(&path);
                }
            }
        }
    }

    /// `WatchManager.triggerWatch`: the sessions to notify of `event_type` at `path`,
    /// consuming the one-shot watches that fire. Ancestors are visited only while some
    /// recursive watch exists, and only their recursive watches fire.
    fn trigger(&mut self, path: &str, event_type: EventType) -> BTreeSet<SessionId> {
        let mut fired = BTreeSet::new();
        let mut consumed = Vec::new();
        let children_changed = event_type == EventType::NodeChildrenChanged;
        let mut current = Some(path);
        let mut at_path = true;
        while let Some(watched) = current {
            if let Some(watchers) = self.by_path.get_mut(watched) {
                watchers.retain(|&session_id, &mut mode| match mode {
                    WatcherMode::PersistentRecursive => {
                        if !children_changed {
                            fired.insert(session_id);
                        }
                        true
                    }
                    _ if !at_path => true,
                    WatcherMode::Persistent => {
                        fired.insert(session_id);
                        true
                    }
                    WatcherMode::Standard => {
                        fired.insert(session_id);
                        consumed.push(session_id);
                        false
                    }
                });
                if watchers.is_empty() {
                    self.by_path.remove(watched);
                }
            }
            if self.recursive_count == 0 {
                break;
            }
            at_path = false;
            current = parent_of(watched);
        }
        for session_id in consumed {
            self.forget(session_id, path);
        }
        fired
    }

    /// Drops `path` from a session's reverse index once its watch there is gone.
    fn forget(&mut self, session_id: SessionId, path: &str) {
        if let Some(paths) = self.by_session.get_mut(&session_id) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_session.remove(&session_id);
            }
        }
    }

    fn count(&self) -> usize {
        self.by_path.values().map(BTreeMap::len).sum()
    }
}

/// The parent of an absolute path: `/a/b` → `/a`, `/a` → `/`, `/` → none.
#[must_use]
pub fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/"),
        Some(slash) => Some(&path[..slash]),
        None => None,
    }
}

/// The data and child watch tables of one tree.
#[derive(Debug, Default, Clone)]
pub struct WatchManager {
    data: WatchTable,
    child: WatchTable,
}

impl WatchManager {
    /// An empty manager.
    #[must_use]
    pub fn new() -> Self {
        WatchManager::default()
    }

    /// A one-shot data watch (getData, exists).
    pub fn add_data_watch(&mut self, path: &str, session_id: SessionId) {
        self.data.add(path, session_id, WatcherMode::Standard);
    }

    /// A one-shot child watch (getChildren).
    pub fn add_child_watch(&mut self, path: &str, session_id: SessionId) {
        self.child.add(path, session_id, WatcherMode::Standard);
    }

    /// `addWatch`: a persistent or persistent-recursive watch, in both tables.
    pub fn add_watch(&mut self, path: &str, session_id: SessionId, mode: AddWatchMode) {
        self.data.add(path, session_id, mode.into());
        self.child.add(path, session_id, mode.into());
    }

    /// `removeWatches`: whether a watch of `watcher_type` was removed (false is NoWatcher).
    /// Children, Data and Any remove whatever mode the entry has (ZooKeeper 3.8);
    /// Persistent and PersistentRecursive remove only entries of that mode.
    pub fn remove(&mut self, path: &str, session_id: SessionId, watcher_type: WatcherType) -> bool {
        match watcher_type {
            WatcherType::Children => self.child.remove(path, session_id),
            WatcherType::Data => self.data.remove(path, session_id),
            WatcherType::Any => {
                let child = self.child.remove(path, session_id);
                self.data.remove(path, session_id) | child
            }
            WatcherType::Persistent | WatcherType::PersistentRecursive => {
                if !self.contains(path, session_id, watcher_type) {
                    return false;
                }
                let child = self.child.remove(path, session_id);
                self.data.remove(path, session_id) | child
            }
        }
    }

    /// `checkWatches`: whether the session holds a watch of `watcher_type` on `path`.
    #[must_use]
    pub fn contains(&self, path: &str, session_id: SessionId, watcher_type: WatcherType) -> bool {
        let data = self.data.mode(path, session_id);
        let child = self.child.mode(path, session_id);
        match watcher_type {
            WatcherType::Children => child.is_some(),
            WatcherType::Data => data.is_some(),
            WatcherType::Any => data.is_some() || child.is_some(),
            WatcherType::Persistent => data == Some(WatcherMode::Persistent),
            WatcherType::PersistentRecursive => data == Some(WatcherMode::PersistentRecursive),
        }
    }

    /// Forgets every watch of a closed session.
    pub fn remove_session(&mut self, session_id: SessionId) {
        self.data.remove_session(session_id);
        self.child.remove_session(session_id);
    }

    /// `wchs`'s summary: (sessions holding a watch, distinct watched paths).
    #[must_use]
    pub fn summary(&self) -> (usize, usize) {
        let sessions: BTreeSet<SessionId> =
            self.data.by_session.keys().chain(self.child.by_session.keys()).copied().collect();
        let paths: BTreeSet<&String> =
            self.data.by_path.keys().chain(self.child.by_path.keys()).collect();
        (sessions.len(), paths.len())
    }

    /// Watches held, over both tables (`wchs`).
    #[must_use]
    pub fn watch_count(&self) -> usize {
        self.data.count() + self.child.count()
    }

    /// The events of creating `path` under `parent`.
    pub fn node_created(&mut self, path: &str, parent: &str, out: &mut Vec<Notification>) {
        let created = self.data.trigger(path, EventType::NodeCreated);
        push(out, &created, EventType::NodeCreated, path);
        let changed = self.child.trigger(parent, EventType::NodeChildrenChanged);
        push(out, &changed, EventType::NodeChildrenChanged, parent);
    }

    /// The events of deleting `path` from under `parent`.
    pub fn node_deleted(&mut self, path: &str, parent: &str, out: &mut Vec<Notification>) {
        let deleted = self.data.trigger(path, EventType::NodeDeleted);
        push(out, &deleted, EventType::NodeDeleted, path);
        let child_deleted = self.child.trigger(path, EventType::NodeDeleted);
        let not_yet: BTreeSet<SessionId> = child_deleted.difference(&deleted).copied().collect();
        push(out, &not_yet, EventType::NodeDeleted, path);
        let changed = self.child.trigger(parent, EventType::NodeChildrenChanged);
        push(out, &changed, EventType::NodeChildrenChanged, parent);
    }

    /// The events of setting `path`'s data.
    pub fn node_data_changed(&mut self, path: &str, out: &mut Vec<Notification>) {
        let changed = self.data.trigger(path, EventType::NodeDataChanged);
        push(out, &changed, EventType::NodeDataChanged, path);
    }
}

fn push(out: &mut Vec<Notification>, sessions: &BTreeSet<SessionId>, kind: EventType, path: &str) {
    out.extend(
        sessions.iter().map(|&session_id| Notification { session_id, event: event(kind, path) }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(out: &[Notification]) -> Vec<(SessionId, i32, &str)> {
        out.iter().map(|n| (n.session_id, n.event.event_type, n.event.path.as_str())).collect()
    }

    const CREATED: i32 = 1;
    const DELETED: i32 = 2;
    const DATA: i32 = 3;
    const CHILDREN: i32 = 4;

    #[test]
    fn one_shot_watches_fire_once() {
        let mut watches = WatchManager::new();
        watches.add_data_watch("/a", 1);
        watches.add_child_watch("/", 2);
        let mut out = Vec::new();
        watches.node_created("/a", "/", &mut out);
        assert_eq!(kinds(&out), vec![(1, CREATED, "/a"), (2, CHILDREN, "/")]);
        out.clear();
        watches.node_data_changed("/a", &mut out);
        watches.node_created("/b", "/", &mut out);
        assert!(out.is_empty());
        assert_eq!(watches.watch_count(), 0);
        assert!(!watches.remove("/a", 1, WatcherType::Any));
    }

    #[test]
    fn delete_notifies_a_session_once() {
        let mut watches = WatchManager::new();
        watches.add_data_watch("/a", 1);
        watches.add_child_watch("/a", 1);
        watches.add_child_watch("/a", 2);
        let mut out = Vec::new();
        watches.node_deleted("/a", "/", &mut out);
        assert_eq!(kinds(&out), vec![(1, DELETED, "/a"), (2, DELETED, "/a")]);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut watches = WatchManager::new();
        watches.add_watch("/p", 1, AddWatchMode::Persistent);
        watches.add_watch("/r", 2, AddWatchMode::PersistentRecursive);
        let mut out = Vec::new();
        for _ in 0..2 {
            watches.node_data_changed("/p", &mut out);
        }
        watches.node_created("/p/c", "/p", &mut out);
        watches.node_created("/r/c", "/r", &mut out);
        watches.node_data_changed("/r/c", &mut out);
        watches.node_deleted("/r/c", "/r", &mut out);
        let expected = vec![
            (1, DATA, "/p"),
            (1, DATA, "/p"),
            (1, CHILDREN, "/p"),
            (2, CREATED, "/r/c"),
            (2, DATA, "/r/c"),
            (2, DELETED, "/r/c"),
        ];
        assert_eq!(kinds(&out), expected);
        assert!(watches.contains("/r", 2, WatcherType::PersistentRecursive));
        assert!(!watches.contains("/r", 2, WatcherType::Persistent));
        assert!(!watches.remove("/r", 2, WatcherType::Persistent));
        assert!(watches.remove("/r", 2, WatcherType::PersistentRecursive));
        assert!(watches.remove("/p", 1, WatcherType::Data));
        assert!(watches.contains("/p", 1, WatcherType::Children));
        watches.remove_session(1);
        assert_eq!(watches.watch_count(), 0);
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/"), None);
    }
}
