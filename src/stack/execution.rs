//! How a stack executes one iteration: CUDA graphs or eager kernel launches, and the
//! host work around it.
//!
//! A latency model computes the GPU time of an iteration with its kernels back to back
//! (the measured operator profiles are kernel times) at the token count [`Execution::plan`]
//! gives, then [`Execution::step_us`] turns it into wall time:
//!
//! ```text
//! device = max(gpu, cpu launch time)
//!   cpu launch time = graph_launch                          (a full CUDA graph)
//!                   = layers × (graph_launch + kernel_launch) (piecewise: attention eager between pieces)
//!                   = kernels × kernel_launch                 (eager)
//! cpu    = per_sequence × sequences + per_prefill × prefill chunks
//! step   = device + cpu + exposed          (serial host loop)
//!        = max(device, cpu) + exposed      (host work overlapped with the GPU: asynchronous scheduling)
//! ```
//!
//! `exposed` (`host.step_us + host.per_kernel_us × kernels + host.per_sequence_serial_us
//! × sequences`) is the time per iteration the GPU waits whatever the overlap: the
//! hand-off of sampled tokens and the launch of the next iteration; where a platform's
//! dispatch leaves the GPU idle between consecutive kernels even inside a replayed
//! graph, that gap for every kernel; and the per-sequence work an engine's overlap does
//! not reach (vLLM 0.6's asynchronous output processing hides the output work, while
//! scheduling and building each sequence's inputs stay between iterations). The
//! follow-on iterations of a multi-step group, scheduled with the group's first and
//! their inputs advanced on the GPU, expose only the kernel gaps.
//!
//! A batch runs as a CUDA graph when the stack captures one of its size: it is then padded
//! up to the next captured size, and the CPU does not launch its kernels one by one. The
//! CPU may run ahead of the GPU, so launches cost time only when they are slower than
//! the kernels they launch (small batches, many short kernels).

use crate::perf::cost_cache::CostCache;
use crate::perf::StepShape;
use serde::Serialize;

/// Which batches a stack runs as CUDA graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GraphMode {
    /// Every batch eager (`--enforce-eager`, engines without graphs).
    None,
    /// Decode-only batches up to the largest captured size (vLLM V0).
    DecodeOnly,
    /// Every batch up to the largest captured token count, as graphs broken around
    /// attention, which is launched eagerly between the pieces (vLLM V1 ≤ 0.10).
    Piecewise,
    /// Decode-only batches as one full graph, other batches piecewise (vLLM ≥ 0.11).
    FullAndPiecewise,
}

/// Whether the host work of an iteration overlaps the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostOverlap {
    /// Scheduling, input preparation and output processing run between iterations.
    Serial,
    /// They run while the GPU computes (asynchronous scheduling); only host work longer
    /// than the GPU's shows.
    Async,
}

/// Host (CPU) work per iteration, outside the kernels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostCost {
    /// Time per iteration the GPU waits for the host whatever the overlap, µs.
    pub step_us: f64,
    /// CPU work per scheduled sequence that the host's overlap reaches (all of it,
    /// scheduling, input preparation and output processing, on a serial loop; the
    /// output work under vLLM 0.6's asynchronous output processing), µs; hidden behind
    /// the GPU when the host overlaps it.
    pub per_sequence_us: f64,
    /// CPU work per scheduled sequence that stays between iterations whatever the
    /// overlap (scheduling and input preparation where only the output work is
    /// overlapped), µs; 0 where `per_sequence_us` holds all of it.
    pub per_sequence_serial_us: f64,
    /// `per_sequence_serial_us` without any validation set; `Some` marks it as fitted by
    /// `fit-stack` (with `step_us`), `None` as a fixed figure.
    pub prior_per_sequence_serial_us: Option<f64>,
    /// CPU work per prefill chunk, µs; hidden likewise.
    pub per_prefill_us: f64,
    /// Whether it overlaps the GPU.
    pub overlap: HostOverlap,
    /// Where the figures come from.
    pub source: String,
    /// Validation sets the figures were fitted on (empty when not fitted).
    pub fitted_on: Vec<String>,
    /// Validation sets a figure was chosen by reading (not fitted by `fit-stack`, so
    /// cross-validation cannot refit it without them): scores on them are in-sample
    /// all the same.
    pub chosen_on: Vec<String>,
    /// `step_us` without any validation set: what public measurements say (used when a
    /// fit has no data, as when cross-validation leaves its sets out).
    pub prior_step_us: f64,
    /// Where the prior comes from.
    pub prior_source: String,
    /// GPU idle time per kernel of the iteration waiting for its dispatch, whatever the
    /// graph mode, µs (0 where the kernels follow each other back to back).
    pub per_kernel_us: f64,
    /// `per_kernel_us` without any validation set; `Some` marks it as fitted by
    /// `fit-stack` (with `step_us`), `None` as a fixed figure.
    pub prior_per_kernel_us: Option<f64>,
}

impl HostCost {
    /// CPU work that may overlap the GPU for an iteration with `sequences` sequences and
    /// `prefills` prefill chunks, µs.
    pub fn cpu_us(&self, sequences: f64, prefills: f64) -> f64 {
        self.per_sequence_us * sequences + self.per_prefill_us * prefills
    }
}

/// How a stack executes iterations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Execution {
    /// Which batches run as CUDA graphs.
    pub graph_mode: GraphMode,
    /// Captured batch sizes in tokens, ascending (empty with [`GraphMode::None`]).
    /// Fixed once the first iteration is planned (the padding is cached); build a new
    /// `Execution` (or clone one, which empties the cache) to change it.
    pub capture_sizes: Vec<u32>,
    /// Decode-only graphs: the longest context they were captured for (vLLM V0's
    /// `max_seq_len_to_capture`); longer decodes run eagerly.
    pub max_capture_context: Option<u32>,
    /// CPU time to launch one kernel eagerly, µs.
    pub kernel_launch_us: f64,
    /// CPU time to launch one CUDA graph (or one piece of a piecewise graph), µs.
    pub graph_launch_us: f64,
    /// Host work per iteration.
    pub host: HostCost,
    /// Where the launch figures come from.
    pub source: String,
    /// The largest size the engine captures on a given device, where it picks one
    /// (SGLang's `cuda_graph_max_bs`): [`Execution::on_device`] cuts `capture_sizes`.
    #[serde(skip_serializing_if = "CaptureLimits::is_none")]
    pub capture_limits: CaptureLimits,
    /// [`Execution::captured`] by token count (a binary search per iteration otherwise).
    #[serde(skip)]
    pub(crate) captured_cache: CostCache<Option<u32>>,
}

/// The largest captured size by device memory and tensor parallelism.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaptureLimits {
    /// Where no device rule applies (or the engine version predates them), sizes.
    pub default_max: Option<u32>,
    /// Per-device rules.
    pub by_device: Vec<CaptureLimit>,
    /// The first engine version with the per-device rules (none: every version).
    pub since_version: Option<String>,
}

/// One rule of [`CaptureLimits`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaptureLimit {
    /// Applies to devices with less total memory than this, GiB (none: any).
    pub below_memory_gib: Option<f64>,
    /// Applies from this tensor-parallel size on.
    pub min_tp: u32,
    /// The largest captured size.
    pub max_size: u32,
}

impl GraphMode {
    /// How iterations run, for reports: `eager (no CUDA graphs)`, `decode-only CUDA
    /// graphs`, ...
    pub fn describe(self) -> &'static str {
        match self {
            GraphMode::None => "eager (no CUDA graphs)",
            GraphMode::DecodeOnly => "decode-only CUDA graphs",
            GraphMode::Piecewise => "piecewise CUDA graphs",
            GraphMode::FullAndPiecewise => "full and piecewise CUDA graphs",
        }
    }
}

impl CaptureLimits {
    fn is_none(&self) -> bool {
        self.default_max.is_none() && self.by_device.is_empty()
    }

    /// The largest captured size on a device of `memory_gib` at tensor parallelism `tp`
    /// for engine version `version`: among the rules of the smallest memory bound that
    /// the device is under, the one with the largest `min_tp` not above `tp`.
    pub fn max_size(&self, memory_gib: f64, tp: u32, version: Option<&str>) -> Option<u32> {
        let rules = super::version::at_least(version, self.since_version.as_deref());
        let tier = |l: &CaptureLimit| l.below_memory_gib.unwrap_or(f64::INFINITY);
        let bound = self
            .by_device
            .iter()
            .filter(|l| rules && memory_gib < tier(l))
            .map(tier)
            .fold(f64::INFINITY, f64::min);
        self.by_device
            .iter()
            .filter(|l| rules && memory_gib < tier(l) && tier(l) == bound && l.min_tp <= tp)
            .max_by_key(|l| l.min_tp)
            .map(|l| l.max_size)
            .or(self.default_max)
    }
}

/// How one iteration runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GraphKind {
    /// One CUDA graph.
    Full,
    /// CUDA-graph pieces with attention launched eagerly between them.
    Piecewise,
    /// Every kernel launched by the CPU.
    Eager,
}

/// The plan of one iteration: how it runs and how many tokens its token-parallel
/// kernels process (the batch padded up to the captured size).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ExecPlan {
    /// How the iteration runs.
    pub kind: GraphKind,
    /// Tokens the linear and elementwise kernels process, padding included.
    pub tokens: f64,
}

/// What a latency model knows of an iteration's kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StepCost {
    /// GPU time with kernels back to back (communication included), µs.
    pub gpu_us: f64,
    /// Kernels launched per iteration when it runs eagerly.
    pub kernels: f64,
    /// Decoder layers on the GPU (pieces of a piecewise graph).
    pub layers: f64,
}

impl Execution {
    /// This execution on a device of `memory_gib` at tensor parallelism `tp` for engine
    /// version `version`: the captured sizes cut at the limit the engine picks there, or
    /// `None` where nothing changes.
    pub fn on_device(&self, memory_gib: f64, tp: u32, version: Option<&str>) -> Option<Execution> {
        let max = self.capture_limits.max_size(memory_gib, tp, version)?;
        let kept = self.capture_sizes.partition_point(|&c| c <= max.max(1));
        (kept < self.capture_sizes.len()).then(|| Execution {
            capture_sizes: self.capture_sizes[..kept].to_vec(),
            ..self.clone()
        })
    }

    /// How iterations run, for reports: the graph mode, the largest captured size and
    /// (decode-only graphs) the longest captured context.
    pub fn describe_graphs(&self) -> String {
        let mode = self.graph_mode.describe();
        match self.capture_sizes.last() {
            Some(max) if self.graph_mode != GraphMode::None => {
                let context = self
                    .max_capture_context
                    .map_or(String::new(), |c| format!(", contexts up to {c}"));
                format!("{mode} up to {max} tokens{context}")
            }
            _ => mode.to_owned(),
        }
    }

    /// This execution capturing exactly `sizes` (ascending, distinct; none: every
    /// batch eager, as [`Execution::eager`]), whatever the device would cut.
    pub fn with_capture_sizes(&self, sizes: Vec<u32>) -> Execution {
        if sizes.is_empty() {
            return self.eager();
        }
        Execution {
            capture_sizes: sizes,
            capture_limits: CaptureLimits::default(),
            ..self.clone()
        }
    }

    /// This execution without CUDA graphs (vLLM's `--enforce-eager`): every iteration's
    /// kernels launched one by one by the CPU; host work unchanged.
    pub fn eager(&self) -> Execution {
        Execution {
            graph_mode: GraphMode::None,
            capture_sizes: Vec::new(),
            max_capture_context: None,
            capture_limits: CaptureLimits::default(),
            ..self.clone()
        }
    }

    /// The smallest captured size that holds `n` tokens, if any.
    fn captured(&self, n: u64) -> Option<u32> {
        self.captured_cache.get(n as f64, || {
            let i = self.capture_sizes.partition_point(|&c| u64::from(c) < n);
            self.capture_sizes.get(i).copied()
        })
    }

    /// How `shape` runs on this stack.
    pub fn plan(&self, shape: &StepShape) -> ExecPlan {
        let tokens = shape.total_tokens();
        let decode_only = shape.prefills.is_empty();
        let context_ok = self
            .max_capture_context
            .is_none_or(|m| shape.decode_context_max <= m);
        let eager = ExecPlan {
            kind: GraphKind::Eager,
            tokens: tokens as f64,
        };
        let graph = |kind| match self.captured(tokens) {
            Some(c) => ExecPlan {
                kind,
                tokens: f64::from(c),
            },
            None => eager,
        };
        match self.graph_mode {
            GraphMode::None => eager,
            GraphMode::DecodeOnly if decode_only && context_ok => graph(GraphKind::Full),
            GraphMode::DecodeOnly => eager,
            GraphMode::Piecewise => graph(GraphKind::Piecewise),
            GraphMode::FullAndPiecewise if decode_only => graph(GraphKind::Full),
            GraphMode::FullAndPiecewise => graph(GraphKind::Piecewise),
        }
    }

    /// CPU time to launch the iteration's work, µs.
    pub fn launch_us(&self, plan: &ExecPlan, cost: &StepCost) -> f64 {
        match plan.kind {
            GraphKind::Full => self.graph_launch_us,
            GraphKind::Piecewise => cost.layers * (self.graph_launch_us + self.kernel_launch_us),
            GraphKind::Eager => cost.kernels * self.kernel_launch_us,
        }
    }

    /// Wall time of the iteration `shape` planned as `plan` whose kernels cost `cost`,
    /// µs (see the module docs).
    pub fn step_us(&self, plan: &ExecPlan, cost: &StepCost, shape: &StepShape) -> f64 {
        let device = cost.gpu_us.max(self.launch_us(plan, cost));
        let cpu = self
            .host
            .cpu_us(f64::from(shape.num_seqs()), shape.prefills.len() as f64);
        // A multi-step group's follow-on iterations reuse the first one's scheduling and
        // inputs (advanced on the GPU) and hand no tokens back in between.
        let between = if shape.pays_host_step() {
            self.host.step_us + self.host.per_sequence_serial_us * f64::from(shape.num_seqs())
        } else {
            0.0
        };
        between
            + self.host.per_kernel_us * cost.kernels
            + match self.host.overlap {
                HostOverlap::Serial => device + cpu,
                HostOverlap::Async => device.max(cpu),
            }
    }

    /// The host part of [`Execution::step_us`] and the launch-bound excess, µs: what
    /// the iteration costs beyond its kernels.
    pub fn overhead_us(&self, plan: &ExecPlan, cost: &StepCost, shape: &StepShape) -> f64 {
        self.step_us(plan, cost, shape) - cost.gpu_us
    }
}
