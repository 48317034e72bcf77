//! Layouts of the families read through quirks, `text_config` and the classic
//! decoders: which layers slide, which are MoE, which biases and norms exist. Parameter
//! totals are tested in `params.rs`; these pin the structure behind them.

use super::spec::*;
use super::test_util::shipped;
use super::ModelSpec;
use serde_json::json;
use std::path::Path;

fn kinds(s: &ModelSpec) -> Vec<AttentionKind> {
    s.layers.iter().map(|l| l.attention.kind).collect()
}

fn norm_names(l: &LayerSpec) -> Vec<&'static str> {
    l.norms.iter().map(|n| n.name).collect()
}

fn op<'a>(l: &'a LayerSpec, name: &str) -> &'a LinearOp {
    l.ops.iter().find(|o| o.name == name).unwrap()
}

#[test]
fn gemma2_alternates_sliding_and_full_from_the_first_layer() {
    let s = shipped("google/gemma-2-9b");
    let w = AttentionKind::Sliding {
        window_tokens: 4096,
    };
    let k = kinds(&s);
    assert_eq!(&k[..4], [w, AttentionKind::Full, w, AttentionKind::Full]);
    assert_eq!(k.iter().filter(|&&x| x == AttentionKind::Full).count(), 21);
    assert_eq!(
        norm_names(&s.layers[0]),
        [
            "input_layernorm",
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm"
        ]
    );
    assert!(s.tie_word_embeddings);
}

#[test]
fn gemma3_text_config_gets_the_class_defaults_and_its_sliding_pattern() {
    // gemma-3-12b-it's text_config names heads 16 and KV heads 8 but omits head_dim
    // (256), vocab (262,208) and the pattern (every 6th layer full).
    let s = shipped("google/gemma-3-12b-it");
    let a = &s.layers[0].attention;
    assert_eq!((a.num_heads, a.num_kv_heads, a.head_dim), (16, 8, 256));
    assert_eq!(s.vocab_size, 262_208);
    assert_eq!(s.model_type, "gemma3_text");
    let full: Vec<usize> = kinds(&s)
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == AttentionKind::Full)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(full, (0..8).map(|i| 6 * i + 5).collect::<Vec<_>>());
    assert!(norm_names(&s.layers[0]).contains(&"q_norm"));
    // The 4B's text_config omits the heads too: 8 query and 4 KV heads.
    let a = shipped("google/gemma-3-4b-it").layers[0].attention.clone();
    assert_eq!((a.num_heads, a.num_kv_heads), (8, 4));
}

#[test]
fn llama4_interleaves_moe_layers_with_a_shared_expert() {
    let moe_layers = |s: &ModelSpec| -> Vec<usize> {
        s.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l.ffn, FfnSpec::Moe { .. }))
            .map(|(i, _)| i)
            .collect()
    };
    let scout = shipped("meta-llama/Llama-4-Scout-17B-16E-Instruct");
    assert_eq!(moe_layers(&scout).len(), 48);
    match scout.layers[0].ffn {
        FfnSpec::Moe {
            num_experts,
            experts_per_token,
            expert_intermediate_size,
            shared_intermediate_size,
        } => assert_eq!(
            (
                num_experts,
                experts_per_token,
                expert_intermediate_size,
                shared_intermediate_size
            ),
            (16, 1, 8192, 8192)
        ),
        ref other => panic!("{other:?}"),
    }
    // Maverick: every second layer (1, 3, …) MoE; the dense ones 16,384 wide.
    let mav = shipped("meta-llama/Llama-4-Maverick-17B-128E-Instruct");
    assert_eq!(
        moe_layers(&mav),
        (0..24).map(|i| 2 * i + 1).collect::<Vec<_>>()
    );
    assert_eq!(
        mav.layers[0].ffn,
        FfnSpec::Dense {
            intermediate_size: 16384,
            gated: true
        }
    );
}

#[test]
fn decilm_reads_its_kv_heads_layer_by_layer() {
    let s = shipped("Deci/DeciLM-7B");
    let kv: Vec<u64> = s.layers.iter().map(|l| l.attention.num_kv_heads).collect();
    assert_eq!(&kv[..6], [4, 4, 4, 4, 4, 2]);
    assert_eq!(kv.iter().sum::<u64>(), 67);
    // The fused q/k/v projection follows each layer's count.
    assert_eq!(
        op(&s.layers[0], "qkv_proj").out_features,
        (32 + 2 * 4) * 128
    );
    assert_eq!(op(&s.layers[20], "qkv_proj").out_features, (32 + 2) * 128);
    let bad = json!({
        "model_type": "deci", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 2, "num_attention_heads": 8, "vocab_size": 100,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
        "num_key_value_heads_per_layer": [4]
    });
    let e = ModelSpec::from_json("t", Path::new("t.json"), &bad.to_string())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field `num_key_value_heads_per_layer`: has 1 entries"),
        "{e}"
    );
}

#[test]
fn classic_decoders_keep_their_biases_norms_and_positions() {
    // GPT-J: attention and MLP in parallel behind ln_1; biases on the MLP and the LM
    // head only; rotary on 64 of 256 dimensions; untied.
    let j = shipped("EleutherAI/gpt-j-6b");
    let l = &j.layers[0];
    assert_eq!(j.family, LayoutFamily::Classic);
    assert!(l.parallel_attn_mlp && j.lm_head.bias && !j.tie_word_embeddings);
    assert!(!op(l, "qkv_proj").bias && op(l, "fc1").bias);
    assert_eq!(op(l, "fc1").out_features, 4 * 4096);
    assert_eq!(l.attention.rotary_dim, 64);
    assert_eq!(norm_names(l), ["ln_1"]);
    // BLOOM: ALiBi (no rotary), a LayerNorm after the embedding, biases everywhere,
    // tied, vLLM's 2048-token fallback for a config without a maximum length.
    let b = shipped("bigscience/bloom-7b1");
    assert_eq!(b.layers[0].attention.rotary_dim, 0);
    assert!(b.embedding_norm.is_some() && b.tie_word_embeddings);
    assert!(op(&b.layers[0], "o_proj").bias && !b.layers[0].parallel_attn_mlp);
    assert_eq!(b.max_position_embeddings, 2048);
    // Falcon-7B: multi-query (one KV head), parallel, one norm, no biases, tied.
    let f = shipped("tiiuae/falcon-7b");
    let l = &f.layers[0];
    assert_eq!((l.attention.num_heads, l.attention.num_kv_heads), (71, 1));
    assert!(l.parallel_attn_mlp && f.tie_word_embeddings);
    assert!(!op(l, "qkv_proj").bias && !op(l, "fc1").bias);
    assert_eq!(norm_names(l), ["input_layernorm"]);
    // GPT-NeoX: parallel residual by default, rotary on 25 % of 96 dimensions.
    let n = shipped("EleutherAI/gpt-neox-20b");
    assert!(n.layers[0].parallel_attn_mlp);
    assert_eq!(n.layers[0].attention.rotary_dim, 24);
}

#[test]
fn cohere_glm_and_internlm2_quirks() {
    // Command-R: one bias-free LayerNorm before attention and MLP in parallel; tied.
    let c = shipped("CohereForAI/c4ai-command-r-v01");
    let l = &c.layers[0];
    assert!(l.parallel_attn_mlp && c.tie_word_embeddings);
    assert_eq!(norm_names(l), ["input_layernorm"]);
    assert!(!l.norms[0].bias);
    // Command-R+ norms q and k per head and channel (use_qk_norm).
    let p = shipped("CohereForAI/c4ai-command-r-plus");
    let dims: Vec<u64> = p.layers[0].norms.iter().map(|n| n.dim).collect();
    assert_eq!(dims, [12288, 96 * 128, 8 * 128]);
    // GLM-4: attention_bias puts biases on q/k/v, not on o_proj; half rotary.
    let g = shipped("THUDM/glm-4-9b-chat-hf");
    assert!(op(&g.layers[0], "qkv_proj").bias && !op(&g.layers[0], "o_proj").bias);
    assert_eq!(g.layers[0].attention.rotary_dim, 64);
    // InternLM2: `bias: false` means no attention biases.
    let i = shipped("internlm/internlm2_5-7b-chat");
    assert!(!op(&i.layers[0], "qkv_proj").bias);
}
