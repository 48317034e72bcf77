//! Tests of [`KvCache`]: hand-checked scenarios on a tiny pool, then a state-machine
//! property test against a naive reference model.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

const BS: u32 = 4;

/// Block indices of a live sequence.
fn ids(kv: &KvCache, seq: u32) -> Vec<u32> {
    kv.seq_blocks(SeqId(seq))
        .expect("live")
        .iter()
        .map(|b| b.index())
        .collect()
}

/// `n` hashes of a chain named by `tag` (different tags share nothing).
fn chain(tag: u64, n: u64) -> Vec<BlockHash> {
    chain_hashes((0..n).map(|i| tag * 1000 + i))
}

#[test]
fn allocation_rounds_up_to_whole_blocks() {
    let mut kv = KvCache::new(8, BS, false);
    assert_eq!(kv.allocate(SeqId(0), 0, &[]), Some(0));
    assert_eq!(kv.allocate(SeqId(1), 1, &[]), Some(0));
    assert_eq!(kv.allocate(SeqId(2), 4, &[]), Some(0));
    assert_eq!(kv.allocate(SeqId(3), 5, &[]), Some(0));
    assert_eq!(ids(&kv, 0), Vec::<u32>::new());
    assert_eq!(ids(&kv, 1), [0]);
    assert_eq!(ids(&kv, 2), [1]);
    assert_eq!(ids(&kv, 3), [2, 3]);
    assert_eq!(kv.num_used_blocks(), 4);
    assert_eq!(kv.num_free_blocks(), 4);
    assert_eq!(kv.usage(), 0.5);
    assert_eq!(kv.seq_num_tokens(SeqId(3)), Some(5));
    assert_eq!(kv.num_seqs(), 4);
    kv.check_invariants();
}

#[test]
fn grow_allocates_only_when_crossing_a_block_boundary() {
    let mut kv = KvCache::new(8, BS, false);
    kv.allocate(SeqId(0), 3, &[]).unwrap();
    assert_eq!(kv.blocks_needed_to_grow(SeqId(0), 4), 0);
    assert!(kv.grow(SeqId(0), 4, &[]));
    assert_eq!(ids(&kv, 0), [0]);
    assert_eq!(kv.blocks_needed_to_grow(SeqId(0), 5), 1);
    assert_eq!(kv.blocks_needed_to_grow(SeqId(0), 13), 3);
    assert!(kv.grow(SeqId(0), 5, &[]));
    assert_eq!(ids(&kv, 0), [0, 1]);
    assert!(kv.grow(SeqId(0), 13, &[]));
    assert_eq!(ids(&kv, 0), [0, 1, 2, 3]);
    assert_eq!(kv.seq_num_tokens(SeqId(0)), Some(13));
    kv.check_invariants();
}

#[test]
fn capacity_failures_change_nothing() {
    let mut kv = KvCache::new(8, BS, true);
    kv.allocate(SeqId(0), 24, &chain(1, 6)).unwrap(); // 6 blocks, all registered
    kv.allocate(SeqId(1), 1, &[]).unwrap(); // 7 blocks used
    let before = format!("{kv:?}");
    assert!(!kv.can_allocate(5, &[]));
    assert_eq!(kv.allocate(SeqId(2), 5, &[]), None);
    assert_eq!(kv.blocks_needed_to_grow(SeqId(1), 9), 2);
    assert!(!kv.grow(SeqId(1), 9, &[]));
    assert_eq!(format!("{kv:?}"), before);
    assert!(kv.grow(SeqId(1), 8, &[]));
    assert_eq!(kv.num_free_blocks(), 0);
    kv.check_invariants();
}

#[test]
fn prefix_hits_after_the_first_sequence_finishes() {
    let mut kv = KvCache::new(8, BS, true);
    let h = chain(1, 3);
    // 9 tokens: blocks 0,1 full (registered under h0,h1), block 2 partial.
    assert_eq!(kv.allocate(SeqId(0), 9, &h), Some(0));
    assert_eq!(kv.num_cached_blocks(), 2);
    assert_eq!(kv.num_cached_prefix_tokens(&h), 8);
    kv.free(SeqId(0));
    // Freed tail first: block 1 (h1) is evicted before block 0 (h0); block 2 is free.
    assert_eq!(kv.evictable_hashes(), [h[1], h[0]]);
    assert_eq!(kv.num_evictable_blocks(), 2);
    assert_eq!(kv.num_free_blocks(), 8);
    assert_eq!(kv.num_used_blocks(), 0);
    kv.check_invariants();

    assert_eq!(kv.allocate(SeqId(1), 12, &h), Some(8));
    let b = ids(&kv, 1);
    assert_eq!(&b[..2], [0, 1], "reuses the cached blocks in order");
    assert_eq!(
        kv.num_cached_blocks(),
        3,
        "the third block is now registered"
    );
    assert_eq!(kv.num_evictable_blocks(), 0);
    assert_eq!(
        kv.prefix_stats(),
        PrefixCacheStats {
            queries: 2,
            queried_tokens: 21,
            hit_tokens: 8
        }
    );
    kv.check_invariants();
}

#[test]
fn hit_is_capped_so_one_token_is_computed() {
    let mut kv = KvCache::new(8, BS, true);
    let h = chain(1, 2);
    kv.allocate(SeqId(0), 8, &h).unwrap();
    kv.free(SeqId(0));
    // Whole 8-token prompt cached, but at most 7 tokens may hit: one block.
    assert_eq!(kv.num_cached_prefix_tokens(&h), 8, "lookup is uncapped");
    assert_eq!(kv.prefix_hit_tokens(8, &h), 4);
    assert_eq!(kv.prefix_hit_tokens(9, &h), 8);
    assert!(kv.can_allocate(8, &h));
    assert_eq!(kv.allocate(SeqId(1), 8, &h), Some(4));
    // Its second block duplicates h1, which stays with block 1 (evictable).
    assert_eq!(kv.num_cached_blocks(), 2);
    assert_eq!(kv.evictable_hashes(), [h[1]]);
    kv.check_invariants();
    // One more token lifts the cap.
    assert_eq!(kv.allocate(SeqId(2), 9, &h), Some(8));
    assert_eq!(kv.allocate(SeqId(3), 1, &h), Some(0));
    assert_eq!(kv.allocate(SeqId(4), 0, &h), Some(0));
    kv.check_invariants();
}

#[test]
fn live_sequences_share_blocks_through_ref_counts() {
    let mut kv = KvCache::new(8, BS, true);
    let h = chain(1, 3);
    kv.allocate(SeqId(0), 12, &h).unwrap(); // blocks 0,1,2 registered
                                            // Same step, same prefix: B hits A's blocks although A has not finished.
    assert_eq!(kv.allocate(SeqId(1), 9, &h), Some(8));
    assert_eq!(ids(&kv, 1), [0, 1, 3]);
    assert_eq!(kv.num_used_blocks(), 4);
    kv.check_invariants();
    kv.free(SeqId(0));
    assert_eq!(kv.num_used_blocks(), 3, "blocks 0,1 still held by B");
    assert_eq!(kv.evictable_hashes(), [h[2]]);
    kv.check_invariants();
    kv.free(SeqId(1));
    assert_eq!(kv.num_free_blocks(), 8);
    assert_eq!(kv.evictable_hashes(), [h[2], h[1], h[0]]);
    kv.check_invariants();
}

#[test]
fn hits_on_held_blocks_need_no_new_capacity() {
    let mut kv = KvCache::new(8, BS, true);
    let h = chain(1, 2);
    kv.allocate(SeqId(0), 8, &h).unwrap(); // 2 blocks
    kv.allocate(SeqId(1), 20, &[]).unwrap(); // 5 blocks; 1 free left
                                             // 9 tokens = 3 blocks, 2 of them already held: needs only 1.
    assert!(kv.can_allocate(9, &h));
    assert!(!kv.can_allocate(9, &[]));
    assert_eq!(kv.allocate(SeqId(2), 9, &h), Some(8));
    assert_eq!(kv.num_free_blocks(), 0);
    kv.check_invariants();
}

#[test]
fn evictable_hits_are_not_counted_as_free_space() {
    let mut kv = KvCache::new(8, BS, true);
    let h = chain(1, 3);
    kv.allocate(SeqId(0), 8, &h).unwrap();
    kv.free(SeqId(0)); // h0,h1 evictable
    kv.allocate(SeqId(1), 20, &[]).unwrap(); // free list: 1 block; LRU: 2
    assert_eq!(kv.num_free_blocks(), 3);
    // 13 tokens = 4 blocks, 2 hit; the 2 fresh ones cannot come from the hit blocks.
    assert!(!kv.can_allocate(13, &h));
    assert_eq!(kv.allocate(SeqId(2), 13, &h), None);
    assert_eq!(kv.allocate(SeqId(2), 9, &h), Some(8));
    assert_eq!(kv.num_free_blocks(), 0);
    kv.check_invariants();
}

#[test]
fn free_queue_evicts_a_cached_prefix_in_release_order_although_free_blocks_remain() {
    // vLLM V1: a finished request's cached prompt is lost once as many blocks as were
    // released after it have been handed out, whatever those blocks held.
    let mut kv = KvCache::new(6, BS, true).with_eviction_order(EvictionOrder::FreeQueue);
    let a = chain(1, 2);
    kv.allocate(SeqId(0), 8, &a).unwrap(); // blocks 0,1 (cached)
    kv.allocate(SeqId(1), 16, &[]).unwrap(); // blocks 2..5 (output-like, uncached)
    kv.free(SeqId(0)); // queue: a1, a0
    kv.free(SeqId(1)); // queue: a1, a0, 5, 4, 3, 2
    assert_eq!(kv.num_free_blocks(), 6);
    assert_eq!(kv.evictable_hashes(), [a[1], a[0]]);
    // One block: the head of the queue, a's tail block, is evicted.
    kv.allocate(SeqId(2), 4, &[]).unwrap();
    assert_eq!(ids(&kv, 2), [1]);
    assert_eq!(kv.num_cached_prefix_tokens(&a), 4);
    // Under FreeFirst the same request would have taken an uncached block instead.
    let mut v0 = KvCache::new(6, BS, true);
    v0.allocate(SeqId(0), 8, &a).unwrap();
    v0.allocate(SeqId(1), 16, &[]).unwrap();
    v0.free(SeqId(0));
    v0.free(SeqId(1));
    v0.allocate(SeqId(2), 4, &[]).unwrap();
    assert_eq!(v0.num_cached_prefix_tokens(&a), 8);
    kv.check_invariants();
    v0.check_invariants();
}

#[test]
fn eviction_uses_free_blocks_first_then_lru_tail_blocks_first() {
    let mut kv = KvCache::new(8, BS, true);
    let (a, b) = (chain(1, 2), chain(2, 2));
    kv.allocate(SeqId(0), 8, &a).unwrap(); // blocks 0,1
    kv.allocate(SeqId(1), 8, &b).unwrap(); // blocks 2,3
    kv.allocate(SeqId(2), 12, &[]).unwrap(); // blocks 4,5,6; block 7 free
    kv.free(SeqId(0));
    kv.free(SeqId(1));
    assert_eq!(kv.evictable_hashes(), [a[1], a[0], b[1], b[0]]);
    // A hit on a0 takes it out of the middle of the LRU; the fresh block comes from
    // the free list, so nothing is evicted.
    assert_eq!(kv.allocate(SeqId(3), 5, &a), Some(4));
    assert_eq!(ids(&kv, 3), [0, 7]);
    assert_eq!(kv.evictable_hashes(), [a[1], b[1], b[0]]);
    // Released again, a0 becomes the most recently used.
    kv.free(SeqId(3));
    assert_eq!(kv.evictable_hashes(), [a[1], b[1], b[0], a[0]]);
    // Free block 7 first, then evict from the LRU head.
    kv.allocate(SeqId(4), 4, &[]).unwrap();
    assert_eq!(ids(&kv, 4), [7]);
    assert_eq!(kv.num_cached_blocks(), 4);
    kv.allocate(SeqId(5), 4, &[]).unwrap();
    assert_eq!(ids(&kv, 5), [1], "a's tail block goes first");
    assert_eq!(kv.num_cached_prefix_tokens(&a), 4, "a's head survives");
    kv.allocate(SeqId(6), 4, &[]).unwrap();
    assert_eq!(ids(&kv, 6), [3]);
    assert_eq!(kv.num_cached_prefix_tokens(&b), 4);
    assert_eq!(kv.evictable_hashes(), [b[0], a[0]]);
    assert_eq!(kv.num_cached_blocks(), 2);
    kv.check_invariants();
    for seq in [2, 4, 5, 6] {
        kv.free(SeqId(seq));
    }
    assert_eq!(kv.num_free_blocks(), 8);
    kv.check_invariants();
}

#[test]
fn grow_registers_blocks_as_they_fill() {
    let mut kv = KvCache::new(8, BS, true);
    let h = chain(1, 3);
    // Chunked prefill: prompt of 3 blocks, first chunk 6 tokens.
    kv.allocate(SeqId(0), 6, &h).unwrap();
    assert_eq!(kv.num_cached_prefix_tokens(&h), 4);
    assert!(kv.grow(SeqId(0), 12, &h));
    assert_eq!(kv.num_cached_prefix_tokens(&h), 12);
    // Decode tokens past the known hashes are never registered.
    assert!(kv.grow(SeqId(0), 16, &h));
    assert_eq!(kv.num_cached_blocks(), 3);
    kv.check_invariants();
}

#[test]
fn prefix_caching_off_never_hits_or_caches() {
    let mut kv = KvCache::new(8, BS, false);
    let h = chain(1, 2);
    kv.allocate(SeqId(0), 9, &h).unwrap();
    kv.free(SeqId(0));
    assert_eq!(kv.num_cached_prefix_tokens(&h), 0);
    assert_eq!(kv.allocate(SeqId(1), 9, &h), Some(0));
    assert_eq!(kv.num_cached_blocks(), 0);
    assert_eq!(kv.num_evictable_blocks(), 0);
    assert_eq!(kv.prefix_stats(), PrefixCacheStats::default());
    kv.check_invariants();
}

#[test]
fn slots_are_recycled_when_ids_are_reused() {
    // The engine reuses the ids of finished requests, as its slab does.
    let mut kv = KvCache::new(8, BS, false);
    for round in 0..1000u32 {
        let seq = SeqId(round % 3);
        kv.allocate(seq, 17, &[]).unwrap();
        kv.free(seq);
    }
    assert_eq!(
        kv.slots.len(),
        1,
        "memory follows live sequences, not total"
    );
    assert_eq!(kv.seq_slots.len(), 3, "the id index spans the ids in use");
    assert_eq!(kv.allocate(SeqId(7), 1, &[]), Some(0));
    assert_eq!(kv.num_seqs(), 1);
    kv.check_invariants();
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "is not live")]
fn freeing_an_unknown_seq_is_a_bug() {
    KvCache::new(8, BS, false).free(SeqId(3));
}

#[test]
#[should_panic(expected = "already live")]
fn allocating_a_live_seq_twice_is_a_bug() {
    let mut kv = KvCache::new(8, BS, false);
    kv.allocate(SeqId(1), 1, &[]);
    kv.allocate(SeqId(1), 1, &[]);
}

// ---------------------------------------------------------------------------------
// State-machine property test.

/// A naive model of the cache at the level of hashes: no block ids, no links, just
/// counts, a `VecDeque` for the LRU and `BTreeMap`s. Registered blocks are named by
/// their hash (the map is one-to-one); unregistered ones are anonymous.
#[derive(Debug)]
struct Reference {
    bs: u32,
    caching: bool,
    num_blocks: u32,
    /// Where released anonymous blocks go.
    order: EvictionOrder,
    /// Anonymous free blocks (under `FreeQueue`, only those never used).
    free: u32,
    /// Released blocks in the order they are handed out: evictable registered hashes,
    /// and under `FreeQueue` released anonymous blocks (`None`) too.
    lru: VecDeque<Option<BlockHash>>,
    /// Registered hash → live holders (0 = evictable).
    refs: BTreeMap<BlockHash, u32>,
    live: BTreeMap<u32, RefSeq>,
}

#[derive(Debug)]
struct RefSeq {
    tokens: u32,
    hashes: Vec<BlockHash>,
    /// Per block: the hash it is registered under, if any.
    blocks: Vec<Option<BlockHash>>,
}

impl Reference {
    fn new(num_blocks: u32, bs: u32, caching: bool, order: EvictionOrder) -> Self {
        Reference {
            bs,
            caching,
            order,
            num_blocks,
            free: num_blocks,
            lru: VecDeque::new(),
            refs: BTreeMap::new(),
            live: BTreeMap::new(),
        }
    }

    fn available(&self) -> u32 {
        self.free + self.lru.len() as u32
    }

    fn take_block(&mut self) {
        if self.free > 0 {
            self.free -= 1;
        } else if let Some(h) = self.lru.pop_front().expect("capacity was checked") {
            self.refs.remove(&h);
        }
    }

    fn register(&mut self, seq: u32, from: u32) {
        if !self.caching {
            return;
        }
        let s = self.live.get_mut(&seq).unwrap();
        let full = ((s.tokens / self.bs) as usize).min(s.hashes.len());
        for i in from as usize..full {
            let h = s.hashes[i];
            if s.blocks[i].is_none() && !self.refs.contains_key(&h) {
                self.refs.insert(h, 1);
                s.blocks[i] = Some(h);
            }
        }
    }

    fn allocate(&mut self, seq: u32, tokens: u32, hashes: &[BlockHash]) -> Option<u32> {
        let total = tokens.div_ceil(self.bs);
        let mut hits = Vec::new();
        if self.caching && tokens > 0 {
            for &h in hashes.iter().take(((tokens - 1) / self.bs) as usize) {
                if self.refs.contains_key(&h) {
                    hits.push(h);
                } else {
                    break;
                }
            }
        }
        let evictable_hits = hits.iter().filter(|h| self.refs[h] == 0).count() as u32;
        let fresh = total - hits.len() as u32;
        if fresh > self.available() - evictable_hits {
            return None;
        }
        for &h in &hits {
            let r = self.refs.get_mut(&h).unwrap();
            if *r == 0 {
                let pos = self.lru.iter().position(|&x| x == Some(h)).unwrap();
                self.lru.remove(pos);
            }
            *r += 1;
        }
        for _ in 0..fresh {
            self.take_block();
        }
        let mut blocks: Vec<Option<BlockHash>> = hits.iter().map(|&h| Some(h)).collect();
        blocks.resize(total as usize, None);
        self.live.insert(
            seq,
            RefSeq {
                tokens,
                hashes: hashes.to_vec(),
                blocks,
            },
        );
        self.register(seq, hits.len() as u32);
        Some(hits.len() as u32 * self.bs)
    }

    fn grow(&mut self, seq: u32, to: u32) -> bool {
        let s = &self.live[&seq];
        let old = s.tokens;
        let need = to.div_ceil(self.bs) - s.blocks.len() as u32;
        if need > self.available() {
            return false;
        }
        for _ in 0..need {
            self.take_block();
        }
        let s = self.live.get_mut(&seq).unwrap();
        s.blocks.resize(to.div_ceil(self.bs) as usize, None);
        s.tokens = to;
        self.register(seq, old / self.bs);
        true
    }

    fn free(&mut self, seq: u32) {
        let s = self.live.remove(&seq).unwrap();
        for b in s.blocks.into_iter().rev() {
            match b {
                Some(h) => {
                    let r = self.refs.get_mut(&h).unwrap();
                    *r -= 1;
                    if *r == 0 {
                        self.lru.push_back(Some(h));
                    }
                }
                None if self.order == EvictionOrder::FreeQueue => self.lru.push_back(None),
                None => self.free += 1,
            }
        }
    }

    fn cached_prefix_tokens(&self, hashes: &[BlockHash]) -> u32 {
        if !self.caching {
            return 0;
        }
        hashes
            .iter()
            .take_while(|h| self.refs.contains_key(h))
            .count() as u32
            * self.bs
    }
}

/// Block ids of the three prefix families: 0 and 1 share their first 3 blocks; 2 shares
/// nothing.
fn family_hashes(family: usize) -> Vec<BlockHash> {
    const LEN: u64 = 12;
    let shared = [LEN, 3, 0][family];
    chain_hashes((0..LEN).map(|i| {
        if i < shared {
            i
        } else {
            1000 * (family as u64 + 1) + i
        }
    }))
}

#[derive(Clone, Debug)]
enum Op {
    Allocate {
        seq: u32,
        tokens: u32,
        family: usize,
        prefix_len: usize,
    },
    Grow {
        seq: u32,
        by: u32,
    },
    Free {
        seq: u32,
    },
}

fn op_strategy(bs: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..6, 0u32..=6 * bs, 0usize..3, 0usize..=8).prop_map(
            |(seq, tokens, family, prefix_len)| Op::Allocate { seq, tokens, family, prefix_len }
        ),
        3 => (0u32..6, 0u32..=3 * bs).prop_map(|(seq, by)| Op::Grow { seq, by }),
        3 => (0u32..6).prop_map(|seq| Op::Free { seq }),
    ]
}

fn case_strategy() -> impl Strategy<Value = (u32, u32, bool, EvictionOrder, Vec<Op>)> {
    (
        prop_oneof![Just(1u32), Just(2), Just(4)],
        0u32..=24,
        any::<bool>(),
        prop_oneof![
            Just(EvictionOrder::FreeFirst),
            Just(EvictionOrder::FreeQueue)
        ],
    )
        .prop_flat_map(|(bs, blocks, caching, order)| {
            (
                Just(bs),
                Just(blocks),
                Just(caching),
                Just(order),
                prop::collection::vec(op_strategy(bs), 1..80),
            )
        })
}

/// Compares every observable of the cache with the reference, then checks invariants.
fn assert_agrees(kv: &KvCache, r: &Reference) {
    kv.check_invariants();
    assert_eq!(kv.num_free_blocks(), r.available(), "free + evictable");
    let evictable: Vec<BlockHash> = r.lru.iter().flatten().copied().collect();
    assert_eq!(kv.num_evictable_blocks(), evictable.len() as u32);
    assert_eq!(kv.num_used_blocks(), r.num_blocks - r.available());
    assert_eq!(kv.num_cached_blocks(), r.refs.len() as u32);
    assert_eq!(kv.evictable_hashes(), evictable, "LRU order");
    assert_eq!(kv.num_seqs(), r.live.len());
    for (&seq, s) in &r.live {
        assert_eq!(kv.seq_num_tokens(SeqId(seq)), Some(s.tokens));
    }
    for f in 0..3 {
        let h = family_hashes(f);
        assert_eq!(kv.num_cached_prefix_tokens(&h), r.cached_prefix_tokens(&h));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn cache_matches_reference_model((bs, num_blocks, caching, order, ops) in case_strategy()) {
        let mut kv = KvCache::new(num_blocks, bs, caching).with_eviction_order(order);
        let mut r = Reference::new(num_blocks, bs, caching, order);
        for op in ops {
            let available = kv.num_free_blocks();
            match op {
                Op::Allocate { seq, tokens, family, prefix_len } => {
                    if r.live.contains_key(&seq) {
                        continue;
                    }
                    let hashes = &family_hashes(family)[..prefix_len];
                    let can = kv.can_allocate(tokens, hashes);
                    let hit_before = kv.prefix_hit_tokens(tokens, hashes);
                    let got = kv.allocate(SeqId(seq), tokens, hashes);
                    prop_assert_eq!(got, r.allocate(seq, tokens, hashes), "{:?}", op);
                    prop_assert_eq!(can, got.is_some());
                    // Conservative check: prefix reuse never makes a fit fail.
                    let needed = tokens.div_ceil(bs);
                    if needed <= available {
                        prop_assert!(got.is_some(), "fits without reuse but was refused");
                    }
                    if let Some(hit) = got {
                        prop_assert_eq!(hit, hit_before, "prefix_hit_tokens predicts allocate");
                        prop_assert_eq!(hit % bs, 0);
                        prop_assert!(hit == 0 || hit < tokens, "hit {} of {} tokens", hit, tokens);
                        prop_assert!(needed - hit / bs <= available);
                    }
                }
                Op::Grow { seq, by } => {
                    let Some(s) = r.live.get(&seq) else { continue };
                    let to = s.tokens + by;
                    let hashes = s.hashes.clone();
                    let need = kv.blocks_needed_to_grow(SeqId(seq), to);
                    prop_assert_eq!(need, to.div_ceil(bs) - s.blocks.len() as u32);
                    let ok = kv.grow(SeqId(seq), to, &hashes);
                    prop_assert_eq!(ok, need <= available, "grow {:?}", op);
                    prop_assert_eq!(ok, r.grow(seq, to));
                    if ok {
                        prop_assert_eq!(kv.num_free_blocks(), available - need);
                    }
                }
                Op::Free { seq } => {
                    if !r.live.contains_key(&seq) {
                        continue;
                    }
                    kv.free(SeqId(seq));
                    r.free(seq);
                }
            }
            assert_agrees(&kv, &r);
        }
        // Freeing everything leaks nothing.
        let live: Vec<u32> = r.live.keys().copied().collect();
        for seq in live {
            kv.free(SeqId(seq));
            r.free(seq);
            assert_agrees(&kv, &r);
        }
        prop_assert_eq!(kv.num_free_blocks(), kv.num_blocks());
        prop_assert_eq!(kv.num_used_blocks(), 0);
        prop_assert_eq!(kv.num_evictable_blocks(), kv.num_cached_blocks());
    }
}
