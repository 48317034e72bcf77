//! Block hashes and the hash → block map used for prefix reuse.
//!
//! A [`BlockHash`] names the *content* of one full block together with everything before
//! it (a chained hash, as vLLM's `hash_block_tokens` and mooncake's `hash_ids` are), so
//! two requests share a block only if they share the whole prefix up to and including
//! it. The cache never computes hashes from tokens itself: the engine supplies one hash
//! per full block of a request, built with [`BlockHash::chained`] / [`chain_hashes`] or
//! taken from a trace.
//!
//! All hashing here is fixed-key and written out explicitly, so hashes (and therefore
//! which blocks hit) are identical across runs, platforms and Rust versions. The
//! `HashMap`s in this module are used for lookups only, never iterated in a way that
//! affects output.

use super::block_pool::BlockId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hash of one full KV block and its whole prefix (a chained hash).
///
/// Equal hashes mean equal token prefixes; the cache trusts this and never compares
/// tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockHash(pub u64);

/// Seed of the chain: the "parent" of a request's first block.
const ROOT: u64 = 0x6b76_5f70_7265_6678; // "kv_prefx"
/// Keeps ids apart from parent hashes before they are mixed together.
const ID_DOMAIN: u64 = 0x9e37_79b9_7f4a_7c15;

impl BlockHash {
    /// The hash of a block whose content is identified by `id`, following `parent`
    /// (`None` for the first block of a request).
    ///
    /// `id` can be a trace's per-block hash id or any digest of the block's tokens.
    /// The result depends on the order of the whole chain, is the same on every
    /// platform, and is well mixed even for small sequential ids.
    pub fn chained(parent: Option<BlockHash>, id: u64) -> BlockHash {
        let p = parent.map_or(ROOT, |h| h.0);
        BlockHash(splitmix64(p ^ splitmix64(id ^ ID_DOMAIN)))
    }
}

/// Chained hashes for a sequence of block ids: element `i` covers blocks `0..=i`.
///
/// ```
/// use servesim::engine::kv::{chain_hashes, BlockHash};
/// let h = chain_hashes([7, 8]);
/// assert_eq!(h[1], BlockHash::chained(Some(BlockHash::chained(None, 7)), 8));
/// ```
pub fn chain_hashes(ids: impl IntoIterator<Item = u64>) -> Vec<BlockHash> {
    let mut parent = None;
    ids.into_iter()
        .map(|id| {
            let h = BlockHash::chained(parent, id);
            parent = Some(h);
            h
        })
        .collect()
}

/// The SplitMix64 finaliser: a bijective, well-mixing function on `u64`.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A small fixed-key hasher for integer keys (ids and block hashes).
///
/// Each `write_*` folds the word into the state with a 64×64→128-bit multiply, which
/// spreads small sequential ids over all bits (hashbrown needs good high bits too).
/// Deterministic, unlike `RandomState`; only ever used for lookups.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        let full = u128::from(self.0 ^ n) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        self.0 = (full as u64) ^ ((full >> 64) as u64);
    }
}

/// `BuildHasher` for [`IntHasher`].
pub(crate) type BuildIntHasher = BuildHasherDefault<IntHasher>;

/// Map from a registered block hash to the one block that holds it.
///
/// One-to-one: a hash maps to at most one block, and a block carries at most one hash
/// (recorded in the pool). When a second block fills with content that is already
/// registered (two requests computed the same prefix concurrently), it is simply not
/// registered; vLLM keeps such duplicates too, but they can never be hit while the
/// first copy exists, so dropping them only frees space sooner.
#[derive(Clone, Debug, Default)]
pub(crate) struct PrefixMap {
    map: HashMap<BlockHash, BlockId, BuildIntHasher>,
}

impl PrefixMap {
    /// The block registered under `hash`, if any.
    #[inline]
    pub(crate) fn get(&self, hash: BlockHash) -> Option<BlockId> {
        self.map.get(&hash).copied()
    }

    /// Registers `block` under `hash` unless the hash is already taken; returns whether
    /// it was inserted.
    #[inline]
    pub(crate) fn insert_if_absent(&mut self, hash: BlockHash, block: BlockId) -> bool {
        match self.map.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(block);
                true
            }
        }
    }

    /// Unregisters `hash`, which must currently map to `block`.
    #[inline]
    pub(crate) fn remove(&mut self, hash: BlockHash, block: BlockId) {
        let removed = self.map.remove(&hash);
        debug_assert_eq!(
            removed,
            Some(block),
            "prefix map: evicted block {block:?} was not the one registered under {hash:?}"
        );
    }

    /// Number of registered hashes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every `(hash, block)` pair, in arbitrary order: for invariant checks only.
    pub(crate) fn iter_unordered(&self) -> impl Iterator<Item = (BlockHash, BlockId)> + '_ {
        self.map.iter().map(|(&h, &b)| (h, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    #[test]
    fn chained_hashes_are_pinned_and_order_sensitive() {
        // Pinned values: a change here changes which blocks hit in every golden run.
        let a = BlockHash::chained(None, 1);
        let b = BlockHash::chained(Some(a), 2);
        assert_eq!(a, BlockHash::chained(None, 1));
        assert_ne!(b, BlockHash::chained(Some(BlockHash::chained(None, 2)), 1));
        assert_ne!(a, BlockHash::chained(None, 2));
        assert_eq!(chain_hashes([1, 2]), vec![a, b]);
        assert_eq!(a.0, splitmix64(ROOT ^ splitmix64(1 ^ ID_DOMAIN)));
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn int_hasher_is_deterministic_and_spreads_small_ids() {
        let h = |x: u32| {
            let mut s = IntHasher::default();
            x.hash(&mut s);
            s.finish()
        };
        assert_eq!(h(5), h(5));
        assert_ne!(
            h(1) >> 57,
            h(2) >> 57,
            "top bits must differ for neighbours"
        );
    }

    #[test]
    fn map_is_one_to_one() {
        let mut m = PrefixMap::default();
        let h = BlockHash(42);
        assert!(m.insert_if_absent(h, BlockId::new(3)));
        assert!(!m.insert_if_absent(h, BlockId::new(4)));
        assert_eq!(m.get(h), Some(BlockId::new(3)));
        m.remove(h, BlockId::new(3));
        assert_eq!(m.len(), 0);
    }
}
