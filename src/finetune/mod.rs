//! Fine-tuning memory plan: what each GPU holds when a model is trained in full, with LoRA
//! or with QLoRA, and how many GPUs or how large a micro-batch fits.
//!
//! Per GPU, the plan adds up
//!
//! | part | what | module |
//! |---|---|---|
//! | weights | working weights; frozen 16-bit or NF4 base + adapters | [`weights`] |
//! | gradients | one per trainable parameter, in the working format | [`optimizer`] |
//! | optimizer | Adam/SGD/8-bit states + the fp32 master copy under mixed precision | [`optimizer`] |
//! | activations | per micro-batch, Korthikanti et al. 2022 generalized | [`activations`] |
//! | gather buffer | ZeRO-3 / FSDP full-shard: gathered layers | [`sharding`] |
//! | overhead | CUDA context + allocator fragmentation | `perf_model/finetune.toml` |
//!
//! and shards the model states across `num_gpus` by ZeRO stage ([`sharding`]); offloaded
//! states move to host memory and are reported separately. Every constant comes from
//! `perf_model/finetune.toml` ([`FinetuneConstants`]).
//!
//! It does not model tensor or pipeline parallelism, paged optimizers, ZeRO's
//! communication buckets, or activation offload. The serving plan is [`crate::memory`].
//!
//! ```
//! use servesim::finetune::{self, FinetuneConstants, FinetuneOptions, TrainMode};
//! use servesim::model::ModelCatalog;
//! use servesim::paths::DataPaths;
//!
//! let model = ModelCatalog::load(&DataPaths::builtin().model_configs)?.resolve("llama-2-7b")?;
//! let opts = FinetuneOptions { mode: TrainMode::Full, ..FinetuneOptions::default() };
//! let b = finetune::FinetuneSpec::new(&model, &FinetuneConstants::builtin()?, &opts)?
//!     .breakdown(1, 1);
//! // Mixed-precision AdamW: 16 bytes per parameter of model states (ZeRO paper).
//! let states = b.weights_bytes + b.gradients_bytes + b.optimizer_bytes;
//! assert_eq!(states, 16.0 * 6_738_415_616.0);
//! # Ok::<(), servesim::Error>(())
//! ```

pub mod activations;
pub mod constants;
pub mod lora;
pub mod optimizer;
pub mod recommend;
pub mod sharding;
pub mod weights;

pub use activations::AttentionImpl;
pub use constants::FinetuneConstants;
pub use lora::{LoraConfig, LoraTarget};
pub use optimizer::{BytesPerTrainableParam, OptimizerKind, Precision};
pub use sharding::{FsdpStrategy, ModelStates, Offload, ZeroStage};
pub use weights::{TrainMode, WeightAccount};

use crate::error::{Error, Result};
use crate::hardware::GpuSpec;
use crate::model::ModelSpec;
use crate::units::BYTES_PER_GIB;
use activations::ActivationSettings;
use serde::Serialize;

/// Largest micro-batch the search tries.
const MAX_MICRO_BATCH_SEARCHED: u64 = 1 << 20;

/// What is trained, how, and on how many GPUs.
#[derive(Clone, Debug, PartialEq)]
pub struct FinetuneOptions {
    /// Full, LoRA or QLoRA.
    pub mode: TrainMode,
    /// Formats of weights and gradients; `None` = [`TrainMode::default_precision`].
    pub precision: Option<Precision>,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Adapter settings (LoRA and QLoRA only).
    pub lora: LoraConfig,
    /// Tokens per training sequence.
    pub seq_len: u32,
    /// Sequences per micro-batch on each GPU.
    pub micro_batch_size: u32,
    /// Full activation checkpointing.
    pub gradient_checkpointing: bool,
    /// Attention kernel.
    pub attention: AttentionImpl,
    /// ZeRO stage (FSDP strategies map onto one, see [`FsdpStrategy::zero_stage`]).
    pub zero_stage: ZeroStage,
    /// Data-parallel GPUs the states are sharded across.
    pub num_gpus: u32,
    /// CPU offload.
    pub offload: Offload,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        FinetuneOptions {
            mode: TrainMode::Lora,
            precision: None,
            optimizer: OptimizerKind::AdamW,
            lora: LoraConfig::default(),
            seq_len: 2048,
            micro_batch_size: 1,
            gradient_checkpointing: false,
            attention: AttentionImpl::Flash,
            zero_stage: ZeroStage::Stage0,
            num_gpus: 1,
            offload: Offload::default(),
        }
    }
}

impl FinetuneOptions {
    /// The precision in effect.
    pub fn precision(&self) -> Precision {
        self.precision
            .unwrap_or_else(|| self.mode.default_precision())
    }

    /// Check counts and combinations; errors name the flag to fix.
    pub fn validate(&self) -> Result<()> {
        let at_least_one = |flag: &str, v: u32| {
            if v == 0 {
                Err(Error::Config(format!("{flag} must be at least 1")))
            } else {
                Ok(())
            }
        };
        at_least_one("--num-gpus", self.num_gpus)?;
        at_least_one("--micro-batch-size", self.micro_batch_size)?;
        at_least_one("--seq-len", self.seq_len)?;
        if self.mode != TrainMode::Full {
            self.lora.validate()?;
        }
        self.offload.validate(self.zero_stage)
    }
}

/// Memory of one GPU (and its share of host memory) for one setup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FinetuneBreakdown {
    /// Data-parallel GPUs.
    pub num_gpus: u32,
    /// Sequences per micro-batch.
    pub micro_batch_size: u32,
    /// Weights on the GPU (its shard under ZeRO-3), bytes.
    pub weights_bytes: f64,
    /// Gradients on the GPU, bytes.
    pub gradients_bytes: f64,
    /// Optimizer states and master weights on the GPU, bytes.
    pub optimizer_bytes: f64,
    /// The fp32 master copy, part of `optimizer_bytes` (or of the offloaded optimizer
    /// bytes), bytes.
    pub master_weights_bytes: f64,
    /// Activations of one micro-batch, bytes.
    pub activations_bytes: f64,
    /// Layers gathered by ZeRO-3 / FSDP full-shard beyond the GPU's own shard, bytes.
    pub zero3_gather_bytes: f64,
    /// CUDA context plus allocator fragmentation, bytes.
    pub overhead_bytes: f64,
    /// Everything on the GPU, bytes.
    pub total_bytes_per_gpu: f64,
    /// Optimizer states and master weights this GPU keeps in host memory, bytes.
    pub offloaded_optimizer_bytes: f64,
    /// Parameter shard this GPU keeps in host memory, bytes.
    pub offloaded_params_bytes: f64,
}

impl FinetuneBreakdown {
    /// Weights, gradients and optimizer states on the GPU.
    pub fn model_states_bytes(&self) -> f64 {
        self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
    }

    /// Host memory per GPU.
    pub fn host_bytes_per_gpu(&self) -> f64 {
        self.offloaded_optimizer_bytes + self.offloaded_params_bytes
    }
}

/// A validated fine-tuning setup of one model: everything that does not depend on the
/// number of GPUs or the micro-batch, computed once.
#[derive(Clone, Debug)]
pub struct FinetuneSpec<'a> {
    model: &'a ModelSpec,
    consts: &'a FinetuneConstants,
    opts: FinetuneOptions,
    weights: WeightAccount,
    per_param: BytesPerTrainableParam,
    activation_settings: ActivationSettings,
}

impl<'a> FinetuneSpec<'a> {
    /// Validate `opts` against `model`.
    pub fn new(
        model: &'a ModelSpec,
        consts: &'a FinetuneConstants,
        opts: &FinetuneOptions,
    ) -> Result<Self> {
        opts.validate()?;
        let precision = opts.precision();
        let weights = weights::account(model, opts.mode, precision, &opts.lora, consts)?;
        let per_param = BytesPerTrainableParam::new(
            precision,
            opts.optimizer,
            model.unquantized_dtype(),
            consts,
        );
        Ok(FinetuneSpec {
            model,
            consts,
            opts: opts.clone(),
            weights,
            per_param,
            activation_settings: ActivationSettings {
                seq_len: u64::from(opts.seq_len),
                attention: opts.attention,
                gradient_checkpointing: opts.gradient_checkpointing,
                scale: precision.activation_scale(),
            },
        })
    }

    /// The options.
    pub fn options(&self) -> &FinetuneOptions {
        &self.opts
    }

    /// Parameter counts and unsharded weight bytes.
    pub fn weights(&self) -> &WeightAccount {
        &self.weights
    }

    /// Model states of one unsharded replica.
    pub fn model_states(&self) -> ModelStates {
        let t = self.weights.trainable_params as f64;
        ModelStates {
            weights: self.weights.total_bytes(),
            gradients: t * self.per_param.gradients,
            optimizer: t * self.per_param.optimizer,
        }
    }

    /// Memory per GPU with `num_gpus` data-parallel GPUs and `micro_batch` sequences each.
    pub fn breakdown(&self, num_gpus: u32, micro_batch: u32) -> FinetuneBreakdown {
        let n = num_gpus.max(1);
        let stage = self.opts.zero_stage;
        let off = self.opts.offload;
        let states = self.model_states().sharded(stage, n);
        let master = self.weights.trainable_params as f64 * self.per_param.master
            / if stage.shards_optimizer() {
                f64::from(n)
            } else {
                1.0
            };
        let (optimizer, offloaded_optimizer) = if off.optimizer {
            (0.0, states.optimizer)
        } else {
            (states.optimizer, 0.0)
        };
        let (weights, offloaded_params) = if off.params {
            (0.0, states.weights)
        } else {
            (states.weights, 0.0)
        };
        // ZeRO-3 gathers whole units; the GPU's own shard is already counted unless the
        // shard lives on the host.
        let gather = if stage.shards_params() && (n > 1 || off.params) {
            let own = if off.params { 0.0 } else { 1.0 / f64::from(n) };
            self.consts.overhead.zero3_live_units * self.weights.largest_unit_bytes * (1.0 - own)
        } else {
            0.0
        };
        let activations = activations::micro_batch_bytes(
            self.model,
            &self.consts.activations,
            &self.activation_settings,
            u64::from(micro_batch),
        );
        let allocated = weights + states.gradients + optimizer + activations + gather;
        let o = &self.consts.overhead;
        let overhead = o.cuda_context_gib * BYTES_PER_GIB + o.fragmentation_fraction * allocated;
        FinetuneBreakdown {
            num_gpus: n,
            micro_batch_size: micro_batch,
            weights_bytes: weights,
            gradients_bytes: states.gradients,
            optimizer_bytes: optimizer,
            master_weights_bytes: master,
            activations_bytes: activations,
            zero3_gather_bytes: gather,
            overhead_bytes: overhead,
            total_bytes_per_gpu: allocated + overhead,
            offloaded_optimizer_bytes: offloaded_optimizer,
            offloaded_params_bytes: offloaded_params,
        }
    }

    /// The fewest GPUs (1..=`max_gpus`) on which the configured micro-batch fits in
    /// `capacity_bytes` each. Without parameter, gradient or optimizer sharding the answer
    /// is 1 or nothing: more GPUs replicate everything.
    pub fn min_gpus(&self, capacity_bytes: f64, max_gpus: u32) -> Option<u32> {
        let mb = self.opts.micro_batch_size;
        let fits = |n| self.breakdown(n, mb).total_bytes_per_gpu <= capacity_bytes;
        if self.opts.zero_stage == ZeroStage::Stage0 {
            return fits(1).then_some(1);
        }
        // Memory per GPU never grows with N, so the first N that fits is the answer; a
        // binary search keeps large --max-gpus cheap.
        if !fits(max_gpus.max(1)) {
            return None;
        }
        let (mut lo, mut hi) = (0u32, max_gpus.max(1)); // lo does not fit (or is 0), hi fits
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }

    /// The largest micro-batch that fits in `capacity_bytes` on each of `num_gpus` GPUs
    /// (0 when not even one sequence fits).
    pub fn max_micro_batch(&self, capacity_bytes: f64, num_gpus: u32) -> u32 {
        let fits = |b: u64| {
            let b = u32::try_from(b).unwrap_or(u32::MAX);
            self.breakdown(num_gpus, b).total_bytes_per_gpu <= capacity_bytes
        };
        if !fits(1) {
            return 0;
        }
        let mut lo = 1u64; // fits
        let mut hi = 2u64;
        while hi <= MAX_MICRO_BATCH_SEARCHED && fits(hi) {
            lo = hi;
            hi *= 2;
        }
        if hi > MAX_MICRO_BATCH_SEARCHED {
            return u32::try_from(lo).unwrap_or(u32::MAX);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        u32::try_from(lo).unwrap_or(u32::MAX)
    }
}

/// The fine-tuning memory plan of one model on one kind of GPU.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FinetunePlan {
    /// Model id.
    pub model: String,
    /// Hardware name.
    pub hardware: String,
    /// `full`, `lora` or `qlora`.
    pub mode: TrainMode,
    /// Precision in effect.
    pub precision: Precision,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// LoRA rank (LoRA and QLoRA only).
    pub lora_rank: Option<u32>,
    /// LoRA alpha (LoRA and QLoRA only).
    pub lora_alpha: Option<f64>,
    /// LoRA targets (LoRA and QLoRA only).
    pub lora_targets: Option<Vec<LoraTarget>>,
    /// Parameters of the model.
    pub params_total: u64,
    /// Parameters that train.
    pub trainable_params: u64,
    /// ZeRO stage.
    pub zero_stage: ZeroStage,
    /// Data-parallel GPUs.
    pub num_gpus: u32,
    /// Tokens per sequence.
    pub seq_len: u32,
    /// Sequences per micro-batch.
    pub micro_batch_size: u32,
    /// Full activation checkpointing.
    pub gradient_checkpointing: bool,
    /// Attention kernel.
    pub attention: AttentionImpl,
    /// Device memory available to training per GPU, bytes.
    pub gpu_memory_bytes: f64,
    /// Weights on each GPU, bytes.
    pub weights_bytes: f64,
    /// Gradients on each GPU, bytes.
    pub gradients_bytes: f64,
    /// Optimizer states (master copy included) on each GPU, bytes.
    pub optimizer_bytes: f64,
    /// The fp32 master copy per GPU, part of the optimizer bytes (on GPU or host), bytes.
    pub master_weights_bytes: f64,
    /// Activations of one micro-batch, bytes.
    pub activations_bytes: f64,
    /// ZeRO-3 gathered layers beyond the own shard, bytes.
    pub zero3_gather_bytes: f64,
    /// CUDA context and allocator fragmentation, bytes.
    pub overhead_bytes: f64,
    /// Everything on each GPU, bytes.
    pub total_bytes_per_gpu: f64,
    /// Optimizer states each GPU keeps in host memory, bytes.
    pub offloaded_optimizer_bytes: f64,
    /// Parameters each GPU keeps in host memory, bytes.
    pub offloaded_params_bytes: f64,
    /// Host memory across all GPUs, bytes.
    pub host_bytes_total: f64,
    /// Whether `total_bytes_per_gpu` fits in `gpu_memory_bytes`.
    pub fits: bool,
    /// Extra memory per GPU needed to fit, bytes (0 when it fits).
    pub shortfall_bytes_per_gpu: f64,
    /// The fewest GPUs of this kind that fit this micro-batch at this ZeRO stage (`None`:
    /// none up to the search limit).
    pub min_gpus: Option<u32>,
    /// The largest micro-batch that fits on `num_gpus` GPUs (0: none).
    pub max_micro_batch_size: u32,
    /// Caveats and hints.
    pub notes: Vec<String>,
}

/// Plan fine-tuning `model` on `gpu`, whose usable memory is `capacity_bytes` (see
/// [`crate::memory::usable_capacity_bytes`]); `max_gpus` bounds the minimum-GPU search.
pub fn plan(
    model: &ModelSpec,
    gpu: &GpuSpec,
    capacity_bytes: f64,
    consts: &FinetuneConstants,
    opts: &FinetuneOptions,
    max_gpus: u32,
) -> Result<FinetunePlan> {
    let spec = FinetuneSpec::new(model, consts, opts)?;
    let b = spec.breakdown(opts.num_gpus, opts.micro_batch_size);
    let min_gpus = spec.min_gpus(capacity_bytes, max_gpus);
    let max_micro_batch_size = spec.max_micro_batch(capacity_bytes, opts.num_gpus);
    let fits = b.total_bytes_per_gpu <= capacity_bytes;
    let gib = |x: f64| x / BYTES_PER_GIB;

    let mut notes = Vec::new();
    if opts.zero_stage == ZeroStage::Stage0 && (!fits || opts.num_gpus > 1) {
        notes.push(
            "ZeRO stage 0 (DDP / FSDP no-shard) replicates all model states: more GPUs do not \
             lower memory per GPU; shard with --zero 1|2|3 or --fsdp shard-grad-op|full-shard"
                .to_owned(),
        );
    } else if min_gpus.is_none() {
        let at_max = spec.breakdown(max_gpus, opts.micro_batch_size);
        notes.push(format!(
            "no number of GPUs up to {max_gpus} fits at ZeRO stage {stage}: what stage {stage} \
             leaves unsharded, plus activations and overhead, still needs {:.2} GiB per GPU on \
             {max_gpus} GPUs; try a higher --zero stage, offload, --gradient-checkpointing or a \
             smaller --micro-batch-size",
            gib(at_max.total_bytes_per_gpu),
            stage = opts.zero_stage.number(),
        ));
    }
    if u64::from(opts.seq_len) > model.max_position_embeddings {
        notes.push(format!(
            "--seq-len {} exceeds the model's max_position_embeddings ({})",
            opts.seq_len, model.max_position_embeddings
        ));
    }
    if opts.mode == TrainMode::Qlora {
        notes.push(format!(
            "QLoRA base: NF4 with double-quantized constants, {:.3} bits per linear weight; \
             paged optimizers are not modelled",
            consts.nf4.bits_per_param()
        ));
    }
    if opts.offload.optimizer || opts.offload.params {
        notes.push(format!(
            "host memory: {:.2} GiB per GPU, {:.2} GiB for all {} GPUs",
            gib(b.host_bytes_per_gpu()),
            gib(b.host_bytes_per_gpu() * f64::from(b.num_gpus)),
            b.num_gpus
        ));
    }

    let lora = (opts.mode != TrainMode::Full).then_some(&opts.lora);
    Ok(FinetunePlan {
        model: model.name.clone(),
        hardware: gpu.name.clone(),
        mode: opts.mode,
        precision: opts.precision(),
        optimizer: opts.optimizer,
        lora_rank: lora.map(|l| l.rank),
        lora_alpha: lora.map(|l| l.alpha),
        lora_targets: lora.map(|l| l.targets.clone()),
        params_total: spec.weights().base_params,
        trainable_params: spec.weights().trainable_params,
        zero_stage: opts.zero_stage,
        num_gpus: b.num_gpus,
        seq_len: opts.seq_len,
        micro_batch_size: opts.micro_batch_size,
        gradient_checkpointing: opts.gradient_checkpointing,
        attention: opts.attention,
        gpu_memory_bytes: capacity_bytes,
        weights_bytes: b.weights_bytes,
        gradients_bytes: b.gradients_bytes,
        optimizer_bytes: b.optimizer_bytes,
        master_weights_bytes: b.master_weights_bytes,
        activations_bytes: b.activations_bytes,
        zero3_gather_bytes: b.zero3_gather_bytes,
        overhead_bytes: b.overhead_bytes,
        total_bytes_per_gpu: b.total_bytes_per_gpu,
        offloaded_optimizer_bytes: b.offloaded_optimizer_bytes,
        offloaded_params_bytes: b.offloaded_params_bytes,
        host_bytes_total: b.host_bytes_per_gpu() * f64::from(b.num_gpus),
        fits,
        shortfall_bytes_per_gpu: (b.total_bytes_per_gpu - capacity_bytes).max(0.0),
        min_gpus,
        max_micro_batch_size,
        notes,
    })
}

#[cfg(test)]
mod tests;
