//! Latency models: how long one engine iteration takes.
//!
//! The engine describes each iteration as a [`StepShape`] (prefill chunks with the
//! context they attend to, plus decodes with their context lengths) and asks a
//! [`LatencyModel`] for its duration. The analytical roofline model, the measured
//! operator-table model and the fixed mock used by tests all implement the trait; each
//! can also split an iteration's time into operators ([`LatencyModel::op_breakdown`]).

use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::paths::DataPaths;
use crate::units::SimDuration;
use serde::Serialize;
use std::sync::Arc;

pub(crate) mod cost_cache;
pub mod fixed;
pub mod measured;
pub mod roofline;

/// One prefill chunk in an iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefillChunk {
    /// New prompt tokens computed in this iteration.
    pub tokens: u32,
    /// Tokens of the same request already in the KV cache before this chunk (earlier
    /// chunks and prefix-cache hits); the chunk attends to these and to itself.
    pub context_tokens: u32,
}

/// The work of one iteration, as the latency model sees it.
///
/// Decodes are summarised (count, sum and max of context) because every latency model
/// here is linear or near-linear in those; prefill chunks are listed because attention
/// cost is quadratic in each chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepShape {
    /// Prefill chunks (usually zero to a few per iteration).
    pub prefills: Vec<PrefillChunk>,
    /// Sequences generating one token each.
    pub num_decodes: u32,
    /// Sum over decodes of the context each attends to (tokens in its KV cache,
    /// including the token being processed).
    pub decode_context_sum: u64,
    /// Largest decode context in the batch.
    pub decode_context_max: u32,
    /// A follow-on iteration of a multi-step group (vLLM V0 `--num-scheduler-steps`):
    /// scheduled with the group's first and its inputs advanced on the GPU, so the host
    /// neither schedules nor prepares inputs nor takes the sampled tokens back before it
    /// (the stack's per-iteration and between-iteration per-sequence host work is the
    /// first iteration's).
    pub follow_on: bool,
}

impl StepShape {
    /// A shape with no work.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remove all work, keeping the allocation.
    pub fn clear(&mut self) {
        self.prefills.clear();
        self.num_decodes = 0;
        self.decode_context_sum = 0;
        self.decode_context_max = 0;
        self.follow_on = false;
    }

    /// Whether the host's between-iteration work (the stack's step and its per-sequence
    /// scheduling and input preparation) comes before this iteration: every iteration
    /// but a multi-step group's follow-ons ([`StepShape::follow_on`]).
    pub fn pays_host_step(&self) -> bool {
        !self.follow_on
    }

    /// Add a prefill chunk.
    pub fn push_prefill(&mut self, tokens: u32, context_tokens: u32) {
        self.prefills.push(PrefillChunk {
            tokens,
            context_tokens,
        });
    }

    /// Add one decode whose KV context (including the new token) is `context_tokens`.
    pub fn push_decode(&mut self, context_tokens: u32) {
        self.num_decodes += 1;
        self.decode_context_sum += u64::from(context_tokens);
        self.decode_context_max = self.decode_context_max.max(context_tokens);
    }

    /// Add `count` decodes whose contexts sum to `context_sum` with the largest
    /// `context_max` (the same shape as `count` calls of [`StepShape::push_decode`]).
    pub fn push_decodes(&mut self, count: u32, context_sum: u64, context_max: u32) {
        if count == 0 {
            return;
        }
        self.num_decodes += count;
        self.decode_context_sum += context_sum;
        self.decode_context_max = self.decode_context_max.max(context_max);
    }

    /// New prompt tokens across all prefill chunks.
    pub fn prefill_tokens(&self) -> u64 {
        self.prefills.iter().map(|p| u64::from(p.tokens)).sum()
    }

    /// Tokens processed in this iteration (prefill tokens plus one per decode).
    pub fn total_tokens(&self) -> u64 {
        self.prefill_tokens() + u64::from(self.num_decodes)
    }

    /// Sequences in this iteration (prefill chunks plus decodes).
    pub fn num_seqs(&self) -> u32 {
        self.prefills.len() as u32 + self.num_decodes
    }

    /// True when the iteration does nothing.
    pub fn is_empty(&self) -> bool {
        self.prefills.is_empty() && self.num_decodes == 0
    }
}

impl std::fmt::Display for StepShape {
    /// `3 prefill chunks (4096 new tokens; contexts before them 0, 512, 0) and 61
    /// decodes (contexts sum 80000, max 2100)`, for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let contexts: Vec<String> = self
            .prefills
            .iter()
            .map(|p| p.context_tokens.to_string())
            .collect();
        write!(
            f,
            "a batch of {} prefill chunks ({} new tokens; contexts before them [{}]) and {} decodes (contexts sum {}, max {})",
            self.prefills.len(),
            self.prefill_tokens(),
            contexts.join(", "),
            self.num_decodes,
            self.decode_context_sum,
            self.decode_context_max
        )
    }
}

/// `latency`'s time for `shape`, or [`Error::InvalidStepTime`] naming the model and the
/// batch when it gives none ([`SimDuration::MAX`], see [`step_duration`]).
pub fn checked_step_time(latency: &dyn LatencyModel, shape: &StepShape) -> Result<SimDuration> {
    let d = latency.step_time(shape);
    if d == SimDuration::MAX {
        return Err(Error::InvalidStepTime {
            model: latency.describe(),
            shape: shape.to_string(),
        });
    }
    Ok(d)
}

/// An iteration's time in seconds as a [`SimDuration`], rounded to the nanosecond;
/// [`SimDuration::MAX`] for a time that is not finite or not positive, which the engine
/// reports as [`Error::InvalidStepTime`] naming the model and the batch. Latency models
/// convert through this so that no broken time becomes a silent 1 ns iteration.
pub fn step_duration(seconds: f64) -> SimDuration {
    if seconds > 0.0 {
        if let Some(ns) = crate::units::checked_secs_to_nanos(seconds) {
            return SimDuration::from_nanos(ns);
        }
    }
    SimDuration::MAX
}

/// What limits an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// Math throughput.
    Compute,
    /// Memory bandwidth.
    Memory,
    /// Inter-GPU links.
    Communication,
    /// Fixed CPU and launch cost.
    Overhead,
}

impl Bound {
    /// The lowercase name (`compute`, `memory`, ...), or `measured` for `None`: a
    /// measured time whose limit is not known.
    pub fn label(bound: Option<Bound>) -> &'static str {
        match bound {
            Some(Bound::Compute) => "compute",
            Some(Bound::Memory) => "memory",
            Some(Bound::Communication) => "communication",
            Some(Bound::Overhead) => "overhead",
            None => "measured",
        }
    }
}

/// The cost of one operator (or, for measured models, one component) over all layers
/// of an iteration: a row of [`LatencyModel::op_breakdown`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpCost {
    /// Operator name (`qkv_proj`, `attention`, `all_reduce`, ...) or component name
    /// (`linear`, `head`, ...).
    pub name: String,
    /// Instances per iteration (layers it runs in, times calls per layer), where known.
    pub count: Option<u64>,
    /// FLOPs on one GPU, where known.
    pub flops: Option<f64>,
    /// Bytes moved to or from memory (or over a link) by one GPU, where known.
    pub bytes: Option<f64>,
    /// Time, s.
    pub time_s: f64,
    /// What limits it; `None` for a measured time whose limit is not known.
    pub bound: Option<Bound>,
}

/// A model of iteration time.
///
/// Implementations must be deterministic (the same shape gives the same duration) and
/// must return a positive duration for any non-empty shape (zero for an empty one);
/// one that cannot (broken
/// data, a parameter of zero) returns [`SimDuration::MAX`] (see [`step_duration`]),
/// which ends a run with [`Error::InvalidStepTime`].
pub trait LatencyModel: Send + Sync {
    /// Wall time of one engine iteration processing `shape` on one replica.
    fn step_time(&self, shape: &StepShape) -> SimDuration;

    /// A short human-readable description of where the predictions come from.
    fn describe(&self) -> String;

    /// The time of one iteration processing `shape`, split into operators or
    /// components, in the model's own order; the rows sum to [`LatencyModel::step_time`]
    /// up to its rounding to nanoseconds. The default is one row, `step`, with the whole
    /// time and nothing else known.
    fn op_breakdown(&self, shape: &StepShape) -> Vec<OpCost> {
        vec![OpCost {
            name: "step".to_owned(),
            count: Some(1),
            flops: None,
            bytes: None,
            time_s: self.step_time(shape).as_secs_f64(),
            bound: None,
        }]
    }
}

impl<T: LatencyModel + ?Sized> LatencyModel for Box<T> {
    fn step_time(&self, shape: &StepShape) -> SimDuration {
        (**self).step_time(shape)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn op_breakdown(&self, shape: &StepShape) -> Vec<OpCost> {
        (**self).op_breakdown(shape)
    }
}

/// Which latency model [`select_latency_model`] builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatencyChoice {
    /// The best the data supports: the deployment's own measured profile, else a
    /// shape-based prediction from other models measured on the same accelerator, else
    /// the accelerator's kernels measured through an engine, else the roofline.
    #[default]
    Auto,
    /// The measured model (exact or shape-based); an error when the accelerator has no
    /// profiles.
    Measured,
    /// The analytical roofline model.
    Roofline,
}

/// The latency model of deployment `d` (see [`LatencyChoice`]).
pub fn select_latency_model(
    d: &Deployment,
    paths: &DataPaths,
    choice: LatencyChoice,
) -> Result<Arc<dyn LatencyModel>> {
    if d.peak_flops(d.act_dtype) <= 0.0 {
        return Err(Error::Config(format!(
            "{} has no known compute rate ({}); memory questions work on it, latency needs a rate: add one in a device file (perf_model/hardware/README.md)",
            d.gpu().name,
            d.gpu().notes.as_deref().unwrap_or("its file gives none")
        )));
    }
    let roofline = || -> Result<Arc<dyn LatencyModel>> {
        let params = roofline::RooflineParams::load_for(&paths.perf_model, d.gpu())?;
        Ok(Arc::new(roofline::Roofline::new(d, params)))
    };
    if choice == LatencyChoice::Roofline {
        return roofline();
    }
    let opts = measured::MeasuredOptions::default();
    match measured::MeasuredModel::new(d, paths, &opts)? {
        Some(m) => Ok(Arc::new(m)),
        None if choice == LatencyChoice::Auto => roofline(),
        None => Err(Error::Config(format!(
            "no measured latency profiles for {} (looked in {}/{}); profiled hardware: {}; use the roofline model instead",
            d.gpu().name,
            measured::MeasuredModel::profiles_dir(paths).display(),
            measured::MeasuredModel::hardware_slug(d).unwrap_or_else(|| "<no hardware file>".into()),
            measured::MeasuredModel::profiled_hardware(paths).join(", "),
        ))),
    }
}
