//! SGLang's admission control: KV set aside for the running requests' future tokens
//! (see [`KvReservation`] for the rule and its figures, read from the serving stack).
//!
//! vLLM admits a waiting request whenever its prompt fits the free KV and preempts when
//! decodes outgrow it; SGLang keeps room for a share of every running request's
//! remaining output and of the newcomer's, so under KV pressure requests wait in the
//! queue instead of being admitted and retracted.

use super::ReplicaState;
use crate::engine::config::KvReservation;
use crate::engine::request::LiveRequest;

/// Output tokens `r` may still produce, capped as the engine caps its estimate.
fn remaining_output(r: &LiveRequest, res: &KvReservation) -> u64 {
    u64::from(
        r.output_tokens
            .saturating_sub(r.generated)
            .min(res.clip_output_tokens),
    )
}

/// Tokens of free KV left for newcomers at the start of an admission pass: the free
/// cache less `ratio` of every running decoder's remaining output.
pub(super) fn room(st: &ReplicaState, res: &KvReservation) -> i64 {
    let free = u64::from(st.kv.num_free_blocks()) * u64::from(st.kv.block_size());
    let set_aside: f64 = st
        .running
        .iter()
        .map(|&s| &st.reqs[s])
        .filter(|r| r.is_decoding())
        .map(|r| (remaining_output(r, res) as f64 * st.new_token_ratio).ceil())
        .sum();
    free as i64 - set_aside as i64
}

/// Tokens a waiting request needs set aside to be admitted: what it still has to
/// compute of its prompt (and of any output it had generated before a preemption) and
/// its remaining output.
pub(super) fn need(r: &LiveRequest, res: &KvReservation) -> i64 {
    (u64::from(r.pending_tokens()) + remaining_output(r, res)) as i64
}

/// What admitting `r` with `num_new` tokens this iteration takes from the room: the
/// tokens, and its remaining output once its prompt is complete (a chunk of a longer
/// prompt sets none aside yet).
pub(super) fn charge(r: &LiveRequest, num_new: u32, res: &KvReservation) -> i64 {
    let out = if num_new >= r.pending_tokens() {
        remaining_output(r, res)
    } else {
        0
    };
    (u64::from(num_new) + out) as i64
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
