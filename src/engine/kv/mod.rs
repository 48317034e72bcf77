//! Paged KV cache: block accounting only; it never decides who runs (that is the
//! scheduler's job). TEMPORARY stand-in until the real block pool lands.
#![allow(missing_docs)]

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockHash(pub u64);

impl BlockHash {
    pub fn chain(parent: Option<BlockHash>, id: u64) -> BlockHash {
        let mut z =
            parent.map_or(0x9E37_79B9_7F4A_7C15, |p| p.0) ^ id.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        BlockHash(z ^ (z >> 31))
    }
}

pub struct KvCache {
    num_blocks: u32,
    block_size: u32,
    used: u32,
    seqs: HashMap<SeqId, (u32, u32)>,
}

impl KvCache {
    pub fn new(num_blocks: u32, block_size_tokens: u32, _enable_prefix_caching: bool) -> Self {
        KvCache {
            num_blocks,
            block_size: block_size_tokens,
            used: 0,
            seqs: HashMap::new(),
        }
    }
    fn blocks(&self, t: u32) -> u32 {
        t.div_ceil(self.block_size)
    }
    pub fn num_cached_prefix_tokens(&self, _h: &[BlockHash]) -> u32 {
        0
    }
    pub fn can_allocate(&self, n: u32, _h: &[BlockHash]) -> bool {
        self.blocks(n) <= self.num_blocks - self.used
    }
    pub fn allocate(&mut self, seq: SeqId, n: u32, h: &[BlockHash]) -> Option<u32> {
        if !self.can_allocate(n, h) {
            return None;
        }
        let b = self.blocks(n);
        self.used += b;
        self.seqs.insert(seq, (n, b));
        Some(0)
    }
    pub fn grow(&mut self, seq: SeqId, n: u32, _h: &[BlockHash]) -> bool {
        let (t, b) = self.seqs[&seq];
        if n <= t {
            return true;
        }
        let nb = self.blocks(n);
        if nb - b > self.num_blocks - self.used {
            return false;
        }
        self.used += nb - b;
        self.seqs.insert(seq, (n, nb));
        true
    }
    pub fn free(&mut self, seq: SeqId) {
        let (_, b) = self.seqs.remove(&seq).expect("free of unknown seq");
        self.used -= b;
    }
    pub fn seq_num_tokens(&self, seq: SeqId) -> u32 {
        self.seqs.get(&seq).map_or(0, |s| s.0)
    }
    pub fn num_blocks(&self) -> u32 {
        self.num_blocks
    }
    pub fn num_used_blocks(&self) -> u32 {
        self.used
    }
    pub fn num_free_blocks(&self) -> u32 {
        self.num_blocks - self.used
    }
    pub fn usage(&self) -> f64 {
        f64::from(self.used) / f64::from(self.num_blocks)
    }
    pub fn check_invariants(&self) {
        assert_eq!(self.seqs.values().map(|s| s.1).sum::<u32>(), self.used);
        assert!(self.used <= self.num_blocks);
    }
}
