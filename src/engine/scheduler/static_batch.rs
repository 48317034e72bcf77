//! Static batching: when the replica is idle, admit up to `max_num_seqs` waiting
//! requests (FCFS) whose whole KV (prompt plus output) fits, prefill them together, and
//! decode until the last one finishes. Nothing joins a batch in flight, so KV is
//! reserved up front and preemption never happens.

use super::{seq, ReplicaState, Scheduled, StepPlan};
use crate::engine::config::EngineConfig;
use crate::units::SimTime;

pub(super) fn schedule(
    st: &mut ReplicaState,
    cfg: &EngineConfig,
    now: SimTime,
    plan: &mut StepPlan,
) {
    if st.running.is_empty() {
        while (st.running.len() as u32) < cfg.max_num_seqs {
            let Some(&slot) = st.waiting.front() else {
                break;
            };
            let r = &st.reqs[slot];
            let reserve = r.max_kv_tokens();
            let hashes: &[_] = if cfg.enable_prefix_caching {
                &r.block_hashes
            } else {
                &[]
            };
            let Some(hit) = st.kv.allocate(seq(slot), reserve, hashes) else {
                break;
            };
            let r = &mut st.reqs[slot];
            // A reserved prompt still computes at least its last token.
            r.computed = hit.min(r.known_tokens() - 1);
            r.prefix_hit_tokens = r.computed;
            r.scheduled_at = Some(now);
            st.waiting.pop_front();
            st.push_running(slot);
        }
    }
    for &slot in &st.running {
        let r = &st.reqs[slot];
        if !r.is_done() && !r.in_flight {
            plan.entries.push(Scheduled {
                slot,
                num_new: r.pending_tokens(),
            });
        }
    }
}
