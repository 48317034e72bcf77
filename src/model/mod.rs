//! Model architectures parsed from HuggingFace `config.json` files.
//!
//! A config is read field by field into a [`ModelSpec`]: the embedding, the LM head and
//! one [`LayerSpec`] per decoder layer, each a list of [`LinearOp`]s (with expert counts
//! and tensor-parallel splits), norms and an [`AttentionSpec`]. Everything derived —
//! parameter counts ([`ModelSpec::params`]), weight bytes ([`ModelSpec::weight_bytes`]),
//! KV-cache bytes ([`ModelSpec::kv_bytes_per_token`],
//! [`ModelSpec::kv_bytes_for_context`]) and FLOPs and bytes moved
//! ([`ModelSpec::linear_cost`], [`ModelSpec::attention_cost`],
//! [`ModelSpec::forward_flops`]) — is computed from that one description.
//!
//! Sizes always come from config fields, never from the model's name. Supported
//! layouts: Llama-style decoders (Llama 2/3/4, CodeLlama, Mistral, Mixtral, Qwen 1.5/2/
//! 2.5/3 dense and MoE, Gemma 2/3, Phi-3/4, GLM-4, InternLM2, Yi, Command-R, DeciLM,
//! DeepSeek-V2/V3 with MLA, gpt-oss), OPT, phi-2 and the classic decoders (GPT-J,
//! GPT-NeoX, BLOOM, Falcon). A multimodal checkpoint is read through its
//! `text_config`.
//!
//! ```
//! use servesim::dtype::DType;
//! use servesim::model::ModelCatalog;
//! use servesim::paths::DataPaths;
//!
//! let catalog = ModelCatalog::load(&DataPaths::builtin().model_configs)?;
//! let llama = catalog.resolve("llama-3.1-8b")?;
//! assert_eq!(llama.params().total, 8_030_261_248);
//! // 32 layers × 2 (K and V) × 8 KV heads × 128 × 2 bytes.
//! assert_eq!(llama.kv_bytes_per_token(DType::Bf16), 131_072.0);
//! # Ok::<(), servesim::Error>(())
//! ```

use crate::error::{Error, Result};
use std::path::Path;

mod build;
pub mod catalog;
mod classic;
mod config;
pub mod flops;
pub mod hf_folder;
pub mod hub_download;
pub mod kv;
mod layers;
mod moe;
pub mod params;
mod quant;
pub mod routing;
pub mod spec;

pub use catalog::{CatalogEntry, ModelCatalog, ModelFilter};
pub use flops::{AttentionCost, ForwardCost, LinearCost};
pub use hub_download::HubDownload;
pub use kv::LayerKindCount;
pub use params::ParamCounts;
pub use spec::{
    AttentionKind, AttentionSpec, EmbeddingSpec, ExpertCount, FfnSpec, LayerSpec, LayoutFamily,
    LearnedPositions, LinearOp, MlaSpec, ModelSpec, NormSpec, OpGroup, Quantization, TpSplit,
    WeightFormat,
};

impl ModelSpec {
    /// Parse the config file at `path`. The model is named after the file (`x.json` →
    /// `x`), or after its folder for a file called `config.json`.
    pub fn from_file(path: &Path) -> Result<ModelSpec> {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        let name = if stem == "config" {
            path.parent()
                .and_then(|p| p.file_name())
                .and_then(|s| s.to_str())
                .unwrap_or(stem)
        } else {
            stem
        };
        Self::from_file_named(path, name.to_owned())
    }

    /// Parse the config file at `path`, naming the model `name`.
    pub fn from_file_named(path: &Path, name: String) -> Result<ModelSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(name, path, &text)
    }

    /// Parse config text; `path` is only used to name the source in errors.
    pub fn from_json(name: impl Into<String>, path: &Path, text: &str) -> Result<ModelSpec> {
        let raw = config::RawConfig::parse(path, text)?
            .language_model()?
            .with_aliases(classic::FIELD_ALIASES);
        build::build(&raw, name.into())
    }

    /// One line describing the model, e.g. `8.03B params, 32 layers, hidden 4096,
    /// 32q/8kv heads × 128, bf16`.
    pub fn summary(&self) -> String {
        let p = self.params();
        let b = |n: u64| n as f64 / 1e9;
        let mut s = format!("{:.2}B params", b(p.total));
        if p.active != p.total {
            s += &format!(" ({:.2}B active)", b(p.active));
        }
        s += &format!(", {} layers, hidden {}", self.num_layers, self.hidden_size);
        if let Some(l) = self.layers.first() {
            let a = &l.attention;
            match &a.mla {
                Some(m) => s += &format!(", MLA {} heads, latent {}", a.num_heads, m.kv_lora_rank),
                None => {
                    s += &format!(
                        ", {}q/{}kv heads × {}",
                        a.num_heads, a.num_kv_heads, a.head_dim
                    )
                }
            }
        }
        if let Some(FfnSpec::Moe {
            num_experts,
            experts_per_token,
            ..
        }) = self
            .layers
            .iter()
            .map(|l| l.ffn)
            .find(|f| matches!(f, FfnSpec::Moe { .. }))
        {
            s += &format!(", MoE {experts_per_token}/{num_experts}");
        }
        for k in self.layer_kinds() {
            if let AttentionKind::Sliding { window_tokens } = k.kind {
                s += &format!(", {} sliding({window_tokens}) layers", k.layers);
            }
        }
        s += &format!(", {}", self.weight_format.torch_dtype);
        if let Some(q) = &self.weight_format.quantization {
            s += &format!(" ({} {})", q.method, q.dtype);
        }
        s
    }
}

#[cfg(test)]
mod family_tests;

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use crate::paths::DataPaths;

    /// The shipped catalog.
    pub(crate) fn catalog() -> ModelCatalog {
        ModelCatalog::load(&DataPaths::builtin().model_configs).expect("shipped configs parse")
    }

    /// A shipped model by full id.
    pub(crate) fn shipped(id: &str) -> ModelSpec {
        let path = DataPaths::builtin()
            .model_configs
            .join(format!("{id}.json"));
        ModelSpec::from_file_named(&path, id.to_owned()).expect("shipped config parses")
    }
}
