//! Memory for a load: `concurrency` sequences of `seq_len` tokens held at once.
//!
//! Each replica is planned as vLLM plans it ([`plan`]: weights, the
//! activation peak of its profiling pass and runtime overhead come first, the KV cache
//! takes the rest of `gpu_memory_utilization`); a replica serves as many of the
//! sequences as its cache holds whole (`num_gpu_blocks / ⌈seq_len / block_size⌉`), and
//! the load needs as many replicas as that takes. The answer is the layout (replicas ×
//! TP × PP) with the fewest GPUs; among equals, fewer replicas (more TP: each sequence
//! is faster), then fewer pipeline stages. Memory per GPU is the most loaded
//! replica's: its share of the sequences at full length.

use super::{layouts, plan, MemoryModel, MemoryOptions, MemoryPlan};
use crate::deployment::Deployment;
use crate::units::BYTES_PER_GIB;
use serde::Serialize;

/// A load to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Load {
    /// Sequences held at once.
    pub concurrency: u32,
    /// Tokens of each (prompt and output), all in the KV cache.
    pub seq_len: u32,
}

/// Memory of one GPU, GiB.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GpuMemory {
    /// Weights.
    pub weights_gib: f64,
    /// KV cache of the sequences its replica holds.
    pub kv_gib: f64,
    /// The activation peak the plan reserves.
    pub activations_gib: f64,
    /// Runtime overhead outside PyTorch's allocator.
    pub overhead_gib: f64,
    /// Sum of the four.
    pub used_gib: f64,
    /// Memory the engine may use: weights, activations, runtime and KV cache (the
    /// memory plan's `usable_bytes_per_gpu`; `gpu_memory_utilization` × capacity on vLLM).
    pub budget_gib: f64,
    /// The GPU's memory after the driver's reserve.
    pub capacity_gib: f64,
}

/// How a load fits on one kind of GPU.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadFit {
    /// The GPU.
    pub hardware: String,
    /// Replicas (each its own engine and KV cache).
    pub replicas: u32,
    /// Tensor parallelism of each replica.
    pub tensor_parallel_size: u32,
    /// Pipeline stages of each replica.
    pub pipeline_parallel_size: u32,
    /// GPUs in all: replicas × TP × PP.
    pub gpus: u32,
    /// Sequences one replica's KV cache holds at `seq_len`.
    pub seqs_per_replica: u64,
    /// Memory of a GPU of the most loaded replica.
    pub per_gpu: GpuMemory,
    /// The share of the layout's KV capacity the load takes.
    pub kv_load: f64,
    /// `used / budget` of a GPU of the most loaded replica.
    pub memory_load: f64,
}

/// The layout of `d`'s GPU kind with the fewest GPUs (at most `max_gpus`) that holds
/// `load`; with `fixed`, only `d`'s own TP × PP (replicas are still added). None when
/// nothing fits.
pub fn fit(
    d: &Deployment,
    mm: &MemoryModel,
    opts: &MemoryOptions,
    load: Load,
    max_gpus: u32,
    fixed: bool,
) -> Option<LoadFit> {
    let opts = MemoryOptions {
        seq_len: Some(load.seq_len),
        ..*opts
    };
    let candidates = if fixed {
        vec![(d.tp, d.pp)]
    } else {
        layouts(d, max_gpus)
    };
    let mut best: Option<(u32, u32, u32, Deployment, MemoryPlan)> = None;
    for (tp, pp) in candidates {
        let mut c = d.clone();
        c.tp = tp;
        c.pp = pp;
        if c.validate().is_err() {
            continue;
        }
        let p = plan(&c, mm, &opts);
        if !p.fits || p.max_concurrent_seqs == 0 {
            continue;
        }
        let replicas = u64::from(load.concurrency).div_ceil(p.max_concurrent_seqs);
        let Some(gpus) = u32::try_from(replicas * u64::from(tp * pp))
            .ok()
            .filter(|&g| g <= max_gpus)
        else {
            continue;
        };
        let replicas = replicas as u32;
        let key = (gpus, replicas, pp);
        if best.as_ref().is_none_or(|b| key < (b.0, b.1, b.2)) {
            best = Some((gpus, replicas, pp, c, p));
        }
    }
    let (gpus, replicas, _, c, p) = best?;
    Some(describe(&c, &p, load, replicas, gpus))
}

impl LoadFit {
    /// A plain memory plan as a fit: one replica whose KV cache takes all it is given.
    pub fn of_plan(d: &Deployment, p: &MemoryPlan) -> Self {
        let mut f = describe(
            d,
            p,
            Load {
                concurrency: 0,
                seq_len: p.seq_len,
            },
            1,
            d.num_gpus(),
        );
        let kv = p.kv_cache_bytes_per_gpu.max(0.0);
        f.per_gpu.kv_gib = kv / BYTES_PER_GIB;
        f.per_gpu.used_gib += f.per_gpu.kv_gib;
        f.kv_load = 1.0;
        f.memory_load = f.per_gpu.used_gib / f.per_gpu.budget_gib;
        f
    }
}

/// The [`LoadFit`] of `replicas` replicas planned as `p`.
fn describe(d: &Deployment, p: &MemoryPlan, load: Load, replicas: u32, gpus: u32) -> LoadFit {
    let on_busiest = u64::from(load.concurrency.div_ceil(replicas.max(1)));
    let blocks_per_seq = u64::from(load.seq_len).div_ceil(u64::from(p.block_size));
    let block_bytes = f64::from(p.block_size) * p.kv_bytes_per_token_per_gpu;
    let kv = (on_busiest * blocks_per_seq) as f64 * block_bytes;
    let used = p.weight_bytes_per_gpu + kv + p.activation_bytes_per_gpu + p.overhead_bytes_per_gpu;
    let gib = |b: f64| b / BYTES_PER_GIB;
    let capacity_blocks = p.num_gpu_blocks * u64::from(replicas);
    LoadFit {
        hardware: d.gpu().name.clone(),
        replicas,
        tensor_parallel_size: d.tp,
        pipeline_parallel_size: d.pp,
        gpus,
        seqs_per_replica: p.max_concurrent_seqs,
        per_gpu: GpuMemory {
            weights_gib: gib(p.weight_bytes_per_gpu),
            kv_gib: gib(kv),
            activations_gib: gib(p.activation_bytes_per_gpu),
            overhead_gib: gib(p.overhead_bytes_per_gpu),
            used_gib: gib(used),
            budget_gib: gib(p.usable_bytes_per_gpu),
            capacity_gib: gib(p.gpu_memory_bytes),
        },
        kv_load: (u64::from(load.concurrency) * blocks_per_seq) as f64
            / capacity_blocks.max(1) as f64,
        memory_load: used / p.usable_bytes_per_gpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::DeploymentRequest;
    use crate::paths::DataPaths;

    fn deployment(model: &str, hardware: &str) -> (Deployment, MemoryModel) {
        let paths = DataPaths::builtin();
        let req = DeploymentRequest {
            model: Some(model.into()),
            hardware: Some(hardware.into()),
            ..Default::default()
        };
        (
            Deployment::resolve(&req, &paths).unwrap(),
            MemoryModel::load(&paths.perf_model).unwrap(),
        )
    }

    /// The chosen layout holds the load, and no layout with fewer GPUs does.
    #[test]
    fn the_fewest_gpus_that_hold_the_load() {
        let (d, mm) = deployment("meta-llama/Llama-3.1-70B", "h100");
        let opts = MemoryOptions::default();
        for (n, s) in [(8, 4096), (1, 131_072), (200, 8192), (1000, 2048)] {
            let load = Load {
                concurrency: n,
                seq_len: s,
            };
            let f = fit(&d, &mm, &opts, load, 512, false).unwrap();
            assert_eq!(
                f.gpus,
                f.replicas * f.tensor_parallel_size * f.pipeline_parallel_size
            );
            assert!(f.kv_load <= 1.0 && f.kv_load > 0.0, "{f:?}");
            assert!(f.memory_load <= 1.0 + 1e-9, "{f:?}");
            assert!(u64::from(f.replicas) * f.seqs_per_replica >= u64::from(n));
            // Every layout of fewer GPUs fails to hold it.
            for (tp, pp) in layouts(&d, f.gpus) {
                let mut c = d.clone();
                (c.tp, c.pp) = (tp, pp);
                if c.validate().is_err() {
                    continue;
                }
                let p = plan(
                    &c,
                    &mm,
                    &MemoryOptions {
                        seq_len: Some(s),
                        ..opts
                    },
                );
                if !p.fits || p.max_concurrent_seqs == 0 {
                    continue;
                }
                let replicas = u64::from(n).div_ceil(p.max_concurrent_seqs);
                assert!(
                    replicas * u64::from(tp * pp) >= u64::from(f.gpus),
                    "{tp}x{pp} beats {f:?}"
                );
            }
        }
    }

    /// More sequences never need fewer GPUs; the KV per GPU is the sequences' tokens.
    #[test]
    fn gpus_grow_with_the_load_and_kv_is_the_tokens() {
        let (d, mm) = deployment("meta-llama/Llama-3.1-8B", "a100-40gb");
        let opts = MemoryOptions::default();
        let mut last = 0;
        for n in [1, 4, 16, 64, 256, 1024] {
            let load = Load {
                concurrency: n,
                seq_len: 8192,
            };
            let f = fit(&d, &mm, &opts, load, 1024, false).unwrap();
            assert!(f.gpus >= last, "{n}: {f:?}");
            last = f.gpus;
            let mut c = d.clone();
            (c.tp, c.pp) = (f.tensor_parallel_size, f.pipeline_parallel_size);
            let p = plan(&c, &mm, &opts);
            // The most loaded stage's KV per token, whole blocks of 8192 tokens.
            let per_seq = 8192.0 * p.kv_bytes_per_token_per_gpu / BYTES_PER_GIB;
            let seqs = f64::from(n.div_ceil(f.replicas));
            assert!(
                (f.per_gpu.kv_gib - seqs * per_seq).abs() < 1e-6 * seqs * per_seq.max(1.0) + 1e-9,
                "{n}: {f:?}"
            );
        }
    }

    /// A fixed layout adds replicas only; a model too large for it gives none.
    #[test]
    fn a_fixed_layout_only_adds_replicas() {
        let (d, mm) = deployment("meta-llama/Llama-3.1-8B", "h100");
        let load = Load {
            concurrency: 4000,
            seq_len: 4096,
        };
        let f = fit(&d, &mm, &MemoryOptions::default(), load, 1024, true).unwrap();
        assert_eq!((f.tensor_parallel_size, f.pipeline_parallel_size), (1, 1));
        assert!(f.replicas > 1);
        let (big, mm) = deployment("meta-llama/Llama-3.1-70B", "h100");
        assert!(fit(&big, &mm, &MemoryOptions::default(), load, 1024, true).is_none());
    }
}
