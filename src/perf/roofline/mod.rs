//! The analytical (roofline) latency model.
//!
//! Every GEMM and attention kernel of an iteration costs a fixed kernel latency plus
//! `max(FLOPs / (peak × compute efficiency), bytes / (bandwidth × memory efficiency))`
//! on one GPU of the replica (other memory passes the latter alone); operators run
//! one after another, so the iteration takes their sum, plus tensor-parallel
//! all-reduces (the serving stack's custom all-reduce where it applies, else α-β over
//! the actual link) and pipeline activation transfers. The efficiencies of a GPU come
//! from `perf_model/kernel_efficiency/<gpu>.toml` where that exists (derived from public
//! kernel measurements of the GPU by `servesim calibrate --kernels`, never from serving
//! benchmarks), else from the generic `perf_model/roofline.toml`
//! ([`RooflineParams::load_for`]). How the iteration runs — CUDA graphs (the batch
//! padded to a captured size) or eager launches, and the host work around it — is the
//! serving stack's ([`crate::stack::Execution`]).
//!
//! * Linear operators: `2 · tokens · k · in · out / shards` FLOPs; the weight shard is
//!   read once per iteration (for routed experts, only the experts the batch touches:
//!   `E · (1 − (1 − k/E)^tokens)` in expectation).
//! * Attention: a prefill chunk of `n` tokens after `c` cached ones attends on average
//!   to `c + (n+1)/2` tokens (causal), capped by a sliding window; QKᵀ and PV cost
//!   `2·(d_qk + d_v)` FLOPs per (query, key, head). Decodes read their whole KV. MLA
//!   decodes attend in the latent space (absorbed weights) and read the latent.
//! * Norms, residual adds and activation functions are memory passes over the
//!   activations.
//!
//! Identical layers are grouped and each operator pre-digested into per-token
//! coefficients, so the per-iteration cost is a few dozen arithmetic operations.

pub use super::{Bound, OpCost};
pub use params::{ParamsSource, RooflineParams};

mod params;
use super::{LatencyModel, StepShape};
use crate::deployment::Deployment;
use crate::hardware::{AllReduceAlgorithm, LinkSpec};
use crate::memory::layer_kv_bytes_per_token_per_gpu;
use crate::model::{AttentionKind, ExpertCount, FfnSpec, LayerSpec, LinearOp, TpSplit};
use crate::stack::{CustomAllReduce, Execution, PerQueryHeadReads, StepCost};
use crate::units::SimDuration;

/// FLOPs and bytes the roofline charges one dense linear operator (one weight instance,
/// unsharded) over `tokens` tokens: `2·tokens·in·out` FLOPs; the weight read once plus
/// the activations read and written, `in·out·weight_bytes + tokens·(in + out)·act_bytes`
/// bytes (byte sizes per element). [`Roofline`] costs every linear operator this way
/// (with its shard of the weight); kernel measurements are fitted against the same
/// formula (`servesim calibrate --kernels`).
pub fn linear_work(
    tokens: f64,
    in_features: f64,
    out_features: f64,
    weight_bytes: f64,
    act_bytes: f64,
) -> (f64, f64) {
    (
        2.0 * tokens * in_features * out_features,
        in_features * out_features * weight_bytes
            + tokens * (in_features + out_features) * act_bytes,
    )
}

/// FLOPs and bytes the roofline charges one layer's attention (standard, full
/// attention; `heads` query and `kv_heads` key/value heads of `head_dim` on this GPU;
/// activation and KV bytes per element) for `shape`, as [`Roofline`] costs it.
pub fn attention_layer_work(
    heads: f64,
    kv_heads: f64,
    head_dim: f64,
    act_bytes: f64,
    kv_bytes: f64,
    shape: &StepShape,
) -> (f64, f64) {
    let per_pair = 2.0 * (head_dim + head_dim);
    let a = PreparedAttention {
        heads,
        prefill_flops_per_pair: per_pair,
        decode_flops_per_pair: per_pair,
        kv_bytes_per_token: 2.0 * kv_heads * head_dim * kv_bytes,
        group_size: (heads / kv_heads).max(1.0),
        act_bytes_per_token: heads * (head_dim + head_dim) * act_bytes,
        window: None,
    };
    attention_work(&a, shape)
}

/// One linear operator of a layer group, on one GPU.
#[derive(Clone, Debug)]
struct PreparedLinear {
    name: &'static str,
    /// FLOPs per token (including the k active experts).
    flops_per_token: f64,
    /// Bytes of one weight instance shard (one expert for routed experts).
    instance_bytes: f64,
    /// Routed experts: how many weight instances the batch can touch on this GPU.
    experts: Option<ExpertShare>,
    /// Activation bytes read and written per token.
    act_bytes_per_token: f64,
    /// Achieved FLOP/s.
    rate: f64,
}

/// The routed experts of one operator as one GPU sees them.
#[derive(Clone, Copy, Debug)]
struct ExpertShare {
    /// Experts in the layer.
    total: f64,
    /// Experts each token uses.
    per_token: f64,
    /// Experts held by this GPU (all of them, TP-split, without expert parallelism).
    local: f64,
    /// Tokens routed from all data-parallel ranks per token of this replica.
    token_scale: f64,
    /// GPUs the experts are spread over whole (1 without expert parallelism): the
    /// layer waits for the one whose local experts the batch touches most.
    ranks: f64,
}

/// Attention of a layer group on one GPU.
#[derive(Clone, Debug)]
struct PreparedAttention {
    heads: f64,
    /// Per (query, key) pair per head: 2·(d_qk + d_v) FLOPs, for prefill and decode.
    prefill_flops_per_pair: f64,
    decode_flops_per_pair: f64,
    kv_bytes_per_token: f64,
    /// Query heads per key/value head (grouped-query attention; 1 with MLA).
    group_size: f64,
    /// Query/output activation bytes per token.
    act_bytes_per_token: f64,
    window: Option<f64>,
}

#[derive(Clone, Debug)]
struct LayerGroup {
    count: u64,
    linears: Vec<PreparedLinear>,
    attention: PreparedAttention,
    /// Bytes of elementwise passes per token (norms, residuals, activation function).
    elementwise_bytes_per_token: f64,
    all_reduces: u32,
    /// Bytes one GPU sends per token of the batch in each expert-parallel all-to-all
    /// (dispatch, and again for combine); 0 without expert parallelism.
    all_to_all_bytes_per_token: f64,
}

/// The roofline latency model of one replica.
#[derive(Clone, Debug)]
pub struct Roofline {
    groups: Vec<LayerGroup>,
    lm_head: PreparedLinear,
    hidden_act_bytes: f64,
    bandwidth: f64,
    /// Bandwidth the GEMMs stream weights at, B/s: the GPU's `bandwidth`, or the
    /// serving stack's own GEMM library's.
    gemm_bandwidth: f64,
    /// Bandwidth of the serving stack's own decode attention kernel, B/s (none: the
    /// GPU's `bandwidth`).
    decode_attention_bandwidth: Option<f64>,
    /// The decode kernel reads a key/value head once per query head: the stack's own
    /// (`[paged_attention] reads_kv_per_query_head`) or the engine's fallback
    /// ([`Deployment::attention_fallback`]).
    decode_kv_reads: Option<PerQueryHeadReads>,
    attn_rate: f64,
    /// Fixed GPU time of each GEMM and attention kernel, s ([`RooflineParams`]).
    kernel_latency_s: f64,
    tp: u32,
    tp_link: LinkSpec,
    /// The stack's custom all-reduce, where it serves this TP group.
    custom_all_reduce: Option<CustomAllReduce>,
    ep: u32,
    ep_link: LinkSpec,
    pp: u32,
    pp_link: LinkSpec,
    num_layers: u64,
    /// How the serving stack runs an iteration.
    execution: Execution,
    /// Kernels launched per iteration when it runs eagerly.
    kernels: f64,
    description: String,
}

fn shards(op: &LinearOp, tp: u32) -> f64 {
    match op.tp_split {
        TpSplit::Column | TpSplit::Row => f64::from(tp),
        TpSplit::Replicated => 1.0,
    }
}

impl Roofline {
    /// The roofline model of deployment `d`.
    pub fn new(d: &Deployment, params: RooflineParams) -> Self {
        let m = &d.model;
        let ab = d.act_dtype.bytes_per_element();
        let tp = d.tp;
        let fallback = d.attention_fallback();
        // With expert parallelism, a GPU holds `total / ep` whole experts and computes
        // the tokens all `dp` ranks route to them: `dp / ep` of the expert-token pairs,
        // times the imbalance of the busiest GPU.
        let ep = f64::from(d.ep);
        let ep_load = f64::from(d.dp) * d.expert_load_imbalance / ep;
        let prepare = |op: &LinearOp| -> PreparedLinear {
            let routed_ep = d.ep > 1 && matches!(op.experts, ExpertCount::Routed { .. });
            let s = if routed_ep { 1.0 } else { shards(op, tp) };
            let load = if routed_ep { ep_load } else { 1.0 };
            let k = op.experts.active_per_token() as f64 * load;
            let wdt = m.op_weight_dtype(op, d.weight_dtype);
            // Column-split: full input, 1/tp of the output; row-split: the reverse.
            let (i, o) = (op.in_features as f64, op.out_features as f64);
            let io = match op.tp_split {
                TpSplit::Column => i + o / s,
                TpSplit::Row => i / s + o,
                TpSplit::Replicated => i + o,
            };
            PreparedLinear {
                name: op.name,
                flops_per_token: 2.0 * k * (op.in_features * op.out_features) as f64 / s,
                instance_bytes: (op.in_features * op.out_features) as f64 * wdt.bytes_per_element()
                    / s,
                experts: match op.experts {
                    ExpertCount::Dense => None,
                    ExpertCount::Routed {
                        total,
                        active_per_token,
                    } => Some(ExpertShare {
                        total: total as f64,
                        per_token: active_per_token as f64,
                        local: d.experts_per_gpu(total) as f64,
                        token_scale: if routed_ep { f64::from(d.dp) } else { 1.0 },
                        ranks: if routed_ep { ep } else { 1.0 },
                    }),
                },
                act_bytes_per_token: k * io * ab,
                rate: d.peak_flops(wdt) * params.gemm_compute_efficiency,
            }
        };
        let mut groups: Vec<(LayerSpec, LayerGroup)> = Vec::new();
        for layer in &m.layers {
            if let Some((_, g)) = groups.iter_mut().find(|(l, _)| l == layer) {
                g.count += 1;
                continue;
            }
            let a = &layer.attention;
            let heads = (a.num_heads as f64 / f64::from(tp)).max(1.0);
            let (prefill_pair, decode_pair) = match &a.mla {
                Some(x) => (
                    2.0 * (a.head_dim + a.v_head_dim) as f64,
                    2.0 * (2 * x.kv_lora_rank + x.qk_rope_head_dim) as f64,
                ),
                None => {
                    let f = 2.0 * (a.head_dim + a.v_head_dim) as f64;
                    (f, f)
                }
            };
            let ffn_width = match layer.ffn {
                FfnSpec::Dense {
                    intermediate_size, ..
                } => intermediate_size as f64,
                FfnSpec::Moe {
                    experts_per_token,
                    expert_intermediate_size,
                    shared_intermediate_size,
                    ..
                } => {
                    (experts_per_token * expert_intermediate_size + shared_intermediate_size) as f64
                }
            } / f64::from(tp);
            let hidden = m.hidden_size as f64;
            let group = LayerGroup {
                count: 1,
                linears: layer.ops.iter().map(prepare).collect(),
                attention: PreparedAttention {
                    heads,
                    prefill_flops_per_pair: prefill_pair,
                    decode_flops_per_pair: decode_pair,
                    kv_bytes_per_token: layer_kv_bytes_per_token_per_gpu(d, layer),
                    group_size: match &a.mla {
                        Some(_) => 1.0,
                        None => (a.num_heads as f64 / a.num_kv_heads.max(1) as f64).max(1.0),
                    },
                    act_bytes_per_token: heads * (a.head_dim + a.v_head_dim) as f64 * ab,
                    window: match a.kind {
                        AttentionKind::Full => None,
                        AttentionKind::Sliding { window_tokens } => Some(window_tokens as f64),
                    },
                },
                // Each norm reads and writes the hidden state; two residual adds read two
                // and write one; the activation function reads 2 and writes 1 FFN width.
                elementwise_bytes_per_token: ab
                    * (2.0 * hidden * layer.norms.len() as f64 + 6.0 * hidden + 3.0 * ffn_width),
                // Each TP rank dispatches its share of the batch's tokens, `k` copies of
                // the hidden state each, and gets the expert outputs back (combine).
                all_to_all_bytes_per_token: match layer.ffn {
                    FfnSpec::Moe {
                        experts_per_token, ..
                    } if d.ep > 1 => experts_per_token as f64 * hidden * ab / f64::from(tp),
                    _ => 0.0,
                },
                all_reduces: if tp > 1 {
                    if layer.parallel_attn_mlp {
                        1
                    } else {
                        2
                    }
                } else {
                    0
                },
            };
            groups.push((layer.clone(), group));
        }
        let span_nodes = d.tp * d.pp > d.cluster.gpus_per_node;
        let tp_link = d.cluster.link_for_group(d.tp).clone();
        let custom_all_reduce = d
            .stack
            .custom_all_reduce
            .clone()
            .filter(|c| c.applies(&tp_link, d.tp, d.cluster.group_spans_nodes(d.tp)));
        let host = &d.stack.execution.host;
        // Per layer: the linear operators, norms, activation, rotary, the KV write and
        // attention, the all-reduces; plus embedding, final norm, LM head and sampler.
        let kernels: f64 = groups
            .iter()
            .map(|(l, g)| {
                g.count as f64
                    * (g.linears.len() as f64
                        + l.norms.len() as f64
                        + 4.0
                        + f64::from(g.all_reduces))
            })
            .sum::<f64>()
            + 4.0;
        let description = format!(
            "roofline ({} on {} × TP{} PP{}; GEMM {:.0}% of peak, attention {:.0}%, memory {:.0}% of {:.0} GB/s{}; serving stack {}: {}, host {:.0} µs per iteration{}{}{}{}{})",
            m.name,
            d.gpu().name,
            d.tp,
            d.pp,
            params.gemm_compute_efficiency * 100.0,
            params.attention_compute_efficiency * 100.0,
            params.memory_efficiency * 100.0,
            d.gpu().memory_bandwidth_bytes_per_s() / 1e9,
            if params.kernel_latency_s > 0.0 {
                format!(", {:.2} µs per kernel", params.kernel_latency_s * 1e6)
            } else {
                String::new()
            },
            d.stack.name,
            d.stack.execution.describe_graphs(),
            host.step_us,
            if host.per_kernel_us > 0.0 {
                format!(" + {:.1} µs per kernel", host.per_kernel_us)
            } else {
                String::new()
            },
            match &custom_all_reduce {
                Some(c) => format!("; {}", c.describe()),
                None => String::new(),
            },
            match d.stack.gemm.as_ref().and_then(|g| g.bandwidth_efficiency) {
                Some(e) => format!(
                    "; its GEMMs at {:.0}% of memory bandwidth",
                    e * 100.0
                ),
                None => String::new(),
            },
            match &d.stack.paged_attention {
                Some(p) => format!(
                    "; its decode attention kernel at {:.0}% of memory bandwidth{}",
                    p.decode_bandwidth_efficiency
                        .unwrap_or(params.memory_efficiency)
                        * 100.0,
                    if p.reads_kv_per_query_head {
                        ", reading KV once per query head"
                    } else {
                        ""
                    }
                ),
                None => fallback
                    .as_ref()
                    .map_or_else(String::new, |(r, why)| fallback_note(r, why)),
            },
            match d.stack.platform_note(&d.gpu().vendor) {
                Some(n) => format!("; {n}"),
                None => String::new(),
            },
        );
        // Bandwidth at the stack's own kernels' efficiency where it gives one, else the
        // GPU's.
        let own_bandwidth = |own: Option<f64>| {
            d.gpu().memory_bandwidth_bytes_per_s() * own.unwrap_or(params.memory_efficiency)
        };
        Roofline {
            groups: groups.into_iter().map(|(_, g)| g).collect(),
            lm_head: prepare(&m.lm_head),
            hidden_act_bytes: m.hidden_size as f64 * ab,
            bandwidth: own_bandwidth(None),
            gemm_bandwidth: own_bandwidth(
                d.stack.gemm.as_ref().and_then(|g| g.bandwidth_efficiency),
            ),
            decode_attention_bandwidth: d
                .stack
                .paged_attention
                .as_ref()
                .map(|p| own_bandwidth(p.decode_bandwidth_efficiency)),
            decode_kv_reads: if d
                .stack
                .paged_attention
                .as_ref()
                .is_some_and(|p| p.reads_kv_per_query_head)
            {
                Some(PerQueryHeadReads::FROM_MEMORY)
            } else {
                fallback.map(|(r, _)| r)
            },
            attn_rate: d.peak_flops(d.act_dtype) * params.attention_compute_efficiency,
            kernel_latency_s: params.kernel_latency_s,
            tp: d.tp,
            tp_link,
            custom_all_reduce,
            ep: d.ep,
            ep_link: d.cluster.link_for_group(d.ep).clone(),
            pp: d.pp,
            pp_link: d.cluster.link_between(span_nodes).clone(),
            num_layers: m.num_layers,
            execution: d.stack.execution.clone(),
            kernels,
            description,
        }
    }

    /// The iteration time of `shape`, s, with the cost of every operator appended to
    /// `ops` when given.
    pub fn evaluate(&self, shape: &StepShape, ops: Option<&mut Vec<OpCost>>) -> f64 {
        if shape.is_empty() {
            return 0.0;
        }
        // The layers run on the batch padded to its captured size.
        let plan = self.execution.plan(shape);
        let tokens = plan.tokens;
        let seqs = f64::from(shape.num_seqs());
        let mut acc = Accumulator { total_s: 0.0, ops };
        let mut add = |name: &str, count: u64, flops: f64, bytes: f64, time: f64, bound: Bound| {
            acc.add(name, count, flops, bytes, time, bound)
        };
        // One kernel: its fixed latency plus the larger of its compute and memory
        // times (no kernel runs for no work).
        let latency = self.kernel_latency_s;
        let roof = |flops: f64, rate: f64, bytes: f64, bw: f64| {
            if flops <= 0.0 && bytes <= 0.0 {
                return (0.0, Bound::Memory);
            }
            let c = if rate > 0.0 { flops / rate } else { 0.0 };
            let m = bytes / bw;
            if c >= m {
                (latency + c, Bound::Compute)
            } else {
                (latency + m, Bound::Memory)
            }
        };
        for g in &self.groups {
            let n = g.count as f64;
            for op in &g.linears {
                let weights = match op.experts {
                    None => op.instance_bytes,
                    // Each of the routed tokens picks `per_token` of `total` experts:
                    // the experts touched on one GPU without expert parallelism, on the
                    // busiest GPU with it.
                    Some(x) if x.ranks > 1.0 => {
                        crate::model::routing::busiest_rank_experts_touched(
                            x.total,
                            x.per_token,
                            tokens * x.token_scale,
                            x.ranks,
                        ) * op.instance_bytes
                    }
                    Some(x) => {
                        x.local
                            * crate::model::routing::touch_probability(
                                x.total,
                                x.per_token,
                                tokens * x.token_scale,
                            )
                            * op.instance_bytes
                    }
                };
                let flops = op.flops_per_token * tokens;
                let bytes = weights + op.act_bytes_per_token * tokens;
                let (t, b) = roof(flops, op.rate, bytes, self.gemm_bandwidth);
                add(op.name, g.count, flops * n, bytes * n, t * n, b);
            }
            let (pf, pb) = prefill_attention_work(&g.attention, shape);
            let (df, mut db) = decode_attention_work(&g.attention, shape);
            if let Some(r) = &self.decode_kv_reads {
                db *= r.read_factor(g.attention.group_size, db);
            }
            let (flops, bytes) = (pf + df, pb + db);
            let (t, b) = match self.decode_attention_bandwidth {
                // The stack's own decode kernel: prefill and decode attention are
                // separate kernels, each at its own roof.
                Some(bw) => {
                    let (tp, bp) = roof(pf, self.attn_rate, pb, self.bandwidth);
                    let (td, bd) = roof(df, self.attn_rate, db, bw);
                    (tp + td, if td >= tp { bd } else { bp })
                }
                None => roof(flops, self.attn_rate, bytes, self.bandwidth),
            };
            add("attention", g.count, flops * n, bytes * n, t * n, b);
            let eb = g.elementwise_bytes_per_token * tokens;
            add(
                "elementwise",
                g.count,
                0.0,
                eb * n,
                eb / self.bandwidth * n,
                Bound::Memory,
            );
            if g.all_to_all_bytes_per_token > 0.0 {
                let msg = tokens * g.all_to_all_bytes_per_token;
                let t = 2.0 * self.ep_link.all_to_all_s(msg, self.ep);
                add(
                    "all_to_all",
                    2 * g.count,
                    0.0,
                    2.0 * msg * n,
                    t * n,
                    Bound::Communication,
                );
            }
            if g.all_reduces > 0 {
                let msg = tokens * self.hidden_act_bytes;
                let nccl = || {
                    self.tp_link
                        .all_reduce_s(msg, self.tp, AllReduceAlgorithm::Fastest)
                };
                let t = match &self.custom_all_reduce {
                    Some(c) => c
                        .time_us(&self.tp_link, self.tp, msg)
                        .map_or_else(nccl, |us| us * 1e-6),
                    None => nccl(),
                };
                let k = f64::from(g.all_reduces) * n;
                add(
                    "all_reduce",
                    g.count * u64::from(g.all_reduces),
                    0.0,
                    msg * k,
                    t * k,
                    Bound::Communication,
                );
            }
        }
        // Embedding gather, LM head over one token per sequence, and sampling.
        let eb = tokens * self.hidden_act_bytes;
        add("embedding", 1, 0.0, eb, eb / self.bandwidth, Bound::Memory);
        let h = &self.lm_head;
        let flops = h.flops_per_token * seqs;
        let bytes = h.instance_bytes + h.act_bytes_per_token * seqs;
        let (t, b) = roof(flops, h.rate, bytes, self.gemm_bandwidth);
        add("lm_head", 1, flops, bytes, t, b);
        if self.pp > 1 {
            let msg = tokens * self.hidden_act_bytes;
            let t = self.pp_link.send_s(msg) * f64::from(self.pp - 1);
            add(
                "pp_send",
                u64::from(self.pp - 1),
                0.0,
                msg * f64::from(self.pp - 1),
                t,
                Bound::Communication,
            );
        }
        let cost = StepCost {
            gpu_us: acc.total_s * 1e6,
            kernels: self.kernels,
            layers: self.num_layers as f64 / f64::from(self.pp),
        };
        let overhead = self.execution.overhead_us(&plan, &cost, shape) * 1e-6;
        acc.add("overhead", 1, 0.0, 0.0, overhead, Bound::Overhead);
        acc.total_s
    }
}

/// Sums operator times and, when asked, keeps each operator's cost.
struct Accumulator<'a> {
    total_s: f64,
    ops: Option<&'a mut Vec<OpCost>>,
}

impl Accumulator<'_> {
    fn add(&mut self, name: &str, count: u64, flops: f64, bytes: f64, time: f64, bound: Bound) {
        self.total_s += time;
        let Some(v) = self.ops.as_deref_mut() else {
            return;
        };
        match v.iter_mut().find(|o| o.name == name) {
            Some(o) => {
                o.count = Some(o.count.unwrap_or(0) + count);
                o.flops = Some(o.flops.unwrap_or(0.0) + flops);
                o.bytes = Some(o.bytes.unwrap_or(0.0) + bytes);
                o.time_s += time;
            }
            None => v.push(OpCost {
                name: name.to_owned(),
                count: Some(count),
                flops: Some(flops),
                bytes: Some(bytes),
                time_s: time,
                bound: Some(bound),
            }),
        }
    }
}

/// FLOPs and bytes of one layer's attention for `shape`.
fn attention_work(a: &PreparedAttention, shape: &StepShape) -> (f64, f64) {
    let (pf, pb) = prefill_attention_work(a, shape);
    let (df, db) = decode_attention_work(a, shape);
    (pf + df, pb + db)
}

/// FLOPs and bytes of one layer's attention for the prefill chunks of `shape`.
fn prefill_attention_work(a: &PreparedAttention, shape: &StepShape) -> (f64, f64) {
    let cap = |x: f64| a.window.map_or(x, |w| x.min(w));
    let mut flops = 0.0;
    let mut bytes = 0.0;
    for p in &shape.prefills {
        let n = f64::from(p.tokens);
        let c = f64::from(p.context_tokens);
        let attended = cap(c + (n + 1.0) / 2.0);
        flops += a.prefill_flops_per_pair * a.heads * n * attended;
        // Read the cached KV once, write the chunk's KV, read Q and write O.
        bytes +=
            cap(c + n) * a.kv_bytes_per_token + n * (a.kv_bytes_per_token + a.act_bytes_per_token);
    }
    (flops, bytes)
}

/// How a report says that the engine decodes with its fallback kernel.
pub(crate) fn fallback_note(r: &PerQueryHeadReads, why: &str) -> String {
    format!(
        "; decode attention in the engine's own paged-attention kernel ({why}), reading each KV head once per query head, every read after the first at {:.0}% of its cost",
        r.repeat_read_fraction * 100.0
    )
}

/// FLOPs and bytes of one layer's attention for the decodes of `shape`.
fn decode_attention_work(a: &PreparedAttention, shape: &StepShape) -> (f64, f64) {
    if shape.num_decodes == 0 {
        return (0.0, 0.0);
    }
    let d = f64::from(shape.num_decodes);
    let ctx = match a.window {
        Some(w) if f64::from(shape.decode_context_max) > w => {
            (shape.decode_context_sum as f64).min(d * w)
        }
        _ => shape.decode_context_sum as f64,
    };
    (
        a.decode_flops_per_pair * a.heads * ctx,
        ctx * a.kv_bytes_per_token + d * (a.kv_bytes_per_token + a.act_bytes_per_token),
    )
}

impl LatencyModel for Roofline {
    fn step_time(&self, shape: &StepShape) -> SimDuration {
        if shape.is_empty() {
            return SimDuration::ZERO;
        }
        super::step_duration(self.evaluate(shape, None))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    /// Every operator with its FLOPs, bytes and bound (see [`Roofline::evaluate`]).
    fn op_breakdown(&self, shape: &StepShape) -> Vec<OpCost> {
        let mut ops = Vec::new();
        self.evaluate(shape, Some(&mut ops));
        ops
    }
}
