//! The decoder layers of each layout family, read from config fields.
//!
//! Sizes always come from fields. A few structural facts are not declared by any field;
//! they are fixed by the HF modelling code of the family and applied by `model_type`
//! ([`Quirks`]).

use super::build::Common;
use super::config::RawConfig;
use super::moe::moe_plan;
use super::spec::*;
use crate::error::Result;

/// Structure that HF modelling code hard-codes and no config field declares.
///
/// | `model_type` | rule |
/// |---|---|
/// | `qwen2`, `qwen2_moe` | q/k/v projections have biases (o_proj none) when `attention_bias` is absent |
/// | `qwen3`, `qwen3_moe` | per-head RMSNorm of q and k (`q_norm`, `k_norm`, `head_dim` each) |
/// | `gpt_oss` | experts and router have biases; one learned attention sink per query head |
/// | `gemma2`, `gemma3_text` | two more RMSNorms around the MLP (`pre_`/`post_feedforward_layernorm`); Gemma 3 also q/k norms |
/// | `glm` | `attention_bias` puts biases on q/k/v only, never on o_proj; half-rotary by default |
/// | `internlm2` | `bias` sets the attention biases |
/// | `llama4_text` | one shared expert as wide as a routed one beside the routed experts |
/// | `cohere` | attention and MLP in parallel behind one bias-free LayerNorm; `use_qk_norm` norms q and k over all heads |
#[derive(Clone, Copy, Debug, Default)]
struct Quirks {
    qkv_bias_by_default: bool,
    qk_norm: bool,
    expert_bias: bool,
    router_bias: bool,
    sinks: bool,
    feedforward_norms: bool,
    no_o_bias: bool,
    default_rotary_factor: Option<f64>,
    bias_field: Option<&'static str>,
    parallel: bool,
    shared_experts: u64,
}

impl Quirks {
    fn of(model_type: &str) -> Self {
        let mut q = Quirks::default();
        match model_type {
            "qwen2" | "qwen2_moe" => q.qkv_bias_by_default = true,
            "qwen3" | "qwen3_moe" => q.qk_norm = true,
            "gpt_oss" => {
                q.expert_bias = true;
                q.router_bias = true;
                q.sinks = true;
            }
            "gemma2" => q.feedforward_norms = true,
            "gemma3_text" | "gemma3" => {
                q.feedforward_norms = true;
                q.qk_norm = true;
            }
            "glm" => {
                q.no_o_bias = true;
                q.default_rotary_factor = Some(0.5);
            }
            "internlm2" => q.bias_field = Some("bias"),
            "cohere" => q.parallel = true,
            "llama4_text" | "llama4" => q.shared_experts = 1,
            _ => {}
        }
        q
    }
}

/// Whether the family ties the LM head to the embedding when the config does not say
/// (GemmaConfig and CohereConfig default to tied).
pub(crate) fn ties_by_default(model_type: &str) -> bool {
    matches!(
        model_type,
        "gemma" | "gemma2" | "gemma3_text" | "gemma3" | "cohere"
    )
}

/// A dense, quantizable operator; adjust with struct-update syntax.
pub(crate) fn op(
    name: &'static str,
    group: OpGroup,
    hf_module: &'static str,
    in_features: u64,
    out_features: u64,
    bias: bool,
    tp_split: TpSplit,
) -> LinearOp {
    LinearOp {
        name,
        group,
        hf_module,
        in_features,
        out_features,
        bias,
        experts: ExpertCount::Dense,
        tp_split,
        quantizable: true,
    }
}

/// Decoder norms are RMSNorm (no bias) unless the config only has a LayerNorm epsilon
/// (Cohere's LayerNorm has none either).
pub(crate) fn decoder_norm_has_bias(raw: &RawConfig, model_type: &str) -> bool {
    model_type != "cohere"
        && !raw.has("rms_norm_eps")
        && raw
            .first_present(&["layer_norm_eps", "layer_norm_epsilon"])
            .is_some()
}

/// `head_dim × partial_rotary_factor`, truncated as HF does.
fn rotary_dim(raw: &RawConfig, head_dim: u64, default_factor: f64) -> Result<u64> {
    let f = raw
        .opt_f64("partial_rotary_factor")?
        .unwrap_or(default_factor);
    if !(f > 0.0 && f <= 1.0) {
        return Err(raw.error("partial_rotary_factor", format!("{f} is not in (0, 1]")));
    }
    Ok((head_dim as f64 * f) as u64)
}

/// Llama-style decoder layers (Llama, Mistral, Mixtral, Qwen2/3, DeepSeek, gpt-oss).
pub(crate) fn decoder_layers(
    raw: &RawConfig,
    model_type: &str,
    c: &Common,
) -> Result<Vec<LayerSpec>> {
    let quirks = Quirks::of(model_type);
    let h = c.hidden;
    let norm_bias = decoder_norm_has_bias(raw, model_type);
    let attention_bias = match quirks.bias_field {
        Some(field) => raw.opt_bool(field)?,
        None => raw.opt_bool("attention_bias")?,
    };
    let mlp_bias = raw.opt_bool("mlp_bias")?.unwrap_or(false);
    let qk_norm = quirks.qk_norm || raw.opt_bool("qk_layernorm")?.unwrap_or(false);

    // Attention: the same for every layer except its kind.
    let mut attn_ops = Vec::new();
    let mut attn_norms = vec![NormSpec {
        name: "input_layernorm",
        dim: h,
        bias: norm_bias,
    }];
    let attention = if raw.has("kv_lora_rank") {
        let m = MlaSpec {
            q_lora_rank: raw.opt_positive("q_lora_rank")?,
            kv_lora_rank: raw.req_positive("kv_lora_rank")?,
            qk_nope_head_dim: raw.req_positive("qk_nope_head_dim")?,
            qk_rope_head_dim: raw.req_positive("qk_rope_head_dim")?,
            v_head_dim: raw.req_positive("v_head_dim")?,
        };
        let bias = attention_bias.unwrap_or(false);
        let qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim;
        let heads = c.heads;
        let attn = |name, i, o, bias, tp| op(name, OpGroup::Attention, "self_attn", i, o, bias, tp);
        match m.q_lora_rank {
            Some(r) => {
                attn_ops.push(attn("q_a_proj", h, r, bias, TpSplit::Replicated));
                attn_norms.push(NormSpec {
                    name: "q_a_layernorm",
                    dim: r,
                    bias: false,
                });
                attn_ops.push(attn("q_b_proj", r, heads * qk_dim, false, TpSplit::Column));
            }
            None => attn_ops.push(attn("q_proj", h, heads * qk_dim, false, TpSplit::Column)),
        }
        attn_ops.push(attn(
            "kv_a_proj_with_mqa",
            h,
            m.kv_lora_rank + m.qk_rope_head_dim,
            bias,
            TpSplit::Replicated,
        ));
        attn_norms.push(NormSpec {
            name: "kv_a_layernorm",
            dim: m.kv_lora_rank,
            bias: false,
        });
        attn_ops.push(attn(
            "kv_b_proj",
            m.kv_lora_rank,
            heads * (m.qk_nope_head_dim + m.v_head_dim),
            false,
            TpSplit::Column,
        ));
        attn_ops.push(attn("o_proj", heads * m.v_head_dim, h, bias, TpSplit::Row));
        AttentionSpec {
            kind: AttentionKind::Full,
            num_heads: heads,
            num_kv_heads: c.kv_heads,
            head_dim: qk_dim,
            v_head_dim: m.v_head_dim,
            rotary_dim: m.qk_rope_head_dim,
            mla: Some(m),
            sinks: quirks.sinks,
        }
    } else {
        let d = c.head_dim;
        let qkv_bias = attention_bias.unwrap_or(quirks.qkv_bias_by_default);
        let o_bias = attention_bias.unwrap_or(false) && !quirks.no_o_bias;
        let qkv_out = (c.heads + 2 * c.kv_heads) * d;
        attn_ops.push(op(
            "qkv_proj",
            OpGroup::Attention,
            "self_attn",
            h,
            qkv_out,
            qkv_bias,
            TpSplit::Column,
        ));
        attn_ops.push(op(
            "o_proj",
            OpGroup::Attention,
            "self_attn",
            c.heads * d,
            h,
            o_bias,
            TpSplit::Row,
        ));
        if qk_norm {
            for name in ["q_norm", "k_norm"] {
                attn_norms.push(NormSpec {
                    name,
                    dim: d,
                    bias: norm_bias,
                });
            }
        }
        if quirks.parallel && raw.opt_bool("use_qk_norm")?.unwrap_or(false) {
            // Cohere: one LayerNorm weight per head and channel, for q and for k.
            for (name, heads) in [("q_norm", c.heads), ("k_norm", c.kv_heads)] {
                attn_norms.push(NormSpec {
                    name,
                    dim: heads * d,
                    bias: false,
                });
            }
        }
        AttentionSpec {
            kind: AttentionKind::Full,
            num_heads: c.heads,
            num_kv_heads: c.kv_heads,
            head_dim: d,
            v_head_dim: d,
            rotary_dim: rotary_dim(raw, d, quirks.default_rotary_factor.unwrap_or(1.0))?,
            mla: None,
            sinks: quirks.sinks,
        }
    };
    let mlp_norms: &[&'static str] = match (quirks.parallel, quirks.feedforward_norms) {
        (true, _) => &[],
        (false, true) => &[
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
        ],
        (false, false) => &["post_attention_layernorm"],
    };
    for &name in mlp_norms {
        attn_norms.push(NormSpec {
            name,
            dim: h,
            bias: norm_bias,
        });
    }
    let kv_per_layer = kv_heads_per_layer(raw, c)?;

    let moe = moe_plan(raw, c, quirks.router_bias, quirks.shared_experts)?;
    let mut layers = Vec::with_capacity(c.num_layers as usize);
    for (i, kind) in c.kinds.iter().enumerate() {
        let mut ops = attn_ops.clone();
        let ffn = match &moe {
            Some(p) if p.is_moe[i] => {
                let routed = ExpertCount::Routed {
                    total: p.experts,
                    active_per_token: p.top_k,
                };
                ops.push(LinearOp {
                    quantizable: false,
                    ..op(
                        "router",
                        OpGroup::Router,
                        "mlp.router",
                        h,
                        p.experts,
                        p.router_bias,
                        TpSplit::Replicated,
                    )
                });
                let e = p.expert_inter;
                for (name, i, o, tp) in [
                    ("experts.gate_up_proj", h, 2 * e, TpSplit::Column),
                    ("experts.down_proj", e, h, TpSplit::Row),
                ] {
                    ops.push(LinearOp {
                        experts: routed,
                        ..op(
                            name,
                            OpGroup::RoutedExperts,
                            "mlp.experts",
                            i,
                            o,
                            quirks.expert_bias,
                            tp,
                        )
                    });
                }
                if p.shared_inter > 0 {
                    let s = p.shared_inter;
                    let g = OpGroup::SharedExperts;
                    let m = "mlp.shared_experts";
                    ops.push(op(
                        "shared_experts.gate_up_proj",
                        g,
                        m,
                        h,
                        2 * s,
                        false,
                        TpSplit::Column,
                    ));
                    ops.push(op(
                        "shared_experts.down_proj",
                        g,
                        m,
                        s,
                        h,
                        false,
                        TpSplit::Row,
                    ));
                }
                if p.shared_gate {
                    ops.push(LinearOp {
                        quantizable: false,
                        ..op(
                            "shared_expert_gate",
                            OpGroup::Router,
                            "mlp.shared_expert_gate",
                            h,
                            1,
                            false,
                            TpSplit::Replicated,
                        )
                    });
                }
                FfnSpec::Moe {
                    num_experts: p.experts,
                    experts_per_token: p.top_k,
                    expert_intermediate_size: e,
                    shared_intermediate_size: p.shared_inter,
                }
            }
            _ => {
                // Llama 4 gives its dense layers their own width.
                let inter = match raw.opt_positive("intermediate_size_mlp")? {
                    Some(w) => w,
                    None => raw.req_positive("intermediate_size")?,
                };
                ops.push(op(
                    "gate_up_proj",
                    OpGroup::Mlp,
                    "mlp",
                    h,
                    2 * inter,
                    mlp_bias,
                    TpSplit::Column,
                ));
                ops.push(op(
                    "down_proj",
                    OpGroup::Mlp,
                    "mlp",
                    inter,
                    h,
                    mlp_bias,
                    TpSplit::Row,
                ));
                FfnSpec::Dense {
                    intermediate_size: inter,
                    gated: true,
                }
            }
        };
        let mut attention = attention.clone();
        attention.kind = *kind;
        if let Some(kv) = kv_per_layer.as_ref().map(|v| v[i]) {
            attention.num_kv_heads = kv;
            ops[0].out_features = (c.heads + 2 * kv) * c.head_dim;
        }
        layers.push(LayerSpec {
            attention,
            ffn,
            ops,
            norms: attn_norms.clone(),
            parallel_attn_mlp: quirks.parallel,
        });
    }
    Ok(layers)
}

/// Fused q/k/v and o (biased when `attn_bias`), then a 2-matrix MLP (biased when
/// `mlp_bias`).
fn two_matrix_ops(c: &Common, attn_bias: bool, mlp_bias: bool, inter: u64) -> Vec<LinearOp> {
    let (h, d) = (c.hidden, c.head_dim);
    let qkv_out = (c.heads + 2 * c.kv_heads) * d;
    vec![
        op(
            "qkv_proj",
            OpGroup::Attention,
            "self_attn",
            h,
            qkv_out,
            attn_bias,
            TpSplit::Column,
        ),
        op(
            "o_proj",
            OpGroup::Attention,
            "self_attn",
            c.heads * d,
            h,
            attn_bias,
            TpSplit::Row,
        ),
        op(
            "fc1",
            OpGroup::Mlp,
            "mlp",
            h,
            inter,
            mlp_bias,
            TpSplit::Column,
        ),
        op("fc2", OpGroup::Mlp, "mlp", inter, h, mlp_bias, TpSplit::Row),
    ]
}

/// DeciLM's `num_key_value_heads_per_layer`: one KV-head count per layer, each dividing
/// the query heads.
fn kv_heads_per_layer(raw: &RawConfig, c: &Common) -> Result<Option<Vec<u64>>> {
    let field = "num_key_value_heads_per_layer";
    let Some(list) = raw.opt_u64_list(field)? else {
        return Ok(None);
    };
    if list.len() as u64 != c.num_layers {
        return Err(raw.error(
            field,
            format!(
                "has {} entries but num_hidden_layers is {}",
                list.len(),
                c.num_layers
            ),
        ));
    }
    if let Some(bad) = list.iter().find(|&&kv| kv == 0 || c.heads % kv != 0) {
        return Err(raw.error(
            field,
            format!("{bad} does not divide num_attention_heads ({})", c.heads),
        ));
    }
    Ok(Some(list))
}

/// A multi-head attention block with fused q/k/v and o (biased when `attn_bias`), and
/// a 2-matrix MLP (biased when `mlp_bias`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn two_matrix_layer(
    c: &Common,
    kind: AttentionKind,
    attn_bias: bool,
    mlp_bias: bool,
    inter: u64,
    rotary_dim: u64,
    norms: Vec<NormSpec>,
    parallel_attn_mlp: bool,
) -> LayerSpec {
    LayerSpec {
        attention: AttentionSpec {
            kind,
            num_heads: c.heads,
            num_kv_heads: c.kv_heads,
            head_dim: c.head_dim,
            v_head_dim: c.head_dim,
            rotary_dim,
            mla: None,
            sinks: false,
        },
        ffn: FfnSpec::Dense {
            intermediate_size: inter,
            gated: false,
        },
        ops: two_matrix_ops(c, attn_bias, mlp_bias, inter),
        norms,
        parallel_attn_mlp,
    }
}

/// OPT: pre- or post-norm LayerNorm (with bias), biased Linear layers (`enable_bias`),
/// ReLU 2-matrix MLP of width `ffn_dim`, learned positions (no rotary).
pub(crate) fn opt_layers(raw: &RawConfig, c: &Common) -> Result<Vec<LayerSpec>> {
    let inter = raw.req_positive("ffn_dim")?;
    let bias = raw.opt_bool("enable_bias")?.unwrap_or(true);
    let affine = raw
        .opt_bool("layer_norm_elementwise_affine")?
        .unwrap_or(true);
    let norms: Vec<NormSpec> = if affine {
        ["self_attn_layer_norm", "final_layer_norm"]
            .into_iter()
            .map(|name| NormSpec {
                name,
                dim: c.hidden,
                bias: true,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(c.kinds
        .iter()
        .map(|&kind| two_matrix_layer(c, kind, bias, bias, inter, 0, norms.clone(), false))
        .collect())
}

/// phi-2: attention and a GELU 2-matrix MLP in parallel behind one LayerNorm, biases on
/// every Linear, partial rotary embedding, optional q/k LayerNorm (`qk_layernorm`).
pub(crate) fn phi_layers(raw: &RawConfig, c: &Common) -> Result<Vec<LayerSpec>> {
    let inter = raw.req_positive("intermediate_size")?;
    // PhiConfig's default partial_rotary_factor is 0.5.
    let rotary = rotary_dim(raw, c.head_dim, 0.5)?;
    let mut norms = vec![NormSpec {
        name: "input_layernorm",
        dim: c.hidden,
        bias: true,
    }];
    if raw.opt_bool("qk_layernorm")?.unwrap_or(false) {
        for name in ["q_layernorm", "k_layernorm"] {
            norms.push(NormSpec {
                name,
                dim: c.head_dim,
                bias: true,
            });
        }
    }
    Ok(c.kinds
        .iter()
        .map(|&kind| two_matrix_layer(c, kind, true, true, inter, rotary, norms.clone(), true))
        .collect())
}
