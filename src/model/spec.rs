//! The structural description of a model: one [`ModelSpec`] with one [`LayerSpec`] per
//! decoder layer, each a list of [`LinearOp`]s, norms and an [`AttentionSpec`].
//!
//! Parameter counts ([`super::params`]), weight and KV bytes ([`super::kv`]) and FLOPs
//! ([`super::flops`]) are all computed from this one description, so they cannot
//! disagree. Every dimension is an element count (`u64`); bytes appear only where a
//! [`DType`] is applied.

use crate::dtype::DType;
use std::path::PathBuf;

/// A decoder-only transformer, as described by its HuggingFace `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// The model's id: `org/name` for catalog entries, else derived from the file name.
    pub name: String,
    /// The `config.json` this spec was parsed from.
    pub source_path: PathBuf,
    /// `model_type` from the config (`"llama"`, `"deepseek_v3"`, ...), empty if absent.
    pub model_type: String,
    /// The HF layout family the config was read with.
    pub family: LayoutFamily,
    /// Width of the residual stream (`hidden_size`).
    pub hidden_size: u64,
    /// Rows of the token embedding and columns of the LM head (`vocab_size`).
    pub vocab_size: u64,
    /// Decoder layers (`num_hidden_layers`), not counting multi-token-prediction layers.
    pub num_layers: u64,
    /// Longest context the model was configured for (`max_position_embeddings`).
    pub max_position_embeddings: u64,
    /// Multi-token-prediction layers shipped in the checkpoint
    /// (`num_nextn_predict_layers`, DeepSeek-V3). They are not part of [`Self::layers`]
    /// and not counted anywhere (published totals exclude them).
    pub mtp_layers: u64,
    /// The MLP activation (`hidden_act` / `activation_function`; the family's HF default
    /// when absent).
    pub activation: String,
    /// Storage format of the checkpoint's weights.
    pub weight_format: WeightFormat,
    /// Token and position embeddings.
    pub embedding: EmbeddingSpec,
    /// Linear projections between the embedding and the residual stream (OPT's
    /// `project_in`/`project_out` when `word_embed_proj_dim != hidden_size`), else empty.
    pub io_projections: Vec<LinearOp>,
    /// A norm right after the token embedding (BLOOM's `word_embeddings_layernorm`).
    pub embedding_norm: Option<NormSpec>,
    /// The final norm before the LM head, if the model has one.
    pub final_norm: Option<NormSpec>,
    /// The output projection to vocabulary logits.
    pub lm_head: LinearOp,
    /// True when `lm_head` shares its weight with the token embedding
    /// (`tie_word_embeddings`); its weight is then counted once, in the embedding.
    pub tie_word_embeddings: bool,
    /// The decoder layers, in order.
    pub layers: Vec<LayerSpec>,
}

/// Which HF modelling code lays out the weights. Chosen by field presence where the
/// fields differ (`ffn_dim` → OPT), else by `model_type` for layouts that share field
/// names with Llama but not its module structure (phi). Sizes never depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayoutFamily {
    /// Llama-style pre-norm decoder: fused-able q/k/v/o, gated (SwiGLU-type) MLP or MoE,
    /// optional MLA, sliding windows, sinks. Covers Llama, Mistral, Mixtral, Qwen2/3
    /// (dense and MoE), DeepSeek-V2/V3 and gpt-oss.
    Decoder,
    /// OPT: learned positions, LayerNorm with bias, biased Linear layers, 2-matrix MLP.
    Opt,
    /// phi-2: parallel attention and MLP behind one LayerNorm, biases everywhere.
    Phi,
    /// The GPT-2-style decoders before Llama: GPT-J, GPT-NeoX (Pythia), BLOOM and
    /// Falcon. Non-gated 2-matrix MLP, LayerNorm with bias, often parallel attention and
    /// MLP; older field names (`n_embd`, `n_layer`, `n_head`).
    Classic,
}

/// The checkpoint's declared weight storage.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightFormat {
    /// `torch_dtype` (or `dtype`) from the config; bf16 when absent (what serving engines
    /// load such checkpoints as).
    pub torch_dtype: DType,
    /// The `quantization_config`, if the checkpoint is quantized.
    pub quantization: Option<Quantization>,
}

/// A checkpoint's `quantization_config`, reduced to what sizes depend on.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantization {
    /// `quant_method` as written (`"fp8"`, `"mxfp4"`, `"awq"`, ...).
    pub method: String,
    /// Storage format of the quantized linear weights.
    pub dtype: DType,
    /// `weight_block_size` (rows, columns) for block-scaled formats, if given.
    pub block_size: Option<[u64; 2]>,
    /// `modules_to_not_convert` (HF module-name patterns left unquantized).
    pub modules_to_not_convert: Vec<String>,
}

/// The token embedding and, for OPT, the learned position embedding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingSpec {
    /// Rows of the token embedding (`vocab_size`).
    pub vocab_size: u64,
    /// Width of the token embedding (`word_embed_proj_dim` for OPT, else `hidden_size`).
    pub dim: u64,
    /// Learned absolute positions, if any.
    pub learned_positions: Option<LearnedPositions>,
}

/// A learned absolute-position embedding table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnedPositions {
    /// Rows (OPT: `max_position_embeddings + 2`, its historical padding offset).
    pub rows: u64,
    /// Width (`hidden_size`).
    pub dim: u64,
}

/// A normalization layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormSpec {
    /// HF module name (`"input_layernorm"`, `"q_norm"`, `"kv_a_layernorm"`, ...).
    pub name: &'static str,
    /// Elements of its scale vector.
    pub dim: u64,
    /// True for LayerNorm with a bias vector; false for RMSNorm.
    pub bias: bool,
}

/// One decoder layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// Attention geometry (for KV bytes and attention FLOPs).
    pub attention: AttentionSpec,
    /// The feed-forward block's shape (descriptive; [`Self::ops`] is authoritative).
    pub ffn: FfnSpec,
    /// Every linear operator of the layer, attention first, in execution order.
    pub ops: Vec<LinearOp>,
    /// The layer's norms.
    pub norms: Vec<NormSpec>,
    /// True when attention and MLP read the same normalized input and their outputs are
    /// summed (phi-2), so a TP implementation needs one all-reduce per layer, not two.
    pub parallel_attn_mlp: bool,
}

/// Attention of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionSpec {
    /// Which tokens a query attends to.
    pub kind: AttentionKind,
    /// Query heads (`num_attention_heads`).
    pub num_heads: u64,
    /// Key/value heads (`num_key_value_heads`; equal to `num_heads` when absent). For MLA
    /// this is the decompressed head count; the cache holds one latent instead.
    pub num_kv_heads: u64,
    /// Query/key head width (`head_dim` if given, else `hidden_size / num_heads`; MLA:
    /// `qk_nope_head_dim + qk_rope_head_dim`).
    pub head_dim: u64,
    /// Value head width (equal to `head_dim` except for MLA's `v_head_dim`).
    pub v_head_dim: u64,
    /// Dimensions of each query/key head that get rotary embedding (`head_dim ×
    /// partial_rotary_factor`; MLA: `qk_rope_head_dim`; 0 for learned positions).
    pub rotary_dim: u64,
    /// Multi-head latent attention (DeepSeek-V2/V3), if used.
    pub mla: Option<MlaSpec>,
    /// True for gpt-oss's learned per-head attention sinks (one scalar per query head).
    pub sinks: bool,
}

/// Whether attention sees the whole context or a window of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttentionKind {
    /// Every earlier token.
    Full,
    /// The last `window_tokens` tokens (including the query's own).
    Sliding {
        /// Window length in tokens (`sliding_window`).
        window_tokens: u64,
    },
}

/// Multi-head latent attention dimensions (DeepSeek-V2/V3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlaSpec {
    /// Rank of the low-rank query projection (`q_lora_rank`); `None` for a full `q_proj`.
    pub q_lora_rank: Option<u64>,
    /// Width of the compressed KV latent (`kv_lora_rank`).
    pub kv_lora_rank: u64,
    /// Non-rotary part of each query/key head (`qk_nope_head_dim`).
    pub qk_nope_head_dim: u64,
    /// Rotary part of each query/key head, shared by all heads in the cache
    /// (`qk_rope_head_dim`).
    pub qk_rope_head_dim: u64,
    /// Value head width (`v_head_dim`).
    pub v_head_dim: u64,
}

/// The shape of a layer's feed-forward block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnSpec {
    /// One MLP used by every token.
    Dense {
        /// Hidden width of the MLP (`intermediate_size` / `ffn_dim`).
        intermediate_size: u64,
        /// True for gate/up/down (SwiGLU-type), false for a 2-matrix MLP (fc1/fc2).
        gated: bool,
    },
    /// Mixture of experts.
    Moe {
        /// Routed experts in the layer.
        num_experts: u64,
        /// Routed experts each token uses.
        experts_per_token: u64,
        /// Hidden width of one routed expert.
        expert_intermediate_size: u64,
        /// Hidden width of the always-on shared expert(s), 0 if none.
        shared_intermediate_size: u64,
    },
}

/// A linear (matrix-multiply) operator, possibly replicated over routed experts.
///
/// For `tokens` tokens it costs `2 · tokens · k · in_features · out_features` FLOPs,
/// where `k` is [`ExpertCount::active_per_token`] (1 for dense operators).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearOp {
    /// Operator name, the same across families: `qkv_proj` (q, k and v fused), `o_proj`,
    /// `gate_up_proj` (gate and up fused), `down_proj`, `fc1`/`fc2` (2-matrix MLP),
    /// `q_proj`, `q_a_proj`, `q_b_proj`, `kv_a_proj_with_mqa`, `kv_b_proj` (MLA),
    /// `router`, `shared_expert_gate`, `experts.gate_up_proj`, `experts.down_proj`,
    /// `shared_experts.gate_up_proj`, `shared_experts.down_proj`, `project_in`,
    /// `project_out`, `lm_head`.
    pub name: &'static str,
    /// What the operator belongs to (for per-component counts).
    pub group: OpGroup,
    /// The module path inside a decoder layer, in HF's usual naming: `"self_attn"`,
    /// `"mlp"`, `"mlp.router"`, `"mlp.experts"`, `"mlp.shared_experts"` (families that
    /// name these differently, such as Mixtral's `block_sparse_moe`, use the same
    /// names here); top-level operators use their own name (`"lm_head"`). Matched
    /// against `modules_to_not_convert`.
    pub hf_module: &'static str,
    /// Input width.
    pub in_features: u64,
    /// Output width.
    pub out_features: u64,
    /// True when the operator adds a bias vector of `out_features` per instance.
    pub bias: bool,
    /// Dense, or one instance per routed expert.
    pub experts: ExpertCount,
    /// How tensor parallelism shards the weight.
    pub tp_split: TpSplit,
    /// False for weights that quantized checkpoints keep in 16 bits whatever the format
    /// (routers, gates, the LM head, embedding projections).
    pub quantizable: bool,
}

/// How many weight instances a [`LinearOp`] has and how many a token uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpertCount {
    /// One instance, used by every token.
    Dense,
    /// One instance per routed expert.
    Routed {
        /// Instances in the layer (`num_local_experts`, `n_routed_experts`, ...).
        total: u64,
        /// Instances each token uses (`num_experts_per_tok`).
        active_per_token: u64,
    },
}

impl ExpertCount {
    /// Weight instances held in memory.
    pub fn instances(self) -> u64 {
        match self {
            ExpertCount::Dense => 1,
            ExpertCount::Routed { total, .. } => total,
        }
    }

    /// Weight instances each token is multiplied by.
    pub fn active_per_token(self) -> u64 {
        match self {
            ExpertCount::Dense => 1,
            ExpertCount::Routed {
                active_per_token, ..
            } => active_per_token,
        }
    }
}

/// Tensor-parallel sharding of a [`LinearOp`] (Megatron style).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TpSplit {
    /// Output features split across ranks; no communication after it.
    Column,
    /// Input features split across ranks; an all-reduce of the output follows.
    Row,
    /// Every rank holds the whole weight (small or latent projections, routers).
    Replicated,
}

/// What part of the model an operator belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpGroup {
    /// Attention projections.
    Attention,
    /// A dense MLP.
    Mlp,
    /// An MoE router (and Qwen2-MoE's shared-expert gate).
    Router,
    /// Routed experts.
    RoutedExperts,
    /// Always-on shared experts.
    SharedExperts,
    /// Embedding projections (OPT `project_in`/`project_out`).
    Projection,
    /// The output projection.
    LmHead,
}
