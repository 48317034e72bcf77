//! The replica's invariants, checked by tests and debug runs: every live request is
//! waiting or running exactly once, running requests hold KV for what they computed,
//! and the decode cohort's bulk-held blocks add up.

use super::super::scheduler::seq;
use super::Replica;

impl Replica {
    /// Check the KV cache's invariants (tests and debug runs).
    pub fn check_invariants(&self) {
        let st = &self.state;
        st.kv.check_invariants();
        assert_eq!(
            st.num_running() + st.waiting.len(),
            st.reqs.len(),
            "every live request is either waiting or running"
        );
        for &slot in &st.running {
            let r = &st.reqs[slot];
            assert!(
                r.cohort_join.is_none(),
                "a running request is in the cohort"
            );
            assert!(
                st.kv.seq_num_tokens(seq(slot)).unwrap_or(0) >= r.computed,
                "a running request holds KV for every computed token"
            );
        }
        // The cohort's members hold their tables as of joining plus, between them,
        // every bulk-held block.
        let pending = self.in_flight.iter().any(|(p, _)| p.cohort_decodes > 0);
        let mut bulk = 0;
        for slot in st.cohort.slots() {
            let r = &st.reqs[slot];
            assert!(r.cohort_join.is_some(), "a cohort member without its clock");
            assert!(!r.is_done(), "a finished request is still in the cohort");
            assert_eq!(
                st.kv.seq_num_tokens(seq(slot)),
                Some(r.computed),
                "a cohort member's table holds its tokens as of joining"
            );
            bulk += st.cohort.bulk_blocks_of(r, pending);
        }
        assert_eq!(
            bulk,
            st.kv.num_bulk_blocks(),
            "bulk-held KV blocks differ from what the cohort's members gained"
        );
    }
}
