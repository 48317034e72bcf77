//! Iteration shapes as calibration targets: a weighted list of [`StepShape`]s whose
//! weighted sum of step times is the predicted quantity.
//!
//! A static batch whose requests all arrive at time zero is scheduled the same way
//! whatever the step times are (the scheduler reads the clock only to stamp
//! `scheduled_at`), so its iterations can be recorded once and re-timed for any
//! parameters. Runs of decode-only iterations with the same batch, whose context grows
//! by one token per step, are summed with Simpson's rule on the first, middle and last
//! iteration: exact for step times linear in the context, as the roofline's are within
//! one bound.

use crate::perf::{LatencyModel, StepShape};
use crate::units::SimDuration;
use std::sync::{Arc, Mutex};

/// Shapes with weights: the target is `Σ weight · step_time(shape)`.
pub type WeightedShapes = Vec<(StepShape, f64)>;

/// A latency model that records every shape it is asked about.
pub struct Recording {
    inner: Arc<dyn LatencyModel>,
    shapes: Mutex<Vec<StepShape>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording").finish_non_exhaustive()
    }
}

impl Recording {
    /// Record the shapes asked of `inner` (which answers).
    pub fn new(inner: Arc<dyn LatencyModel>) -> Self {
        Recording {
            inner,
            shapes: Mutex::new(Vec::new()),
        }
    }

    /// The shapes recorded so far, in order.
    pub fn take(&self) -> Vec<StepShape> {
        std::mem::take(&mut *self.shapes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl LatencyModel for Recording {
    fn step_time(&self, shape: &StepShape) -> SimDuration {
        self.shapes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(shape.clone());
        self.inner.step_time(shape)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn op_breakdown(&self, shape: &StepShape) -> Vec<crate::perf::OpCost> {
        self.inner.op_breakdown(shape)
    }
}

fn is_decode_only(s: &StepShape) -> bool {
    s.prefills.is_empty() && s.num_decodes > 0
}

/// Compress `shapes` into weighted shapes (see the [module docs](self)).
pub fn compress(shapes: &[StepShape]) -> WeightedShapes {
    let mut out = Vec::new();
    let mut i = 0;
    while i < shapes.len() {
        let s = &shapes[i];
        if !is_decode_only(s) {
            out.push((s.clone(), 1.0));
            i += 1;
            continue;
        }
        // The run of decode-only steps with this batch and +1 context per step.
        let mut j = i + 1;
        while j < shapes.len()
            && is_decode_only(&shapes[j])
            && shapes[j].num_decodes == s.num_decodes
            && shapes[j].follow_on == s.follow_on
            && shapes[j].decode_context_sum
                == shapes[j - 1].decode_context_sum + u64::from(s.num_decodes)
        {
            j += 1;
        }
        let k = j - i;
        if k < 3 {
            out.extend(shapes[i..j].iter().map(|x| (x.clone(), 1.0)));
        } else {
            let (a, b) = (&shapes[i], &shapes[j - 1]);
            let mid = StepShape {
                prefills: Vec::new(),
                num_decodes: a.num_decodes,
                decode_context_sum: (a.decode_context_sum + b.decode_context_sum) / 2,
                decode_context_max: (a.decode_context_max + b.decode_context_max) / 2,
                follow_on: a.follow_on,
            };
            let w = k as f64 / 6.0;
            out.push((a.clone(), w));
            out.push((mid, 4.0 * w));
            out.push((b.clone(), w));
        }
        i = j;
    }
    out
}

/// The decode iterations of a static batch after its prefill: `batch` sequences whose
/// context grows from `input + 1` to `input + output − 1`.
pub fn static_decodes(batch: u32, input: u32, output: u32) -> Vec<StepShape> {
    (0..output.saturating_sub(1))
        .map(|j| {
            let mut s = StepShape::new();
            for _ in 0..batch {
                s.push_decode(input + j + 1);
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simpson_is_exact_for_linear_costs() {
        let mut shapes = vec![{
            let mut s = StepShape::new();
            s.push_prefill(100, 0);
            s
        }];
        shapes.extend(static_decodes(4, 100, 50));
        let w = compress(&shapes);
        assert_eq!(w.len(), 4);
        // A cost linear in the context sum.
        let cost =
            |s: &StepShape| 1.0 + 0.001 * s.decode_context_sum as f64 + s.prefill_tokens() as f64;
        let exact: f64 = shapes.iter().map(cost).sum();
        let approx: f64 = w.iter().map(|(s, k)| k * cost(s)).sum();
        assert!((exact - approx).abs() < 1e-9 * exact, "{exact} vs {approx}");
    }
}
