//! The decoders before Llama: GPT-J, GPT-NeoX (and Pythia), BLOOM and Falcon.
//!
//! They share a non-gated 2-matrix MLP and LayerNorms with biases; they differ in which
//! Linear layers carry biases, whether attention and MLP run in parallel, and the
//! position scheme. Those facts are fixed by each family's HF modelling code:
//!
//! | `model_type` | norms per layer | biases | attention ∥ MLP | positions |
//! |---|---|---|---|---|
//! | `gptj` | `ln_1` | MLP and LM head only | yes | rotary on `rotary_dim` |
//! | `gpt_neox` | 2 | every Linear | `use_parallel_residual` (default yes) | rotary on `rotary_pct` |
//! | `bloom` | 2 (+ one after the embedding) | every Linear | no | ALiBi |
//! | `falcon` | 1, or 2 (`new_decoder_architecture`) | `bias` | `parallel_attn` | rotary (or ALiBi) |

use super::build::Common;
use super::config::RawConfig;
use super::layers::two_matrix_layer;
use super::spec::*;
use crate::error::Result;

/// Older field names of these families and the names the rest of the parser reads.
pub(crate) const FIELD_ALIASES: &[(&str, &str)] = &[
    ("n_embd", "hidden_size"),
    ("n_embed", "hidden_size"),
    ("n_layer", "num_hidden_layers"),
    ("n_head", "num_attention_heads"),
    ("n_positions", "max_position_embeddings"),
    ("n_inner", "intermediate_size"),
    ("ffn_hidden_size", "intermediate_size"),
];

/// The `model_type`s read by this module.
pub(crate) fn is_classic(model_type: &str) -> bool {
    matches!(
        model_type,
        "gptj" | "gpt_neox" | "bloom" | "falcon" | "RefinedWeb" | "RefinedWebModel"
    )
}

fn is_falcon(model_type: &str) -> bool {
    matches!(model_type, "falcon" | "RefinedWeb" | "RefinedWebModel")
}

/// KV heads of a Falcon config, which does not use `num_key_value_heads`: `num_kv_heads`
/// with the new decoder architecture (40B/180B), one with `multi_query` (7B, the
/// default), else one per query head.
pub(crate) fn falcon_kv_heads(raw: &RawConfig, model_type: &str) -> Result<Option<u64>> {
    if !is_falcon(model_type) {
        return Ok(None);
    }
    if raw.opt_bool("new_decoder_architecture")?.unwrap_or(false) {
        return raw.opt_positive("num_kv_heads");
    }
    Ok(raw.opt_bool("multi_query")?.unwrap_or(true).then_some(1))
}

/// Whether the family's LM head carries a bias (GPT-J's does).
pub(crate) fn lm_head_bias(model_type: &str) -> bool {
    model_type == "gptj"
}

/// Whether the family ties the LM head to the embedding when the config does not say
/// (BLOOM and Falcon do; GPT-J and GPT-NeoX do not).
pub(crate) fn ties_by_default(model_type: &str) -> bool {
    model_type == "bloom" || is_falcon(model_type)
}

/// The family's MLP activation when the config names none.
pub(crate) fn default_activation(model_type: &str) -> &'static str {
    match model_type {
        "gptj" => "gelu_new",
        _ => "gelu",
    }
}

/// BLOOM's LayerNorm right after the token embedding.
pub(crate) fn embedding_norm(model_type: &str, hidden: u64) -> Option<NormSpec> {
    (model_type == "bloom").then_some(NormSpec {
        name: "word_embeddings_layernorm",
        dim: hidden,
        bias: true,
    })
}

/// The decoder layers of a classic config.
pub(crate) fn classic_layers(
    raw: &RawConfig,
    model_type: &str,
    c: &Common,
) -> Result<Vec<LayerSpec>> {
    let h = c.hidden;
    let inter = raw.opt_positive("intermediate_size")?.unwrap_or(4 * h);
    let norm = |name| NormSpec {
        name,
        dim: h,
        bias: true,
    };
    let two_norms = vec![norm("input_layernorm"), norm("post_attention_layernorm")];
    let (attn_bias, mlp_bias, parallel, norms, rotary) = match model_type {
        "gptj" => {
            let rotary = raw.opt_positive("rotary_dim")?.unwrap_or(c.head_dim);
            (false, true, true, vec![norm("ln_1")], rotary)
        }
        "gpt_neox" => {
            let pct = raw.opt_f64("rotary_pct")?.unwrap_or(0.25);
            if !(pct > 0.0 && pct <= 1.0) {
                return Err(raw.error("rotary_pct", format!("{pct} is not in (0, 1]")));
            }
            let parallel = raw.opt_bool("use_parallel_residual")?.unwrap_or(true);
            let rotary = (c.head_dim as f64 * pct) as u64;
            (true, true, parallel, two_norms, rotary)
        }
        "bloom" => (true, true, false, two_norms, 0),
        _ => {
            let bias = raw.opt_bool("bias")?.unwrap_or(false);
            let alibi = raw.opt_bool("alibi")?.unwrap_or(false);
            let new_arch = raw.opt_bool("new_decoder_architecture")?.unwrap_or(false);
            let parallel = new_arch || raw.opt_bool("parallel_attn")?.unwrap_or(true);
            let norms = if new_arch {
                vec![norm("ln_attn"), norm("ln_mlp")]
            } else if parallel {
                vec![norm("input_layernorm")]
            } else {
                two_norms
            };
            (
                bias,
                bias,
                parallel,
                norms,
                if alibi { 0 } else { c.head_dim },
            )
        }
    };
    Ok(c.kinds
        .iter()
        .map(|&kind| {
            two_matrix_layer(
                c,
                kind,
                attn_bias,
                mlp_bias,
                inter,
                rotary,
                norms.clone(),
                parallel,
            )
        })
        .collect())
}
