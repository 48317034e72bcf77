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
        // In f64: the caller's context length is unbounded.
        let elements: f64 = self
            .layers
            .iter()
            .map(|l| {
                l.attention.kv_elements_per_token() as f64
                    * l.attention.cached_tokens(context_tokens) as f64
            })
            .sum();
        elements * kv_dtype.bytes_per_element()
    }

    /// Whether any layer attends over a sliding window (vLLM's `get_sliding_window()`
    /// is set).
    pub fn has_sliding_window(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l.attention.kind, AttentionKind::Sliding { .. }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::{catalog, shipped};

    #[test]
    fn kv_bytes_per_token_of_every_shipped_model() {
        // Per token at 2 bytes per element: layers × 2 (K, V) × kv_heads × head_dim × 2 B,
        // or layers × (kv_lora_rank + qk_rope_head_dim) × 2 B for MLA.
        let expected: &[(&str, f64)] = &[
            ("codellama/CodeLlama-34b-Instruct-hf", 196_608.0),
            ("codellama/CodeLlama-34b-hf", 196_608.0), // 48 × 2 × 8 × 128 × 2
            ("deepseek-ai/DeepSeek-V3", 70_272.0),     // 61 × (512 + 64) × 2
            ("facebook/opt-13b", 819_200.0),           // 40 × 2 × 40 × 128 × 2
            ("facebook/opt-6.7b", 524_288.0),          // 32 × 2 × 32 × 128 × 2
            ("facebook/opt-66b", 2_359_296.0),         // 64 × 2 × 72 × 128 × 2
            ("meta-llama/Llama-2-13b-hf", 819_200.0),  // 40 × 2 × 40 × 128 × 2
            ("meta-llama/Llama-2-70b-hf", 327_680.0),  // 80 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-2-7b-hf", 524_288.0),   // 32 × 2 × 32 × 128 × 2
            ("meta-llama/Llama-3.1-405B", 516_096.0),  // 126 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-3.1-70B", 327_680.0),   // 80 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-3.1-8B", 131_072.0),    // 32 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-3.1-8B-Instruct", 131_072.0),
            ("microsoft/phi-2", 327_680.0), // 32 × 2 × 32 × 80 × 2
            ("mistralai/Mistral-7B-v0.1", 131_072.0), // 32 × 2 × 8 × 128 × 2
            ("mistralai/Mixtral-8x7B-v0.1", 131_072.0), // 32 × 2 × 8 × 128 × 2
            ("openai/gpt-oss-120b", 73_728.0), // 36 × 2 × 8 × 64 × 2
            ("openai/gpt-oss-20b", 49_152.0), // 24 × 2 × 8 × 64 × 2
            ("Qwen/Qwen2.5-72B", 327_680.0), // 80 × 2 × 8 × 128 × 2
            ("Qwen/Qwen2.5-72B-Instruct", 327_680.0),
            ("Qwen/Qwen2.5-7B", 57_344.0),       // 28 × 2 × 4 × 128 × 2
            ("Qwen/Qwen3-235B-A22B", 192_512.0), // 94 × 2 × 4 × 128 × 2
            ("Qwen/Qwen3-30B-A3B-Instruct-2507", 98_304.0), // 48 × 2 × 4 × 128 × 2
            ("Qwen/Qwen3-32B", 262_144.0),       // 64 × 2 × 8 × 128 × 2
            ("Qwen/Qwen3-8B", 147_456.0),        // 36 × 2 × 8 × 128 × 2
            ("Qwen/Qwen3-0.6B", 114_688.0),      // 28 × 2 × 8 × 128 × 2
            ("Qwen/Qwen3-1.7B", 114_688.0),      // 28 × 2 × 8 × 128 × 2
            ("Qwen/Qwen3-30B-A3B", 98_304.0),    // 48 × 2 × 4 × 128 × 2
            ("zai-org/GLM-4.7", 376_832.0),      // 92 × 2 × 8 × 128 × 2
            ("zai-org/GLM-4.7-FP8", 376_832.0),
            ("Qwen/Qwen3-30B-A3B-FP8", 98_304.0),
            ("Qwen/Qwen3-32B-FP8", 262_144.0),
            ("Qwen/Qwen3-235B-A22B-FP8", 192_512.0),
            ("Qwen/Qwen3-Coder-480B-A35B-Instruct", 253_952.0), // 62 × 2 × 8 × 128 × 2
            ("mistralai/Mixtral-8x22B-v0.1", 229_376.0),        // 56 × 2 × 8 × 128 × 2
            ("deepseek-ai/DeepSeek-R1", 70_272.0),              // 61 × (512 + 64) × 2
            ("moonshotai/Kimi-K2-Instruct", 70_272.0),          // 61 × (512 + 64) × 2
            // The wider catalog (model_configs/README.md).
            ("01-ai/Yi-34B", 245_760.0),         // 60 × 2 × 8 × 128 × 2
            ("01-ai/Yi-6B", 65_536.0),           // 32 × 2 × 4 × 128 × 2
            ("BAAI/Aquila-7B", 524_288.0),       // 32 × 2 × 32 × 128 × 2
            ("bigscience/bloom", 4_014_080.0),   // 70 × 2 × 112 × 128 × 2
            ("bigscience/bloom-7b1", 491_520.0), // 30 × 2 × 32 × 128 × 2
            ("codellama/CodeLlama-13b-hf", 819_200.0), // 40 × 2 × 40 × 128 × 2
            ("codellama/CodeLlama-7b-hf", 524_288.0), // 32 × 2 × 32 × 128 × 2
            ("CohereForAI/c4ai-command-r-plus", 262_144.0), // 64 × 2 × 8 × 128 × 2
            ("CohereForAI/c4ai-command-r-v01", 1_310_720.0), // 40 × 2 × 64 × 128 × 2
            ("Deci/DeciLM-7B", 34_304.0),        // 67 KV heads over all layers × 2 × 128 × 2
            ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 28_672.0), // 28 × 2 × 2 × 128 × 2
            ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 57_344.0), // 28 × 2 × 4 × 128 × 2
            ("deepseek-ai/DeepSeek-V2", 69_120.0), // 60 × (512 + 64) × 2
            ("deepseek-ai/DeepSeek-V2-Lite", 31_104.0), // 27 × (512 + 64) × 2
            ("EleutherAI/gpt-j-6b", 458_752.0),  // 28 × 2 × 16 × 256 × 2
            ("EleutherAI/gpt-neox-20b", 1_081_344.0), // 44 × 2 × 64 × 96 × 2
            ("EleutherAI/pythia-6.9b", 524_288.0), // 32 × 2 × 32 × 128 × 2
            ("facebook/opt-1.3b", 196_608.0),    // 24 × 2 × 32 × 64 × 2
            ("facebook/opt-30b", 1_376_256.0),   // 48 × 2 × 56 × 128 × 2
            ("google/gemma-2-27b", 376_832.0),   // 46 × 2 × 16 × 128 × 2
            ("google/gemma-2-2b", 106_496.0),    // 26 × 2 × 4 × 256 × 2
            ("google/gemma-2-9b", 344_064.0),    // 42 × 2 × 8 × 256 × 2
            ("google/gemma-3-12b-it", 393_216.0), // 48 × 2 × 8 × 256 × 2
            ("google/gemma-3-1b-it", 26_624.0),  // 26 × 2 × 1 × 256 × 2
            ("google/gemma-3-27b-it", 507_904.0), // 62 × 2 × 16 × 128 × 2
            ("google/gemma-3-4b-it", 139_264.0), // 34 × 2 × 4 × 256 × 2
            ("internlm/internlm2-20b", 196_608.0), // 48 × 2 × 8 × 128 × 2
            ("internlm/internlm2_5-7b-chat", 131_072.0), // 32 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-3.2-1B", 32_768.0), // 16 × 2 × 8 × 64 × 2
            ("meta-llama/Llama-3.2-3B", 114_688.0), // 28 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-3.2-3B-Instruct", 114_688.0), // 28 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-3.3-70B-Instruct", 327_680.0), // 80 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-4-Maverick-17B-128E-Instruct", 196_608.0), // 48 × 2 × 8 × 128 × 2
            ("meta-llama/Llama-4-Scout-17B-16E-Instruct", 196_608.0), // 48 × 2 × 8 × 128 × 2
            ("meta-llama/Meta-Llama-3-70B", 327_680.0), // 80 × 2 × 8 × 128 × 2
            ("meta-llama/Meta-Llama-3-8B", 131_072.0), // 32 × 2 × 8 × 128 × 2
            ("microsoft/Phi-3-medium-4k-instruct", 204_800.0), // 40 × 2 × 10 × 128 × 2
            ("microsoft/Phi-3-mini-4k-instruct", 393_216.0), // 32 × 2 × 32 × 96 × 2
            ("microsoft/Phi-3.5-mini-instruct", 393_216.0), // 32 × 2 × 32 × 96 × 2
            ("microsoft/phi-4", 204_800.0),      // 40 × 2 × 10 × 128 × 2
            ("mistralai/Mistral-7B-Instruct-v0.3", 131_072.0), // 32 × 2 × 8 × 128 × 2
            ("mistralai/Mistral-Large-Instruct-2407", 360_448.0), // 88 × 2 × 8 × 128 × 2
            ("mistralai/Mistral-Nemo-Base-2407", 163_840.0), // 40 × 2 × 8 × 128 × 2
            ("mistralai/Mistral-Small-24B-Base-2501", 163_840.0), // 40 × 2 × 8 × 128 × 2
            ("Qwen/Qwen1.5-7B", 524_288.0),      // 32 × 2 × 32 × 128 × 2
            ("Qwen/Qwen1.5-MoE-A2.7B-Chat", 196_608.0), // 24 × 2 × 16 × 128 × 2
            ("Qwen/Qwen2-57B-A14B", 57_344.0),   // 28 × 2 × 4 × 128 × 2
            ("Qwen/Qwen2-72B", 327_680.0),       // 80 × 2 × 8 × 128 × 2
            ("Qwen/Qwen2-7B", 57_344.0),         // 28 × 2 × 4 × 128 × 2
            ("Qwen/Qwen2.5-0.5B", 12_288.0),     // 24 × 2 × 2 × 64 × 2
            ("Qwen/Qwen2.5-14B", 196_608.0),     // 48 × 2 × 8 × 128 × 2
            ("Qwen/Qwen2.5-32B", 262_144.0),     // 64 × 2 × 8 × 128 × 2
            ("Qwen/Qwen2.5-3B", 36_864.0),       // 36 × 2 × 2 × 128 × 2
            ("Qwen/Qwen2.5-7B-Instruct", 57_344.0), // 28 × 2 × 4 × 128 × 2
            ("Qwen/Qwen3-14B", 163_840.0),       // 40 × 2 × 8 × 128 × 2
            ("Qwen/Qwen3-4B", 147_456.0),        // 36 × 2 × 8 × 128 × 2
            ("Qwen/QwQ-32B", 262_144.0),         // 64 × 2 × 8 × 128 × 2
            ("THUDM/glm-4-9b-chat-hf", 40_960.0), // 40 × 2 × 2 × 128 × 2
            ("tiiuae/falcon-7b", 8_192.0),       // 32 × 2 × 1 × 64 × 2
        ];
        let cat = catalog();
        assert_eq!(cat.entries().len(), expected.len());
        for &(id, bytes) in expected {
            let spec = cat.get(id).unwrap().spec().unwrap();
            assert_eq!(spec.kv_bytes_per_token(DType::Bf16), bytes, "{id}");
            assert_eq!(spec.kv_bytes_per_token(DType::Fp8), bytes / 2.0, "{id}");
        }
    }

    #[test]
    fn sliding_layers_are_capped_at_their_window() {
        // gpt-oss-20b: 12 full + 12 sliding(128) layers, 2 × 8 × 64 = 1024 elements each.
        let oss = shipped("openai/gpt-oss-20b");
        assert_eq!(
            oss.layer_kinds(),
            vec![
                LayerKindCount {
                    kind: AttentionKind::Full,
                    kv_elements_per_token: 1024,
                    layers: 12
                },
                LayerKindCount {
                    kind: AttentionKind::Sliding { window_tokens: 128 },
                    kv_elements_per_token: 1024,
                    layers: 12
                },
            ]
        );
        let bytes = oss.kv_bytes_for_context(10_000, DType::Bf16);
        assert_eq!(bytes, (12.0 * 10_000.0 + 12.0 * 128.0) * 1024.0 * 2.0);
        // Below the window every layer holds everything.
        assert_eq!(
            oss.kv_bytes_for_context(100, DType::Bf16),
            100.0 * oss.kv_bytes_per_token(DType::Bf16)
        );

        // Mistral-7B-v0.1: every layer slides over 4096 tokens.
        let m = shipped("mistralai/Mistral-7B-v0.1");
        assert_eq!(
            m.kv_bytes_for_context(8192, DType::Bf16),
            4096.0 * 131_072.0
        );
        // Qwen configs carry a sliding_window but `use_sliding_window: false`.
        let q = shipped("Qwen/Qwen2.5-72B");
        assert_eq!(q.layer_kinds().len(), 1);
        assert_eq!(q.layer_kinds()[0].kind, AttentionKind::Full);
        // Mixtral's `sliding_window: null` means full attention.
        let mx = shipped("mistralai/Mixtral-8x7B-v0.1");
        assert_eq!(mx.layer_kinds()[0].kind, AttentionKind::Full);
        // MLA: one 576-element latent per layer.
        let ds = shipped("deepseek-ai/DeepSeek-V3");
        assert_eq!(ds.layer_kinds()[0].kv_elements_per_token, 576);
        assert_eq!(
            ds.kv_bytes_for_context(1000, DType::Fp8),
            1000.0 * 61.0 * 576.0
        );
    }
}
