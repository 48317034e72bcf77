//! FLOPs and bytes moved by a forward pass, for roofline estimates.
//!
//! A forward pass splits into work whose cost depends on the batch as a whole (linear
//! operators: weights are read once per pass however many tokens use them) and work
//! per sequence (attention over that sequence's cache). [`ModelSpec::linear_cost`] and
//! [`ModelSpec::attention_cost`] give the two; a batch's cost is one `linear_cost` over
//! all its tokens plus one `attention_cost` per sequence. [`ModelSpec::forward_cost`] and
//! [`ModelSpec::forward_flops`] combine them for a single sequence.
//!
//! Formulas (FLOPs count a multiply-add as 2; element-wise work such as norms,
//! activations, rotary embedding and softmax is ignored):
//!
//! - A linear operator on `t` tokens: `2 · t · k · in · out`, with `k` the experts a token
//!   uses (1 if dense).
//! - Attention of a chunk of `n` new tokens after `c` cached tokens: each query at
//!   position `p ∈ [c+1, c+n]` attends to `min(p, window)` keys (causal), so the pairs are
//!   `P = Σ min(p, window)` (`n·c + n(n+1)/2` for full attention), and the FLOPs are
//!   `2 · P · heads · (score_dim + value_dim)` for QKᵀ and PV.
//!   For MLA the weight-absorbed form used by vLLM/FlashMLA is assumed: scores over the
//!   latent plus rotary key (`score_dim = kv_lora_rank + qk_rope_head_dim`), values in the
//!   latent (`value_dim = kv_lora_rank`); `kv_b_proj` then acts once per new token, which
//!   is how it appears among the linear operators.
//! - Weight bytes read: every dense weight once; a routed-expert weight once per expert
//!   touched, `E · (1 − (1 − k/E)^t)` experts expected for `t` tokens under uniform
//!   routing; norms; the embedding rows gathered; the LM head when logits are computed.
//! - KV bytes: the cached tokens a chunk can see are read once per layer (ideal fused
//!   attention kernel); the chunk's own K/V (or latent) is written once per layer.

use super::spec::*;
use crate::dtype::DType;

/// FLOPs and weight traffic of the linear operators for a batch of tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinearCost {
    /// Matrix-multiply FLOPs.
    pub flops: f64,
    /// Bytes of weights (and embedding rows) read from memory.
    pub weight_bytes: f64,
}

/// FLOPs and KV traffic of attention for one sequence's chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AttentionCost {
    /// QKᵀ and PV FLOPs over all layers.
    pub flops: f64,
    /// Bytes of cached K/V read.
    pub kv_read_bytes: f64,
    /// Bytes of new K/V written.
    pub kv_write_bytes: f64,
}

/// The cost of one forward pass of one sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForwardCost {
    /// Linear operators (including the LM head).
    pub linear: LinearCost,
    /// Attention.
    pub attention: AttentionCost,
}

impl ForwardCost {
    /// Linear plus attention FLOPs.
    pub fn flops(&self) -> f64 {
        self.linear.flops + self.attention.flops
    }

    /// Weights read plus KV read and written.
    pub fn bytes(&self) -> f64 {
        self.linear.weight_bytes + self.attention.kv_read_bytes + self.attention.kv_write_bytes
    }
}

impl LinearOp {
    /// FLOPs on `tokens` tokens: `2 · tokens · k · in_features · out_features`.
    pub fn flops(&self, tokens: u64) -> f64 {
        2.0 * tokens as f64 * self.experts.active_per_token() as f64 * self.weight_elements() as f64
    }

    /// Weight instances a batch of `tokens` tokens is expected to touch: 1 for a dense
    /// operator (0 with no tokens); `E · (1 − (1 − k/E)^tokens)` for `E` routed experts
    /// with top-`k` routing, assuming tokens pick experts uniformly and independently.
    pub fn expected_instances_touched(&self, tokens: u64) -> f64 {
        if tokens == 0 {
            return 0.0;
        }
        match self.experts {
            ExpertCount::Dense => 1.0,
            ExpertCount::Routed {
                total,
                active_per_token,
            } => super::routing::experts_touched(
                total as f64,
                active_per_token as f64,
                tokens as f64,
            ),
        }
    }
}

impl AttentionSpec {
    /// Width of the query-key dot product per head (MLA: latent plus rotary key).
    pub fn score_dim(&self) -> u64 {
        match &self.mla {
            Some(m) => m.kv_lora_rank + m.qk_rope_head_dim,
            None => self.head_dim,
        }
    }

    /// Width of the values each head averages (MLA: the latent).
    pub fn value_dim(&self) -> u64 {
        match &self.mla {
            Some(m) => m.kv_lora_rank,
            None => self.v_head_dim,
        }
    }

    /// Query-key pairs computed for `new_tokens` queries after `context_tokens` cached
    /// tokens, causal and windowed: `Σ_{p=c+1}^{c+n} min(p, window)`.
    pub fn attended_pairs(&self, new_tokens: u64, context_tokens: u64) -> u128 {
        let (lo, hi) = (
            u128::from(context_tokens) + 1,
            u128::from(context_tokens) + u128::from(new_tokens),
        );
        if new_tokens == 0 {
            return 0;
        }
        // Saturating: only absurd inputs (near 2^64 tokens) could overflow u128.
        let sum = |a: u128, b: u128| (a + b).saturating_mul(b + 1 - a) / 2;
        match self.kind {
            AttentionKind::Full => sum(lo, hi),
            AttentionKind::Sliding { window_tokens } => {
                let w = u128::from(window_tokens);
                if hi <= w {
                    sum(lo, hi)
                } else if lo > w {
                    (hi - lo + 1).saturating_mul(w)
                } else {
                    sum(lo, w).saturating_add((hi - w).saturating_mul(w))
                }
            }
        }
    }

    /// QKᵀ and PV FLOPs of this layer: `2 · pairs · heads · (score_dim + value_dim)`.
    pub fn flops(&self, new_tokens: u64, context_tokens: u64) -> f64 {
        2.0 * self.attended_pairs(new_tokens, context_tokens) as f64
            * self.num_heads as f64
            * (self.score_dim() + self.value_dim()) as f64
    }
}

impl ModelSpec {
    /// Bytes of `op`'s weights (and biases) read for `tokens` tokens.
    pub fn op_bytes_read(&self, op: &LinearOp, tokens: u64, weight_dtype: Option<DType>) -> f64 {
        let per_instance = op.weight_elements() as f64
            * self.op_weight_dtype(op, weight_dtype).bytes_per_element()
            + op.bias_elements() as f64 * self.unquantized_dtype().bytes_per_element();
        op.expected_instances_touched(tokens) * per_instance
    }

    /// Linear operators for a batch of `tokens` tokens, of which `logit_tokens` go through
    /// the LM head (one per sequence that samples).
    pub fn linear_cost(
        &self,
        tokens: u64,
        logit_tokens: u64,
        weight_dtype: Option<DType>,
    ) -> LinearCost {
        let half = self.unquantized_dtype().bytes_per_element();
        let mut c = LinearCost::default();
        for op in self.all_ops() {
            c.flops += op.flops(tokens);
            c.weight_bytes += self.op_bytes_read(op, tokens, weight_dtype);
        }
        c.flops += self.lm_head.flops(logit_tokens);
        c.weight_bytes += self.op_bytes_read(&self.lm_head, logit_tokens, weight_dtype);
        if tokens > 0 {
            let norm_elements: u64 = self.all_norms().map(NormSpec::params).sum();
            let sinks: u64 = self.layers.iter().map(|l| l.attention.sink_params()).sum();
            let e = &self.embedding;
            let mut rows = tokens.min(e.vocab_size) * e.dim;
            if let Some(p) = e.learned_positions {
                rows += tokens.min(p.rows) * p.dim;
            }
            c.weight_bytes += (norm_elements + sinks + rows) as f64 * half;
        }
        c
    }

    /// Attention of one sequence: `new_tokens` tokens after `context_tokens` cached ones
    /// (a decode step at a context of `C` tokens including the new one is
    /// `attention_cost(1, C − 1, ..)`).
    pub fn attention_cost(
        &self,
        new_tokens: u64,
        context_tokens: u64,
        kv_dtype: DType,
    ) -> AttentionCost {
        let b = kv_dtype.bytes_per_element();
        let mut c = AttentionCost::default();
        for l in &self.layers {
            let a = &l.attention;
            let kv = a.kv_elements_per_token() as f64;
            c.flops += a.flops(new_tokens, context_tokens);
            c.kv_read_bytes += kv * a.cached_tokens(context_tokens) as f64 * b;
            c.kv_write_bytes += kv * new_tokens as f64 * b;
        }
        c
    }

    /// Cost of one forward pass of one sequence: `new_tokens` after `context_tokens`
    /// cached ones, with logits for its last token.
    pub fn forward_cost(
        &self,
        new_tokens: u64,
        context_tokens: u64,
        weight_dtype: Option<DType>,
        kv_dtype: DType,
    ) -> ForwardCost {
        ForwardCost {
            linear: self.linear_cost(new_tokens, new_tokens.min(1), weight_dtype),
            attention: self.attention_cost(new_tokens, context_tokens, kv_dtype),
        }
    }

    /// FLOPs of one forward pass of one sequence (see [`Self::forward_cost`]): a prefill
    /// chunk of `new_tokens` after `context_tokens`, or a decode with `new_tokens = 1`.
    pub fn forward_flops(&self, new_tokens: u64, context_tokens: u64) -> f64 {
        let linear: f64 = self.all_ops().map(|op| op.flops(new_tokens)).sum::<f64>()
            + self.lm_head.flops(new_tokens.min(1));
        let attention: f64 = self
            .layers
            .iter()
            .map(|l| l.attention.flops(new_tokens, context_tokens))
            .sum();
        linear + attention
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::shipped;

    #[test]
    fn attended_pairs_are_causal_and_windowed() {
        let mut a = shipped("meta-llama/Llama-3.1-8B").layers[0]
            .attention
            .clone();
        // 4 new tokens after 10: 11 + 12 + 13 + 14 = 4·10 + 4·5/2.
        assert_eq!(a.attended_pairs(4, 10), 50);
        assert_eq!(a.attended_pairs(1, 999), 1000);
        assert_eq!(a.attended_pairs(0, 999), 0);
        a.kind = AttentionKind::Sliding { window_tokens: 128 };
        assert_eq!(a.attended_pairs(1, 1000), 128);
        // 1 + 2 + … + 128, then 72 queries of 128 keys.
        assert_eq!(a.attended_pairs(200, 0), 128 * 129 / 2 + 72 * 128);
        assert_eq!(
            a.attended_pairs(10, 100),
            (101..=110).map(|p: u128| p.min(128)).sum()
        );
    }

    #[test]
    fn llama_decode_flops_and_bytes() {
        let l = shipped("meta-llama/Llama-3.1-8B");
        // One token at empty context: 2 × (6,979,321,856 layer weights + 525,336,576
        // lm_head) linear FLOPs, plus attention over 1 key: 2 × 32 layers × 32 heads ×
        // (128 + 128).
        let linear = 2.0 * (6_979_321_856.0 + 525_336_576.0);
        let attn = 2.0 * 32.0 * 32.0 * 256.0;
        assert_eq!(l.forward_flops(1, 0), linear + attn);
        let c = l.forward_cost(1, 0, None, DType::Bf16);
        assert_eq!(c.flops(), linear + attn);
        // Weights read: every bf16 weight except the embedding table, plus one row of it.
        let emb = 128_256.0 * 4096.0 * 2.0;
        assert_eq!(c.linear.weight_bytes, 16_060_522_496.0 - emb + 4096.0 * 2.0);
        // Decode at 1000 cached tokens reads their KV and writes one token's.
        let c = l.attention_cost(1, 1000, DType::Bf16);
        assert_eq!(c.kv_read_bytes, l.kv_bytes_for_context(1000, DType::Bf16));
        assert_eq!(c.kv_write_bytes, 131_072.0);
        // Prefill grows quadratically in attention, linearly in weights.
        let p = l.forward_flops(1000, 0);
        let pairs = 1000.0 * 1001.0 / 2.0;
        assert_eq!(
            p,
            2.0 * 1000.0 * 6_979_321_856.0
                + 2.0 * 525_336_576.0
                + 2.0 * pairs * 32.0 * 32.0 * 256.0
        );
    }

    #[test]
    fn moe_uses_top_k_flops_and_touched_expert_bytes() {
        let mx = shipped("mistralai/Mixtral-8x7B-v0.1");
        let experts = mx.layers[0]
            .ops
            .iter()
            .find(|o| o.name == "experts.down_proj")
            .unwrap();
        assert_eq!(experts.flops(3), 2.0 * 3.0 * 2.0 * 14336.0 * 4096.0);
        assert!((experts.expected_instances_touched(1) - 2.0).abs() < 1e-12);
        // Two tokens: 8 · (1 − (6/8)²) = 3.5 experts expected.
        assert!((experts.expected_instances_touched(2) - 3.5).abs() < 1e-12);
        assert!((experts.expected_instances_touched(10_000) - 8.0).abs() < 1e-9);
        // Per-token linear FLOPs = 2 × active matrix parameters.
        let p = mx.params();
        let active_matrices = p.active - p.embedding - p.norms;
        assert_eq!(
            mx.linear_cost(1, 1, None).flops,
            2.0 * active_matrices as f64
        );
        // A batch larger than the vocabulary touches every expert and gathers every
        // embedding row: it reads all weights but the LM head (no logits requested).
        let big = mx.linear_cost(100_000, 0, None);
        let lm_head = 32_000.0 * 4096.0 * 2.0;
        let expected = mx.weight_bytes(None) - lm_head;
        assert!((big.weight_bytes - expected).abs() / expected < 1e-9);
    }

    #[test]
    fn mla_attention_uses_the_latent() {
        let ds = shipped("deepseek-ai/DeepSeek-V3");
        let a = &ds.layers[0].attention;
        assert_eq!((a.score_dim(), a.value_dim()), (576, 512));
        // One query, one key: 2 × 128 heads × (576 + 512) per layer.
        let c = ds.attention_cost(1, 0, DType::Bf16);
        assert_eq!(c.flops, 61.0 * 2.0 * 128.0 * 1088.0);
        assert_eq!(c.kv_write_bytes, 70_272.0);
        // Declared FP8 weights: a decode reads about 1 B per active linear weight.
        let w = ds.linear_cost(1, 1, None).weight_bytes;
        assert!(w > 30e9 && w < 45e9, "{w}");
    }
}
