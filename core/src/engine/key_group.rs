//! Key groups: the unit in which keys are assigned to shards.
//!
//! A key hashes into one of `key_groups` groups (the job's maximum parallelism) and each
//! shard owns a contiguous range of groups, as in Flink. The indirection costs one multiply
//! per record but buys rescaling: keyed state is kept (and will be snapshotted) per group,
//! so a job restored on a different number of shards moves whole groups, never rehashes
//! keys. Contiguous ranges make "the groups of shard i" a pair of numbers.
//!
//! The hash is our own ([`KeyHasher`]) rather than std's randomly seeded SipHash: the same
//! key must land in the same group in every process and every run, and SipHash is several
//! times slower than the engine's per-record budget allows.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Range;

/// A fast, deterministic, non-cryptographic hasher (multiply-rotate, finished with a
/// mixing step so both high and low bits depend on every input bit).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasher {
    state: u64,
}

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        mix64(self.state)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(tail) ^ bytes.len() as u64);
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }
}

/// `HashMap` hasher of the engine's keyed state.
pub type KeyHashBuilder = BuildHasherDefault<KeyHasher>;

/// The finaliser of MurmurHash3: every output bit depends on every input bit.
#[inline]
pub fn mix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    value ^= value >> 33;
    value = value.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    value ^ (value >> 33)
}

/// Hashes a key with [`KeyHasher`].
#[inline]
pub fn hash_key<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = KeyHasher::default();
    key.hash(&mut hasher);
    hasher.finish()
}

/// How `key_groups` groups are spread over `shards` shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGroups {
    key_groups: usize,
    shards: usize,
}

impl KeyGroups {
    /// # Panics
    /// If `shards` is zero or exceeds `key_groups` (the job's config validation rules
    /// both out before it gets here).
    pub fn new(key_groups: usize, shards: usize) -> KeyGroups {
        assert!(shards > 0 && shards <= key_groups, "{shards} shards, {key_groups} key groups");
        KeyGroups { key_groups, shards }
    }

    /// The key group of a key. A different mixing of the hash than the state's hash maps
    /// use, so the keys of one shard still spread over all of its maps' buckets.
    #[inline]
    pub fn key_group<K: Hash + ?Sized>(&self, key: &K) -> usize {
        let spread = mix64(hash_key(key) ^ MULTIPLIER);
        ((u128::from(spread) * self.key_groups as u128) >> 64) as usize
    }

    /// The shard owning a key group: group `g` belongs to shard `g * shards / key_groups`.
    #[inline]
    pub fn shard_of_group(&self, key_group: usize) -> usize {
        debug_assert!(key_group < self.key_groups);
        key_group * self.shards / self.key_groups
    }

    /// The shard owning a key (with one shard, without hashing it).
    #[inline]
    pub fn shard_of<K: Hash + ?Sized>(&self, key: &K) -> usize {
        if self.shards == 1 {
            return 0;
        }
        self.shard_of_group(self.key_group(key))
    }

    /// The contiguous range of key groups shard `shard` owns.
    pub fn range_of(&self, shard: usize) -> Range<usize> {
        assert!(shard < self.shards);
        let start = (shard * self.key_groups).div_ceil(self.shards);
        let end = ((shard + 1) * self.key_groups).div_ceil(self.shards);
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_contiguous_cover_all_and_agree_with_shard_of_group() {
        for key_groups in [1, 7, 128, 1000] {
            for shards in 1..=key_groups.min(9) {
                let groups = KeyGroups::new(key_groups, shards);
                let mut next = 0;
                for shard in 0..shards {
                    let range = groups.range_of(shard);
                    assert_eq!(range.start, next);
                    assert!(!range.is_empty(), "{key_groups} groups, {shards} shards");
                    for group in range.clone() {
                        assert_eq!(groups.shard_of_group(group), shard);
                    }
                    next = range.end;
                }
                assert_eq!(next, key_groups);
            }
        }
    }

    #[test]
    fn keys_spread_over_every_group_and_hash_deterministically() {
        let groups = KeyGroups::new(128, 4);
        let mut seen = [0u32; 128];
        for key in 0u64..100_000 {
            seen[groups.key_group(&key)] += 1;
        }
        assert!(seen.iter().all(|&count| count > 500), "{seen:?}");
        assert_eq!(hash_key(&42u64), hash_key(&42u64));
        assert_ne!(hash_key(&42u64), hash_key(&43u64));
    }
}
