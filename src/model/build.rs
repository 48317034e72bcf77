//! From a raw `config.json` to a [`ModelSpec`]: the parts every layout shares
//! (sizes, attention windows, dtype and quantization, embeddings, LM head).
//!
//! The per-layer structure of each layout family is in [`super::layers`].

use super::classic;
use super::config::RawConfig;
use super::layers;
use super::quant;
use super::spec::*;
use crate::error::{Error, Result};

/// Rows that OPT's learned position embedding has beyond `max_position_embeddings`
/// (HF `OPTLearnedPositionalEmbedding` offsets positions by 2, a fairseq legacy).
pub(crate) const OPT_POSITION_OFFSET: u64 = 2;

/// The context length vLLM assumes when a config declares none (BLOOM and Falcon-7B,
/// whose configs have no `max_position_embeddings`): its documented fallback.
const VLLM_FALLBACK_MAX_LEN: u64 = 2048;

/// The most decoder layers a config may declare (a sanity bound: real models have a
/// few hundred at most, and each layer is allocated).
const MAX_LAYERS: u64 = 1 << 16;

/// The most parameters (or KV elements per token) a model may have: 2^53, the largest
/// integer `f64` represents exactly (real models have about 2^40).
const MAX_ELEMENTS: u128 = 1 << 53;

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
    if num_layers > MAX_LAYERS {
        return Err(raw.error(
            "num_hidden_layers",
            format!("{num_layers} is implausibly large (the limit is {MAX_LAYERS})"),
        ));
    }
    let heads = raw.req_positive("num_attention_heads")?;
    let vocab_size = raw.req_positive("vocab_size")?;
    let max_position_embeddings = match family {
        LayoutFamily::Classic => raw
            .opt_positive("max_position_embeddings")?
            .unwrap_or(VLLM_FALLBACK_MAX_LEN),
        _ => raw.req_positive("max_position_embeddings")?,
    };
    let declared_kv = match classic::falcon_kv_heads(raw, &model_type)? {
        Some(kv) => Some(kv),
        None => raw.opt_positive("num_key_value_heads")?,
    };
    let kv_heads = match declared_kv {
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
    let kinds = attention_kinds(raw, num_layers, &model_type)?;
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
        LayoutFamily::Classic => classic::classic_layers(raw, &model_type, &common)?,
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
            bias: layers::decoder_norm_has_bias(raw, &model_type),
        }),
        LayoutFamily::Classic => Some(NormSpec {
            name: "ln_f",
            dim: hidden,
            bias: true,
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

    // HF defaults when the key is absent: PretrainedConfig (OPT), BLOOM, Falcon, Gemma
    // and Cohere tie, while LlamaConfig, MistralConfig, MixtralConfig, Qwen2/3Config,
    // PhiConfig, DeepseekV3Config, GptOssConfig, GPT-J and GPT-NeoX default to untied.
    let tie_word_embeddings = raw.opt_bool("tie_word_embeddings")?.unwrap_or(
        family == LayoutFamily::Opt
            || classic::ties_by_default(&model_type)
            || layers::ties_by_default(&model_type),
    );
    let lm_head = LinearOp {
        name: "lm_head",
        group: OpGroup::LmHead,
        hf_module: "lm_head",
        in_features: embed_dim,
        out_features: vocab_size,
        // phi-2's and GPT-J's lm_heads are the ones with a bias.
        bias: family == LayoutFamily::Phi || classic::lm_head_bias(&model_type),
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
            LayoutFamily::Classic => classic::default_activation(&model_type),
        }
        .to_owned(),
    };

    let embedding_norm = classic::embedding_norm(&model_type, hidden);
    let spec = ModelSpec {
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
        weight_format: quant::weight_format(raw)?,
        embedding: EmbeddingSpec {
            vocab_size,
            dim: embed_dim,
            learned_positions,
        },
        io_projections,
        embedding_norm,
        final_norm,
        lm_head,
        tie_word_embeddings,
        layers,
    };
    check_magnitude(raw, &spec)?;
    Ok(spec)
}

/// Reject sizes whose parameter or KV-element totals exceed [`MAX_ELEMENTS`], so that
/// every count derived from the spec fits in `u64` and is exact in `f64`.
fn check_magnitude(raw: &RawConfig, spec: &ModelSpec) -> Result<()> {
    let mut params: Option<u128> = Some(0);
    let mut add = |n: Option<u128>| params = params.zip(n).and_then(|(a, b)| a.checked_add(b));
    let w = u128::from;
    for op in spec.all_ops().chain(std::iter::once(&spec.lm_head)) {
        add(
            (w(op.in_features) * w(op.out_features) + w(op.out_features))
                .checked_mul(w(op.experts.instances())),
        );
    }
    add(Some(w(spec.embedding.vocab_size) * w(spec.embedding.dim)));
    if let Some(p) = spec.embedding.learned_positions {
        add(Some(w(p.rows) * w(p.dim)));
    }
    for n in spec.all_norms() {
        add(Some(2 * w(n.dim)));
    }
    for l in &spec.layers {
        add(Some(w(l.attention.sink_params())));
    }
    // Each term is below 2^63 (fields are at most 2^31), so only the sum needs u128.
    let kv: u128 = spec
        .layers
        .iter()
        .map(|l| w(l.attention.kv_elements_per_token()))
        .sum();
    if params.is_none_or(|p| p > MAX_ELEMENTS) || kv > MAX_ELEMENTS {
        return Err(Error::input(
            raw.path(),
            None,
            "the sizes describe more than 2^53 parameters or KV elements per token; check \
             hidden_size, intermediate_size, num_hidden_layers and the expert counts",
        ));
    }
    Ok(())
}

/// The layout family: by field presence where field names differ (`ffn_dim` is OPT's),
/// else by `model_type` (phi shares Llama's field names but not its structure).
fn detect_family(raw: &RawConfig, model_type: &str) -> LayoutFamily {
    if raw.has("ffn_dim") || model_type == "opt" {
        LayoutFamily::Opt
    } else if model_type == "phi" {
        LayoutFamily::Phi
    } else if classic::is_classic(model_type) {
        LayoutFamily::Classic
    } else {
        LayoutFamily::Decoder
    }
}

/// Attention kind of each layer.
///
/// - `layer_types` (gpt-oss, Gemma): `"full_attention"` or `"sliding_attention"` per
///   layer, the window from `sliding_window`.
/// - else Gemma 2 (`gemma2`): layers 0, 2, 4, … slide; Gemma 3 (`gemma3_text`): every
///   layer slides except each `sliding_window_pattern`-th (default 6), as their HF
///   modelling code fixes when the config has no `layer_types`.
/// - else `use_sliding_window: false` (Qwen) or no `sliding_window`: all full.
/// - else `use_sliding_window: true` (Qwen2): layers from `max_window_layers` on slide.
/// - else a `sliding_window` alone (Mistral-7B-v0.1): every layer slides.
fn attention_kinds(
    raw: &RawConfig,
    num_layers: u64,
    model_type: &str,
) -> Result<Vec<AttentionKind>> {
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
    let period = match model_type {
        "gemma2" => Some(2),
        "gemma3_text" | "gemma3" => Some(raw.opt_positive("sliding_window_pattern")?.unwrap_or(6)),
        _ => None,
    };
    if let Some(period) = period {
        return (0..num_layers)
            .map(|i| {
                let full = if model_type == "gemma2" {
                    i % 2 == 1
                } else {
                    (i + 1) % period == 0
                };
                if full {
                    Ok(AttentionKind::Full)
                } else {
                    sliding(window)
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::model::test_util::shipped;
    use serde_json::{json, Value};
    use std::path::Path;

    /// A small Llama-style config, edited by `f`.
    fn config(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut v = json!({
            "model_type": "llama",
            "hidden_size": 256,
            "intermediate_size": 512,
            "num_hidden_layers": 4,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "vocab_size": 1000,
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-5,
            "torch_dtype": "bfloat16"
        });
        f(v.as_object_mut().unwrap());
        v
    }

    fn parse(v: &Value) -> Result<ModelSpec> {
        ModelSpec::from_json("t", Path::new("model_configs/t.json"), &v.to_string())
    }

    fn err(v: &Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn missing_field_and_wrong_type_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        let v = config(|m| {
            m.remove("hidden_size");
        });
        std::fs::write(&path, v.to_string()).unwrap();
        assert_eq!(
            ModelSpec::from_file(&path).unwrap_err().to_string(),
            format!(
                "{}: field `hidden_size`: missing required field",
                path.display()
            )
        );
        let v = config(|m| {
            m.insert("num_hidden_layers".into(), json!("32"));
        });
        std::fs::write(&path, v.to_string()).unwrap();
        assert_eq!(
            ModelSpec::from_file(&path).unwrap_err().to_string(),
            format!(
                "{}: field `num_hidden_layers`: expected a positive integer, found string \"32\"",
                path.display()
            )
        );
        assert_eq!(
            err(&config(|m| {
                m.insert("tie_word_embeddings".into(), json!("no"));
            })),
            "model_configs/t.json: field `tie_word_embeddings`: expected true or false, found string \"no\""
        );
        assert_eq!(
            err(&config(|m| {
                m.insert("torch_dtype".into(), json!("float64"));
            })),
            "model_configs/t.json: field `torch_dtype`: unknown dtype `float64`; expected one of fp32, bf16, fp16, fp8, int8, int4 (awq/gptq), mxfp4, nvfp4"
        );
    }

    #[test]
    fn inconsistent_fields_are_rejected() {
        let e = err(&config(|m| {
            m.insert("num_key_value_heads".into(), json!(3));
        }));
        assert!(
            e.contains("field `num_key_value_heads`: 3 does not divide"),
            "{e}"
        );
        let e = err(&config(|m| {
            m.insert("hidden_size".into(), json!(250));
        }));
        assert!(e.contains("field `num_attention_heads`"), "{e}");
        let e = err(&config(|m| {
            m.insert("layer_types".into(), json!(["full_attention"]));
        }));
        assert!(
            e.contains("field `layer_types`: has 1 entries but num_hidden_layers is 4"),
            "{e}"
        );
        let e = err(&config(|m| {
            m.insert(
                "layer_types".into(),
                json!(["full_attention", "x", "full_attention", "full_attention"]),
            );
        }));
        assert!(e.contains("unknown layer type `x`"), "{e}");
        let e = err(&config(|m| {
            m.insert("layer_types".into(), json!(vec!["sliding_attention"; 4]));
        }));
        assert!(
            e.contains("field `sliding_window`: missing required field"),
            "{e}"
        );
        let e = err(&config(|m| {
            m.insert(
                "quantization_config".into(),
                json!({"quant_method": "bitsandbytes"}),
            );
        }));
        assert!(
            e.contains("field `quantization_config.quant_method`: unsupported"),
            "{e}"
        );
        let e = err(&config(|m| {
            m.insert("num_local_experts".into(), json!(8));
        }));
        assert!(
            e.contains("field `num_experts_per_tok`: missing required field"),
            "{e}"
        );
    }

    #[test]
    fn absurd_sizes_are_errors_not_overflows() {
        let e = err(&config(|m| {
            m.insert("num_hidden_layers".into(), json!(1u64 << 20));
        }));
        assert!(
            e.contains("field `num_hidden_layers`: 1048576 is implausibly large"),
            "{e}"
        );
        let e = err(&config(|m| {
            m.insert("hidden_size".into(), json!(1u64 << 30));
            m.insert("intermediate_size".into(), json!(1u64 << 30));
            m.insert("num_local_experts".into(), json!(1u64 << 30));
            m.insert("num_experts_per_tok".into(), json!(1));
        }));
        assert!(
            e.starts_with("model_configs/t.json: the sizes describe more than 2^53"),
            "{e}"
        );
    }

    #[test]
    fn defaults_of_absent_fields() {
        let s = parse(&config(|m| {
            m.remove("num_key_value_heads");
            m.remove("torch_dtype");
        }))
        .unwrap();
        let a = &s.layers[0].attention;
        assert_eq!(
            (a.num_kv_heads, a.head_dim, a.kind),
            (8, 32, AttentionKind::Full)
        );
        assert!(!s.tie_word_embeddings);
        assert_eq!(s.weight_format.torch_dtype, DType::Bf16);
        assert_eq!(s.activation, "silu");
        // Explicit head_dim wins over hidden / heads (Qwen3-32B: 5120 / 64 = 80).
        assert_eq!(shipped("Qwen/Qwen3-32B").layers[0].attention.head_dim, 128);
        assert_eq!(
            shipped("openai/gpt-oss-20b").layers[0].attention.head_dim,
            64
        );
        // OPT has no num_key_value_heads: multi-head attention.
        let opt = shipped("facebook/opt-6.7b").layers[0].attention.clone();
        assert_eq!(opt.num_kv_heads, opt.num_heads);
    }

    #[test]
    fn qwen2_sliding_from_max_window_layers_and_awq() {
        let s = parse(&config(|m| {
            m.insert("model_type".into(), json!("qwen2"));
            m.insert("use_sliding_window".into(), json!(true));
            m.insert("sliding_window".into(), json!(64));
            m.insert("max_window_layers".into(), json!(2));
            m.insert(
                "quantization_config".into(),
                json!({"quant_method": "awq", "bits": 4, "group_size": 128}),
            );
        }))
        .unwrap();
        let kinds: Vec<_> = s.layers.iter().map(|l| l.attention.kind).collect();
        let w = AttentionKind::Sliding { window_tokens: 64 };
        assert_eq!(kinds, [AttentionKind::Full, AttentionKind::Full, w, w]);
        // qwen2: q/k/v bias without an attention_bias key.
        assert!(s.layers[0].ops[0].bias && !s.layers[0].ops[1].bias);
        assert_eq!(
            s.weight_format.quantization.as_ref().unwrap().dtype,
            DType::Int4
        );
        let mlp = s.layers[0]
            .ops
            .iter()
            .find(|o| o.name == "down_proj")
            .unwrap();
        assert_eq!(s.op_weight_dtype(mlp, None), DType::Int4);
        assert_eq!(s.op_weight_dtype(&s.lm_head, None), DType::Bf16);
    }

    #[test]
    fn qwen2_moe_layout_with_shared_expert() {
        let s = parse(&config(|m| {
            m.insert("model_type".into(), json!("qwen2_moe"));
            m.insert("num_experts".into(), json!(4));
            m.insert("num_experts_per_tok".into(), json!(2));
            m.insert("moe_intermediate_size".into(), json!(64));
            m.insert("shared_expert_intermediate_size".into(), json!(128));
            m.insert("decoder_sparse_step".into(), json!(2));
            m.insert("mlp_only_layers".into(), json!([3]));
        }))
        .unwrap();
        // Layers 1 and 3 are sparse by step; 3 is forced dense.
        let moe: Vec<bool> = s
            .layers
            .iter()
            .map(|l| matches!(l.ffn, FfnSpec::Moe { .. }))
            .collect();
        assert_eq!(moe, [false, true, false, false]);
        let names: Vec<&str> = s.layers[1].ops.iter().map(|o| o.name).collect();
        assert_eq!(
            names,
            [
                "qkv_proj",
                "o_proj",
                "router",
                "experts.gate_up_proj",
                "experts.down_proj",
                "shared_experts.gate_up_proj",
                "shared_experts.down_proj",
                "shared_expert_gate"
            ]
        );
        // Per MoE layer: router 256×4 + 4 experts × 3 × 256×64 + shared 3 × 256×128 + gate 256.
        let p = s.params();
        assert_eq!(p.routed_experts, 4 * 3 * 256 * 64);
        assert_eq!(p.active_routed_experts, 2 * 3 * 256 * 64);
        assert_eq!(p.shared_experts, 3 * 256 * 128);
        assert_eq!(p.routers, 256 * 4 + 256);
        assert_eq!(p.mlp, 3 * 3 * 256 * 512);
    }

    #[test]
    fn opt_with_narrow_embedding_has_projections() {
        // facebook/opt-350m style: word_embed_proj_dim 512 < hidden 1024, post-norm.
        let v = json!({
            "model_type": "opt", "hidden_size": 1024, "ffn_dim": 4096,
            "num_hidden_layers": 2, "num_attention_heads": 16, "vocab_size": 100,
            "max_position_embeddings": 2048, "word_embed_proj_dim": 512,
            "do_layer_norm_before": false
        });
        let s = parse(&v).unwrap();
        let names: Vec<&str> = s.io_projections.iter().map(|o| o.name).collect();
        assert_eq!(names, ["project_in", "project_out"]);
        assert!(s.final_norm.is_none() && s.tie_word_embeddings);
        assert_eq!(s.lm_head.in_features, 512);
        let p = s.params();
        assert_eq!(p.projections, 2 * 512 * 1024);
        assert_eq!(p.embedding, 100 * 512 + 2050 * 1024);
    }
}
