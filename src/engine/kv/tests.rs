//! Tests of [`KvCache`]: hand-checked scenarios on a tiny pool.

use super::*;

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
fn slots_are_recycled_and_ids_are_sparse() {
    let mut kv = KvCache::new(8, BS, false);
    for round in 0..1000u32 {
        let seq = SeqId(round.wrapping_mul(2_654_435_761));
        kv.allocate(seq, 17, &[]).unwrap();
        kv.free(seq);
    }
    assert_eq!(
        kv.slots.len(),
        1,
        "memory follows live sequences, not total"
    );
    assert_eq!(kv.allocate(SeqId(u32::MAX), 1, &[]), Some(0));
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
