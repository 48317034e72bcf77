//! The MoE block of a layer group: which measured table times it (the experts' own
//! format first, then the exact profile's, then the engine's bf16 table).

use super::Ctx;
use crate::deployment::Deployment;
use crate::model::{ExpertCount, FfnSpec, LayerSpec};
use crate::perf::measured::measurements::{self, MoeFormat, MoeShape};
use crate::perf::measured::moe_law::{self, MoeLaw};
use crate::perf::measured::ops::MoeBlock;
use crate::perf::measured::table::{MonotoneTable, Table2};
use std::sync::Arc;

/// The format of `layer`'s routed experts as the measured tables know them (none: no
/// routed experts, or a format nothing was measured in).
fn experts_format(d: &Deployment, layer: &LayerSpec) -> Option<MoeFormat> {
    layer
        .ops
        .iter()
        .find(|op| matches!(op.experts, ExpertCount::Routed { .. }))
        .and_then(|op| {
            let dt = d.model.op_weight_dtype(op, d.weight_dtype);
            let block = d
                .model
                .weight_format
                .quantization
                .as_ref()
                .is_some_and(|q| q.dtype == dt && q.block_size.is_some());
            MoeFormat::of(dt, block)
        })
}

/// `layer`'s experts as the fused-MoE tables key them, split as this deployment splits
/// them (whole experts on each GPU under expert parallelism, else every expert over the
/// TP group); `None` for a dense layer.
fn expert_shape(d: &Deployment, layer: &LayerSpec) -> Option<MoeShape> {
    let FfnSpec::Moe {
        num_experts,
        experts_per_token,
        expert_intermediate_size,
        ..
    } = layer.ffn
    else {
        return None;
    };
    let (tp, ep) = if d.ep > 1 { (1, d.ep) } else { (d.tp, 1) };
    Some(MoeShape {
        hidden: d.model.hidden_size,
        inter: expert_intermediate_size,
        experts: num_experts,
        topk: experts_per_token,
        tp,
        ep,
    })
}

/// Bytes the expert-parallel dispatch of `layer` moves per byte of hidden state: where
/// the stack quantizes the hidden states before the all-gather, the experts' activation
/// format (per-tensor FP8: 1 byte per value; NVFP4: half a byte plus one 1-byte scale
/// per 16 values) over the activations' bytes; else 1 (block-scaled FP8 experts take
/// 16-bit inputs and quantize them themselves).
pub(super) fn dispatch_scale(d: &Deployment, layer: &LayerSpec) -> f64 {
    if !d.stack.moe.quantize_before_dispatch {
        return 1.0;
    }
    let bytes_per_value = match experts_format(d, layer) {
        Some(f @ (MoeFormat::Fp8 | MoeFormat::Nvfp4)) => f.bytes_per_value(),
        _ => return 1.0,
    };
    (bytes_per_value / d.act_dtype.bytes_per_element()).min(1.0)
}

/// Routing bytes each token carries beside its hidden state in the expert-parallel
/// dispatch of `layer`, as the stack's `[moe]` says: its router logits (one value per
/// routed expert, in the activation dtype) where every rank routes the gathered tokens
/// itself (vLLM), and a fixed size per selected expert where the routing decision
/// travels instead (TensorRT-LLM: int32 id and fp32 weight).
pub(super) fn dispatch_metadata_bytes(d: &Deployment, layer: &LayerSpec) -> f64 {
    let FfnSpec::Moe {
        num_experts,
        experts_per_token,
        ..
    } = layer.ffn
    else {
        return 0.0;
    };
    let m = &d.stack.moe;
    let logits = if m.dispatch_router_logits {
        num_experts as f64 * d.act_dtype.bytes_per_element()
    } else {
        0.0
    };
    logits + experts_per_token as f64 * m.dispatch_bytes_per_selected_expert
}

/// Bytes one token adds to the expert-parallel dispatch of `layer`: its hidden state in
/// the format the dispatch moves ([`dispatch_scale`]) plus its routing bytes
/// ([`dispatch_metadata_bytes`]).
pub(super) fn dispatch_bytes_per_token(d: &Deployment, layer: &LayerSpec) -> f64 {
    let hidden = d.model.hidden_size as f64 * d.act_dtype.bytes_per_element();
    hidden * dispatch_scale(d, layer) + dispatch_metadata_bytes(d, layer)
}

/// A measured MoE block: the exact profile's table (tokens × activated experts, with
/// the router) or the engine's (tokens entering the block, without the router).
pub(super) enum MeasuredMoe {
    Profile(Table2, String),
    Engine(MonotoneTable),
}

impl Ctx<'_> {
    /// The fused-MoE law of this GPU for `layer`'s experts, fitted on every expert shape
    /// its table in the experts' format holds. Only for the kernels the tables timed:
    /// vLLM's fused MoE (and SGLang's port of it), on experts in a format the GPU's
    /// tables measured natively; `None` for TensorRT-LLM's own MoE kernels, for
    /// weight-only formats (MXFP4, INT4: which dequantizing kernel runs depends on the
    /// engine and GPU, [`MoeFormat::of`]) and without a table.
    pub(super) fn moe_law(&mut self, layer: &LayerSpec) -> Option<MoeBlock> {
        let d = self.d;
        let shape = expert_shape(d, layer)?;
        let format = experts_format(d, layer)?;
        let op = layer
            .ops
            .iter()
            .find(|op| matches!(op.experts, ExpertCount::Routed { .. }))?;
        let dtype = d.model.op_weight_dtype(op, d.weight_dtype);
        if !matches!(d.stack.framework.as_str(), "vLLM" | "SGLang")
            || matches!(
                dtype,
                crate::dtype::DType::Mxfp4 | crate::dtype::DType::Int4
            )
        {
            return None;
        }
        let file = measurements::moe_path(&self.inp.paths.perf_model, &self.inp.gpu.slug, format);
        if !file.is_file() {
            return None;
        }
        // The table's rows and this layer stream the same format: one size for both.
        let weight_bytes = format.bytes_per_value();
        let samples = moe_law::samples(&file, weight_bytes).ok()?;
        let gpu = d.gpu();
        let peak = gpu.peak_flops(crate::dtype::DType::Bf16).unwrap_or(1e15) / 1e6;
        let law = MoeLaw::fit_cached(&samples, peak, gpu.memory_bandwidth_bytes_per_s() / 1e6)?;
        // Named from the perf-model folder, as the GEMM grids' notes name theirs.
        let shown = file
            .strip_prefix(&self.inp.paths.perf_model)
            .unwrap_or(&file);
        self.note("moe", law.describe(&shown.display().to_string()));
        Some(MoeBlock::Law {
            law: Arc::new(law),
            experts: shape.experts as f64,
            per_token: shape.topk as f64,
            hidden: shape.hidden as f64,
            inter: shape.inter as f64 / f64::from(shape.tp),
            weight_bytes,
        })
    }

    /// vLLM's fused-MoE block measured on this GPU for `layer`'s expert shape and this
    /// deployment's TP/EP split (`perf_model/measurements/moe`), if there is one.
    fn engine_moe(&mut self, layer: &LayerSpec, format: MoeFormat) -> Option<MonotoneTable> {
        let shape = expert_shape(self.d, layer)?;
        let (tp, ep) = (shape.tp, shape.ep);
        let table = measurements::load_moe(
            &self.inp.paths.perf_model,
            &self.inp.gpu.slug,
            format,
            &shape,
        )
        .ok()
        .flatten()?;
        self.note(
            "moe",
            format!(
                "fused MoE block measured through vLLM on {} ({} experts, TP{tp} EP{ep}, balanced routing; perf_model/measurements/moe)",
                self.inp.gpu.slug,
                format.file_tag()
            ),
        );
        Some(table)
    }

    /// The measured MoE block of `layer`: the engine's table in the experts' own
    /// weight format where it is not bf16 (it streams that many bytes and runs those
    /// kernels), else the exact profile's bf16 table, else the engine's bf16 table.
    pub(super) fn measured_moe(&mut self, layer: &LayerSpec) -> Option<MeasuredMoe> {
        let d = self.d;
        if let Some(f) = experts_format(d, layer).filter(|&f| f != MoeFormat::Bf16) {
            // Experts the tensor cores run natively in a narrower format stream fewer
            // bytes and run other kernels than any 16-bit table timed: without a table
            // of their own format, the fitted GEMM law in that format times them.
            return self.engine_moe(layer, f).map(MeasuredMoe::Engine);
        }
        if let Some((m, t)) = self.exact {
            if let Some(tab) = &t.moe {
                let label = format!("measured MoE block ({} TP{})", m.label(), t.tp);
                return Some(MeasuredMoe::Profile(tab.clone(), label));
            }
        }
        self.engine_moe(layer, MoeFormat::Bf16)
            .map(MeasuredMoe::Engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::DeploymentRequest;
    use crate::paths::DataPaths;

    fn deployment(stack: &str) -> Deployment {
        let req = DeploymentRequest {
            model: Some("Qwen/Qwen3-30B-A3B-Instruct-2507".into()),
            hardware: Some("h100".into()),
            data_parallel_size: Some(2),
            enable_expert_parallel: true,
            serving_stack: Some(stack.into()),
            ..Default::default()
        };
        Deployment::resolve(&req, &DataPaths::builtin()).unwrap()
    }

    /// vLLM gathers each token's 128 router logits in bf16 (256 bytes) with its hidden
    /// state; TensorRT-LLM the ids and weights of its 8 selected experts (64 bytes); a
    /// stack that says neither sends none; a dense layer sends none.
    #[test]
    fn the_dispatch_carries_the_stacks_routing_bytes() {
        let moe_layer = |d: &Deployment| {
            d.model
                .layers
                .iter()
                .find(|l| matches!(l.ffn, FfnSpec::Moe { .. }))
                .unwrap()
                .clone()
        };
        let v = deployment("vllm-v1");
        assert_eq!(dispatch_metadata_bytes(&v, &moe_layer(&v)), 256.0);
        let t = deployment("trtllm");
        assert_eq!(dispatch_metadata_bytes(&t, &moe_layer(&t)), 64.0);
        let s = deployment("sglang");
        assert_eq!(dispatch_metadata_bytes(&s, &moe_layer(&s)), 0.0);
        let mut dense = moe_layer(&v);
        dense.ffn = FfnSpec::Dense {
            intermediate_size: 1024,
            gated: true,
        };
        assert_eq!(dispatch_metadata_bytes(&v, &dense), 0.0);
    }

    /// An expert shape no table holds (GLM-4.7's at TP8) takes the fused-MoE law of the
    /// GPU's table in its format on vLLM; TensorRT-LLM's own kernels and weight-only
    /// MXFP4 experts keep the GEMM law.
    #[test]
    fn an_unmeasured_expert_shape_takes_the_fused_moe_law_on_vllm_only() {
        let paths = DataPaths::builtin();
        let describe = |model: &str, stack: &str| {
            let req = DeploymentRequest {
                model: Some(model.into()),
                hardware: Some("h100".into()),
                tensor_parallel_size: Some(8),
                serving_stack: Some(stack.into()),
                ..Default::default()
            };
            let d = Deployment::resolve(&req, &paths).unwrap();
            let setup = crate::setup::ReplicaSetup::new(
                d,
                &crate::engine::config::EngineOverrides::default(),
                &paths,
            )
            .unwrap();
            setup.latency.describe()
        };
        let glm = describe("zai-org/GLM-4.7-FP8", "vllm-v1");
        assert!(
            glm.contains("moe: fused-MoE law fitted on")
                && glm.contains("h100-sxm5-80gb__fp8_block.csv"),
            "{glm}"
        );
        assert!(!describe("zai-org/GLM-4.7-FP8", "trtllm").contains("fused-MoE law"));
        assert!(!describe("openai/gpt-oss-120b", "vllm-v1").contains("fused-MoE law"));
    }
}
