//! Roofline estimate of one static batch: prefill of `batch × input_len`, then decode
//! steps up to `output_len`, with the operator breakdown and the bottleneck.

use super::roofline::{Bound, OpCost, Roofline};
use super::StepShape;
use serde::Serialize;

/// The shape of a static batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BatchSpec {
    /// Requests in the batch.
    pub batch_size: u32,
    /// Prompt tokens per request.
    pub input_len: u32,
    /// Output tokens per request (including the first).
    pub output_len: u32,
}

/// The result of [`estimate`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// The batch.
    pub batch: BatchSpec,
    /// Time to first token: the prefill of the whole batch, s.
    pub ttft_s: f64,
    /// Mean time per output token after the first, s.
    pub tpot_s: f64,
    /// End-to-end latency of the batch, s.
    pub e2e_s: f64,
    /// Output tokens per second over the batch.
    pub output_tokens_per_s: f64,
    /// Prompt plus output tokens per second.
    pub total_tokens_per_s: f64,
    /// Operators of the prefill, slowest first.
    pub prefill_ops: Vec<OpCost>,
    /// Operators of one decode step at the mean context, slowest first.
    pub decode_ops: Vec<OpCost>,
    /// What limits the batch as a whole.
    pub bottleneck: Bottleneck,
}

/// The dominant cost of the batch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bottleneck {
    /// `prefill` or `decode`: the phase taking most of the end-to-end time.
    pub phase: String,
    /// The operator taking most of that phase.
    pub op: String,
    /// What limits that operator.
    pub bound: Bound,
    /// Share of the phase's time by bound (compute, memory, communication, overhead).
    pub time_share_by_bound: Vec<(Bound, f64)>,
}

fn sorted(mut ops: Vec<OpCost>) -> Vec<OpCost> {
    ops.sort_by(|a, b| {
        b.time_s
            .total_cmp(&a.time_s)
            .then_with(|| a.name.cmp(&b.name))
    });
    ops
}

fn shares(ops: &[OpCost]) -> Vec<(Bound, f64)> {
    let total: f64 = ops.iter().map(|o| o.time_s).sum();
    let mut out = Vec::new();
    for b in [
        Bound::Compute,
        Bound::Memory,
        Bound::Communication,
        Bound::Overhead,
    ] {
        let t: f64 = ops
            .iter()
            .filter(|o| o.bound == Some(b))
            .map(|o| o.time_s)
            .sum();
        out.push((b, if total > 0.0 { t / total } else { 0.0 }));
    }
    out
}

/// Estimate `batch` on the roofline model `model`.
pub fn estimate(model: &Roofline, batch: BatchSpec) -> Estimate {
    let b = batch.batch_size.max(1);
    let mut shape = StepShape::new();
    for _ in 0..b {
        shape.push_prefill(batch.input_len, 0);
    }
    let mut prefill_ops = Vec::new();
    let ttft = model.evaluate(&shape, Some(&mut prefill_ops));

    let steps = batch.output_len.saturating_sub(1);
    let mut decode_total = 0.0;
    for j in 0..steps {
        shape.clear();
        for _ in 0..b {
            // The token fed back at step j sits at position input_len + j.
            shape.push_decode(batch.input_len + j + 1);
        }
        decode_total += model.evaluate(&shape, None);
    }
    let mut decode_ops = Vec::new();
    if steps > 0 {
        shape.clear();
        for _ in 0..b {
            shape.push_decode(batch.input_len + steps.div_ceil(2) + 1);
        }
        model.evaluate(&shape, Some(&mut decode_ops));
    }
    let tpot = if steps > 0 {
        decode_total / f64::from(steps)
    } else {
        0.0
    };
    let e2e = ttft + decode_total;
    let out_tokens = f64::from(b) * f64::from(batch.output_len);
    let in_tokens = f64::from(b) * f64::from(batch.input_len);
    let prefill_ops = sorted(prefill_ops);
    let decode_ops = sorted(decode_ops);
    let (phase, ops) = if decode_total > ttft && !decode_ops.is_empty() {
        ("decode", &decode_ops)
    } else {
        ("prefill", &prefill_ops)
    };
    let top = &ops[0];
    let bottleneck = Bottleneck {
        phase: phase.to_owned(),
        op: top.name.clone(),
        bound: top.bound.unwrap_or(Bound::Overhead),
        time_share_by_bound: shares(ops),
    };
    Estimate {
        batch,
        ttft_s: ttft,
        tpot_s: tpot,
        e2e_s: e2e,
        output_tokens_per_s: if e2e > 0.0 { out_tokens / e2e } else { 0.0 },
        total_tokens_per_s: if e2e > 0.0 {
            (out_tokens + in_tokens) / e2e
        } else {
            0.0
        },
        prefill_ops,
        decode_ops,
        bottleneck,
    }
}
