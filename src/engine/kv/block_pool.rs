//! The flat block pool: per-block metadata, the free list, and the LRU of evictable
//! cached blocks.
//!
//! Every block is in exactly one of three states, derived from its metadata:
//!
//! | state     | `ref_cnt` | `hash`  | lives in                                  |
//! |-----------|-----------|---------|-------------------------------------------|
//! | free      | 0         | `None`  | `free` (a stack), or the LRU list under [`EvictionOrder::FreeQueue`] once it has been used |
//! | evictable | 0         | `Some`  | the intrusive LRU list (head = evict next)|
//! | used      | ≥ 1       | any     | the block tables of live sequences        |
//!
//! Under [`EvictionOrder::FreeQueue`] (vLLM V1's `FreeKVCacheBlockQueue`) every released
//! block joins the LRU list, cached or not, so a block freed earlier is handed out
//! earlier whatever its content; the `free` stack then holds only blocks never used.
//!
//! The LRU is a doubly-linked list threaded through `BlockMeta::{prev, next}`, so a
//! cached block that gets hit again is unlinked from the middle in O(1) (vLLM's
//! `FreeKVCacheBlockQueue` does the same). All work is per block; nothing is per token.
//!
//! Blocks are materialised when first handed out: a pool of `n` blocks starts with no
//! metadata, and the blocks never used yet are the indices from `blocks.len()` to `n`,
//! handed out in index order after any released free block. A replay touches memory
//! for the blocks it uses, not for the whole KV cache (a 192 GB GPU holds hundreds of
//! thousands of blocks, and a short static batch uses a few hundred); the order blocks
//! are handed out in is that of a pool whose free stack starts with every block
//! (`tests::matches_a_pool_that_lists_every_block_up_front`).
//!
//! The pool knows nothing about sequences or the prefix map: when it evicts a block it
//! hands the old hash back to the caller, which unregisters it.

use super::prefix::BlockHash;
use super::EvictionOrder;

/// Index of a physical KV block in the pool (`0..num_blocks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(u32);

impl BlockId {
    pub(crate) const fn new(index: u32) -> Self {
        BlockId(index)
    }
    /// The block's index in the pool.
    pub const fn index(self) -> u32 {
        self.0
    }
}

/// "No block" in the intrusive list links.
const NIL: u32 = u32::MAX;

/// Per-block metadata.
#[derive(Clone, Copy, Debug)]
struct BlockMeta {
    /// Number of live sequences holding the block (counting repeats).
    ref_cnt: u32,
    /// Registered content hash: `Some` iff the block is in the prefix map.
    hash: Option<BlockHash>,
    /// LRU neighbours while evictable; `NIL` otherwise.
    prev: u32,
    next: u32,
}

/// Fixed-size pool of KV blocks with reference counts.
#[derive(Clone, Debug)]
pub(crate) struct BlockPool {
    /// Metadata of the blocks handed out at least once (`0..blocks.len()`).
    blocks: Vec<BlockMeta>,
    /// Size of the pool; blocks `blocks.len()..num_blocks` have never been used.
    num_blocks: u32,
    /// Released blocks with no references and no hash, popped from the back before any
    /// never-used block.
    free: Vec<BlockId>,
    /// Least recently freed evictable block (evicted first).
    lru_head: u32,
    /// Most recently freed evictable block.
    lru_tail: u32,
    lru_len: u32,
    /// Blocks on the LRU list that carry a hash (all of them under `FreeFirst`).
    lru_hashed: u32,
    /// Where released blocks without a hash go.
    order: EvictionOrder,
}

impl BlockPool {
    /// A pool of `num_blocks` free blocks.
    pub(crate) fn new(num_blocks: u32, order: EvictionOrder) -> Self {
        assert!(
            num_blocks < NIL,
            "KV pool of {num_blocks} blocks is too large (max {})",
            NIL - 1
        );
        BlockPool {
            blocks: Vec::new(),
            num_blocks,
            free: Vec::new(),
            lru_head: NIL,
            lru_tail: NIL,
            lru_len: 0,
            lru_hashed: 0,
            order,
        }
    }

    /// Total number of blocks.
    #[inline]
    pub(crate) fn num_blocks(&self) -> u32 {
        self.num_blocks
    }

    /// Blocks never handed out yet.
    #[inline]
    fn num_fresh(&self) -> u32 {
        self.num_blocks - self.blocks.len() as u32
    }

    /// Blocks that can be handed out now: free (released or never used) plus evictable.
    #[inline]
    pub(crate) fn num_available(&self) -> u32 {
        self.free.len() as u32 + self.num_fresh() + self.lru_len
    }

    /// Evictable blocks (no references, cached content).
    #[inline]
    pub(crate) fn num_evictable(&self) -> u32 {
        self.lru_hashed
    }

    /// Live references to `block`.
    #[inline]
    pub(crate) fn ref_cnt(&self, block: BlockId) -> u32 {
        self.blocks.get(block.0 as usize).map_or(0, |m| m.ref_cnt)
    }

    /// The hash registered for `block`, if any.
    #[inline]
    pub(crate) fn hash(&self, block: BlockId) -> Option<BlockHash> {
        self.blocks.get(block.0 as usize).and_then(|m| m.hash)
    }

    /// Hands out a block with one reference: a never-used (or, under `FreeFirst`, free)
    /// one if there is any, otherwise the least recently freed one on the LRU list. Returns the block and, when it was evicted,
    /// the hash the caller must unregister. `None` if nothing is available.
    #[inline]
    pub(crate) fn alloc(&mut self) -> Option<(BlockId, Option<BlockHash>)> {
        let (block, evicted) = if let Some(b) = self.free.pop() {
            (b, None)
        } else if self.num_fresh() > 0 {
            let b = BlockId(self.blocks.len() as u32);
            self.blocks.push(BlockMeta {
                ref_cnt: 0,
                hash: None,
                prev: NIL,
                next: NIL,
            });
            (b, None)
        } else if self.lru_head != NIL {
            let b = BlockId(self.lru_head);
            self.lru_unlink(b);
            (b, self.blocks[b.0 as usize].hash.take())
        } else {
            return None;
        };
        let m = &mut self.blocks[block.0 as usize];
        debug_assert_eq!(m.ref_cnt, 0, "allocated {block:?} while referenced");
        m.ref_cnt = 1;
        Some((block, evicted))
    }

    /// Adds a reference to a cached block (a prefix hit), taking it off the LRU if it
    /// was evictable.
    #[inline]
    pub(crate) fn touch(&mut self, block: BlockId) {
        let m = self.blocks[block.0 as usize];
        if m.ref_cnt == 0 {
            debug_assert!(m.hash.is_some(), "touched {block:?} which is free");
            self.lru_unlink(block);
        }
        self.blocks[block.0 as usize].ref_cnt += 1;
    }

    /// Records the hash under which a referenced block was registered.
    #[inline]
    pub(crate) fn set_hash(&mut self, block: BlockId, hash: BlockHash) {
        let m = &mut self.blocks[block.0 as usize];
        debug_assert!(m.ref_cnt > 0 && m.hash.is_none(), "set_hash on {block:?}");
        m.hash = Some(hash);
    }

    /// Drops one reference. At zero the block is appended at the MRU end of the LRU
    /// list if it has a hash or the order is `FreeQueue`, and goes on the free stack
    /// otherwise.
    #[inline]
    pub(crate) fn release(&mut self, block: BlockId) {
        let m = &mut self.blocks[block.0 as usize];
        debug_assert!(m.ref_cnt > 0, "double free of {block:?}");
        m.ref_cnt -= 1;
        if m.ref_cnt == 0 {
            if m.hash.is_some() || self.order == EvictionOrder::FreeQueue {
                self.lru_push_back(block);
            } else {
                self.free.push(block);
            }
        }
    }

    fn lru_push_back(&mut self, block: BlockId) {
        let i = block.0;
        let tail = self.lru_tail;
        {
            let m = &mut self.blocks[i as usize];
            m.prev = tail;
            m.next = NIL;
        }
        if tail == NIL {
            self.lru_head = i;
        } else {
            self.blocks[tail as usize].next = i;
        }
        self.lru_tail = i;
        self.lru_len += 1;
        self.lru_hashed += u32::from(self.blocks[i as usize].hash.is_some());
    }

    fn lru_unlink(&mut self, block: BlockId) {
        let BlockMeta { prev, next, .. } = self.blocks[block.0 as usize];
        if prev == NIL {
            self.lru_head = next;
        } else {
            self.blocks[prev as usize].next = next;
        }
        if next == NIL {
            self.lru_tail = prev;
        } else {
            self.blocks[next as usize].prev = prev;
        }
        let m = &mut self.blocks[block.0 as usize];
        m.prev = NIL;
        m.next = NIL;
        self.lru_len -= 1;
        self.lru_hashed -= u32::from(m.hash.is_some());
    }

    /// Blocks on the LRU list (evictable ones, and under `FreeQueue` released free
    /// ones too), from the next to be handed out to the last.
    pub(crate) fn lru_order(&self) -> impl Iterator<Item = BlockId> + '_ {
        let mut cur = self.lru_head;
        std::iter::from_fn(move || {
            (cur != NIL).then(|| {
                let b = BlockId(cur);
                cur = self.blocks[cur as usize].next;
                b
            })
        })
    }

    /// Panics unless the free list and LRU hold exactly the unreferenced blocks used so
    /// far, each once, in the list their hash says, with consistent links and counts.
    pub(crate) fn check_lists(&self) {
        let n = self.blocks.len();
        assert!(
            n <= self.num_blocks as usize,
            "more blocks used than the pool has"
        );
        let mut seen = vec![false; n];
        for &b in &self.free {
            let m = &self.blocks[b.0 as usize];
            assert!(!seen[b.0 as usize], "{b:?} is on the free list twice");
            seen[b.0 as usize] = true;
            assert_eq!(m.ref_cnt, 0, "{b:?} is both free and referenced");
            assert!(m.hash.is_none(), "{b:?} is on the free list with a hash");
        }
        let mut prev = NIL;
        let mut len = 0u32;
        let mut hashed = 0u32;
        for b in self.lru_order() {
            let m = &self.blocks[b.0 as usize];
            assert!(
                !seen[b.0 as usize],
                "{b:?} is on the LRU twice or on both lists"
            );
            seen[b.0 as usize] = true;
            assert_eq!(m.ref_cnt, 0, "{b:?} is both evictable and referenced");
            assert!(
                m.hash.is_some() || self.order == EvictionOrder::FreeQueue,
                "{b:?} is on the LRU without a hash"
            );
            hashed += u32::from(m.hash.is_some());
            assert_eq!(m.prev, prev, "LRU back-link of {b:?} is broken");
            prev = b.0;
            len += 1;
            assert!(len as usize <= n, "LRU has a cycle");
        }
        assert_eq!(prev, self.lru_tail, "LRU tail is not the last block");
        assert_eq!(len, self.lru_len, "LRU length counter is wrong");
        assert_eq!(hashed, self.lru_hashed, "LRU cached-block counter is wrong");
        let referenced = self.blocks.iter().filter(|m| m.ref_cnt > 0).count();
        for (i, m) in self.blocks.iter().enumerate() {
            if m.ref_cnt == 0 {
                assert!(seen[i], "block {i} is unreferenced but on no list (leaked)");
            }
        }
        assert_eq!(
            self.free.len() + len as usize + referenced,
            n,
            "free + evictable + referenced != blocks used so far"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The pool as first written, the oracle of the lazily filled one: every block's
    /// metadata and the whole free stack (block 0 on top) from the start, the LRU as a
    /// plain list.
    struct EagerPool {
        refs: Vec<u32>,
        hash: Vec<Option<BlockHash>>,
        free: Vec<u32>,
        lru: Vec<u32>,
        order: EvictionOrder,
    }

    impl EagerPool {
        fn new(n: u32, order: EvictionOrder) -> Self {
            EagerPool {
                refs: vec![0; n as usize],
                hash: vec![None; n as usize],
                free: (0..n).rev().collect(),
                lru: Vec::new(),
                order,
            }
        }
        fn alloc(&mut self) -> Option<(BlockId, Option<BlockHash>)> {
            let (b, evicted) = if let Some(b) = self.free.pop() {
                (b, None)
            } else if !self.lru.is_empty() {
                let b = self.lru.remove(0);
                (b, self.hash[b as usize].take())
            } else {
                return None;
            };
            self.refs[b as usize] = 1;
            Some((BlockId(b), evicted))
        }
        fn touch(&mut self, b: u32) {
            if self.refs[b as usize] == 0 {
                self.lru.retain(|&x| x != b);
            }
            self.refs[b as usize] += 1;
        }
        fn release(&mut self, b: u32) {
            self.refs[b as usize] -= 1;
            if self.refs[b as usize] == 0 {
                if self.hash[b as usize].is_some() || self.order == EvictionOrder::FreeQueue {
                    self.lru.push(b);
                } else {
                    self.free.push(b);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn matches_a_pool_that_lists_every_block_up_front(
            n in 1u32..12,
            queue in any::<bool>(),
            ops in prop::collection::vec((0u8..4, any::<u16>()), 0..120),
        ) {
            let order = if queue { EvictionOrder::FreeQueue } else { EvictionOrder::FreeFirst };
            let mut lazy = BlockPool::new(n, order);
            let mut eager = EagerPool::new(n, order);
            // References held, one entry per reference.
            let mut held: Vec<BlockId> = Vec::new();
            for (op, k) in ops {
                let k = usize::from(k);
                match op {
                    0 => {
                        let got = lazy.alloc();
                        prop_assert_eq!(got, eager.alloc());
                        held.extend(got.map(|(b, _)| b));
                    }
                    1 if !held.is_empty() => {
                        let b = held.swap_remove(k % held.len());
                        lazy.release(b);
                        eager.release(b.index());
                    }
                    2 if !held.is_empty() => {
                        let b = held[k % held.len()];
                        if lazy.hash(b).is_none() {
                            let h = BlockHash(1000 + u64::from(b.index()));
                            lazy.set_hash(b, h);
                            eager.hash[b.index() as usize] = Some(h);
                        }
                    }
                    3 => {
                        // A prefix hit on any block with a hash, referenced or evictable.
                        let cached: Vec<u32> =
                            (0..n).filter(|&i| eager.hash[i as usize].is_some()).collect();
                        if !cached.is_empty() {
                            let b = cached[k % cached.len()];
                            lazy.touch(BlockId(b));
                            eager.touch(b);
                            held.push(BlockId(b));
                        }
                    }
                    _ => {}
                }
                lazy.check_lists();
                prop_assert_eq!(lazy.num_available() as usize, eager.free.len() + eager.lru.len());
                prop_assert_eq!(
                    lazy.num_evictable() as usize,
                    eager.lru.iter().filter(|&&b| eager.hash[b as usize].is_some()).count()
                );
                prop_assert_eq!(lazy.lru_order().map(BlockId::index).collect::<Vec<_>>(), eager.lru.clone());
                for i in 0..n {
                    prop_assert_eq!(lazy.ref_cnt(BlockId(i)), eager.refs[i as usize]);
                    prop_assert_eq!(lazy.hash(BlockId(i)), eager.hash[i as usize]);
                }
            }
        }
    }

    fn pool_with_three_evictable() -> BlockPool {
        let mut p = BlockPool::new(4, EvictionOrder::FreeFirst);
        let ids: Vec<BlockId> = (0..3).map(|_| p.alloc().unwrap().0).collect();
        for (i, &b) in ids.iter().enumerate() {
            p.set_hash(b, BlockHash(100 + i as u64));
        }
        for &b in &ids {
            p.release(b);
        }
        p
    }

    #[test]
    fn hands_out_free_blocks_in_index_order_first() {
        let mut p = BlockPool::new(3, EvictionOrder::FreeFirst);
        let got: Vec<u32> = (0..3).map(|_| p.alloc().unwrap().0.index()).collect();
        assert_eq!(got, [0, 1, 2]);
        assert!(p.alloc().is_none());
        p.check_lists();
    }

    #[test]
    fn unlink_from_middle_head_and_tail() {
        let mut p = pool_with_three_evictable();
        let order = |p: &BlockPool| p.lru_order().map(BlockId::index).collect::<Vec<_>>();
        assert_eq!(order(&p), [0, 1, 2]);
        p.touch(BlockId(1));
        assert_eq!(order(&p), [0, 2]);
        p.touch(BlockId(0));
        p.touch(BlockId(2));
        assert_eq!(order(&p), Vec::<u32>::new());
        p.check_lists();
        p.release(BlockId(2));
        p.release(BlockId(0));
        assert_eq!(order(&p), [2, 0]);
        p.check_lists();
    }

    #[test]
    fn evicts_only_when_the_free_list_is_empty() {
        let mut p = pool_with_three_evictable();
        assert_eq!(p.alloc(), Some((BlockId(3), None)));
        assert_eq!(p.alloc(), Some((BlockId(0), Some(BlockHash(100)))));
        assert_eq!(p.hash(BlockId(0)), None);
        assert_eq!(p.num_available(), 2);
        p.check_lists();
    }

    #[test]
    fn free_queue_hands_out_released_blocks_in_release_order_whatever_their_hash() {
        let mut p = BlockPool::new(3, EvictionOrder::FreeQueue);
        let ids: Vec<BlockId> = (0..3).map(|_| p.alloc().unwrap().0).collect();
        p.set_hash(ids[1], BlockHash(7));
        // Released 2 (no hash), 1 (cached), 0 (no hash): handed out in that order, the
        // cached block evicted when its turn comes although free blocks remain.
        for &b in ids.iter().rev() {
            p.release(b);
        }
        assert_eq!(p.num_evictable(), 1);
        assert_eq!(p.num_available(), 3);
        p.check_lists();
        assert_eq!(p.alloc(), Some((BlockId(2), None)));
        assert_eq!(p.alloc(), Some((BlockId(1), Some(BlockHash(7)))));
        assert_eq!(p.num_evictable(), 0);
        assert_eq!(p.alloc(), Some((BlockId(0), None)));
        assert!(p.alloc().is_none());
        p.check_lists();
    }
}
