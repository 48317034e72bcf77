//! Paged KV cache: block accounting only; it never decides who runs (that is the
//! scheduler's job).
//!
//! [`KvCache`] models vLLM v1's `KVCacheManager` + `BlockPool` (our own code):
//!
//! * A fixed pool of `num_blocks` blocks of `block_size` tokens. A sequence holding `t`
//!   tokens holds exactly `ceil(t / block_size)` blocks
//!   ([`blocks_for_tokens`]). `num_blocks` is the *usable* count: vLLM reserves one
//!   "null" block out of its `num_gpu_blocks`, which the memory plan must subtract.
//! * **Prefix caching.** The engine passes one chained [`BlockHash`] per full block of a
//!   request. A block is *registered* under its hash as soon as the step that fills it
//!   is scheduled (as vLLM's `cache_full_blocks` does inside `allocate_slots`), so a
//!   request admitted later — even in the same step — can reuse it. A newly admitted
//!   request reuses the longest run of leading registered blocks, capped so that at
//!   least one token is still computed (vLLM never reports a whole prompt as cached).
//! * **Eviction.** A registered block whose last holder finishes stays cached and
//!   *evictable*. Where new blocks come from is the engine's [`EvictionOrder`]: vLLM
//!   V1 keeps every released block, cached or not, in one queue in the order it was
//!   released and hands out the head, evicting its content if it has any
//!   ([`EvictionOrder::FreeQueue`]); vLLM V0's prefix-caching allocator and SGLang's
//!   radix cache use blocks that hold nothing cached first and evict the least
//!   recently freed cached block only when none is left
//!   ([`EvictionOrder::FreeFirst`], the default), which keeps more prefixes cached.
//!   A sequence's blocks are released tail first, so its last blocks are evicted
//!   before its first ones (vLLM frees in reverse order for the same reason: later
//!   blocks are only useful if earlier ones are).
//! * **Capacity outcomes are values.** [`KvCache::allocate`] returns `None` and
//!   [`KvCache::grow`] returns `false` when the blocks are not there, changing nothing;
//!   the scheduler then waits or preempts. Swap preemption is modelled by the engine as
//!   [`free`](KvCache::free) now plus [`allocate`](KvCache::allocate) later; there is no
//!   CPU pool.
//!
//! # Cost
//!
//! Work is per block allocated, freed or looked up, never per token: `grow` within the
//! last block is one hash-map lookup. Block metadata is a flat `Vec` indexed by
//! [`BlockId`]; the evictable LRU is intrusive (O(1) removal from the middle).
//!
//! Per-sequence state lives in a slab of slots recycled through a free list, found
//! through a `Vec` indexed by [`SeqId`]: the lookup on every `grow` (once per decode per
//! iteration, the simulator's hottest path) is one array read. `SeqId`s must therefore be
//! dense, reused indices — the engine passes its request slots, which are bounded by the
//! number of requests alive at once — so memory is proportional to the number of *live*
//! sequences (and the block tables they once needed, since a recycled slot keeps its
//! `Vec`'s capacity), never to the total number of requests served.
//!
//! # Determinism
//!
//! Hashes are fixed-key ([`BlockHash::chained`]); hash maps are used for lookups only;
//! block ids are handed out in a fixed order. Two identical call sequences produce
//! identical states on every platform.
//!
//! ```
//! use servesim::engine::kv::{chain_hashes, KvCache, SeqId};
//! let mut kv = KvCache::new(8, 4, true);
//! let prompt = chain_hashes([1, 2]); // an 8-token prompt: two full blocks
//! assert_eq!(kv.allocate(SeqId(0), 8, &prompt), Some(0));
//! kv.free(SeqId(0));
//! // The same prompt again: the first block hits; the last token is recomputed.
//! assert_eq!(kv.allocate(SeqId(1), 8, &prompt), Some(4));
//! kv.check_invariants();
//! ```

mod block_pool;
mod prefix;

#[cfg(test)]
mod tests;

pub use block_pool::BlockId;
pub use prefix::{chain_hashes, BlockHash};

use crate::units::blocks_for_tokens;
use prefix::PrefixMap;

/// Identifies a sequence (a request) holding KV blocks. Any `u32`; the engine uses its
/// dense request index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqId(pub u32);

/// Which block an allocation takes when no never-used block is left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EvictionOrder {
    /// Released blocks holding nothing cached are used first; a cached block is evicted
    /// (least recently freed first) only when none is left (vLLM V0's
    /// `PrefixCachingBlockAllocator`, SGLang's radix cache).
    #[default]
    FreeFirst,
    /// One queue of every released block, cached or not, in release order: the least
    /// recently released block is taken, its cached content evicted if it has any
    /// (vLLM V1's `FreeKVCacheBlockQueue`).
    FreeQueue,
}

/// Prefix-cache counters, over successful [`KvCache::allocate`] calls with prefix
/// caching enabled (like vLLM's `PrefixCacheStats`, in tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixCacheStats {
    /// Allocations that looked up the prefix cache.
    pub queries: u64,
    /// Tokens those allocations asked for (their `num_tokens`).
    pub queried_tokens: u64,
    /// Tokens served from cached blocks.
    pub hit_tokens: u64,
}

impl PrefixCacheStats {
    /// `hit_tokens / queried_tokens`, or 0 when nothing was queried.
    pub fn hit_rate(&self) -> f64 {
        if self.queried_tokens == 0 {
            0.0
        } else {
            self.hit_tokens as f64 / self.queried_tokens as f64
        }
    }
}

/// One live sequence's block table.
#[derive(Clone, Debug, Default)]
struct SeqSlot {
    /// Tokens the sequence holds KV for.
    num_tokens: u32,
    /// Its blocks in token order; exactly `ceil(num_tokens / block_size)` of them.
    blocks: Vec<BlockId>,
}

/// Marks a `SeqId` with no live sequence.
const NO_SLOT: u32 = u32::MAX;

/// The paged KV cache of one replica. See the [module docs](self) for the model.
#[derive(Clone, Debug)]
pub struct KvCache {
    block_size: u32,
    enable_prefix_caching: bool,
    pool: block_pool::BlockPool,
    prefix: PrefixMap,
    /// `SeqId` → index into `slots` ([`NO_SLOT`] when not live).
    seq_slots: Vec<u32>,
    /// Live sequences.
    num_live: usize,
    slots: Vec<SeqSlot>,
    /// Unused slots, reused before `slots` grows.
    free_slots: Vec<u32>,
    /// Reused buffer for the prefix hits of one allocation.
    scratch: Vec<BlockId>,
    /// Blocks held in bulk, outside any block table: the blocks that sequences the
    /// engine advances as one aggregate (`engine::cohort`) gained since they joined it.
    /// Each is unhashed with one reference, so any of them can stand for any other.
    bulk: Vec<BlockId>,
    stats: PrefixCacheStats,
}

/// Result of matching a request's hashes against the cache.
#[derive(Clone, Copy, Debug)]
struct PrefixMatch {
    /// Leading blocks found (after the "compute at least one token" cap).
    hit_blocks: u32,
    /// How many of them are currently evictable, i.e. counted as available.
    evictable_hits: u32,
}

impl KvCache {
    /// An empty cache of `num_blocks` blocks of `block_size_tokens` tokens each.
    ///
    /// # Panics
    /// If `block_size_tokens` is zero or `num_blocks` is `u32::MAX` (validated config
    /// never produces either).
    pub fn new(num_blocks: u32, block_size_tokens: u32, enable_prefix_caching: bool) -> KvCache {
        assert!(block_size_tokens > 0, "KV block size must be positive");
        KvCache {
            block_size: block_size_tokens,
            enable_prefix_caching,
            pool: block_pool::BlockPool::new(num_blocks, EvictionOrder::FreeFirst),
            prefix: PrefixMap::default(),
            seq_slots: Vec::new(),
            num_live: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            scratch: Vec::new(),
            bulk: Vec::new(),
            stats: PrefixCacheStats::default(),
        }
    }

    /// The same empty cache with released blocks reused in `order` (the default is
    /// [`EvictionOrder::FreeFirst`]).
    ///
    /// # Panics
    /// If any block has been handed out already (the order is fixed at construction).
    pub fn with_eviction_order(mut self, order: EvictionOrder) -> KvCache {
        assert_eq!(
            self.pool.num_available(),
            self.pool.num_blocks(),
            "KvCache::with_eviction_order on a cache in use"
        );
        self.pool = block_pool::BlockPool::new(self.pool.num_blocks(), order);
        self
    }

    /// Tokens per block.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Whether full blocks are registered and reused across sequences.
    pub fn prefix_caching_enabled(&self) -> bool {
        self.enable_prefix_caching
    }

    fn blocks_for(&self, tokens: u32) -> u32 {
        // ≤ tokens, so it fits in u32.
        blocks_for_tokens(u64::from(tokens), self.block_size) as u32
    }

    /// Tokens covered by the longest run of leading `hashes` whose blocks are cached
    /// (live or evictable). A pure lookup: no reference counts or LRU positions change,
    /// and no cap is applied (see [`allocate`](Self::allocate) for the cap). 0 when
    /// prefix caching is off.
    pub fn num_cached_prefix_tokens(&self, hashes: &[BlockHash]) -> u32 {
        if !self.enable_prefix_caching {
            return 0;
        }
        let n = hashes
            .iter()
            .take_while(|&&h| self.prefix.get(h).is_some())
            .count() as u32;
        n.saturating_mul(self.block_size)
    }

    /// The prefix-hit tokens [`allocate`](Self::allocate) would report for `num_tokens`
    /// and `hashes` (capped at `num_tokens − 1`), without side effects.
    ///
    /// With chunked prefill the scheduler calls this with the whole prompt to learn how
    /// much is cached, picks a chunk of at least one token, and allocates
    /// `hit + chunk` tokens; `allocate` then reports the same hit.
    pub fn prefix_hit_tokens(&self, num_tokens: u32, hashes: &[BlockHash]) -> u32 {
        self.match_prefix(num_tokens, hashes, |_| {}).hit_blocks * self.block_size
    }

    /// Matches the leading `hashes` for a sequence that will hold `num_tokens` tokens,
    /// calling `hit` on each matched block in order.
    fn match_prefix(
        &self,
        num_tokens: u32,
        hashes: &[BlockHash],
        mut hit: impl FnMut(BlockId),
    ) -> PrefixMatch {
        let mut m = PrefixMatch {
            hit_blocks: 0,
            evictable_hits: 0,
        };
        if !self.enable_prefix_caching {
            return m;
        }
        // At least one token must be computed: hit tokens ≤ num_tokens − 1.
        let max_blocks = (num_tokens.saturating_sub(1) / self.block_size) as usize;
        for &h in hashes.iter().take(max_blocks) {
            let Some(b) = self.prefix.get(h) else { break };
            m.hit_blocks += 1;
            // Hashes within one chain are distinct, so each evictable block counts once.
            m.evictable_hits += u32::from(self.pool.ref_cnt(b) == 0);
            hit(b);
        }
        m
    }

    /// Whether [`allocate`](Self::allocate) with these arguments would succeed now.
    pub fn can_allocate(&self, num_tokens: u32, hashes: &[BlockHash]) -> bool {
        let m = self.match_prefix(num_tokens, hashes, |_| {});
        self.blocks_for(num_tokens) - m.hit_blocks
            <= self.pool.num_available().saturating_sub(m.evictable_hits)
    }

    /// Admits `seq`, which will hold KV for `num_tokens` tokens after this step (with
    /// chunked prefill: cached prefix + the first chunk).
    ///
    /// Reuses the cached blocks of the longest run of leading `hashes` (one per full
    /// block of the prompt; it may be longer than `num_tokens` covers), capped so that
    /// at least one token is computed; allocates fresh blocks for the rest, evicting
    /// least recently freed cached blocks once the free list is empty; and registers
    /// the fresh blocks that this step fills and whose hash is known.
    ///
    /// Returns the number of prefix-hit tokens (a multiple of the block size, at most
    /// `num_tokens − 1`), or `None`, changing nothing, if the blocks do not fit.
    ///
    /// # Panics
    /// If `seq` is already live (a scheduler bug that would leak its blocks).
    pub fn allocate(&mut self, seq: SeqId, num_tokens: u32, hashes: &[BlockHash]) -> Option<u32> {
        assert!(
            self.lookup(seq).is_none(),
            "KvCache::allocate: {seq:?} is already live"
        );
        let total = self.blocks_for(num_tokens);
        let mut hits = std::mem::take(&mut self.scratch);
        hits.clear();
        let m = self.match_prefix(num_tokens, hashes, |b| hits.push(b));
        let fresh = total - m.hit_blocks;
        if fresh > self.pool.num_available().saturating_sub(m.evictable_hits) {
            self.scratch = hits;
            return None;
        }

        // Commit. Hits first, so that no hit block can be evicted for a fresh one.
        for &b in &hits {
            self.pool.touch(b);
        }
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(SeqSlot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let i = seq.0 as usize;
        if i >= self.seq_slots.len() {
            self.seq_slots.resize(i + 1, NO_SLOT);
        }
        self.seq_slots[i] = slot;
        self.num_live += 1;
        let s = &mut self.slots[slot as usize];
        debug_assert!(s.blocks.is_empty());
        s.num_tokens = num_tokens;
        s.blocks.reserve(total as usize);
        s.blocks.extend_from_slice(&hits);
        self.scratch = hits;
        self.push_fresh_blocks(slot, fresh);
        self.register_full_blocks(slot, m.hit_blocks, hashes);

        if self.enable_prefix_caching {
            self.stats.queries += 1;
            self.stats.queried_tokens += u64::from(num_tokens);
            self.stats.hit_tokens += u64::from(m.hit_blocks * self.block_size);
        }
        Some(m.hit_blocks * self.block_size)
    }

    /// Appends `n` newly allocated blocks to a slot; the caller checked capacity.
    fn push_fresh_blocks(&mut self, slot: u32, n: u32) {
        for _ in 0..n {
            let b = self.alloc_block();
            self.slots[slot as usize].blocks.push(b);
        }
    }

    /// One block from the pool (a free one, else the least recently freed cached one,
    /// whose hash is unregistered); the caller checked capacity.
    fn alloc_block(&mut self) -> BlockId {
        let (b, evicted) = self
            .pool
            .alloc()
            .expect("KV pool has enough blocks after the capacity check");
        if let Some(h) = evicted {
            self.prefix.remove(h, b);
        }
        b
    }

    /// Registers the slot's full blocks from index `from` on whose hash is known and not
    /// already registered to another block.
    fn register_full_blocks(&mut self, slot: u32, from: u32, hashes: &[BlockHash]) {
        if !self.enable_prefix_caching || hashes.is_empty() {
            return;
        }
        let s = &self.slots[slot as usize];
        let full = ((s.num_tokens / self.block_size) as usize).min(hashes.len());
        let from = (from as usize).min(full);
        for (&b, &h) in s.blocks[from..full].iter().zip(&hashes[from..full]) {
            if self.pool.hash(b).is_none() && self.prefix.insert_if_absent(h, b) {
                self.pool.set_hash(b, h);
            }
        }
    }

    /// Blocks `seq` still needs to hold `new_num_tokens` tokens (0 if it has them).
    ///
    /// # Panics
    /// If `seq` is not live.
    pub fn blocks_needed_to_grow(&self, seq: SeqId, new_num_tokens: u32) -> u32 {
        let s = &self.slots[self.slot_of(seq, "blocks_needed_to_grow") as usize];
        self.blocks_for(new_num_tokens)
            .saturating_sub(s.blocks.len() as u32)
    }

    /// Extends `seq` to hold `new_num_tokens` tokens (after this step), allocating the
    /// blocks it lacks; blocks that become full and whose hash is known
    /// (index < `hashes.len()`) are registered for reuse; blocks that were already full
    /// before this call are not revisited, so pass each block's hash no later than the
    /// step that fills it. All or nothing: returns `false`, changing nothing, if the
    /// blocks are not available.
    ///
    /// A `new_num_tokens` at or below the current count is a no-op returning `true` (a
    /// static batch reserves its whole length up front); KV never shrinks.
    ///
    /// # Panics
    /// If `seq` is not live.
    pub fn grow(&mut self, seq: SeqId, new_num_tokens: u32, hashes: &[BlockHash]) -> bool {
        let slot = self.slot_of(seq, "grow");
        let s = &self.slots[slot as usize];
        let old_tokens = s.num_tokens;
        // Already large enough (a static batch reserves its whole length up front).
        if new_num_tokens <= old_tokens {
            return true;
        }
        let need = self
            .blocks_for(new_num_tokens)
            .saturating_sub(s.blocks.len() as u32);
        if need > self.pool.num_available() {
            return false;
        }
        self.push_fresh_blocks(slot, need);
        self.slots[slot as usize].num_tokens = new_num_tokens;
        // Only a step that fills a block can register one.
        if new_num_tokens / self.block_size > old_tokens / self.block_size {
            self.register_full_blocks(slot, old_tokens / self.block_size, hashes);
        }
        true
    }

    /// Releases `seq`'s blocks, last block first. Blocks left without holders become
    /// evictable if registered, free otherwise. Freeing a sequence that is not live is
    /// a bug (`debug_assert`; ignored in release builds).
    pub fn free(&mut self, seq: SeqId) {
        let Some(slot) = self.lookup(seq) else {
            debug_assert!(false, "KvCache::free: {seq:?} is not live");
            return;
        };
        self.seq_slots[seq.0 as usize] = NO_SLOT;
        self.num_live -= 1;
        let s = &mut self.slots[slot as usize];
        for &b in s.blocks.iter().rev() {
            self.pool.release(b);
        }
        s.blocks.clear();
        s.num_tokens = 0;
        self.free_slots.push(slot);
    }

    /// Takes `n` blocks into the bulk holding (free ones first, then by evicting the
    /// least recently freed cached blocks, as [`grow`](Self::grow) would). All or
    /// nothing: returns `false`, changing nothing, if they are not available.
    ///
    /// The engine's decode cohort grows its members this way: the blocks of sequences
    /// that register no hashes are interchangeable, so which sequence holds which is
    /// settled only when one leaves ([`adopt_bulk`](Self::adopt_bulk),
    /// [`free_with_bulk`](Self::free_with_bulk)).
    pub fn alloc_bulk(&mut self, n: u32) -> bool {
        if n > self.pool.num_available() {
            return false;
        }
        for _ in 0..n {
            let b = self.alloc_block();
            self.bulk.push(b);
        }
        true
    }

    /// Moves blocks from the bulk holding into `seq`'s table so that it holds
    /// `num_tokens` tokens (at least what it holds now).
    ///
    /// # Panics
    /// If `seq` is not live or the bulk holding has too few blocks (an engine bug).
    pub fn adopt_bulk(&mut self, seq: SeqId, num_tokens: u32) {
        let slot = self.slot_of(seq, "adopt_bulk") as usize;
        let need = self.blocks_for(num_tokens) as usize - self.slots[slot].blocks.len();
        let from = self
            .bulk
            .len()
            .checked_sub(need)
            .expect("KvCache::adopt_bulk: the bulk holding is short of blocks");
        let s = &mut self.slots[slot];
        s.blocks.extend(self.bulk.drain(from..));
        s.num_tokens = num_tokens;
    }

    /// Releases `extra` blocks of the bulk holding (the sequence's newest blocks), then
    /// `seq`'s own table as [`free`](Self::free) does: the same order in which `seq`
    /// would have released them had they been in its table.
    ///
    /// # Panics
    /// If the bulk holding has fewer than `extra` blocks (an engine bug).
    pub fn free_with_bulk(&mut self, seq: SeqId, extra: u32) {
        for _ in 0..extra {
            let b = self
                .bulk
                .pop()
                .expect("KvCache::free_with_bulk: the bulk holding is short of blocks");
            self.pool.release(b);
        }
        self.free(seq);
    }

    /// Blocks in the bulk holding.
    pub fn num_bulk_blocks(&self) -> u32 {
        self.bulk.len() as u32
    }

    fn slot_of(&self, seq: SeqId, op: &str) -> u32 {
        match self.lookup(seq) {
            Some(s) => s,
            None => panic!("KvCache::{op}: {seq:?} is not live"),
        }
    }

    /// The slot of a live `seq`.
    fn lookup(&self, seq: SeqId) -> Option<u32> {
        self.seq_slots
            .get(seq.0 as usize)
            .copied()
            .filter(|&s| s != NO_SLOT)
    }

    /// Total blocks in the pool.
    pub fn num_blocks(&self) -> u32 {
        self.pool.num_blocks()
    }

    /// Blocks available to new work: truly free plus evictable cached blocks.
    pub fn num_free_blocks(&self) -> u32 {
        self.pool.num_available()
    }

    /// Blocks held by at least one live sequence.
    pub fn num_used_blocks(&self) -> u32 {
        self.pool.num_blocks() - self.pool.num_available()
    }

    /// Unreferenced blocks kept for their cached content (a subset of
    /// [`num_free_blocks`](Self::num_free_blocks)).
    pub fn num_evictable_blocks(&self) -> u32 {
        self.pool.num_evictable()
    }

    /// Blocks registered in the prefix cache, held or evictable.
    pub fn num_cached_blocks(&self) -> u32 {
        self.prefix.len() as u32
    }

    /// Fraction of blocks held by live sequences, in `[0, 1]` (vLLM's KV usage).
    pub fn usage(&self) -> f64 {
        match self.num_blocks() {
            0 => 0.0,
            n => f64::from(self.num_used_blocks()) / f64::from(n),
        }
    }

    /// Number of live sequences.
    pub fn num_seqs(&self) -> usize {
        self.num_live
    }

    /// Tokens `seq` holds KV for, or `None` if it is not live.
    pub fn seq_num_tokens(&self, seq: SeqId) -> Option<u32> {
        let slot = self.lookup(seq)?;
        Some(self.slots[slot as usize].num_tokens)
    }

    /// `seq`'s block table in token order, or `None` if it is not live.
    pub fn seq_blocks(&self, seq: SeqId) -> Option<&[BlockId]> {
        let slot = self.lookup(seq)?;
        Some(&self.slots[slot as usize].blocks)
    }

    /// Prefix-cache counters since creation.
    pub fn prefix_stats(&self) -> PrefixCacheStats {
        self.stats
    }

    /// Checks every structural invariant and panics with a message naming the first
    /// one broken. O(blocks + held blocks): for tests and debug tooling, not hot paths.
    ///
    /// * each unreferenced block is on exactly one of the free list (no hash) and the
    ///   LRU (hash); no referenced block is on either; free + evictable + referenced
    ///   = `num_blocks`; the LRU links are consistent;
    /// * each block's reference count equals the number of times live sequences (and the
    ///   bulk holding) hold it; bulk-held blocks carry no hash;
    /// * each live sequence holds exactly `blocks_for_tokens(tokens)` blocks;
    /// * the sequence index and the slab agree;
    /// * the prefix map and the blocks' recorded hashes are the same one-to-one relation
    ///   (empty when prefix caching is off).
    pub fn check_invariants(&self) {
        self.pool.check_lists();

        let n = self.pool.num_blocks() as usize;
        let mut holders = vec![0u32; n];
        let mut slot_live = vec![false; self.slots.len()];
        // Iteration order does not matter: every path either passes or panics.
        let live = self
            .seq_slots
            .iter()
            .enumerate()
            .filter(|&(_, &slot)| slot != NO_SLOT);
        assert_eq!(
            live.clone().count(),
            self.num_live,
            "live-sequence count is off"
        );
        for (seq, &slot) in live {
            let seq = SeqId(seq as u32);
            let s = self
                .slots
                .get(slot as usize)
                .unwrap_or_else(|| panic!("{seq:?} points at missing slot {slot}"));
            assert!(
                !slot_live[slot as usize],
                "slot {slot} is shared by two seqs"
            );
            slot_live[slot as usize] = true;
            assert_eq!(
                s.blocks.len() as u32,
                self.blocks_for(s.num_tokens),
                "{seq:?} holds {} blocks for {} tokens (block size {})",
                s.blocks.len(),
                s.num_tokens,
                self.block_size
            );
            for &b in &s.blocks {
                holders[b.index() as usize] += 1;
            }
        }
        for &slot in &self.free_slots {
            assert!(!slot_live[slot as usize], "slot {slot} is free and live");
            slot_live[slot as usize] = true;
            assert!(self.slots[slot as usize].blocks.is_empty());
        }
        assert!(
            slot_live.iter().all(|&x| x),
            "a slot is neither live nor free"
        );
        for &b in &self.bulk {
            assert!(
                self.pool.hash(b).is_none(),
                "bulk-held {b:?} carries a hash"
            );
            holders[b.index() as usize] += 1;
        }
        for (i, &h) in holders.iter().enumerate() {
            let b = BlockId::new(i as u32);
            assert_eq!(
                self.pool.ref_cnt(b),
                h,
                "{b:?}: ref count differs from the number of live holders"
            );
        }

        if !self.enable_prefix_caching {
            assert_eq!(self.prefix.len(), 0, "prefix map used while caching is off");
        }
        for (h, b) in self.prefix.iter_unordered() {
            assert_eq!(
                self.pool.hash(b),
                Some(h),
                "prefix map sends {h:?} to {b:?}, whose hash differs"
            );
        }
        let hashed = (0..n as u32)
            .filter(|&i| self.pool.hash(BlockId::new(i)).is_some())
            .count();
        assert_eq!(
            hashed,
            self.prefix.len(),
            "a block carries a hash that is not in the prefix map"
        );
    }

    /// Hashes of the evictable blocks, next to be evicted first (for tests).
    #[cfg(test)]
    fn evictable_hashes(&self) -> Vec<BlockHash> {
        self.pool
            .lru_order()
            .filter_map(|b| self.pool.hash(b))
            .collect()
    }
}
