//! KV-cache sizes.
//!
//! Standard attention caches K and V of every KV head: `2 · num_kv_heads · head_dim`
//! elements per token per layer (`head_dim + v_head_dim` where they differ). MLA caches
//! one compressed latent shared by all heads plus the shared rotary key:
//! `kv_lora_rank + qk_rope_head_dim` elements per token per layer. A sliding-window layer
//! never holds more than its window.

use super::spec::*;
use crate::dtype::DType;

impl AttentionSpec {
    /// KV-cache elements per token for this layer.
    pub fn kv_elements_per_token(&self) -> u64 {
        match &self.mla {
            Some(m) => m.kv_lora_rank + m.qk_rope_head_dim,
            None => self.num_kv_heads * (self.head_dim + self.v_head_dim),
        }
    }

    /// Tokens this layer keeps in its cache for a sequence of `context_tokens`.
    pub fn cached_tokens(&self, context_tokens: u64) -> u64 {
        match self.kind {
            AttentionKind::Full => context_tokens,
            AttentionKind::Sliding { window_tokens } => context_tokens.min(window_tokens),
        }
    }
}

/// Layers that share an attention kind and KV width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerKindCount {
    /// Full or sliding (with its window).
    pub kind: AttentionKind,
    /// KV-cache elements per token in one such layer.
    pub kv_elements_per_token: u64,
    /// Number of such layers.
    pub layers: u64,
}

impl ModelSpec {
    /// KV-cache bytes per token summed over all layers, uncapped by sliding windows
    /// (the per-token cost while a sequence is shorter than every window).
    ///
    /// Example: Llama-3.1-8B in bf16: 32 layers × 2 × 8 KV heads × 128 × 2 B = 131072 B.
    pub fn kv_bytes_per_token(&self, kv_dtype: DType) -> f64 {
        let elements: u64 = self
            .layers
            .iter()
            .map(|l| l.attention.kv_elements_per_token())
            .sum();
        elements as f64 * kv_dtype.bytes_per_element()
    }

    /// KV-cache bytes of one sequence of `context_tokens` tokens, with sliding-window
    /// layers capped at their window.
    pub fn kv_bytes_for_context(&self, context_tokens: u64, kv_dtype: DType) -> f64 {
        let elements: u64 = self
            .layers
            .iter()
            .map(|l| {
                l.attention.kv_elements_per_token() * l.attention.cached_tokens(context_tokens)
            })
            .sum();
        elements as f64 * kv_dtype.bytes_per_element()
    }

    /// The distinct (attention kind, KV width) combinations with their layer counts,
    /// full attention first, then sliding windows from narrow to wide.
    pub fn layer_kinds(&self) -> Vec<LayerKindCount> {
        let mut out: Vec<LayerKindCount> = Vec::new();
        for l in &self.layers {
            let kind = l.attention.kind;
            let kv = l.attention.kv_elements_per_token();
            match out
                .iter_mut()
                .find(|k| k.kind == kind && k.kv_elements_per_token == kv)
            {
                Some(k) => k.layers += 1,
                None => out.push(LayerKindCount {
                    kind,
                    kv_elements_per_token: kv,
                    layers: 1,
                }),
            }
        }
        out.sort_by_key(|k| (k.kind, k.kv_elements_per_token));
        out
    }
}
