//! Which devices fit a fine-tuning job: for each, the fewest GPUs that hold it at the
//! chosen ZeRO stage and micro-batch, the largest micro-batch those GPUs allow, and the
//! price per hour where the catalog cites one; ranked fewest GPUs first, then cheapest,
//! then largest micro-batch.

use super::{FinetuneConstants, FinetuneOptions, FinetuneSpec};
use crate::error::Result;
use crate::hardware::GpuSpec;
use crate::memory::{usable_capacity_bytes, MemoryModel};
use crate::model::ModelSpec;
use crate::units::BYTES_PER_GIB;
use serde::Serialize;

/// A device that fits the job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// The device.
    pub hardware: String,
    /// Fewest GPUs that hold the job.
    pub gpus: u32,
    /// The largest micro-batch per GPU those GPUs allow.
    pub max_micro_batch_size: u32,
    /// Memory per GPU at the requested micro-batch, GiB.
    pub memory_per_gpu_gib: f64,
    /// What a GPU offers (after the driver's reserve), GiB.
    pub capacity_gib: f64,
    /// `gpus` × the device's cited price, USD per hour (none: no cited price).
    pub usd_per_hour: Option<f64>,
}

/// Every device of `devices` that fits `opts` on at most `max_gpus` GPUs, ranked; and
/// the names of those that do not.
pub fn recommend(
    model: &ModelSpec,
    devices: &[GpuSpec],
    mm: &MemoryModel,
    consts: &FinetuneConstants,
    opts: &FinetuneOptions,
    max_gpus: u32,
) -> Result<(Vec<Recommendation>, Vec<String>)> {
    let spec = FinetuneSpec::new(model, consts, opts)?;
    let (mut fits, mut none) = (Vec::new(), Vec::new());
    for gpu in devices {
        let capacity = usable_capacity_bytes(gpu, mm);
        let Some(n) = spec.min_gpus(capacity, max_gpus) else {
            none.push(gpu.name.clone());
            continue;
        };
        let b = spec.breakdown(n, opts.micro_batch_size);
        fits.push(Recommendation {
            hardware: gpu.name.clone(),
            gpus: n,
            max_micro_batch_size: spec.max_micro_batch(capacity, n),
            memory_per_gpu_gib: b.total_bytes_per_gpu / BYTES_PER_GIB,
            capacity_gib: capacity / BYTES_PER_GIB,
            usd_per_hour: gpu.price_usd_per_gpu_hour.map(|p| p * f64::from(n)),
        });
    }
    fits.sort_by(|a, b| {
        a.gpus
            .cmp(&b.gpus)
            .then(
                a.usd_per_hour
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.usd_per_hour.unwrap_or(f64::INFINITY)),
            )
            .then(b.max_micro_batch_size.cmp(&a.max_micro_batch_size))
            .then(a.hardware.cmp(&b.hardware))
    });
    Ok((fits, none))
}
