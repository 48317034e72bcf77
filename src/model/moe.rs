//! Mixture-of-experts settings read from the config: expert counts, widths, shared
//! experts, router bias and which layers are MoE.

use super::build::Common;
use super::config::RawConfig;
use crate::error::Result;

/// Routed-expert settings of an MoE config.
pub(crate) struct MoePlan {
    pub(crate) experts: u64,
    pub(crate) top_k: u64,
    pub(crate) expert_inter: u64,
    /// Width of the always-on shared expert MLP (DeepSeek `n_shared_experts ×
    /// moe_intermediate_size`, Qwen2-MoE `shared_expert_intermediate_size`), 0 if none.
    pub(crate) shared_inter: u64,
    /// Qwen2-MoE's sigmoid gate on the shared expert.
    pub(crate) shared_gate: bool,
    /// Router bias (gpt-oss) or DeepSeek's `e_score_correction_bias` (`topk_method:
    /// noaux_tc`), both one value per expert added to the router output.
    pub(crate) router_bias: bool,
    /// Which layers are MoE.
    pub(crate) is_moe: Vec<bool>,
}

/// `router_bias_quirk`: the family's router has a bias that no field declares (gpt-oss);
/// `shared_experts_quirk`: shared experts that no field declares (Llama 4's one).
pub(crate) fn moe_plan(
    raw: &RawConfig,
    c: &Common,
    router_bias_quirk: bool,
    shared_experts_quirk: u64,
) -> Result<Option<MoePlan>> {
    let Some(field) = raw.first_present(&["num_local_experts", "num_experts", "n_routed_experts"])
    else {
        return Ok(None);
    };
    let experts = raw.opt_u64(field)?.unwrap_or(0);
    if experts == 0 {
        return Ok(None);
    }
    let top_k_field = raw
        .first_present(&["num_experts_per_tok", "experts_per_token"])
        .unwrap_or("num_experts_per_tok");
    let top_k = raw.req_positive(top_k_field)?;
    if top_k > experts {
        return Err(raw.error(
            top_k_field,
            format!("{top_k} is more than the {experts} experts (`{field}`)"),
        ));
    }
    if let (Some(a), Some(b)) = (
        raw.opt_positive("num_experts_per_tok")?,
        raw.opt_positive("experts_per_token")?,
    ) {
        if a != b {
            return Err(raw.error(
                "experts_per_token",
                format!("{b} disagrees with num_experts_per_tok ({a})"),
            ));
        }
    }
    let expert_inter = match raw.opt_positive("moe_intermediate_size")? {
        Some(m) => m,
        None => raw.req_positive("intermediate_size")?,
    };
    let n_shared = raw
        .opt_u64("n_shared_experts")?
        .unwrap_or(shared_experts_quirk);
    let qwen_shared = raw.opt_u64("shared_expert_intermediate_size")?.unwrap_or(0);
    let shared_inter = n_shared * expert_inter + qwen_shared;

    // DeepSeek: dense for the first `first_k_dense_replace` layers, then every
    // `moe_layer_freq`-th. Qwen-MoE: every `decoder_sparse_step`-th layer (1-based)
    // except `mlp_only_layers`; Llama 4 likewise with `interleave_moe_layer_step`, or
    // the layers its `moe_layers` lists. A layer is MoE when every rule present says so.
    let first_dense = raw.opt_u64("first_k_dense_replace")?.unwrap_or(0);
    let freq = raw.opt_positive("moe_layer_freq")?.unwrap_or(1);
    let step = match raw.first_present(&["decoder_sparse_step", "interleave_moe_layer_step"]) {
        Some(f) => raw.req_positive(f)?,
        None => 1,
    };
    let layer_list = |field: &str| -> Result<Option<Vec<u64>>> {
        let list = raw.opt_u64_list(field)?;
        if let Some(&bad) = list.iter().flatten().find(|&&i| i >= c.num_layers) {
            return Err(raw.error(
                field,
                format!(
                    "layer {bad} does not exist (num_hidden_layers is {})",
                    c.num_layers
                ),
            ));
        }
        Ok(list)
    };
    let mlp_only = layer_list("mlp_only_layers")?.unwrap_or_default();
    let listed = layer_list("moe_layers")?;
    let is_moe = (0..c.num_layers)
        .map(|i| {
            i >= first_dense
                && i % freq == 0
                && (i + 1) % step == 0
                && !mlp_only.contains(&i)
                && listed.as_ref().is_none_or(|l| l.contains(&i))
        })
        .collect();
    let router_bias = router_bias_quirk || raw.opt_str("topk_method")? == Some("noaux_tc");
    Ok(Some(MoePlan {
        experts,
        top_k,
        expert_inter,
        shared_inter,
        shared_gate: qwen_shared > 0,
        router_bias,
        is_moe,
    }))
}
