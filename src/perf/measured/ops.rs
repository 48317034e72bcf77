//! Composing an iteration from per-operator predictions.
//!
//! An iteration of `T` tokens from `S` sequences costs, on the slowest GPU path
//! (pipeline stages run one after another for one batch):
//!
//! ```text
//!   Σ_layers [ Σ_linear op(T) + MoE(T) + Σ_elementwise op(T) + attention(batch)
//!              + all_reduces × all_reduce(T · hidden · bytes) ]
//! + embedding(T) + final_norm(T) + lm_head(S) + sampler(S)
//! + (pp − 1) × send(T · hidden · bytes)
//! ```
//!
//! Kernel times are summed back to back (the profiles are kernel times). The serving
//! stack's [`Execution`] then says how the iteration runs: as a CUDA graph, `T` is the
//! batch padded up to the captured size; eagerly, the CPU launches every kernel and
//! the iteration lasts at least as long as those launches; and its host work is added
//! or overlapped (see [`crate::stack`]). That excess over the kernels is the overhead
//! term.

use super::attention::{AttentionLaw, AttnGeometry};
use super::comm::Collective;
use super::gemm::{GemmModel, GemmOperand, StreamModel};
use super::table::{MonotoneTable, Table2};
use crate::perf::cost_cache::CostCache;
use crate::perf::StepShape;
use crate::stack::{ExecPlan, Execution, StepCost};
use std::sync::Arc;

/// A time as a function of one size (tokens or sequences), µs.
#[derive(Clone, Debug)]
pub(crate) enum Curve {
    /// A measured table (x scaled by `x_scale` before lookup).
    Table { table: MonotoneTable, x_scale: f64 },
    /// The fitted GEMM law for an `k × n` weight.
    Gemm {
        law: Arc<GemmModel>,
        op: GemmOperand,
    },
    /// A memory pass of `bytes_per_unit` per token (or sequence).
    Stream {
        law: StreamModel,
        bytes_per_unit: f64,
    },
}

impl Curve {
    /// Time for `x` units in one launch, µs.
    pub(crate) fn eval(&self, x: f64) -> f64 {
        self.eval_batched(x, 1.0)
    }

    /// Time for `count` instances of `x` units each (MoE experts), µs. A fitted GEMM
    /// does them in one launch (fused MoE kernels); a measured per-instance table is
    /// paid `count` times.
    pub(crate) fn eval_batched(&self, x: f64, count: f64) -> f64 {
        match self {
            Curve::Table { table, x_scale } => count * table.eval(x * x_scale),
            Curve::Gemm { law, op } => law.time_us(x, count, op),
            Curve::Stream {
                law,
                bytes_per_unit,
            } => law.time_us(x * bytes_per_unit * count),
        }
    }
}

/// One operator: `calls × curve(x)`.
#[derive(Clone, Debug)]
pub(crate) struct Component {
    /// Operator name (read by tests and in debug output).
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: String,
    pub curve: Curve,
    pub calls: f64,
}

impl Component {
    pub(crate) fn time_us(&self, x: f64) -> f64 {
        self.calls * self.curve.eval(x)
    }
}

/// How the routed experts of an MoE block are spread (1, 1, 1 without expert
/// parallelism).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExpertParallel {
    /// GPUs the experts are spread over.
    pub ep: f64,
    /// Attention data-parallel ranks whose tokens meet at the experts.
    pub dp: f64,
    /// Load of the busiest GPU over the mean (≥ 1).
    pub imbalance: f64,
    /// Bytes one token adds to the dispatch: its hidden state, in the experts'
    /// activation format where the engine quantizes before the dispatch (`[moe]
    /// quantize_before_dispatch`), plus its routing bytes (router logits or the selected
    /// experts' ids and weights).
    pub dispatch_bytes_per_token: f64,
}

impl ExpertParallel {
    pub(crate) const NONE: ExpertParallel = ExpertParallel {
        ep: 1.0,
        dp: 1.0,
        imbalance: 1.0,
        dispatch_bytes_per_token: 0.0,
    };
}

/// A mixture-of-experts block.
#[derive(Clone, Debug)]
pub(crate) enum MoeBlock {
    /// The whole block measured over tokens × activated experts.
    Table(Table2),
    /// The fused expert computation (routing, expert GEMMs, combine) measured over the
    /// tokens entering this GPU's block under balanced routing.
    Tokens(MonotoneTable),
    /// The engine's fused-MoE law of this GPU ([`super::moe_law`]) for an expert shape
    /// its tables do not hold.
    Law {
        law: Arc<super::moe_law::MoeLaw>,
        experts: f64,
        per_token: f64,
        hidden: f64,
        /// Expert width on this GPU.
        inter: f64,
        weight_bytes: f64,
    },
    /// Expert GEMMs (+ activation) over the experts the batch touches.
    Experts {
        experts: f64,
        per_token: f64,
        gate_up: Curve,
        down: Curve,
        /// Activation over the routed tokens (per routed token).
        act: Option<Curve>,
    },
}

impl MoeBlock {
    /// Expected distinct experts `E·(1 − (1 − k/E)^T)` touched by `tokens` tokens.
    fn touched(experts: f64, per_token: f64, tokens: f64) -> f64 {
        if experts <= 0.0 {
            return 0.0;
        }
        crate::model::routing::experts_touched(experts, per_token, tokens)
            .max(per_token.min(experts))
    }

    /// A table measured under balanced routing, read for `tokens` tokens that a router
    /// spreads as it does in service. The table's tokens each touched `k` experts of
    /// their own (`min(E, T·k)` in all), while real tokens' choices overlap
    /// ([`Self::touched`]), so a small batch streams fewer experts' weights than the
    /// table's row of the same size: the table is read at the balanced token count that
    /// touches as many experts, plus, past the count at which balanced routing covers
    /// every expert, its growth from there to `tokens` (more rows through the same
    /// experts). At large batches every expert is touched either way and this is the
    /// table at `tokens`.
    fn balanced_equivalent(
        table: &MonotoneTable,
        experts: f64,
        per_token: f64,
        tokens: f64,
    ) -> f64 {
        if experts <= 0.0 || per_token <= 0.0 {
            return table.eval(tokens);
        }
        let full = experts / per_token;
        let covered = (Self::touched(experts, per_token, tokens) / per_token).min(tokens);
        let mut t = table.eval(covered);
        if tokens > full {
            t += table.eval(tokens) - table.eval(full);
        }
        t
    }

    /// The local experts `arriving` tokens touch on the busiest GPU (at least one:
    /// [`crate::model::routing`]) and the token-expert pairs it computes.
    fn local_work(experts: f64, per_token: f64, arriving: f64, ep: &ExpertParallel) -> (f64, f64) {
        (
            Self::busiest_local(experts, per_token, arriving, ep),
            arriving * per_token * ep.imbalance / ep.ep,
        )
    }

    /// Experts touched on the busiest GPU (at least one): all the batch touches
    /// without expert parallelism, the largest share of one GPU with it.
    fn busiest_local(experts: f64, per_token: f64, arriving: f64, ep: &ExpertParallel) -> f64 {
        let a = if ep.ep > 1.0 {
            crate::model::routing::busiest_rank_experts_touched(experts, per_token, arriving, ep.ep)
        } else {
            Self::touched(experts, per_token, arriving)
        };
        a.max(1.0)
    }

    /// Time of the block on one GPU for `tokens` tokens of this GPU's batch, µs. With
    /// expert parallelism the GPU holds `1/ep` of the experts and computes what all
    /// `dp` ranks route to them: `dp · tokens` tokens arrive, `1/ep` of their
    /// token-expert pairs (times the busiest GPU's imbalance) land here, on the local
    /// experts they touch.
    pub(crate) fn time_us(
        &self,
        tokens: f64,
        experts_per_token: f64,
        experts: f64,
        ep: &ExpertParallel,
    ) -> f64 {
        let arriving = tokens * ep.dp;

        let share = ep.imbalance / ep.ep;
        match self {
            MoeBlock::Table(table) => {
                // The table is indexed by tokens (each with `k` pairs) and distinct
                // experts: the local pairs as whole tokens, and the local experts hit.
                let a = Self::busiest_local(experts, experts_per_token, arriving, ep);
                table.eval(arriving * share, a)
            }
            // The table gives a GPU's balanced share of the pairs; the busiest GPU
            // computes `imbalance` times that share on the same local experts, which
            // the table times as that many more tokens entering the block.
            MoeBlock::Tokens(table) => Self::balanced_equivalent(
                table,
                experts,
                experts_per_token,
                arriving * ep.imbalance,
            ),
            MoeBlock::Law {
                law,
                experts,
                per_token,
                hidden,
                inter,
                weight_bytes,
            } => {
                let (a, pairs) = Self::local_work(*experts, *per_token, arriving, ep);
                law.time_us(a, pairs, *hidden, *inter, *weight_bytes)
            }
            MoeBlock::Experts {
                experts,
                per_token,
                gate_up,
                down,
                act,
            } => {
                let (a, pairs) = Self::local_work(*experts, *per_token, arriving, ep);
                let m = pairs / a;
                gate_up.eval_batched(m, a)
                    + down.eval_batched(m, a)
                    + act.as_ref().map_or(0.0, |c| c.eval(pairs))
            }
        }
    }
}

/// How attention is predicted for one layer group.
#[derive(Clone, Debug)]
pub(crate) struct AttentionPart {
    pub geometry: AttnGeometry,
    /// Laws to try in order (this model's grid, then all grids of the GPU).
    pub laws: Vec<(Arc<AttentionLaw>, String)>,
    /// Roofline fallback: FLOP/µs and bytes/µs.
    pub roof_flops_per_us: f64,
    pub roof_bytes_per_us: f64,
    /// The stack runs a mixed batch's prompt chunks and decodes in separate kernels
    /// (see [`AttentionLaw::time_us_reading`]).
    pub separate_kernels: bool,
    /// The engine decodes with its fallback kernel, which reads a key/value head once
    /// per query head ([`crate::deployment::Deployment::attention_fallback`]).
    pub decode_kv_reads: Option<crate::stack::PerQueryHeadReads>,
}

impl AttentionPart {
    pub(crate) fn time_us(&self, shape: &StepShape) -> f64 {
        let reads = self.decode_reads(shape);
        for (law, _) in &self.laws {
            if let Some(t) =
                law.time_us_reading(&self.geometry, shape, self.separate_kernels, reads)
            {
                return t;
            }
        }
        self.roofline_us(shape, reads)
    }

    /// KV bytes the engine's decode kernel moves for `shape` over those of the
    /// measured kernel: 1, or more for a fallback kernel.
    fn decode_reads(&self, shape: &StepShape) -> f64 {
        self.decode_kv_reads.map_or(1.0, |r| {
            let g = &self.geometry;
            let kv = self.decode_context(shape) * g.kv_bytes_per_token;
            r.read_factor(g.q_heads / g.kv_heads.max(1.0), kv)
        })
    }

    /// Tokens of context the decodes of `shape` read, the window applied.
    fn decode_context(&self, shape: &StepShape) -> f64 {
        let d = f64::from(shape.num_decodes);
        match self.geometry.window {
            Some(w) => (shape.decode_context_sum as f64).min(d * w),
            None => shape.decode_context_sum as f64,
        }
    }

    /// `max(FLOPs / rate, KV bytes / bandwidth)` per layer; the decodes' KV read
    /// `decode_reads` times.
    fn roofline_us(&self, shape: &StepShape, decode_reads: f64) -> f64 {
        let g = &self.geometry;
        let cap = |x: f64| g.window.map_or(x, |w| x.min(w));
        let mut flops = 0.0;
        let mut bytes = 0.0;
        for p in &shape.prefills {
            let n = f64::from(p.tokens);
            let c = f64::from(p.context_tokens);
            flops += g.pair_flops * g.q_heads * n * cap(c + (n + 1.0) / 2.0);
            bytes += cap(c + n) * g.kv_bytes_per_token;
        }
        let sum = self.decode_context(shape);
        flops += g.pair_flops * g.q_heads * sum;
        bytes += sum * g.kv_bytes_per_token * decode_reads;
        (flops / self.roof_flops_per_us).max(bytes / self.roof_bytes_per_us)
    }
}

/// Identical decoder layers, predicted once.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub count: f64,
    pub linears: Vec<Component>,
    pub moe: Option<MoeBlock>,
    pub moe_experts: (f64, f64),
    pub expert_parallel: ExpertParallel,
    pub elementwise: Vec<Component>,
    pub attention: AttentionPart,
    pub all_reduces: f64,
}

impl Group {
    /// Kernels one layer of the group launches.
    fn kernels(&self) -> f64 {
        let calls = |c: &[Component]| c.iter().map(|x| x.calls).sum::<f64>();
        // Attention: the KV-cache write and the attention kernel; an MoE block: router,
        // top-k, gate-up, activation, down and the combine.
        calls(&self.linears)
            + calls(&self.elementwise)
            + 2.0
            + self.all_reduces
            + if self.moe.is_some() { 6.0 } else { 0.0 }
    }
}

/// The per-iteration pieces outside the decoder layers.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    /// Embedding and final norm (per token).
    pub per_token: Vec<Component>,
    pub lm_head: Component,
    pub sampler: Component,
    /// Gathering the vocabulary-parallel logits onto one GPU (TP > 1).
    pub logits_gather: Collective,
    pub logits_bytes_per_sequence: f64,
}

/// A composed iteration-time model.
#[derive(Clone, Debug)]
pub(crate) struct Composition {
    pub groups: Vec<Group>,
    pub head: Head,
    pub all_reduce: Collective,
    pub pp_send: Collective,
    /// Expert-parallel token exchange: the hidden states of every rank's tokens are
    /// gathered onto each expert GPU before the experts (an all-gather: the dispatch)
    /// and the outputs reduced back after them (a reduce-scatter: the combine).
    pub expert_dispatch: Collective,
    pub expert_combine: Collective,
    pub pp: u32,
    /// Bytes of one token's hidden state (all-reduce and send message per token).
    pub hidden_bytes: f64,
    /// How the serving stack runs an iteration.
    pub execution: Execution,
    /// The components that depend only on the padded token count, by token count.
    pub token_costs: CostCache<TokenCosts>,
    /// The components that depend only on the sequences that sample, by count.
    pub sequence_costs: CostCache<SequenceCosts>,
    /// Whole iterations of one decode and nothing else, by context (a lightly loaded
    /// replica runs mostly these, and their shape is the context alone), µs.
    pub single_decode: CostCache<f64>,
}

/// The parts of an iteration's time that depend only on its padded token count, µs
/// (each summed over the layer groups in order, exactly as the direct computation).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TokenCosts {
    linear: f64,
    moe: f64,
    expert_exchange: f64,
    elementwise: f64,
    all_reduce: f64,
    head_per_token: f64,
    pp_send: f64,
}

/// The parts of an iteration's time that depend only on the sequences that sample, µs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SequenceCosts {
    lm_head: f64,
    sampler: f64,
    logits_gather: f64,
}

/// Time by component, µs.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Breakdown {
    pub linear: f64,
    pub moe: f64,
    pub attention: f64,
    pub elementwise: f64,
    pub all_reduce: f64,
    pub expert_exchange: f64,
    pub head: f64,
    pub pp_send: f64,
    pub overhead: f64,
}

impl Breakdown {
    pub(crate) fn total(&self) -> f64 {
        self.linear
            + self.moe
            + self.attention
            + self.elementwise
            + self.all_reduce
            + self.expert_exchange
            + self.head
            + self.pp_send
            + self.overhead
    }
}

impl Composition {
    /// Kernels launched per iteration when it runs eagerly, and the decoder layers.
    fn launches(&self) -> (f64, f64) {
        let layers: f64 = self.groups.iter().map(|g| g.count).sum();
        let kernels: f64 = self.groups.iter().map(|g| g.count * g.kernels()).sum::<f64>()
            // Embedding, final norm, LM head, logits gather, sampler.
            + 5.0;
        (kernels, layers)
    }

    /// The iteration time of `shape` by component, µs.
    pub(crate) fn evaluate(&self, shape: &StepShape) -> Breakdown {
        let mut b = Breakdown::default();
        if shape.is_empty() {
            return b;
        }
        let plan: ExecPlan = self.execution.plan(shape);
        // The layers run on the batch padded to its captured size; the LM head and the
        // sampler (outside the graph) on the sequences that sample.
        let t = plan.tokens;
        let s = f64::from(shape.num_seqs());
        let tc = self.token_costs.get(t, || self.token_costs_of(t));
        let sc = self.sequence_costs.get(s, || self.sequence_costs_of(s));
        b.linear = tc.linear;
        b.moe = tc.moe;
        b.expert_exchange = tc.expert_exchange;
        b.elementwise = tc.elementwise;
        b.all_reduce = tc.all_reduce;
        for g in &self.groups {
            b.attention += g.count * g.attention.time_us(shape);
        }
        b.head = tc.head_per_token + sc.lm_head + sc.sampler + sc.logits_gather;
        b.pp_send = tc.pp_send;
        let (kernels, layers) = self.launches();
        let cost = StepCost {
            gpu_us: b.total(),
            kernels,
            layers,
        };
        b.overhead = self.execution.overhead_us(&plan, &cost, shape);
        b
    }

    /// The components that depend only on the padded token count `t`.
    fn token_costs_of(&self, t: f64) -> TokenCosts {
        let mut c = TokenCosts::default();
        let ar = self.all_reduce.time_us(t * self.hidden_bytes);
        for g in &self.groups {
            let n = g.count;
            c.linear += n * g.linears.iter().map(|c| c.time_us(t)).sum::<f64>();
            if let Some(m) = &g.moe {
                let ep = &g.expert_parallel;
                c.moe += n * m.time_us(t, g.moe_experts.1, g.moe_experts.0, ep);
                if ep.ep > 1.0 {
                    let tokens = t * ep.dp;
                    c.expert_exchange += n
                        * (self
                            .expert_dispatch
                            .time_us(tokens * ep.dispatch_bytes_per_token)
                            + self.expert_combine.time_us(tokens * self.hidden_bytes));
                }
            }
            c.elementwise += n * g.elementwise.iter().map(|c| c.time_us(t)).sum::<f64>();
            c.all_reduce += n * g.all_reduces * ar;
        }
        c.head_per_token = self
            .head
            .per_token
            .iter()
            .map(|c| c.time_us(t))
            .sum::<f64>();
        if self.pp > 1 {
            c.pp_send = f64::from(self.pp - 1) * self.pp_send.time_us(t * self.hidden_bytes);
        }
        c
    }

    /// The components that depend only on the `s` sequences that sample.
    fn sequence_costs_of(&self, s: f64) -> SequenceCosts {
        SequenceCosts {
            lm_head: self.head.lm_head.time_us(s),
            sampler: self.head.sampler.time_us(s),
            logits_gather: self
                .head
                .logits_gather
                .time_us(s * self.head.logits_bytes_per_sequence),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A balanced-routing table of a 128-expert, top-8 block: weight streaming grows with
    /// the experts touched (8 per token) to 16 tokens, then slowly with the rows.
    fn balanced_128x8() -> MonotoneTable {
        MonotoneTable::from_points([
            (1.0, 48.0),
            (2.0, 69.0),
            (4.0, 118.0),
            (8.0, 221.0),
            (16.0, 414.0),
            (64.0, 424.0),
            (1024.0, 526.0),
            (16384.0, 3016.0),
        ])
        .unwrap()
    }

    #[test]
    fn balanced_table_read_as_a_router_spreads_tokens() {
        let t = balanced_128x8();
        let at = |n: f64| MoeBlock::balanced_equivalent(&t, 128.0, 8.0, n);
        // One token touches its 8 experts either way.
        assert!((at(1.0) - 48.0).abs() < 1e-9);
        // 16 tokens touch 82 of the 128 experts, not all of them: about 10 balanced
        // tokens' worth of weights.
        let e16 = 128.0 * (1.0 - (120.0f64 / 128.0).powi(16));
        assert!((at(16.0) - t.eval(e16 / 8.0)).abs() < 1e-9);
        assert!(at(16.0) < 0.7 * t.eval(16.0));
        // Large batches touch every expert: the table as measured.
        assert!((at(16384.0) - t.eval(16384.0)).abs() < 1e-6 * t.eval(16384.0));
        // Never above the balanced table, and never decreasing with the batch.
        let mut last = 0.0;
        for n in (1..=4096).map(f64::from) {
            let v = at(n);
            assert!(v <= t.eval(n) + 1e-9, "{n}: {v} > {}", t.eval(n));
            assert!(v >= last - 1e-9, "{n}: {v} < {last}");
            last = v;
        }
        // Without routing data (no experts) the table is read as it is.
        assert_eq!(
            MoeBlock::balanced_equivalent(&t, 0.0, 8.0, 16.0),
            t.eval(16.0)
        );
    }

    #[test]
    fn touched_experts() {
        assert_eq!(MoeBlock::touched(8.0, 2.0, 1.0), 2.0);
        let a = MoeBlock::touched(128.0, 8.0, 16.0);
        assert!((a - 128.0 * (1.0 - (120.0f64 / 128.0).powi(16))).abs() < 1e-9);
        assert!((MoeBlock::touched(8.0, 2.0, 1e6) - 8.0).abs() < 1e-9);
        assert_eq!(MoeBlock::touched(0.0, 2.0, 10.0), 0.0);
    }
}
