//! What limits an estimated batch, and which single change helps it most.
//!
//! Three changes are tried, each on a replica built as the original (same flags
//! otherwise): twice the batch, an FP8 KV cache (where the cache is wider), and twice
//! the tensor parallelism (where the model and the node allow it). Each is estimated
//! through the engine like the original; the one giving the most output tokens per
//! second per GPU helps most (serving capacity per GPU is what a deployment pays for),
//! or, when none adds any, the one with the shortest end-to-end latency.

use super::{estimate, Estimate};
use crate::deployment::{Deployment, DeploymentRequest};
use crate::engine::config::EngineOverrides;
use crate::error::Result;
use crate::paths::DataPaths;
use crate::perf::Bound;
use crate::setup::ReplicaSetup;
use serde::Serialize;

/// A change to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Twice the batch size.
    LargerBatch,
    /// An FP8 KV cache.
    Fp8KvCache,
    /// Twice the tensor parallelism.
    MoreTensorParallel,
}

impl Change {
    /// The change as a flag.
    pub fn flag(self, base: &Estimate, tp: u32) -> String {
        match self {
            Change::LargerBatch => format!("--batch-size {}", base.batch.batch_size * 2),
            Change::Fp8KvCache => "--kv-cache-dtype fp8".into(),
            Change::MoreTensorParallel => format!("--tensor-parallel-size {}", tp * 2),
        }
    }
}

/// One change and what the batch gives with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tried {
    /// The change.
    pub change: Change,
    /// The change as command-line flags.
    pub flags: String,
    /// GPUs the deployment uses with the change.
    pub gpus: u32,
    /// Mean TTFT, s.
    pub ttft_s: f64,
    /// Mean TPOT, s.
    pub tpot_s: f64,
    /// Last request's finish, s.
    pub e2e_s: f64,
    /// Output tokens per second of the batch.
    pub output_tokens_per_s: f64,
    /// The same per GPU.
    pub output_tokens_per_s_per_gpu: f64,
    /// Preemptions the engine made.
    pub preemptions: u64,
}

/// What limits a batch and the changes tried.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Advice {
    /// What limits the batch, in words.
    pub limit: String,
    /// Output tokens per second per GPU of the batch as given.
    pub output_tokens_per_s_per_gpu: f64,
    /// Every change that could be built and run, in the order tried.
    pub options: Vec<Tried>,
    /// Index in `options` of the change that helps most (none: nothing could be run).
    pub best: Option<usize>,
}

/// What limits `base` (the estimate of `batch` on the deployment of `req` with engine
/// flags `overrides`) and what each change would give.
pub fn advise(
    req: &DeploymentRequest,
    overrides: &EngineOverrides,
    paths: &DataPaths,
    setup: &ReplicaSetup,
    base: &Estimate,
) -> Result<Advice> {
    let d = &setup.deployment;
    let gpus = d.num_gpus();
    let mut options = Vec::new();
    for change in [
        Change::LargerBatch,
        Change::Fp8KvCache,
        Change::MoreTensorParallel,
    ] {
        let (mut r, mut batch) = (req.clone(), base.batch);
        match change {
            Change::LargerBatch => batch.batch_size = batch.batch_size.saturating_mul(2),
            Change::Fp8KvCache if d.kv_dtype.bytes_per_element() <= 1.0 => continue,
            Change::Fp8KvCache => r.kv_cache_dtype = Some("fp8".into()),
            Change::MoreTensorParallel => r.tensor_parallel_size = Some(d.tp * 2),
        }
        // A change the deployment cannot take (heads not divisible, a node too small,
        // a batch past the engine's limits) is not an option.
        let Ok(e) = (|| -> Result<(u32, Estimate)> {
            let nd = Deployment::resolve(&r, paths)?;
            let s = ReplicaSetup::new(nd, overrides, paths)?;
            Ok((s.deployment.num_gpus(), estimate(&s, batch)?))
        })() else {
            continue;
        };
        let (n, e) = e;
        options.push(Tried {
            change,
            flags: change.flag(base, d.tp),
            gpus: n,
            ttft_s: e.ttft_s,
            tpot_s: e.tpot_s,
            e2e_s: e.e2e_s,
            output_tokens_per_s: e.output_tokens_per_s,
            output_tokens_per_s_per_gpu: e.output_tokens_per_s / f64::from(n),
            preemptions: e.preemptions,
        });
    }
    let own = base.output_tokens_per_s / f64::from(gpus);
    let by = |f: fn(&Tried) -> f64| {
        options
            .iter()
            .enumerate()
            .max_by(|a, b| f(a.1).total_cmp(&f(b.1)))
            .map(|(i, _)| i)
    };
    let best = match by(|o| o.output_tokens_per_s_per_gpu) {
        Some(i) if options[i].output_tokens_per_s_per_gpu > own => Some(i),
        _ => by(|o| -o.e2e_s),
    };
    Ok(Advice {
        limit: limit(base),
        output_tokens_per_s_per_gpu: own,
        options,
        best,
    })
}

/// What limits `e`, in words.
fn limit(e: &Estimate) -> String {
    let m = &e.memory;
    if !m.fits {
        return format!(
            "KV-cache capacity: the batch needs {} KV blocks at its longest and the cache holds {} ({} preemptions)",
            m.kv_blocks_needed, m.kv_blocks_available, e.preemptions
        );
    }
    let b = &e.bottleneck;
    let bound = match (b.bound, &e.utilization) {
        (Some(Bound::Compute), _) => "compute-bound".to_owned(),
        (Some(Bound::Memory), _) => "memory-bandwidth-bound".to_owned(),
        (Some(Bound::Communication), _) => "communication-bound".to_owned(),
        (Some(Bound::Overhead), _) => "host-overhead-bound".to_owned(),
        // A measured time has no bound; the batch's counted work says which peak it
        // is nearer.
        (None, Some(u)) => format!(
            "measured; nearer the {} peak: compute {:.0}%, memory bandwidth {:.0}%",
            if u.memory_bandwidth > u.compute {
                "memory-bandwidth"
            } else {
                "compute"
            },
            u.compute * 100.0,
            u.memory_bandwidth * 100.0
        ),
        (None, None) => "measured".to_owned(),
    };
    let share = match b.phase.as_str() {
        "decode" => e.decode_time_s,
        _ => e.prefill_time_s,
    } / (e.prefill_time_s + e.decode_time_s).max(f64::MIN_POSITIVE);
    format!(
        "the {} phase ({:.0}% of engine time), mostly {} ({bound})",
        b.phase,
        share * 100.0,
        b.op
    )
}
