//! The MoE block of a layer group: which measured table times it (the experts' own
//! format first, then the exact profile's, then the engine's bf16 table).

use super::Ctx;
use crate::deployment::Deployment;
use crate::model::{ExpertCount, FfnSpec, LayerSpec};
use crate::perf::measured::measurements::{self, MoeFormat, MoeShape};
use crate::perf::measured::table::{MonotoneTable, Table2};

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
        Some(MoeFormat::Fp8) => 1.0,
        Some(MoeFormat::Nvfp4) => 0.5 + 1.0 / 16.0,
        _ => return 1.0,
    };
    (bytes_per_value / d.act_dtype.bytes_per_element()).min(1.0)
}

/// A measured MoE block: the exact profile's table (tokens × activated experts, with
/// the router) or the engine's (tokens entering the block, without the router).
pub(super) enum MeasuredMoe {
    Profile(Table2, String),
    Engine(MonotoneTable),
}

impl Ctx<'_> {
    /// vLLM's fused-MoE block measured on this GPU for `layer`'s expert shape and this
    /// deployment's TP/EP split (`perf_model/measurements/moe`), if there is one.
    fn engine_moe(&mut self, layer: &LayerSpec, format: MoeFormat) -> Option<MonotoneTable> {
        let FfnSpec::Moe {
            num_experts,
            experts_per_token,
            expert_intermediate_size,
            ..
        } = layer.ffn
        else {
            return None;
        };
        let d = self.d;
        let (tp, ep) = if d.ep > 1 { (1, d.ep) } else { (d.tp, 1) };
        let shape = MoeShape {
            hidden: d.model.hidden_size,
            inter: expert_intermediate_size,
            experts: num_experts,
            topk: experts_per_token,
            tp,
            ep,
        };
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
