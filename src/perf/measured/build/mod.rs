//! Building a [`Composition`] for a deployment: match every operator to the best
//! prediction the accelerator's data supports, and record where each came from.
//!
//! Order of preference per operator: the deployment's own profile (same layer shape
//! and TP size) → a measured table of another model with the same per-GPU shape → the
//! law fitted on all measurements of this accelerator → the roofline. Linear operators
//! (GEMMs) are chosen in [`linear`], by the serving stack's kernel generation first.

mod linear;
mod moe;

use super::attention::{AttentionLaw, AttnGeometry};
use super::attention_fit::{
    fit_engine_attention, fit_gpu_attention, fit_profile_attention, reference_attention,
};
use super::comm::Collective;
use super::gemm::{law_label, GemmModel, StreamModel};
use super::ops::{
    AttentionPart, Component, Composition, Curve, ExpertParallel, Group, Head, MoeBlock,
};
use super::profile::{GpuProfiles, MeasuredOp, ModelProfile, OpKind, ProfileShape, TpProfile};
use crate::deployment::Deployment;
use crate::memory::layer_kv_bytes_per_token_per_gpu;
use crate::model::{AttentionKind, ExpertCount, FfnSpec, LayerSpec, LinearOp};
use crate::paths::DataPaths;
use crate::perf::roofline::RooflineParams;
use moe::MeasuredMoe;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Bytes per element of the formats the profiles were measured in.
pub(crate) const MEASURED_ELEMENT_BYTES: f64 = 2.0;

/// What the builder needs besides the deployment.
pub(crate) struct Inputs<'a> {
    pub gpu: &'a GpuProfiles,
    /// The serving stack's all-reduce measured in CUDA graphs on this GPU, by GPU count.
    pub engine_all_reduce: &'a [super::profile::CollectiveTable],
    /// NCCL's or RCCL's own collective tests on this GPU (nccl-tests, rccl-tests).
    pub library: &'a super::comm::LibraryTests,
    /// Attention measured through vLLM's backend on this GPU.
    pub engine_attention: &'a [(AttnGeometry, super::profile::AttentionRow)],
    /// A GPU without profiles: its compute twin, whose fused elementwise kernels stand
    /// for this GPU's, and whose GEMM law does where [`super::Twin::times_gemms`].
    pub twin: Option<&'a super::Twin>,
    /// Dense GEMMs measured through the engine's linear layer on this GPU; present only
    /// where some of the GPU's profiles are of another kernel generation than the stack.
    pub engine_gemm: Option<&'a super::measurements::GemmGrid>,
    /// Per-tensor FP8 GEMMs measured through an engine of the stack's kernel
    /// generation on this GPU.
    pub engine_gemm_fp8: Option<&'a super::measurements::GemmGrid>,
    /// What FP8 gains over 16-bit on this GPU, measured through an engine of another
    /// generation than the stack (used where `engine_gemm_fp8` is absent).
    pub fp8_rate: Option<&'a super::fp8_rate::Fp8Rate>,
    /// Where the other accelerators' profiles are (for a transferred attention law).
    pub paths: &'a DataPaths,
    pub exclude_models: &'a [String],
    pub roofline: RooflineParams,
    /// Where `roofline` comes from, for the descriptions (a file under perf_model/).
    pub roofline_file: String,
    /// Ignore an exact profile even if one matches (shape-based prediction only).
    pub shape_based_only: bool,
}

/// The built composition and the sources of its components.
pub(crate) struct Built {
    pub composition: Composition,
    pub exact: Option<String>,
    pub sources: BTreeMap<&'static str, Vec<String>>,
}

/// The layer shape of a deployment's model, in the profiles' terms; `None` when its
/// layers differ from each other or use features no profile has (MLA, sliding
/// windows, shared experts).
fn deployment_shape(d: &Deployment) -> Option<ProfileShape> {
    let m = &d.model;
    let l0 = m.layers.first()?;
    if m.layers.iter().any(|l| l != l0) {
        return None;
    }
    let a = &l0.attention;
    if a.mla.is_some() || a.head_dim != a.v_head_dim || a.kind != AttentionKind::Full {
        return None;
    }
    let qk_norm = l0.norms.iter().any(|n| n.name == "q_norm");
    let (intermediate, gated, experts, k, e) = match l0.ffn {
        FfnSpec::Dense {
            intermediate_size,
            gated,
        } => (intermediate_size, gated, 0, 0, 0),
        FfnSpec::Moe {
            num_experts,
            experts_per_token,
            expert_intermediate_size,
            shared_intermediate_size,
        } => {
            if shared_intermediate_size > 0 {
                return None;
            }
            (
                0,
                true,
                num_experts,
                experts_per_token,
                expert_intermediate_size,
            )
        }
    };
    Some(ProfileShape {
        hidden_size: m.hidden_size,
        num_attention_heads: a.num_heads,
        num_key_value_heads: a.num_kv_heads,
        head_dim: a.head_dim,
        intermediate_size: intermediate,
        gated_mlp: gated,
        vocab_size: m.vocab_size,
        num_experts: experts,
        experts_per_token: k,
        expert_intermediate_size: e,
        qk_norm,
    })
}

fn same_layers(a: &ProfileShape, b: &ProfileShape) -> bool {
    ProfileShape {
        vocab_size: 0,
        ..a.clone()
    } == ProfileShape {
        vocab_size: 0,
        ..b.clone()
    }
}

struct Ctx<'a> {
    d: &'a Deployment,
    inp: &'a Inputs<'a>,
    exact: Option<(&'a ModelProfile, &'a TpProfile)>,
    /// The GPU's GEMM law and its description, fitted when a linear layer first needs
    /// it (most deployments with an exact profile never do).
    gemm: Option<(Arc<GemmModel>, String)>,
    /// The GEMM law fitted on the FP8 grid (fitted on first use; `None` inside when
    /// there is no grid or too few points).
    fp8_gemm: Option<Option<(Arc<GemmModel>, String)>>,
    stream: StreamModel,
    stream_label: String,
    sources: BTreeMap<&'static str, Vec<String>>,
}

impl Ctx<'_> {
    /// The GEMM law and its description (fitted on first use).
    fn gemm_law(&mut self) -> (Arc<GemmModel>, String) {
        let (d, inp) = (self.d, self.inp);
        self.gemm
            .get_or_insert_with(|| {
                let (g, label) = fit_gemm(d, inp);
                (Arc::new(g), label)
            })
            .clone()
    }

    /// The GEMM law fitted on the FP8 grid and its description, if there is a grid.
    fn fp8_gemm_law(&mut self) -> Option<(Arc<GemmModel>, String)> {
        let (d, grid) = (self.d, self.inp.engine_gemm_fp8);
        self.fp8_gemm
            .get_or_insert_with(|| {
                let grid = grid?;
                let g = GemmModel::fit_cached(
                    &grid.law_samples(),
                    d.peak_flops(crate::dtype::DType::Fp8) / 1e6,
                    d.gpu().memory_bandwidth_bytes_per_s() / 1e6,
                )?;
                let label = law_label("FP8 GEMM law", &g, &format!("points of {}", grid.source));
                Some((Arc::new(g), label))
            })
            .clone()
    }

    fn note(&mut self, component: &'static str, source: String) {
        let v = self.sources.entry(component).or_default();
        if !v.contains(&source) {
            v.push(source);
        }
    }

    fn stream(&mut self, component: &'static str, bytes_per_unit: f64) -> Curve {
        let label = self.stream_label.clone();
        self.note(component, label);
        Curve::Stream {
            law: self.stream.clone(),
            bytes_per_unit,
        }
    }

    /// Measured elementwise tables of the exact profile, if it used fused kernels of the
    /// stack's kernel generation (a V1 engine compiles residual adds into its norms and
    /// replays the small kernels in CUDA graphs; Sarathi-Serve's separately timed eager
    /// kernels of 2024 do not describe that, the fused-kernel bandwidth law does).
    fn exact_elementwise(&self) -> Option<(&ModelProfile, &TpProfile)> {
        let generation = self.d.stack.kernel_generation;
        self.exact.filter(|(m, _)| {
            m.meta.fused_elementwise && generation.is_none_or(|g| g == m.meta.kernel_generation)
        })
    }

    fn group(
        &mut self,
        layer: &LayerSpec,
        count: f64,
        laws: &[(Arc<AttentionLaw>, String)],
    ) -> Group {
        let d = self.d;
        let tp = d.tp;
        let ab = d.act_dtype.bytes_per_element();
        let has_routed = layer
            .ops
            .iter()
            .any(|op| matches!(op.experts, ExpertCount::Routed { .. }));
        let measured_moe = if has_routed {
            self.measured_moe(layer)
        } else {
            None
        };
        let profile_moe = matches!(measured_moe, Some(MeasuredMoe::Profile(..)));
        let mut linears = Vec::new();
        let mut routed: Vec<&LinearOp> = Vec::new();
        for op in &layer.ops {
            if let ExpertCount::Routed { .. } = op.experts {
                routed.push(op);
                continue;
            }
            if profile_moe && matches!(op.name, "router" | "shared_expert_gate") {
                continue;
            }
            let curve = self.linear_curve("linear", op);
            linears.push(Component {
                name: op.name.to_owned(),
                curve,
                calls: 1.0,
            });
        }
        let (experts, per_token, e_inter) = match layer.ffn {
            FfnSpec::Moe {
                num_experts,
                experts_per_token,
                expert_intermediate_size,
                ..
            } => (
                num_experts as f64,
                experts_per_token as f64,
                expert_intermediate_size as f64,
            ),
            FfnSpec::Dense { .. } => (0.0, 0.0, 0.0),
        };
        let moe = if routed.is_empty() {
            None
        } else if let Some(MeasuredMoe::Profile(table, label)) = measured_moe {
            self.note("moe", label);
            Some(MoeBlock::Table(table))
        } else if let Some(MeasuredMoe::Engine(table)) = measured_moe {
            Some(MoeBlock::Tokens(table))
        } else if let Some(block) = self.moe_law(layer) {
            Some(block)
        } else {
            let gate_up = routed
                .iter()
                .find(|o| o.name.ends_with("gate_up_proj"))
                .copied();
            let down = routed
                .iter()
                .find(|o| o.name.ends_with("down_proj"))
                .copied();
            match (gate_up, down) {
                (Some(gu), Some(dn)) => {
                    // vLLM's fused MoE kernel runs every touched expert in one launch;
                    // per-expert tables (one launch each) would charge the fixed cost
                    // per expert, so the fitted law is used, batched.
                    let gate_up = self.law_curve("moe", gu);
                    let down = self.law_curve("moe", dn);
                    let act = self.stream("moe", 3.0 * e_inter / f64::from(tp) * ab);
                    Some(MoeBlock::Experts {
                        experts,
                        per_token,
                        gate_up,
                        down,
                        act: Some(act),
                    })
                }
                _ => {
                    // Unusual expert layouts: every routed op as a dense op on k/E of the tokens.
                    for op in routed {
                        let curve = self.linear_curve("linear", op);
                        linears.push(Component {
                            name: op.name.to_owned(),
                            curve,
                            calls: 1.0,
                        });
                    }
                    None
                }
            }
        };
        // Elementwise passes.
        let mut elementwise = Vec::new();
        if let Some((m, t)) = self.exact_elementwise() {
            let label = format!("measured ({} TP{})", m.label(), t.tp);
            for o in t
                .ops
                .iter()
                .filter(|o| o.kind == OpKind::Elementwise && o.calls_per_layer > 0.0)
            {
                elementwise.push(Component {
                    name: o.name.clone(),
                    curve: Curve::Table {
                        table: o.table.clone(),
                        x_scale: 1.0,
                    },
                    calls: o.calls_per_layer,
                });
            }
            self.note("elementwise", label);
        } else {
            let a = &layer.attention;
            let t = f64::from(tp);
            let hq = (a.num_heads as f64 / t).ceil().max(1.0);
            let hk = (a.num_kv_heads as f64 / t).ceil().max(1.0);
            for n in &layer.norms {
                let elems = match n.name {
                    "q_norm" => hq * n.dim as f64,
                    "k_norm" => hk * n.dim as f64,
                    _ => n.dim as f64,
                };
                let curve = self.stream("elementwise", 2.0 * elems * ab);
                elementwise.push(Component {
                    name: n.name.to_owned(),
                    curve,
                    calls: 1.0,
                });
            }
            if a.rotary_dim > 0 {
                let curve = self.stream("elementwise", 2.0 * (hq + hk) * a.head_dim as f64 * ab);
                elementwise.push(Component {
                    name: "rotary_emb".into(),
                    curve,
                    calls: 1.0,
                });
            }
            if let FfnSpec::Dense {
                intermediate_size,
                gated,
            } = layer.ffn
            {
                let i = intermediate_size as f64 / t;
                let curve = self.stream("elementwise", if gated { 3.0 } else { 2.0 } * i * ab);
                elementwise.push(Component {
                    name: "act_fn".into(),
                    curve,
                    calls: 1.0,
                });
            }
        }
        let geometry = attention_geometry(d, layer);
        let rp = &self.inp.roofline;
        let fallback = d.attention_fallback();
        if let Some((r, why)) = &fallback {
            self.note(
                "attention",
                crate::perf::roofline::fallback_note(r, why)
                    .trim_start_matches("; ")
                    .to_owned(),
            );
        }
        let attention = AttentionPart {
            geometry,
            laws: laws.to_vec(),
            roof_flops_per_us: d.peak_flops(d.act_dtype) * rp.attention_compute_efficiency / 1e6,
            roof_bytes_per_us: d.gpu().memory_bandwidth_bytes_per_s() * rp.memory_efficiency / 1e6,
            separate_kernels: d.stack.mixed_batch_attention
                == Some(crate::stack::MixedBatchAttention::SeparateKernels),
            decode_kv_reads: fallback.map(|(r, _)| r),
        };
        if attention.separate_kernels && attention.laws.iter().any(|(l, _)| l.unified) {
            self.note(
                "attention",
                "mixed batches as the stack runs them: a prefill kernel, then a decode kernel (the law's two parts; its grids ran one kernel)".into(),
            );
        }
        Group {
            count,
            linears,
            moe,
            moe_experts: (experts, per_token),
            expert_parallel: if d.ep > 1 {
                ExpertParallel {
                    ep: f64::from(d.ep),
                    dp: f64::from(d.dp),
                    imbalance: d.expert_load_imbalance,
                    dispatch_bytes_per_token: moe::dispatch_bytes_per_token(d, layer),
                }
            } else {
                ExpertParallel::NONE
            },
            elementwise,
            attention,
            all_reduces: if tp > 1 {
                if layer.parallel_attn_mlp {
                    1.0
                } else {
                    2.0
                }
            } else {
                0.0
            },
        }
    }
}

/// The attention geometry of `layer` on one GPU of `d`.
fn attention_geometry(d: &Deployment, layer: &LayerSpec) -> AttnGeometry {
    let a = &layer.attention;
    let t = f64::from(d.tp);
    let (pair_flops, kv_heads) = match &a.mla {
        Some(_) => (2.0 * (a.head_dim + a.v_head_dim) as f64, 1.0),
        None => (
            2.0 * (a.head_dim + a.v_head_dim) as f64,
            (a.num_kv_heads as f64 / t).ceil().max(1.0),
        ),
    };
    AttnGeometry {
        q_heads: (a.num_heads as f64 / t).ceil().max(1.0),
        kv_heads,
        pair_flops,
        kv_bytes_per_token: layer_kv_bytes_per_token_per_gpu(d, layer),
        window: match a.kind {
            AttentionKind::Full => None,
            AttentionKind::Sliding { window_tokens } => Some(window_tokens as f64),
        },
    }
}

/// The GPU's GEMM law fitted on its measured linear operators, or the roofline where
/// there are too few, with its description.
fn fit_gemm(d: &Deployment, inp: &Inputs<'_>) -> (GemmModel, String) {
    let gpu = inp.gpu;
    let bw = d.gpu().memory_bandwidth_bytes_per_s();
    let rp = &inp.roofline;
    // The GPU's profiled linear operators; on a GPU without profiles, its compute
    // twin's (the law fitted there, its memory term scaled by the bandwidth ratio), else
    // its GEMM grid.
    if let Some(t) = inp.twin.filter(|t| t.times_gemms && !gpu.has_models()) {
        let (twin, ratio) = (&t.profiles, t.bandwidth_ratio);
        let twin_bw = bw / ratio;
        if let Some(mut g) = GemmModel::fit_cached(
            &GemmModel::samples(twin),
            d.peak_flops(d.act_dtype) / 1e6,
            twin_bw / 1e6,
        ) {
            g.bytes_per_us *= ratio;
            let what = format!(
                "measured points of {} (compute twin; memory term × {ratio:.3}, the bandwidth ratio)",
                twin.slug
            );
            let label = law_label("GEMM law", &g, &what);
            return (g, label);
        }
    }
    let mut samples = GemmModel::samples(gpu);
    let mut what = format!("measured points of {}", gpu.slug);
    if !gpu.has_models() {
        if let Some(grid) = inp.engine_gemm {
            samples = grid.law_samples();
            what = format!("points of {}", grid.source);
        }
    }
    match GemmModel::fit_cached(&samples, d.peak_flops(d.act_dtype) / 1e6, bw / 1e6) {
        Some(g) => {
            let label = law_label("GEMM law", &g, &what);
            (g, label)
        }
        None => (
            GemmModel {
                t0_us: 0.0,
                flops_per_us: d.peak_flops(d.act_dtype) * rp.gemm_compute_efficiency / 1e6,
                m_half: 0.0,
                bytes_per_us: bw * rp.memory_efficiency / 1e6,
                samples: 0,
                median_rel_err: 0.0,
            },
            format!("roofline (peak × efficiency from {})", inp.roofline_file),
        ),
    }
}

/// The bandwidth law of the GPU's fused elementwise kernels and what it was fitted on:
/// its own profiles' kernels, else its compute twin's, whose fixed cost per kernel is
/// this chip's and whose streaming rate is scaled by the bandwidth ratio.
fn fit_stream(gpu: &GpuProfiles, twin: Option<&super::Twin>) -> Option<(StreamModel, String)> {
    if let Some(s) = StreamModel::fit(gpu) {
        return Some((s, format!("{} fused elementwise kernels", gpu.slug)));
    }
    let (twin, ratio) = twin.map(|t| (&t.profiles, t.bandwidth_ratio))?;
    let mut s = StreamModel::fit(twin)?;
    s.bytes_per_us *= ratio;
    Some((
        s,
        format!(
            "{} fused elementwise kernels (compute twin; bandwidth × {ratio:.3}, the bandwidth ratio)",
            twin.slug
        ),
    ))
}

/// Build the composition of `d` from the accelerator's data.
pub(crate) fn build(d: &Deployment, inp: &Inputs<'_>) -> Built {
    let gpu = inp.gpu;
    let shape = deployment_shape(d);
    let exact = if inp.shape_based_only {
        None
    } else {
        shape.as_ref().and_then(|s| {
            gpu.models
                .iter()
                .filter(|m| same_layers(&m.meta.shape, s))
                .find_map(|m| m.at_tp(d.tp).map(|t| (m, t)))
        })
    };
    let bw = d.gpu().memory_bandwidth_bytes_per_s();
    let rp = &inp.roofline;
    let (stream, stream_label) = match fit_stream(gpu, inp.twin) {
        Some((s, whose)) => {
            let label = format!(
                "bandwidth law fitted on {whose} (t0 {:.1} µs, {:.0} GB/s; median error {:.1}%)",
                s.t0_us,
                s.bytes_per_us / 1e3,
                s.median_rel_err * 100.0
            );
            (s, label)
        }
        None => (
            StreamModel {
                t0_us: 0.0,
                bytes_per_us: bw * rp.memory_efficiency / 1e6,
                median_rel_err: 0.0,
            },
            "roofline bandwidth (no fused-kernel measurements on this GPU)".to_owned(),
        ),
    };
    let mut ctx = Ctx {
        d,
        inp,
        exact,
        gemm: None,
        fp8_gemm: None,
        stream,
        stream_label,
        sources: BTreeMap::new(),
    };

    // Attention laws: this model's grid, then all grids of the GPU when needed.
    let mut laws: Vec<(Arc<AttentionLaw>, String)> = Vec::new();
    if let Some((m, t)) = exact {
        if let Some(l) = fit_profile_attention(m, t) {
            let label = format!(
                "law fitted on the {} TP{} grid ({} rows, median error {:.1}%)",
                m.label(),
                t.tp,
                l.rows,
                l.median_rel_err * 100.0
            );
            laws.push((Arc::new(l), label));
        }
    }
    let own_complete = laws
        .first()
        .is_some_and(|(l, _)| l.prefill.is_some() && l.decode.is_some());
    if !own_complete {
        let geometry = d.model.layers.first().map(|l| attention_geometry(d, l));
        let peak = d.gpu().memory_bandwidth_bytes_per_s() / 1e6;
        if let Some(l) = geometry.and_then(|g| fit_engine_attention(inp.engine_attention, &g, peak))
        {
            let label = format!(
                "law fitted on attention measured through vLLM's backend on {} ({} rows, median error {:.1}%; perf_model/measurements/attention)",
                gpu.slug,
                l.rows,
                l.median_rel_err * 100.0
            );
            laws.push((Arc::new(l), label));
        }
    }
    let own_complete = laws
        .iter()
        .any(|(l, _)| l.prefill.is_some() && l.decode.is_some());
    if !own_complete {
        if let Some(l) = fit_gpu_attention(gpu) {
            let label = format!(
                "law fitted on all {} grids ({} rows, median error {:.1}%)",
                gpu.slug,
                l.rows,
                l.median_rel_err * 100.0
            );
            laws.push((Arc::new(l), label));
        }
    }
    let covers = |laws: &[(Arc<AttentionLaw>, String)]| {
        laws.iter().any(|(l, _)| l.prefill.is_some())
            && laws.iter().any(|(l, _)| l.decode.is_some())
    };
    if !covers(&laws) {
        if let Some((l, label)) = reference_attention(d, inp) {
            laws.push((Arc::new(l), label));
        }
    }
    let complete = covers(&laws);
    for (l, label) in &laws {
        let parts = match (l.prefill.is_some(), l.decode.is_some()) {
            (true, true) => "prefill+decode",
            (true, false) => "prefill",
            (false, true) => "decode",
            (false, false) => "none",
        };
        ctx.note("attention", format!("{label} [{parts}]"));
    }
    if !complete {
        ctx.note(
            "attention",
            format!(
                "roofline for what no grid covers ({} efficiencies)",
                inp.roofline_file
            ),
        );
    }

    // Layer groups.
    let mut groups: Vec<(LayerSpec, Group)> = Vec::new();
    for layer in &d.model.layers {
        if let Some((_, g)) = groups.iter_mut().find(|(l, _)| l == layer) {
            g.count += 1.0;
            continue;
        }
        let g = ctx.group(layer, 1.0, &laws);
        groups.push((layer.clone(), g));
    }

    // Head: embedding, final norm, LM head, sampler.
    let ab = d.act_dtype.bytes_per_element();
    let h = d.model.hidden_size as f64;
    let mut per_token = Vec::new();
    if let Some((_, t)) = ctx.exact_elementwise() {
        for o in t
            .ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Embedding | OpKind::Final))
        {
            per_token.push(Component {
                name: o.name.clone(),
                curve: Curve::Table {
                    table: o.table.clone(),
                    x_scale: 1.0,
                },
                calls: 1.0,
            });
        }
    }
    if per_token.is_empty() {
        for name in ["embedding", "final_layernorm"] {
            let curve = ctx.stream("elementwise", 2.0 * h * ab);
            per_token.push(Component {
                name: name.into(),
                curve,
                calls: 1.0,
            });
        }
    }
    let lm_head_op = d.model.lm_head;
    let lm_curve = ctx.linear_curve("lm_head", &lm_head_op);
    let lm_head = Component {
        name: "lm_head".into(),
        curve: lm_curve,
        calls: 1.0,
    };
    let vocab = d.model.vocab_size as f64;
    let sampler_tables: Vec<(&ModelProfile, &TpProfile, &MeasuredOp)> = gpu
        .all_ops()
        .filter(|(_, _, o)| o.kind == OpKind::Sampler)
        .collect();
    let own = |m: &ModelProfile| exact.is_some_and(|(e, _)| std::ptr::eq(e, m));
    let sampler_curve = match sampler_tables
        .iter()
        .find(|(m, t, _)| own(m) && t.tp == d.tp)
        .or(sampler_tables
            .iter()
            .find(|(_, _, o)| o.in_features == vocab))
        .or(sampler_tables.first())
    {
        Some((m, t, o)) => {
            let scale = vocab / o.in_features.max(1.0);
            let label = if scale == 1.0 {
                format!("measured ({} TP{})", m.label(), t.tp)
            } else {
                format!(
                    "measured ({} TP{}), sequences scaled by vocabulary ratio {:.2}",
                    m.label(),
                    t.tp,
                    scale
                )
            };
            ctx.note("sampler", label);
            Curve::Table {
                table: o.table.clone(),
                x_scale: scale,
            }
        }
        // fp32 logits read twice (softmax, then sampling).
        None => ctx.stream("sampler", 2.0 * 4.0 * vocab),
    };
    let sampler = Component {
        name: "sampler".into(),
        curve: sampler_curve,
        calls: 1.0,
    };

    let lib = inp.library;
    let all_reduce = Collective::all_reduce(gpu, d, inp.engine_all_reduce, &lib.all_reduce);
    let pp_send = Collective::pipeline_send(gpu, &d.cluster, d.tp, d.pp);
    let logits_gather = Collective::all_gather(gpu, &d.cluster, d.tp, &lib.all_gather);
    let expert_dispatch = Collective::all_gather(gpu, &d.cluster, d.ep, &lib.all_gather);
    let expert_combine = Collective::reduce_scatter(gpu, &d.cluster, d.ep, &lib.reduce_scatter);
    if d.ep > 1 {
        ctx.note(
            "expert_exchange",
            format!(
                "per MoE layer, every rank's hidden states all-gathered ({}) and the outputs reduce-scattered ({})",
                expert_dispatch.describe(),
                expert_combine.describe()
            ),
        );
    }
    if d.tp > 1 {
        ctx.note("all_reduce", all_reduce.describe());
        ctx.note("logits_gather", logits_gather.describe());
    }
    if d.pp > 1 {
        ctx.note("pp_send", pp_send.describe());
    }
    let exec = &d.stack.execution;
    ctx.note(
        "overhead",
        format!(
            "serving stack {}: {}, host {:.1} µs per iteration + {:.1} µs per sequence{} ({:?}; {})",
            d.stack.name,
            exec.describe_graphs(),
            exec.host.step_us,
            exec.host.per_sequence_us,
            if exec.host.per_sequence_serial_us > 0.0 {
                format!(
                    " + {:.1} µs per sequence between iterations",
                    exec.host.per_sequence_serial_us
                )
            } else {
                String::new()
            },
            exec.host.overlap,
            if exec.host.fitted_on.is_empty() {
                "not fitted".to_owned()
            } else {
                format!("fitted on {}", exec.host.fitted_on.join(", "))
            }
        ),
    );
    let composition = Composition {
        groups: groups.into_iter().map(|(_, g)| g).collect(),
        head: Head {
            per_token,
            lm_head,
            sampler,
            logits_gather,
            logits_bytes_per_sequence: vocab * ab,
        },
        all_reduce,
        pp_send,
        expert_dispatch,
        expert_combine,
        pp: d.pp,
        hidden_bytes: h * ab,
        execution: d.stack.execution.clone(),
        token_costs: Default::default(),
        sequence_costs: Default::default(),
        single_decode: Default::default(),
    };
    Built {
        composition,
        exact: exact.map(|(m, t)| format!("{} TP{}", m.label(), t.tp)),
        sources: ctx.sources,
    }
}
