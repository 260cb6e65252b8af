//! Keyed state for custom keyed operators: [`ValueState`] (one value per key) and
//! [`MapState`] (a map per key), as Flink's state primitives.
//!
//! State is partitioned by key group, not just by key: each of the shard's key groups has
//! its own hash map. Access costs one extra hash of the key (to find its group), and buys
//! what checkpoints and rescaling need: the state of one key group can be listed
//! ([`ValueState::key_group`]) and restored ([`ValueState::restore_key_group`]) on its own,
//! so a job restored on a different number of shards moves whole groups. A [`KeyScope`]
//! says which groups a shard owns; touching a key of another shard's group is a routing
//! bug and panics.

use super::key_group::{KeyGroups, KeyHashBuilder};
use super::snapshot::KeyGroupWriter;
use super::state_codec::{DecodeResult, StateCodec, StateDecodeError};
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Range;

/// The key groups of one shard: the scope its keyed state lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    key_groups: KeyGroups,
    range: Range<usize>,
    shard: usize,
}

impl KeyScope {
    /// The scope of shard `shard` under `key_groups`.
    pub fn new(key_groups: KeyGroups, shard: usize) -> KeyScope {
        KeyScope { key_groups, range: key_groups.range_of(shard), shard }
    }

    /// How the job's key groups are spread over its shards.
    pub fn key_groups(&self) -> KeyGroups {
        self.key_groups
    }

    /// The shard this scope belongs to.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The key groups the shard owns.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// The key group of `key`.
    pub fn key_group_of<K: Hash + ?Sized>(&self, key: &K) -> usize {
        self.key_groups.key_group(key)
    }

    /// Index of `key`'s group among the shard's groups.
    ///
    /// # Panics
    /// If another shard owns the key's group.
    #[inline]
    fn local_group<K: Hash + ?Sized>(&self, key: &K) -> usize {
        self.local_index(self.key_groups.key_group(key))
    }

    fn local_index(&self, group: usize) -> usize {
        let range = &self.range;
        assert!(range.contains(&group), "key group {group} is not shard {}'s", self.shard);
        group - range.start
    }

    fn maps<M: Default>(&self) -> Vec<M> {
        self.range.clone().map(|_| M::default()).collect()
    }
}

/// One value per key, kept per key group.
#[derive(Debug, Clone)]
pub struct ValueState<K, V> {
    scope: KeyScope,
    groups: Vec<HashMap<K, V, KeyHashBuilder>>,
}

impl<K: Eq + Hash, V> ValueState<K, V> {
    /// Empty state for the key groups of `scope`.
    pub fn new(scope: &KeyScope) -> Self {
        ValueState { scope: scope.clone(), groups: scope.maps() }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.groups[self.scope.local_group(key)].get(key)
    }

    /// The value of `key`, if set, to change in place.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let group = self.scope.local_group(key);
        self.groups[group].get_mut(key)
    }

    /// The value of `key`, set to `default()` first if absent.
    pub fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> &mut V {
        let group = self.scope.local_group(&key);
        self.groups[group].entry(key).or_insert_with(default)
    }

    /// Sets the value of `key`, returning the previous one.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let group = self.scope.local_group(&key);
        self.groups[group].insert(key, value)
    }

    /// Clears the value of `key`, returning it.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let group = self.scope.local_group(key);
        self.groups[group].remove(key)
    }

    /// Keys with a value, over all groups.
    pub fn len(&self) -> usize {
        self.groups.iter().map(HashMap::len).sum()
    }

    /// True when no key has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries of key group `group` (what a snapshot of that group writes).
    ///
    /// # Panics
    /// If the shard does not own `group`.
    pub fn key_group(&self, group: usize) -> impl Iterator<Item = (&K, &V)> {
        self.groups[self.scope.local_index(group)].iter()
    }

    /// Replaces the state of key group `group` by `entries` (restoring a snapshot).
    ///
    /// # Panics
    /// If the shard does not own `group`, or an entry's key belongs to another group.
    pub fn restore_key_group(&mut self, group: usize, entries: impl IntoIterator<Item = (K, V)>) {
        let local = self.scope.local_index(group);
        let map = &mut self.groups[local];
        map.clear();
        for (key, value) in entries {
            assert_eq!(self.scope.key_group_of(&key), group, "entry of another key group");
            map.insert(key, value);
        }
    }
}

type InnerMap<UK, UV> = HashMap<UK, UV, KeyHashBuilder>;

/// A map per key (user key → user value), kept per key group.
#[derive(Debug, Clone)]
pub struct MapState<K, UK, UV> {
    scope: KeyScope,
    groups: Vec<HashMap<K, InnerMap<UK, UV>, KeyHashBuilder>>,
}

impl<K: Eq + Hash, UK: Eq + Hash, UV> MapState<K, UK, UV> {
    /// Empty state for the key groups of `scope`.
    pub fn new(scope: &KeyScope) -> Self {
        MapState { scope: scope.clone(), groups: scope.maps() }
    }

    /// The value under `user_key` in `key`'s map.
    pub fn get(&self, key: &K, user_key: &UK) -> Option<&UV> {
        self.groups[self.scope.local_group(key)].get(key)?.get(user_key)
    }

    /// Sets `user_key` in `key`'s map, returning the previous value.
    pub fn insert(&mut self, key: K, user_key: UK, value: UV) -> Option<UV> {
        let group = self.scope.local_group(&key);
        self.groups[group].entry(key).or_default().insert(user_key, value)
    }

    /// Removes `user_key` from `key`'s map, returning its value.
    pub fn remove(&mut self, key: &K, user_key: &UK) -> Option<UV> {
        let group = self.scope.local_group(key);
        let map = self.groups[group].get_mut(key)?;
        let removed = map.remove(user_key);
        if map.is_empty() {
            self.groups[group].remove(key);
        }
        removed
    }

    /// The entries of `key`'s map.
    pub fn entries(&self, key: &K) -> impl Iterator<Item = (&UK, &UV)> {
        self.groups[self.scope.local_group(key)].get(key).into_iter().flat_map(|map| map.iter())
    }

    /// Entries in `key`'s map.
    pub fn len_of(&self, key: &K) -> usize {
        self.groups[self.scope.local_group(key)].get(key).map_or(0, HashMap::len)
    }

    /// Drops `key`'s whole map.
    pub fn clear(&mut self, key: &K) {
        let group = self.scope.local_group(key);
        self.groups[group].remove(key);
    }

    /// The maps of key group `group` (what a snapshot of that group writes).
    ///
    /// # Panics
    /// If the shard does not own `group`.
    pub fn key_group(&self, group: usize) -> impl Iterator<Item = (&K, &InnerMap<UK, UV>)> {
        self.groups[self.scope.local_index(group)].iter()
    }
}

impl<K: Eq + Hash + StateCodec, V: StateCodec> ValueState<K, V> {
    /// Writes every key group's entries into its buffer of `out`:
    /// `count:u32 | (key | value)*` (see [`snapshot`](super::snapshot)).
    pub fn snapshot_into(&self, out: &mut KeyGroupWriter) {
        for (local, map) in self.groups.iter().enumerate() {
            let buffer = out.buffer(self.scope.range.start + local);
            (map.len() as u32).encode_state(buffer);
            for (key, value) in map {
                key.encode_state(buffer);
                value.encode_state(buffer);
            }
        }
    }

    /// Reads key group `group`'s entries, as `snapshot_into` wrote them, from the front of
    /// `bytes` and adds them.
    ///
    /// # Errors
    /// When the bytes do not decode, or a key belongs to another key group.
    pub fn restore_from(&mut self, group: usize, bytes: &mut &[u8]) -> DecodeResult<()> {
        let count = u32::decode_state(bytes)?;
        let local = self.scope.local_index(group);
        for _ in 0..count {
            let key = K::decode_state(bytes)?;
            let value = V::decode_state(bytes)?;
            check_group(&self.scope, &key, group)?;
            self.groups[local].insert(key, value);
        }
        Ok(())
    }
}

impl<K, UK, UV> MapState<K, UK, UV>
where
    K: Eq + Hash + StateCodec,
    UK: Eq + Hash + StateCodec,
    UV: StateCodec,
{
    /// Writes every key group's maps into its buffer of `out`:
    /// `count:u32 | (key | len:u32 | (user_key | user_value)*)*`.
    pub fn snapshot_into(&self, out: &mut KeyGroupWriter) {
        for (local, maps) in self.groups.iter().enumerate() {
            let buffer = out.buffer(self.scope.range.start + local);
            (maps.len() as u32).encode_state(buffer);
            for (key, map) in maps {
                key.encode_state(buffer);
                (map.len() as u32).encode_state(buffer);
                for (user_key, value) in map {
                    user_key.encode_state(buffer);
                    value.encode_state(buffer);
                }
            }
        }
    }

    /// Reads key group `group`'s maps, as `snapshot_into` wrote them, from the front of
    /// `bytes` and adds them.
    ///
    /// # Errors
    /// When the bytes do not decode, or a key belongs to another key group.
    pub fn restore_from(&mut self, group: usize, bytes: &mut &[u8]) -> DecodeResult<()> {
        let count = u32::decode_state(bytes)?;
        let local = self.scope.local_index(group);
        for _ in 0..count {
            let key = K::decode_state(bytes)?;
            check_group(&self.scope, &key, group)?;
            let entries = u32::decode_state(bytes)?;
            let map = self.groups[local].entry(key).or_default();
            for _ in 0..entries {
                let user_key = UK::decode_state(bytes)?;
                map.insert(user_key, UV::decode_state(bytes)?);
            }
        }
        Ok(())
    }
}

fn check_group<K: Hash>(scope: &KeyScope, key: &K, group: usize) -> DecodeResult<()> {
    let actual = scope.key_group_of(key);
    if actual != group {
        return Err(StateDecodeError(format!("a key of group {actual} in group {group}'s state")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_live_in_their_key_group_and_groups_restore_alone() {
        let groups = KeyGroups::new(16, 2);
        let scopes = [KeyScope::new(groups, 0), KeyScope::new(groups, 1)];
        let mut states = [ValueState::new(&scopes[0]), ValueState::new(&scopes[1])];
        for key in 0u64..200 {
            let shard = groups.shard_of(&key);
            *states[shard].get_or_insert_with(key, || 0) += key;
        }
        assert_eq!(states[0].len() + states[1].len(), 200);
        let group = scopes[1].range().start;
        let saved: Vec<(u64, u64)> = states[1].key_group(group).map(|(k, v)| (*k, *v)).collect();
        assert!(!saved.is_empty());
        let mut restored = ValueState::new(&scopes[1]);
        restored.restore_key_group(group, saved.iter().copied());
        for (key, value) in &saved {
            assert_eq!(restored.get(key), Some(value));
        }
        let foreign = (0u64..).find(|key| groups.shard_of(key) == 0).unwrap();
        let touched = std::panic::catch_unwind(|| restored.get(&foreign).is_some());
        assert!(touched.is_err(), "another shard's key is a routing bug");
    }

    #[test]
    fn map_state_keeps_a_map_per_key() {
        let scope = KeyScope::new(KeyGroups::new(8, 1), 0);
        let mut state = MapState::new(&scope);
        state.insert(1u32, "a", 1);
        state.insert(1, "b", 2);
        state.insert(2, "a", 3);
        assert_eq!(state.get(&1, &"b"), Some(&2));
        assert_eq!(state.len_of(&1), 2);
        assert_eq!(state.remove(&1, &"a"), Some(1));
        assert_eq!(state.entries(&1).count(), 1);
        state.clear(&2);
        assert_eq!(state.len_of(&2), 0);
    }
}
