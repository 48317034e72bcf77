//! The decode cohort: a replica's steady decoders, advanced as one aggregate.
//!
//! In steady state most running requests decode: every iteration each computes one
//! token, its KV grows by one token and it emits one token, `gap` after its previous
//! one, the same gap as every other decoder. The reference engine touches each of them
//! every iteration, so an iteration costs O(batch). The cohort keeps them as aggregates
//! instead, and an iteration costs O(1) plus the work of the requests something happens
//! to (admission, a prefill chunk, finishing):
//!
//! * a clock `k`, the iterations in which every member decoded. A member that joined at
//!   clock `j` with `c` computed and `g` generated tokens now has `c + k − j` and
//!   `g + k − j`; its [`LiveRequest`] keeps the values as of joining;
//! * the sum and the multiset of `c − j`, from which the batch's decode context sum and
//!   maximum follow;
//! * the members by `(c − j) mod block size`: the one residue class whose KV crosses into
//!   a new block at the next iteration. Those blocks come from the KV cache's bulk
//!   holding ([`KvCache::alloc_bulk`](super::kv::KvCache::alloc_bulk)): members register
//!   no hashes, so their blocks are interchangeable and are assigned to a member only
//!   when it leaves;
//! * a heap of members by the clock at which they finish, then by admission order, the
//!   order in which the reference engine retires requests that finish together.
//!
//! A decoder joins at the end of the iteration that made it one (its last token was
//! then produced with everyone else's, or, if the cohort sat that iteration out, it is
//! *fresh* and its first gap is reported on its own). It leaves by finishing, or when
//! the replica *materializes* the cohort before an iteration the aggregate cannot
//! express (a preemption, a token budget smaller than the cohort, an abort): every
//! member's state is written back and it returns to the running queue in admission
//! order, and the reference engine runs that iteration. The engine property tests check
//! that both paths give identical results.

use super::request::LiveRequest;
use crate::units::{blocks_for_tokens, SimDuration, SimTime};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// A member leaving the cohort: its slot and the bulk-held blocks that are its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Leaver {
    /// The request's slot in the replica.
    pub slot: usize,
    /// Tokens its KV holds now.
    pub kv_tokens: u32,
    /// Blocks it gained while a member (held in bulk by the KV cache).
    pub bulk_blocks: u32,
}

/// Steady decoders of one replica (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Cohort {
    block_size: u32,
    /// Iterations in which every member decoded.
    k: u64,
    /// When the members that are not fresh produced their latest token.
    last_token_at: SimTime,
    /// Σ (computed at joining − clock at joining) over members.
    offset_sum: i64,
    /// Multiset of those offsets (for the largest context).
    offsets: BTreeMap<i64, u32>,
    /// Members per offset modulo the block size.
    residues: Vec<u32>,
    /// (clock at which it finishes, admission order, slot).
    finish: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// Members that joined since the last advance with a last token at another time.
    fresh: Vec<usize>,
    /// Largest admission order of any member since the cohort was last empty (an upper
    /// bound of the members' admission orders).
    max_admit_seq: u64,
}

impl Cohort {
    /// An empty cohort over KV blocks of `block_size` tokens.
    pub(crate) fn new(block_size: u32) -> Self {
        Cohort {
            block_size,
            k: 0,
            last_token_at: SimTime::ZERO,
            offset_sum: 0,
            offsets: BTreeMap::new(),
            residues: vec![0; block_size as usize],
            finish: BinaryHeap::new(),
            fresh: Vec::new(),
            max_admit_seq: 0,
        }
    }

    /// Members (each has one entry in the finish heap until it leaves).
    pub(crate) fn len(&self) -> u32 {
        self.finish.len() as u32
    }

    /// Whether there are no members.
    pub(crate) fn is_empty(&self) -> bool {
        self.finish.is_empty()
    }

    /// An upper bound of the members' admission orders.
    pub(crate) fn max_admit_seq(&self) -> u64 {
        self.max_admit_seq
    }

    fn offset(r: &LiveRequest) -> i64 {
        let j = r.cohort_join.expect("a cohort member has a joining clock");
        i64::from(r.computed) - j as i64
    }

    fn residue(&self, offset: i64) -> usize {
        offset.rem_euclid(i64::from(self.block_size)) as usize
    }

    /// Take in `r` (in slot `slot`), a decoder that is not done and registers no more
    /// block hashes.
    pub(crate) fn join(&mut self, slot: usize, r: &mut LiveRequest) {
        debug_assert!(r.is_decoding() && !r.is_done() && r.cohort_join.is_none());
        if self.is_empty() {
            self.last_token_at = r.last_token_at;
            self.max_admit_seq = 0;
        }
        r.cohort_join = Some(self.k);
        let off = Self::offset(r);
        self.offset_sum += off;
        *self.offsets.entry(off).or_insert(0) += 1;
        let i = self.residue(off);
        self.residues[i] += 1;
        let remaining = u64::from(r.output_tokens - r.generated);
        self.finish
            .push(Reverse((self.k + remaining, r.admit_seq, slot)));
        if r.last_token_at != self.last_token_at {
            self.fresh.push(slot);
        }
        self.max_admit_seq = self.max_admit_seq.max(r.admit_seq);
    }

    /// Blocks the members need for the next iteration's token.
    pub(crate) fn blocks_needed(&self) -> u32 {
        let bs = u64::from(self.block_size);
        self.residues[((bs - self.k % bs) % bs) as usize]
    }

    /// The next iteration's decodes: (count, sum of contexts, largest context), each
    /// context counting the token being computed.
    pub(crate) fn decode_shape(&self) -> (u32, u64, u32) {
        let next = self.k as i64 + 1;
        let max = self.offsets.keys().next_back().map_or(0, |&m| m + next);
        let len = self.len();
        let sum = self.offset_sum + i64::from(len) * next;
        (len, sum as u64, max as u32)
    }

    /// Every member decoded one token in an iteration that ended at `now`: report the
    /// gaps through `emit(gap, requests)` (fresh members one by one, then the rest
    /// together) and advance the clock.
    pub(crate) fn advance(
        &mut self,
        now: SimTime,
        reqs: &Slab<LiveRequest>,
        mut emit: impl FnMut(SimDuration, u32),
    ) {
        let mut shared = self.len();
        for &slot in &self.fresh {
            emit(now.saturating_duration_since(reqs[slot].last_token_at), 1);
            shared -= 1;
        }
        if shared > 0 {
            emit(now.saturating_duration_since(self.last_token_at), shared);
        }
        self.fresh.clear();
        self.k += 1;
        self.last_token_at = now;
    }

    /// Blocks a member that joined with `computed` tokens has gained in bulk by the time
    /// its KV holds `kv_tokens`.
    fn gained_blocks(&self, computed: u32, kv_tokens: u32) -> u32 {
        let bs = self.block_size;
        (blocks_for_tokens(u64::from(kv_tokens), bs) - blocks_for_tokens(u64::from(computed), bs))
            as u32
    }

    /// Write the state of the member in `slot` as of now back into it and take it out
    /// of the aggregates (not out of the finish heap). `pending`: an iteration in flight
    /// includes it, so its KV already holds that iteration's token.
    fn settle(&mut self, slot: usize, r: &mut LiveRequest, pending: bool) -> Leaver {
        let off = Self::offset(r);
        self.offset_sum -= off;
        match self.offsets.get_mut(&off) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                self.offsets.remove(&off);
            }
        }
        let i = self.residue(off);
        self.residues[i] -= 1;
        let j = r.cohort_join.take().expect("settling a cohort member");
        let advanced = (self.k - j) as u32;
        let joined_with = r.computed;
        r.computed += advanced;
        r.generated += advanced;
        if advanced > 0 {
            r.last_token_at = self.last_token_at;
        }
        let kv_tokens = r.computed + u32::from(pending);
        Leaver {
            slot,
            kv_tokens,
            bulk_blocks: self.gained_blocks(joined_with, kv_tokens),
        }
    }

    /// Members that finished with the latest advance, settled, in admission order.
    pub(crate) fn pop_finished(&mut self, reqs: &mut Slab<LiveRequest>, out: &mut Vec<Leaver>) {
        while let Some(&Reverse((at, _, slot))) = self.finish.peek() {
            if at > self.k {
                break;
            }
            debug_assert_eq!(at, self.k, "a cohort member outlived its last token");
            self.finish.pop();
            out.push(self.settle(slot, &mut reqs[slot], false));
        }
    }

    /// Settle every member and empty the cohort; the leavers come in admission order.
    /// `pending`: an iteration in flight includes every member.
    pub(crate) fn drain(&mut self, reqs: &mut Slab<LiveRequest>, pending: bool) -> Vec<Leaver> {
        let mut members: Vec<(u64, usize)> = self
            .finish
            .drain()
            .map(|Reverse((_, seq, slot))| (seq, slot))
            .collect();
        members.sort_unstable();
        let out = members
            .into_iter()
            .map(|(_, slot)| self.settle(slot, &mut reqs[slot], pending))
            .collect();
        self.fresh.clear();
        debug_assert!(self.offsets.is_empty() && self.offset_sum == 0);
        out
    }

    /// Slots of the members, in no particular order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.finish.iter().map(|Reverse((_, _, slot))| *slot)
    }

    /// The blocks a member holds in bulk now, without settling it (for invariant
    /// checks). `pending` as for [`Cohort::drain`].
    pub(crate) fn bulk_blocks_of(&self, r: &LiveRequest, pending: bool) -> u32 {
        let j = r.cohort_join.expect("a cohort member has a joining clock");
        let kv_tokens = r.computed + (self.k - j) as u32 + u32::from(pending);
        self.gained_blocks(r.computed, kv_tokens)
    }
}
