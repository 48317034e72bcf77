//! A hand-computable latency model for tests and worked examples.

use super::{LatencyModel, StepShape};
use crate::units::SimDuration;

/// Iteration time = `base + per_prefill_token × prefill tokens + per_decode × decodes`.
///
/// With it, TTFT and TPOT of small scenarios can be derived by hand in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedLatency {
    /// Fixed cost of every iteration.
    pub base: SimDuration,
    /// Cost per prefill token.
    pub per_prefill_token: SimDuration,
    /// Cost per decoding sequence.
    pub per_decode: SimDuration,
}

impl FixedLatency {
    /// A model with the three costs given in microseconds.
    pub fn from_micros(base: u64, per_prefill_token: u64, per_decode: u64) -> Self {
        FixedLatency {
            base: SimDuration::from_micros(base),
            per_prefill_token: SimDuration::from_micros(per_prefill_token),
            per_decode: SimDuration::from_micros(per_decode),
        }
    }
}

impl LatencyModel for FixedLatency {
    fn step_time(&self, shape: &StepShape) -> SimDuration {
        self.base
            + self
                .per_prefill_token
                .saturating_mul(shape.prefill_tokens())
            + self.per_decode.saturating_mul(u64::from(shape.num_decodes))
    }

    fn describe(&self) -> String {
        format!(
            "fixed: {} per step + {} per prefill token + {} per decode",
            self.base, self.per_prefill_token, self.per_decode
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_three_costs() {
        let m = FixedLatency::from_micros(1000, 10, 100);
        let mut s = StepShape::new();
        s.push_prefill(50, 0);
        s.push_decode(10);
        s.push_decode(20);
        assert_eq!(s.total_tokens(), 52);
        assert_eq!(s.decode_context_sum, 30);
        assert_eq!(m.step_time(&s), SimDuration::from_micros(1000 + 500 + 200));
    }
}
