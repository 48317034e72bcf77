//! Admission control that keeps KV for the running requests' future tokens (see
//! [`KvReservation`] for the rule and its figures, read from the serving stack).
//!
//! vLLM admits a waiting request whenever its prompt fits the free KV and preempts when
//! decodes outgrow it; SGLang keeps room for a share of every running request's
//! remaining output and of the newcomer's, and TensorRT-LLM (by default) for all of
//! it, so under KV pressure requests wait in the queue instead of being admitted and
//! preempted.

use super::{seq, ReplicaState};
use crate::engine::config::KvReservation;
use crate::engine::request::LiveRequest;

/// Output tokens `r` may still produce, capped as the engine caps its estimate.
fn remaining_output(r: &LiveRequest, res: &KvReservation) -> u64 {
    u64::from(
        r.output_tokens
            .saturating_sub(r.generated)
            .min(res.clip_output_tokens.unwrap_or(u32::MAX)),
    )
}

/// `tokens` in whole KV blocks of the replica.
fn blocks(st: &ReplicaState, tokens: u64) -> i64 {
    crate::units::blocks_for_tokens(tokens, st.kv.block_size()) as i64
}

/// Blocks free for newcomers at the start of an admission pass: the free blocks less
/// what every running request still needs to hold its known tokens and `ratio` of its
/// remaining output.
pub(super) fn room(st: &ReplicaState, res: &KvReservation) -> i64 {
    let set_aside: u64 = st
        .running
        .iter()
        .map(|&s| {
            let r = &st.reqs[s];
            let future = (remaining_output(r, res) as f64 * st.new_token_ratio).ceil() as u64;
            let target = u64::from(r.known_tokens()) + future;
            u64::from(
                st.kv
                    .blocks_needed_to_grow(seq(s), target.min(u64::from(u32::MAX)) as u32),
            )
        })
        .sum();
    i64::from(st.kv.num_free_blocks()) - set_aside as i64
}

/// Blocks a waiting request needs set aside to be admitted: its known tokens (prompt,
/// and any output generated before a preemption) and its remaining output, whole.
pub(super) fn need(st: &ReplicaState, r: &LiveRequest, res: &KvReservation) -> i64 {
    blocks(st, u64::from(r.known_tokens()) + remaining_output(r, res))
}

/// What admitting `r` with `num_new` tokens this iteration took from the room: `need`
/// once its prompt is complete; a chunk of a longer prompt sets aside only the blocks it
/// holds.
pub(super) fn charge(st: &ReplicaState, r: &LiveRequest, num_new: u32, need: i64) -> i64 {
    if num_new >= r.pending_tokens() {
        need
    } else {
        blocks(st, u64::from(r.computed) + u64::from(num_new))
    }
}

/// Update the share after a decode batch was formed: it falls by one step, or, if the
/// batch had to retract requests, is re-estimated from the survivors' progress.
pub(super) fn after_decode(st: &mut ReplicaState, res: &KvReservation, retracted: bool) {
    if !retracted {
        st.new_token_ratio = (st.new_token_ratio - res.decay_per_step()).max(res.min_ratio);
        return;
    }
    let (mut decoded, mut outputs, mut n) = (0u64, 0u64, 0u64);
    for &s in &st.running {
        let r = &st.reqs[s];
        decoded += u64::from(r.generated);
        outputs += u64::from(r.output_tokens);
        n += 1;
    }
    let estimate =
        (decoded + u64::from(res.retract_decode_steps) * n) as f64 / (outputs + 1) as f64;
    st.new_token_ratio = estimate.min(1.0);
}
