//! The physical constants of fine-tuning memory, loaded from `perf_model/finetune.toml`
//! (each value's source is documented there).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything `perf_model/finetune.toml` holds.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConstants {
    /// QLoRA's 4-bit NormalFloat base format.
    pub nf4: Nf4Constants,
    /// Optimizer states per trainable parameter.
    pub optimizer: OptimizerConstants,
    /// Activation coefficients (Korthikanti et al. 2022, generalized).
    pub activations: ActivationConstants,
    /// Runtime overhead.
    pub overhead: OverheadConstants,
}

/// NF4 with (optional) double quantization of its block constants.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Nf4Constants {
    /// Bits per weight.
    pub bits: f64,
    /// Weights per first-level block.
    pub block_size: f64,
    /// Bits of each first-level absmax constant under double quantization.
    pub absmax_bits: f64,
    /// First-level constants per second-level block.
    pub double_quant_block_size: f64,
    /// Bits of each second-level constant.
    pub double_quant_absmax_bits: f64,
}

impl Nf4Constants {
    /// Storage bits per quantized weight, constants included:
    /// `bits + absmax_bits / block + dq_bits / (block × dq_block)` (4.127 for QLoRA).
    pub fn bits_per_param(&self) -> f64 {
        self.bits
            + self.absmax_bits / self.block_size
            + self.double_quant_absmax_bits / (self.block_size * self.double_quant_block_size)
    }
}

/// Optimizer state layouts.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConstants {
    /// Adam and AdamW.
    pub adam: StateLayout,
    /// SGD with momentum.
    pub sgd: StateLayout,
    /// bitsandbytes 8-bit AdamW.
    pub adamw_8bit: StateLayout,
}

/// States kept per trainable parameter by one optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StateLayout {
    /// States per parameter.
    pub states: f64,
    /// Bytes per stored state element.
    pub state_bytes: f64,
    /// Elements per quantization block (block-wise quantized states only).
    #[serde(default)]
    pub block_size: Option<f64>,
    /// Bytes of each block's scale (block-wise quantized states only).
    #[serde(default)]
    pub block_scale_bytes: Option<f64>,
}

impl StateLayout {
    /// Bytes per parameter of all states, block scales included.
    pub fn bytes_per_param(&self) -> f64 {
        let scales = match (self.block_size, self.block_scale_bytes) {
            (Some(n), Some(b)) if n > 0.0 => b / n,
            _ => 0.0,
        };
        self.states * (self.state_bytes + scales)
    }
}

/// Bytes per token of each tensor a layer keeps for backward, in multiples of the width
/// named in each field (see `finetune.toml` for the derivation).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationConstants {
    /// × hidden: input of the q/k/v projection.
    pub qkv_input: f64,
    /// × heads × head_dim: Q.
    pub query: f64,
    /// × kv_heads × head_dim, for K and again for V.
    pub key_value: f64,
    /// × heads × v_head_dim: input of o_proj.
    pub attention_output: f64,
    /// × hidden per dropout: the mask.
    pub dropout_mask: f64,
    /// Dropouts per layer.
    pub dropouts_per_layer: f64,
    /// × hidden per routed-to expert: MLP input.
    pub mlp_input: f64,
    /// × MLP width, plain (2-matrix) MLP.
    pub mlp_width_plain: f64,
    /// × MLP width, gated MLP.
    pub mlp_width_gated: f64,
    /// × hidden per norm.
    pub norm_input: f64,
    /// Norms per layer.
    pub norms_per_layer: f64,
    /// × heads × seq_len, eager attention's scores.
    pub eager_scores: f64,
    /// × hidden, per layer, kept under gradient checkpointing.
    pub checkpoint_layer_input: f64,
    /// × vocab_size: the loss's logits.
    pub logits: f64,
}

/// Runtime overhead.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OverheadConstants {
    /// CUDA context, library workspaces and communication buffers, GiB.
    pub cuda_context_gib: f64,
    /// Allocator fragmentation as a fraction of the bytes allocated on the GPU.
    pub fragmentation_fraction: f64,
    /// Gathered units (layers) alive at once under ZeRO-3 / FSDP full-shard.
    pub zero3_live_units: f64,
}

impl FinetuneConstants {
    /// Load `finetune.toml` from the perf-model folder.
    pub fn load(perf_model_dir: &Path) -> Result<Self> {
        let path = perf_model_dir.join("finetune.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let c: FinetuneConstants =
            toml::from_str(&text).map_err(|e| crate::error::toml_error(&path, &text, &e))?;
        c.validate(&path)?;
        Ok(c)
    }

    /// The shipped constants (`perf_model/finetune.toml` of this source tree).
    pub fn builtin() -> Result<Self> {
        Self::load(&crate::paths::DataPaths::builtin().perf_model)
    }

    /// Every value must be finite and non-negative; block sizes positive.
    fn validate(&self, path: &Path) -> Result<()> {
        let a = &self.activations;
        let o = &self.overhead;
        let n = &self.nf4;
        let mut values = vec![
            ("nf4.bits", n.bits),
            ("nf4.absmax_bits", n.absmax_bits),
            ("nf4.double_quant_absmax_bits", n.double_quant_absmax_bits),
            ("activations.qkv_input", a.qkv_input),
            ("activations.query", a.query),
            ("activations.key_value", a.key_value),
            ("activations.attention_output", a.attention_output),
            ("activations.dropout_mask", a.dropout_mask),
            ("activations.dropouts_per_layer", a.dropouts_per_layer),
            ("activations.mlp_input", a.mlp_input),
            ("activations.mlp_width_plain", a.mlp_width_plain),
            ("activations.mlp_width_gated", a.mlp_width_gated),
            ("activations.norm_input", a.norm_input),
            ("activations.norms_per_layer", a.norms_per_layer),
            ("activations.eager_scores", a.eager_scores),
            (
                "activations.checkpoint_layer_input",
                a.checkpoint_layer_input,
            ),
            ("activations.logits", a.logits),
            ("overhead.cuda_context_gib", o.cuda_context_gib),
            ("overhead.fragmentation_fraction", o.fragmentation_fraction),
            ("overhead.zero3_live_units", o.zero3_live_units),
        ];
        for (name, s) in [
            ("optimizer.adam", &self.optimizer.adam),
            ("optimizer.sgd", &self.optimizer.sgd),
            ("optimizer.adamw_8bit", &self.optimizer.adamw_8bit),
        ] {
            values.push((name, s.states));
            values.push((name, s.state_bytes));
            values.extend(s.block_scale_bytes.map(|b| (name, b)));
        }
        for (key, v) in values {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::input(
                    path,
                    Some(key),
                    format!("{v} must be a finite non-negative number"),
                ));
            }
        }
        let blocks = [
            ("nf4.block_size", Some(n.block_size)),
            (
                "nf4.double_quant_block_size",
                Some(n.double_quant_block_size),
            ),
            (
                "optimizer.adamw_8bit.block_size",
                self.optimizer.adamw_8bit.block_size,
            ),
        ];
        for (key, v) in blocks {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 1.0) {
                    return Err(Error::input(path, Some(key), format!("{v} must be ≥ 1")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_loads() {
        FinetuneConstants::builtin().expect("finetune.toml parses");
    }

    /// QLoRA paper §3 (Double Quantization): the constants cost 32/64 = 0.5 bits per
    /// parameter without DQ and 8/64 + 32/(64·256) = 0.127 bits with it.
    #[test]
    fn nf4_double_quantization_overhead_matches_qlora_paper() {
        let c = FinetuneConstants::builtin().unwrap();
        let overhead = c.nf4.bits_per_param() - 4.0;
        assert!((overhead - 0.127).abs() < 0.001, "{overhead}");
        let no_dq = Nf4Constants {
            absmax_bits: 32.0,
            double_quant_absmax_bits: 0.0,
            ..c.nf4
        };
        assert_eq!(no_dq.bits_per_param() - 4.0, 0.5);
    }

    #[test]
    fn bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(
            crate::paths::DataPaths::builtin()
                .perf_model
                .join("finetune.toml"),
        )
        .unwrap()
        .replace(
            "fragmentation_fraction = 0.05",
            "fragmentation_fraction = -1",
        );
        std::fs::write(dir.path().join("finetune.toml"), text).unwrap();
        let err = FinetuneConstants::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("overhead.fragmentation_fraction"), "{err}");
    }
}
