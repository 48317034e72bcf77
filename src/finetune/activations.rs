//! Activations kept for the backward pass, per micro-batch.
//!
//! Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
//! Models", §4.1: one GPT layer keeps `sbh(34 + 5as/h)` bytes with 16-bit activations
//! (`s` tokens per sequence, `b` sequences, `h` hidden, `a` heads). The 34 is a sum over
//! the tensors the backward pass needs; this module sums the same tensors with each
//! model's real widths (GQA key/value heads, gated or MoE MLPs), so that a GPT layer gives
//! the paper's figure exactly. The coefficients live in `perf_model/finetune.toml`.
//!
//! - Eager attention also keeps the `b × a × s × s` score matrices (the `5as/h` term);
//!   FlashAttention recomputes them and drops the term.
//! - Full activation checkpointing (Korthikanti §5) keeps only each layer's input
//!   (`2sbh` per layer) plus one layer's full activations while it is recomputed.
//! - The output layer adds the loss's logits (`s × b × vocab`), which the paper leaves out.
//!
//! LoRA and QLoRA are charged the same activations as full fine-tuning: the adapters need
//! each targeted projection's input, which the formula already counts, and their rank-`r`
//! intermediates are negligible.

use super::constants::ActivationConstants;
use crate::model::{FfnSpec, LayerSpec, ModelSpec};
use serde::Serialize;

/// Which attention kernel the training run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionImpl {
    /// FlashAttention / SDPA memory-efficient kernels: no score matrix is stored.
    Flash,
    /// Eager (math) attention: softmax and dropout of the `S × S` scores are stored.
    Eager,
}

/// Activation settings of one training step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivationSettings {
    /// Tokens per sequence.
    pub seq_len: u64,
    /// Attention kernel.
    pub attention: AttentionImpl,
    /// Full activation checkpointing (one checkpoint per decoder layer).
    pub gradient_checkpointing: bool,
    /// Multiplier for non-16-bit activations (2 for fp32 training).
    pub scale: f64,
}

/// Bytes one sequence of `s.seq_len` tokens keeps in `layer` (no checkpointing).
pub fn layer_bytes_per_sequence(
    model: &ModelSpec,
    layer: &LayerSpec,
    k: &ActivationConstants,
    s: &ActivationSettings,
) -> f64 {
    let h = model.hidden_size as f64;
    let a = &layer.attention;
    let q = (a.num_heads * a.head_dim) as f64;
    let kv = (a.num_kv_heads * a.head_dim) as f64;
    let v = (a.num_kv_heads * a.v_head_dim) as f64;
    let attn_out = (a.num_heads * a.v_head_dim) as f64;
    let attention =
        k.qkv_input * h + k.query * q + k.key_value * (kv + v) + k.attention_output * attn_out;
    let (mlp_inputs, width, width_coeff) = match layer.ffn {
        FfnSpec::Dense {
            intermediate_size,
            gated,
        } => (
            1.0,
            intermediate_size as f64,
            if gated {
                k.mlp_width_gated
            } else {
                k.mlp_width_plain
            },
        ),
        FfnSpec::Moe {
            experts_per_token,
            expert_intermediate_size,
            shared_intermediate_size,
            ..
        } => (
            experts_per_token as f64 + f64::from(u8::from(shared_intermediate_size > 0)),
            (experts_per_token * expert_intermediate_size + shared_intermediate_size) as f64,
            k.mlp_width_gated,
        ),
    };
    let mlp = k.mlp_input * h * mlp_inputs + width_coeff * width;
    let rest = k.dropout_mask * h * k.dropouts_per_layer + k.norm_input * h * k.norms_per_layer;
    let per_token = attention + mlp + rest;
    let seq = s.seq_len as f64;
    let scores = match s.attention {
        AttentionImpl::Flash => 0.0,
        AttentionImpl::Eager => k.eager_scores * a.num_heads as f64 * seq * seq,
    };
    (per_token * seq + scores) * s.scale
}

/// Activation bytes of one micro-batch of `micro_batch` sequences on one GPU.
pub fn micro_batch_bytes(
    model: &ModelSpec,
    k: &ActivationConstants,
    s: &ActivationSettings,
    micro_batch: u64,
) -> f64 {
    let per_layer = model
        .layers
        .iter()
        .map(|l| layer_bytes_per_sequence(model, l, k, s));
    let seq = s.seq_len as f64;
    let layers = if s.gradient_checkpointing {
        let inputs =
            k.checkpoint_layer_input * model.hidden_size as f64 * seq * model.layers.len() as f64;
        inputs * s.scale + per_layer.fold(0.0, f64::max)
    } else {
        per_layer.sum()
    };
    // Logits stay 16/32-bit as documented in finetune.toml whatever the precision.
    let logits = k.logits * model.vocab_size as f64 * seq;
    (layers + logits) * micro_batch as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finetune::FinetuneConstants;
    use crate::model::test_util::shipped;
    use std::path::Path;

    fn consts() -> ActivationConstants {
        FinetuneConstants::builtin().unwrap().activations
    }

    fn settings(seq_len: u64, attention: AttentionImpl, ckpt: bool) -> ActivationSettings {
        ActivationSettings {
            seq_len,
            attention,
            gradient_checkpointing: ckpt,
            scale: 1.0,
        }
    }

    /// OPT-6.7B is a GPT layer (MHA, plain MLP of 4h = 16384): with eager attention the
    /// per-layer bytes are exactly Korthikanti et al.'s sbh(34 + 5as/h), h = 4096, a = 32.
    #[test]
    fn gpt_layer_reproduces_korthikanti() {
        let m = shipped("facebook/opt-6.7b");
        let (s, h, a) = (2048.0, 4096.0, 32.0);
        let paper = s * h * (34.0 + 5.0 * a * s / h);
        let got = layer_bytes_per_sequence(
            &m,
            &m.layers[0],
            &consts(),
            &settings(2048, AttentionImpl::Eager, false),
        );
        assert!((got - paper).abs() < 1e-6 * paper, "{got} vs {paper}");
        // FlashAttention drops exactly the 5as²b term.
        let flash = layer_bytes_per_sequence(
            &m,
            &m.layers[0],
            &consts(),
            &settings(2048, AttentionImpl::Flash, false),
        );
        assert!((flash - s * h * 34.0).abs() < 1e-6 * paper);
    }

    /// A small GQA + gated-MLP config, checked by hand:
    /// h = 64, 4 heads × 16 (q = 64), 2 KV heads (kv = 32), gated MLP i = 96, 2 layers,
    /// vocab 100, s = 8, b = 3.
    /// Per token per layer: attention 2·64 + 2·64 + 2·(32 + 32) + 2·64 = 512;
    /// MLP 2·64 + 8·96 = 896; masks 1·64·2 = 128; norms 2·64·2 = 256 → 1792 bytes.
    /// Eager scores: 5 · 4 · 8 = 160 per token. Logits 6 · 100 = 600 per token.
    /// Flash, no checkpointing: b·s·(2·1792 + 600) = 3·8·4184 = 100,416.
    /// Eager: + 3·8·2·160 = 7,680 → 108,096.
    /// Checkpointing (flash): b·s·(2·64·2 + 1792 + 600) = 3·8·2648 = 63,552.
    #[test]
    fn small_config_by_hand() {
        let json = r#"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
            "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
            "vocab_size": 100, "max_position_embeddings": 128, "rms_norm_eps": 1e-5}"#;
        let m = ModelSpec::from_json("tiny", Path::new("tiny.json"), json).unwrap();
        let k = consts();
        let flash = micro_batch_bytes(&m, &k, &settings(8, AttentionImpl::Flash, false), 3);
        assert_eq!(flash, 100_416.0);
        let eager = micro_batch_bytes(&m, &k, &settings(8, AttentionImpl::Eager, false), 3);
        assert_eq!(eager, 108_096.0);
        let ckpt = micro_batch_bytes(&m, &k, &settings(8, AttentionImpl::Flash, true), 3);
        assert_eq!(ckpt, 63_552.0);
    }

    #[test]
    fn checkpointing_and_flash_shrink_long_sequences() {
        let m = shipped("meta-llama/Llama-2-7b-hf");
        let k = consts();
        let full = micro_batch_bytes(&m, &k, &settings(4096, AttentionImpl::Eager, false), 1);
        let flash = micro_batch_bytes(&m, &k, &settings(4096, AttentionImpl::Flash, false), 1);
        let ckpt = micro_batch_bytes(&m, &k, &settings(4096, AttentionImpl::Flash, true), 1);
        assert!(
            full > 3.0 * flash && flash > 5.0 * ckpt,
            "{full} {flash} {ckpt}"
        );
    }
}
