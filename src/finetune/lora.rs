//! LoRA adapters: which operators a target list names, and how many trainable parameters
//! the adapters add (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
//! Models": a frozen `W ∈ R^{out×in}` gets `B·A` with `A ∈ R^{r×in}`, `B ∈ R^{out×r}`,
//! so `r·(in + out)` parameters per adapted matrix).
//!
//! servesim fuses q/k/v into `qkv_proj` and gate/up into `gate_up_proj`; PEFT adapts the
//! unfused HF modules, so a fused operator is split back into its projections here:
//! q is `heads × head_dim` wide, k and v `kv_heads × head_dim` (GQA), gate and up half of
//! the fused width each. Routed experts get one adapter per expert, as PEFT does when it
//! targets expert modules.

use crate::error::{Error, Result};
use crate::model::{LayerSpec, ModelSpec};
use serde::Serialize;
use std::fmt;

/// A projection kind PEFT can target (`target_modules`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoraTarget {
    /// Query projection (`q_proj`; MLA: `q_proj` or `q_a_proj` + `q_b_proj`).
    Q,
    /// Key projection (`k_proj`; MLA: the shared `kv_a_proj_with_mqa` + `kv_b_proj`).
    K,
    /// Value projection (`v_proj`; MLA: as for `K`).
    V,
    /// Output projection (`o_proj`, OPT's `out_proj`, phi's `dense`).
    O,
    /// Gate projection of a gated MLP (`gate_proj`, Mixtral's `w1`).
    Gate,
    /// Up projection (`up_proj`; `fc1` of a 2-matrix MLP).
    Up,
    /// Down projection (`down_proj`; `fc2` of a 2-matrix MLP).
    Down,
}

impl LoraTarget {
    /// Every target, in layer order.
    pub const ALL: [LoraTarget; 7] = [
        LoraTarget::Q,
        LoraTarget::K,
        LoraTarget::V,
        LoraTarget::O,
        LoraTarget::Gate,
        LoraTarget::Up,
        LoraTarget::Down,
    ];

    /// The short name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LoraTarget::Q => "q",
            LoraTarget::K => "k",
            LoraTarget::V => "v",
            LoraTarget::O => "o",
            LoraTarget::Gate => "gate",
            LoraTarget::Up => "up",
            LoraTarget::Down => "down",
        }
    }

    /// Parse a comma-separated list (`q,k,v,o,gate,up,down`; HF module names such as
    /// `q_proj`, `fc1` and `out_proj` are accepted; `all` or `all-linear` means every
    /// target). The result is sorted and free of duplicates.
    pub fn parse_list(s: &str) -> Result<Vec<LoraTarget>> {
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let t = match item.to_ascii_lowercase().as_str() {
                "all" | "all-linear" | "all_linear" => {
                    out.extend(LoraTarget::ALL);
                    continue;
                }
                "q" | "q_proj" | "query" => LoraTarget::Q,
                "k" | "k_proj" | "key" => LoraTarget::K,
                "v" | "v_proj" | "value" => LoraTarget::V,
                "o" | "o_proj" | "out_proj" | "dense" => LoraTarget::O,
                "gate" | "gate_proj" | "w1" => LoraTarget::Gate,
                "up" | "up_proj" | "fc1" | "w3" => LoraTarget::Up,
                "down" | "down_proj" | "fc2" | "w2" => LoraTarget::Down,
                other => {
                    return Err(Error::Config(format!(
                        "--lora-targets: unknown target `{other}`; expected a comma-separated \
                         list of q, k, v, o, gate, up, down (or all)"
                    )))
                }
            };
            out.push(t);
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(Error::Config(
                "--lora-targets is empty; name at least one of q, k, v, o, gate, up, down".into(),
            ));
        }
        Ok(out)
    }
}

impl fmt::Display for LoraTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// LoRA hyper-parameters (PEFT's `LoraConfig` names).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoraConfig {
    /// Rank `r` of each adapter.
    pub rank: u32,
    /// `lora_alpha`; the update is scaled by `alpha / r`. It does not change memory.
    pub alpha: f64,
    /// Projections that get adapters.
    pub targets: Vec<LoraTarget>,
}

impl Default for LoraConfig {
    /// PEFT's defaults for Llama-style models: `r = 8`, `target_modules = q_proj, v_proj`
    /// (and the common `lora_alpha = 16`).
    fn default() -> Self {
        LoraConfig {
            rank: 8,
            alpha: 16.0,
            targets: vec![LoraTarget::Q, LoraTarget::V],
        }
    }
}

impl LoraConfig {
    /// Check the rank and alpha.
    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(Error::Config(
                "--lora-rank must be at least 1 (PEFT's default is 8)".into(),
            ));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::Config(format!(
                "--lora-alpha must be a positive number, got {}",
                self.alpha
            )));
        }
        if self.targets.is_empty() {
            return Err(Error::Config(
                "--lora-targets is empty; name at least one of q, k, v, o, gate, up, down".into(),
            ));
        }
        Ok(())
    }
}

/// One adapted weight matrix: `in_features × out_features`, held `instances` times
/// (routed experts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptedMatrix {
    /// Which target it belongs to.
    pub target: LoraTarget,
    /// Input width.
    pub in_features: u64,
    /// Output width.
    pub out_features: u64,
    /// Copies (experts).
    pub instances: u64,
}

impl AdaptedMatrix {
    /// LoRA parameters of all copies at rank `r`: `r·(in + out)` each.
    pub fn lora_params(&self, rank: u32) -> u64 {
        u64::from(rank) * (self.in_features + self.out_features) * self.instances
    }
}

/// The matrices of `layer` that `targets` adapt.
pub fn layer_adapted_matrices(layer: &LayerSpec, targets: &[LoraTarget]) -> Vec<AdaptedMatrix> {
    let wants = |t: LoraTarget| targets.contains(&t);
    let a = &layer.attention;
    let mut out = Vec::new();
    for op in &layer.ops {
        let inst = op.experts.instances();
        let mut push = |target, out_features| {
            if wants(target) {
                out.push(AdaptedMatrix {
                    target,
                    in_features: op.in_features,
                    out_features,
                    instances: inst,
                });
            }
        };
        match op.name {
            "qkv_proj" => {
                push(LoraTarget::Q, a.num_heads * a.head_dim);
                push(LoraTarget::K, a.num_kv_heads * a.head_dim);
                push(LoraTarget::V, a.num_kv_heads * a.v_head_dim);
            }
            "q_proj" | "q_a_proj" | "q_b_proj" => push(LoraTarget::Q, op.out_features),
            // MLA shares its KV projections between keys and values: adapt them once when
            // either k or v is a target.
            "kv_a_proj_with_mqa" | "kv_b_proj" => {
                let t = if wants(LoraTarget::K) {
                    LoraTarget::K
                } else {
                    LoraTarget::V
                };
                push(t, op.out_features);
            }
            "o_proj" => push(LoraTarget::O, op.out_features),
            "gate_up_proj" | "experts.gate_up_proj" | "shared_experts.gate_up_proj" => {
                push(LoraTarget::Gate, op.out_features / 2);
                push(LoraTarget::Up, op.out_features / 2);
            }
            "down_proj" | "experts.down_proj" | "shared_experts.down_proj" | "fc2" => {
                push(LoraTarget::Down, op.out_features)
            }
            "fc1" => push(LoraTarget::Up, op.out_features),
            // Routers, gates and embedding projections are not LoRA targets.
            _ => {}
        }
    }
    out
}

/// Trainable LoRA parameters of `model` under `cfg`. Every target must match at least one
/// operator of the model.
pub fn lora_trainable_params(model: &ModelSpec, cfg: &LoraConfig) -> Result<u64> {
    cfg.validate()?;
    let mut total = 0;
    let mut matched = Vec::new();
    for layer in &model.layers {
        for m in layer_adapted_matrices(layer, &cfg.targets) {
            total += m.lora_params(cfg.rank);
            matched.push(m.target);
        }
    }
    if let Some(missing) = cfg.targets.iter().find(|t| !matched.contains(t)) {
        let hint = match missing {
            LoraTarget::Gate => " (its MLP has no gate projection; fc1/fc2 are `up`/`down`)",
            _ => "",
        };
        return Err(Error::Config(format!(
            "--lora-targets: `{missing}` matches no operator of {}{hint}",
            model.name
        )));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::shipped;

    /// tloen/alpaca-lora `finetune.py` defaults (r = 8, `q_proj`, `v_proj`) on LLaMA-7B
    /// print `trainable params: 4194304 || all params: 6742609920` (its training log, also
    /// the figure quoted for Llama-2-7B in PEFT tutorials). By the formula:
    /// 32 layers × 2 matrices × 8 × (4096 + 4096) = 4,194,304.
    #[test]
    fn llama_7b_r8_qv_is_4_2m() {
        let m = shipped("meta-llama/Llama-2-7b-hf");
        let cfg = LoraConfig {
            rank: 8,
            alpha: 16.0,
            targets: vec![LoraTarget::Q, LoraTarget::V],
        };
        assert_eq!(lora_trainable_params(&m, &cfg).unwrap(), 4_194_304);
    }

    /// GQA: Llama-3-8B has 32 query heads and 8 KV heads of 128, so k and v adapters are
    /// 4096 → 1024. r = 16 on all seven projections, per layer:
    /// q 16·(4096+4096) + k,v 2·16·(4096+1024) + o 16·(4096+4096) +
    /// gate,up 2·16·(4096+14336) + down 16·(14336+4096) = 1,310,720; × 32 layers =
    /// 41,943,040. PEFT prints `trainable params: 41,943,040 || all params: 8,072,204,288`
    /// for this config on Llama-3-8B (a training log of a Llama-3-8B-Instruct fine-tune and
    /// many PEFT tutorials; 8,072,204,288 − 41,943,040 = 8,030,261,248, our total).
    #[test]
    fn gqa_and_fused_projections_are_split() {
        let m = shipped("meta-llama/Llama-3.1-8B");
        let cfg = LoraConfig {
            rank: 16,
            alpha: 32.0,
            targets: LoraTarget::ALL.to_vec(),
        };
        let per_layer = 16 * (4096 + 4096)
            + 2 * 16 * (4096 + 1024)
            + 16 * (4096 + 4096)
            + 2 * 16 * (4096 + 14336)
            + 16 * (14336 + 4096);
        assert_eq!(per_layer, 1_310_720);
        assert_eq!(lora_trainable_params(&m, &cfg).unwrap(), 41_943_040);
        assert_eq!(m.params().total + 41_943_040, 8_072_204_288);
    }

    /// Mixtral-8x7B: the 8 experts of each layer get one adapter each.
    #[test]
    fn moe_experts_get_one_adapter_each() {
        let m = shipped("mistralai/Mixtral-8x7B-v0.1");
        let cfg = LoraConfig {
            rank: 8,
            alpha: 16.0,
            targets: vec![LoraTarget::Down],
        };
        // 32 layers × 8 experts × 8 × (14336 + 4096).
        assert_eq!(
            lora_trainable_params(&m, &cfg).unwrap(),
            32 * 8 * 8 * (14336 + 4096)
        );
    }

    #[test]
    fn parses_peft_names_and_all() {
        assert_eq!(
            LoraTarget::parse_list("v_proj, q_proj,q").unwrap(),
            vec![LoraTarget::Q, LoraTarget::V]
        );
        assert_eq!(LoraTarget::parse_list("all").unwrap(), LoraTarget::ALL);
        assert_eq!(
            LoraTarget::parse_list("fc1,fc2").unwrap(),
            vec![LoraTarget::Up, LoraTarget::Down]
        );
    }

    #[test]
    fn errors_name_the_flag() {
        let err = LoraTarget::parse_list("q,attn").unwrap_err().to_string();
        assert!(
            err.contains("--lora-targets") && err.contains("attn"),
            "{err}"
        );
        let opt = shipped("facebook/opt-6.7b");
        let cfg = LoraConfig {
            targets: vec![LoraTarget::Gate],
            ..LoraConfig::default()
        };
        let err = lora_trainable_params(&opt, &cfg).unwrap_err().to_string();
        assert!(
            err.contains("--lora-targets") && err.contains("`gate`"),
            "{err}"
        );
        let cfg = LoraConfig {
            rank: 0,
            ..LoraConfig::default()
        };
        let err = lora_trainable_params(&opt, &cfg).unwrap_err().to_string();
        assert!(err.contains("--lora-rank"), "{err}");
    }
}
