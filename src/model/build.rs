//! From a raw `config.json` to a [`ModelSpec`]: the parts every layout shares
//! (sizes, attention windows, dtype and quantization, embeddings, LM head).
//!
//! The per-layer structure of each layout family is in [`super::layers`].

use super::config::RawConfig;
use super::layers;
use super::spec::*;
use crate::dtype::DType;
use crate::error::Result;

/// Rows that OPT's learned position embedding has beyond `max_position_embeddings`
/// (HF `OPTLearnedPositionalEmbedding` offsets positions by 2, a fairseq legacy).
pub(crate) const OPT_POSITION_OFFSET: u64 = 2;

/// The sizes every layout reads, validated.
pub(crate) struct Common {
    pub(crate) hidden: u64,
    pub(crate) num_layers: u64,
    pub(crate) heads: u64,
    pub(crate) kv_heads: u64,
    /// `head_dim` if given, else `hidden / heads`.
    pub(crate) head_dim: u64,
    /// One entry per layer.
    pub(crate) kinds: Vec<AttentionKind>,
}

/// Build the spec of the config `raw`, naming it `name`.
pub(crate) fn build(raw: &RawConfig, name: String) -> Result<ModelSpec> {
    let model_type = raw.opt_str("model_type")?.unwrap_or_default().to_owned();
    let family = detect_family(raw, &model_type);
    let hidden = raw.req_positive("hidden_size")?;
    let num_layers = raw.req_positive("num_hidden_layers")?;
    let heads = raw.req_positive("num_attention_heads")?;
    let vocab_size = raw.req_positive("vocab_size")?;
    let max_position_embeddings = raw.req_positive("max_position_embeddings")?;
    let kv_heads = match raw.opt_positive("num_key_value_heads")? {
        Some(kv) if heads % kv != 0 => {
            return Err(raw.error(
                "num_key_value_heads",
                format!("{kv} does not divide num_attention_heads ({heads})"),
            ))
        }
        Some(kv) => kv,
        None => heads,
    };
    let head_dim = match raw.opt_positive("head_dim")? {
        Some(d) => d,
        None if hidden % heads == 0 => hidden / heads,
        None => {
            return Err(raw.error(
                "num_attention_heads",
                format!(
                    "hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) \
                     and no `head_dim` is given"
                ),
            ))
        }
    };
    let kinds = attention_kinds(raw, num_layers)?;
    let common = Common {
        hidden,
        num_layers,
        heads,
        kv_heads,
        head_dim,
        kinds,
    };

    let layers = match family {
        LayoutFamily::Decoder => layers::decoder_layers(raw, &model_type, &common)?,
        LayoutFamily::Opt => layers::opt_layers(raw, &common)?,
        LayoutFamily::Phi => layers::phi_layers(raw, &common)?,
    };

    // Embedding width: OPT may embed in a narrower `word_embed_proj_dim`.
    let embed_dim = match family {
        LayoutFamily::Opt => raw.opt_positive("word_embed_proj_dim")?.unwrap_or(hidden),
        _ => hidden,
    };
    let learned_positions = (family == LayoutFamily::Opt).then_some(LearnedPositions {
        rows: max_position_embeddings + OPT_POSITION_OFFSET,
        dim: hidden,
    });
    let mut io_projections = Vec::new();
    if embed_dim != hidden {
        let proj = |name, i, o| LinearOp {
            name,
            group: OpGroup::Projection,
            hf_module: name,
            in_features: i,
            out_features: o,
            bias: false,
            experts: ExpertCount::Dense,
            tp_split: TpSplit::Replicated,
            quantizable: false,
        };
        io_projections.push(proj("project_in", embed_dim, hidden));
        io_projections.push(proj("project_out", hidden, embed_dim));
    }

    let final_norm = match family {
        LayoutFamily::Decoder => Some(NormSpec {
            name: "norm",
            dim: hidden,
            bias: layers::decoder_norm_has_bias(raw),
        }),
        LayoutFamily::Opt => {
            let pre_norm = raw.opt_bool("do_layer_norm_before")?.unwrap_or(true);
            let removed = raw.opt_bool("_remove_final_layer_norm")?.unwrap_or(false);
            let affine = raw
                .opt_bool("layer_norm_elementwise_affine")?
                .unwrap_or(true);
            (pre_norm && !removed && affine).then_some(NormSpec {
                name: "final_layer_norm",
                dim: hidden,
                bias: true,
            })
        }
        LayoutFamily::Phi => Some(NormSpec {
            name: "final_layernorm",
            dim: hidden,
            bias: true,
        }),
    };

    // HF defaults when the key is absent: PretrainedConfig (OPT) ties, while LlamaConfig,
    // MistralConfig, MixtralConfig, Qwen2/3Config, PhiConfig, DeepseekV3Config and
    // GptOssConfig all default to untied.
    let tie_word_embeddings = raw
        .opt_bool("tie_word_embeddings")?
        .unwrap_or(family == LayoutFamily::Opt);
    let lm_head = LinearOp {
        name: "lm_head",
        group: OpGroup::LmHead,
        hf_module: "lm_head",
        in_features: embed_dim,
        out_features: vocab_size,
        // phi-2's lm_head is the only one with a bias.
        bias: family == LayoutFamily::Phi,
        experts: ExpertCount::Dense,
        tp_split: TpSplit::Column,
        quantizable: false,
    };

    let activation = match raw.first_present(&["hidden_act", "activation_function"]) {
        Some(field) => raw.opt_str(field)?.unwrap_or_default().to_owned(),
        // HF config-class defaults.
        None => match family {
            LayoutFamily::Decoder => "silu",
            LayoutFamily::Opt => "relu",
            LayoutFamily::Phi => "gelu_new",
        }
        .to_owned(),
    };

    Ok(ModelSpec {
        name,
        source_path: raw.path().to_owned(),
        model_type,
        family,
        hidden_size: hidden,
        vocab_size,
        num_layers,
        max_position_embeddings,
        mtp_layers: raw.opt_u64("num_nextn_predict_layers")?.unwrap_or(0),
        activation,
        weight_format: weight_format(raw)?,
        embedding: EmbeddingSpec {
            vocab_size,
            dim: embed_dim,
            learned_positions,
        },
        io_projections,
        final_norm,
        lm_head,
        tie_word_embeddings,
        layers,
    })
}

/// The layout family: by field presence where field names differ (`ffn_dim` is OPT's),
/// else by `model_type` (phi shares Llama's field names but not its structure).
fn detect_family(raw: &RawConfig, model_type: &str) -> LayoutFamily {
    if raw.has("ffn_dim") || model_type == "opt" {
        LayoutFamily::Opt
    } else if model_type == "phi" {
        LayoutFamily::Phi
    } else {
        LayoutFamily::Decoder
    }
}

/// Attention kind of each layer.
///
/// - `layer_types` (gpt-oss, Gemma): `"full_attention"` or `"sliding_attention"` per
///   layer, the window from `sliding_window`.
/// - else `use_sliding_window: false` (Qwen) or no `sliding_window`: all full.
/// - else `use_sliding_window: true` (Qwen2): layers from `max_window_layers` on slide.
/// - else a `sliding_window` alone (Mistral-7B-v0.1): every layer slides.
fn attention_kinds(raw: &RawConfig, num_layers: u64) -> Result<Vec<AttentionKind>> {
    let n = num_layers as usize;
    let window = raw.opt_positive("sliding_window")?;
    let sliding = |w: Option<u64>| {
        w.map(|window_tokens| AttentionKind::Sliding { window_tokens })
            .ok_or_else(|| {
                raw.error(
                    "sliding_window",
                    "missing required field (the config has sliding-attention layers)",
                )
            })
    };
    if let Some(types) = raw.opt_str_list("layer_types")? {
        if types.len() != n {
            return Err(raw.error(
                "layer_types",
                format!(
                    "has {} entries but num_hidden_layers is {num_layers}",
                    types.len()
                ),
            ));
        }
        return types
            .iter()
            .map(|t| match *t {
                "full_attention" => Ok(AttentionKind::Full),
                "sliding_attention" => sliding(window),
                other => Err(raw.error(
                    "layer_types",
                    format!(
                        "unknown layer type `{other}`; expected `full_attention` or `sliding_attention`"
                    ),
                )),
            })
            .collect();
    }
    let use_sliding = raw.opt_bool("use_sliding_window")?;
    Ok(match (use_sliding, window) {
        (Some(false), _) | (_, None) => vec![AttentionKind::Full; n],
        (Some(true), Some(_)) => {
            let first = raw.opt_u64("max_window_layers")?.unwrap_or(0);
            (0..num_layers)
                .map(|i| {
                    if i >= first {
                        sliding(window)
                    } else {
                        Ok(AttentionKind::Full)
                    }
                })
                .collect::<Result<_>>()?
        }
        (None, Some(_)) => vec![sliding(window)?; n],
    })
}

/// `torch_dtype` (or the newer `dtype`) and `quantization_config`.
fn weight_format(raw: &RawConfig) -> Result<WeightFormat> {
    let torch_dtype = match raw.first_present(&["torch_dtype", "dtype"]) {
        Some(field) => {
            let s = raw.opt_str(field)?.unwrap_or_default();
            s.parse::<DType>().map_err(|msg| raw.error(field, msg))?
        }
        None => DType::Bf16,
    };
    let quantization = match raw.opt_object("quantization_config")? {
        None => None,
        Some(q) => Some(quantization(&q)?),
    };
    Ok(WeightFormat {
        torch_dtype,
        quantization,
    })
}

fn quantization(q: &RawConfig) -> Result<Quantization> {
    let method = q
        .opt_str("quant_method")?
        .ok_or_else(|| q.error("quant_method", "missing required field"))?
        .to_owned();
    let dtype = match method.to_ascii_lowercase().as_str() {
        "awq" | "gptq" | "awq_marlin" | "gptq_marlin" => match q.opt_positive("bits")? {
            None | Some(4) => DType::Int4,
            Some(8) => DType::Int8,
            Some(b) => {
                return Err(q.error(
                    "bits",
                    format!("{b}-bit weights are not supported; expected 4 or 8"),
                ))
            }
        },
        other => other.parse::<DType>().map_err(|_| {
            q.error(
                "quant_method",
                format!(
                    "unsupported quantization `{method}`; supported: fp8, fbgemm_fp8, mxfp4, \
                     awq, gptq, int8"
                ),
            )
        })?,
    };
    let block_size = match q.opt_u64_list("weight_block_size")? {
        None => None,
        Some(v) => match v.as_slice() {
            [r, c] => Some([*r, *c]),
            _ => {
                return Err(q.error(
                    "weight_block_size",
                    format!("expected [rows, columns], found {} numbers", v.len()),
                ))
            }
        },
    };
    let modules_to_not_convert = q
        .opt_str_list("modules_to_not_convert")?
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(Quantization {
        method,
        dtype,
        block_size,
        modules_to_not_convert,
    })
}
