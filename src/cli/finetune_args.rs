//! `servesim memory --train full|lora|qlora`: the fine-tuning memory plan per GPU.
//!
//! The flags follow the names users know from PEFT (`--lora-rank`, `--lora-alpha`,
//! `--lora-targets`), HF Trainer (`--gradient-checkpointing`, `--micro-batch-size` for
//! `per_device_train_batch_size`), DeepSpeed (`--zero`, `--offload-optimizer`,
//! `--offload-params`) and FSDP (`--fsdp full-shard|shard-grad-op|no-shard`). Each
//! requires `--train`.

use super::super::args::{gib, print_record, DeploymentArgs, Format};
use crate::deployment::DEFAULT_HARDWARE;
use crate::finetune::{
    self, AttentionImpl, FinetuneConstants, FinetuneOptions, FinetunePlan, FsdpStrategy,
    LoraConfig, LoraTarget, Offload, OptimizerKind, Precision, TrainMode, ZeroStage,
};
use crate::hardware::HardwareCatalog;
use crate::memory::{usable_capacity_bytes, MemoryModel};
use crate::model::ModelCatalog;
use crate::paths::DataPaths;
use anyhow::{bail, Result};
use clap::Args;

/// Sequence length when `--seq-len` is not given.
const DEFAULT_SEQ_LEN: u32 = 2048;

/// Fine-tuning settings of `servesim memory --train`.
#[derive(Args, Debug, Default)]
pub struct FinetuneArgs {
    /// LoRA rank r (LoRA and QLoRA). Default: 8.
    #[arg(long, value_name = "R", requires = "train")]
    lora_rank: Option<u32>,

    /// LoRA alpha; scales the update by alpha/r and does not change memory. Default: 16.
    #[arg(long, value_name = "ALPHA", requires = "train")]
    lora_alpha: Option<f64>,

    /// Projections that get adapters, comma-separated: q,k,v,o,gate,up,down (PEFT module
    /// names such as q_proj and fc1 work too; `all` for every one). Default: q,v.
    #[arg(long, value_name = "LIST", requires = "train")]
    lora_targets: Option<String>,

    /// Optimizer. Default: adamw.
    #[arg(long, value_enum, requires = "train")]
    optimizer: Option<OptimizerKind>,

    /// Formats of trainable weights and gradients. Default: mixed (full, lora), bf16
    /// (qlora).
    #[arg(long, value_enum, requires = "train")]
    precision: Option<Precision>,

    /// Sequences per GPU per step (HF's per_device_train_batch_size). Default: 1.
    #[arg(long, value_name = "N", requires = "train")]
    micro_batch_size: Option<u32>,

    /// Recompute activations in the backward pass, keeping one input per layer.
    #[arg(long, requires = "train")]
    gradient_checkpointing: bool,

    /// Attention kernel: flash keeps no S×S scores, eager does. Default: flash.
    #[arg(long, value_enum, requires = "train")]
    attention: Option<AttentionImpl>,

    /// DeepSpeed ZeRO stage: 1 shards optimizer states, 2 also gradients, 3 also
    /// parameters, across --num-gpus. Default: 0.
    #[arg(
        long,
        value_name = "STAGE",
        requires = "train",
        conflicts_with = "fsdp"
    )]
    zero: Option<u8>,

    /// PyTorch FSDP sharding (full-shard = ZeRO-3, shard-grad-op = ZeRO-2, no-shard =
    /// ZeRO-0).
    #[arg(long, value_enum, requires = "train")]
    fsdp: Option<FsdpStrategy>,

    /// Data-parallel GPUs the model states are sharded across. Default: 1.
    #[arg(long, value_name = "N", requires = "train")]
    num_gpus: Option<u32>,

    /// Keep optimizer states and master weights in host memory (ZeRO-Offload; stage ≥ 1).
    #[arg(long, requires = "train")]
    offload_optimizer: bool,

    /// Keep parameter shards in host memory (ZeRO-Infinity; stage 3).
    #[arg(long, requires = "train")]
    offload_params: bool,
}

impl FinetuneArgs {
    /// The library's options for `mode`.
    fn options(&self, mode: TrainMode, seq_len: Option<u32>) -> Result<FinetuneOptions> {
        if mode == TrainMode::Full {
            for (flag, given) in [
                ("--lora-rank", self.lora_rank.is_some()),
                ("--lora-alpha", self.lora_alpha.is_some()),
                ("--lora-targets", self.lora_targets.is_some()),
            ] {
                if given {
                    bail!("{flag} applies to --train lora or --train qlora, not --train full");
                }
            }
        }
        let defaults = LoraConfig::default();
        let lora = LoraConfig {
            rank: self.lora_rank.unwrap_or(defaults.rank),
            alpha: self.lora_alpha.unwrap_or(defaults.alpha),
            targets: match &self.lora_targets {
                Some(s) => LoraTarget::parse_list(s)?,
                None => defaults.targets,
            },
        };
        let zero_stage = match (self.zero, self.fsdp) {
            (Some(n), _) => ZeroStage::try_from(n)?,
            (None, Some(f)) => f.zero_stage(),
            (None, None) => ZeroStage::Stage0,
        };
        Ok(FinetuneOptions {
            mode,
            precision: self.precision,
            optimizer: self.optimizer.unwrap_or(OptimizerKind::AdamW),
            lora,
            seq_len: seq_len.unwrap_or(DEFAULT_SEQ_LEN),
            micro_batch_size: self.micro_batch_size.unwrap_or(1),
            gradient_checkpointing: self.gradient_checkpointing,
            attention: self.attention.unwrap_or(AttentionImpl::Flash),
            zero_stage,
            num_gpus: self.num_gpus.unwrap_or(1),
            offload: Offload {
                optimizer: self.offload_optimizer,
                params: self.offload_params,
            },
        })
    }
}

/// Serving-only deployment flags are errors with `--train` rather than silently ignored.
fn reject_serving_flags(d: &DeploymentArgs) -> Result<()> {
    let given = [
        (
            "--tensor-parallel-size",
            d.tensor_parallel_size.is_some_and(|n| n != 1),
        ),
        (
            "--pipeline-parallel-size",
            d.pipeline_parallel_size.is_some_and(|n| n != 1),
        ),
        ("--dtype", d.dtype.is_some()),
        ("--quantization", d.quantization.is_some()),
        ("--kv-cache-dtype", d.kv_cache_dtype.is_some()),
        ("--max-model-len", d.max_model_len.is_some()),
        (
            "--gpu-memory-utilization",
            d.gpu_memory_utilization.is_some(),
        ),
    ];
    for (flag, set) in given {
        if set {
            bail!(
                "{flag} applies to serving plans, not --train (training shards with --zero or \
                 --fsdp, sets formats with --precision, and quantizes the base with --train qlora)"
            );
        }
    }
    Ok(())
}

fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rows(p: &FinetunePlan) -> Vec<(String, String)> {
    let mode = match p.mode {
        TrainMode::Full => "full fine-tune",
        TrainMode::Lora => "LoRA",
        TrainMode::Qlora => "QLoRA (NF4 base)",
    };
    let mut r = vec![
        ("model".into(), p.model.clone()),
        (
            "hardware".into(),
            format!("{} ({} usable)", p.hardware, gib(p.gpu_memory_bytes)),
        ),
        (
            "training".into(),
            format!("{mode}, {}, {}", p.optimizer.name(), p.precision.describe()),
        ),
    ];
    if let (Some(rank), Some(alpha), Some(t)) = (p.lora_rank, p.lora_alpha, &p.lora_targets) {
        let t: Vec<&str> = t.iter().map(|x| x.name()).collect();
        r.push((
            "LoRA".into(),
            format!("r={rank}, alpha={alpha}, targets {}", t.join(",")),
        ));
    }
    r.push((
        "trainable params".into(),
        format!(
            "{} of {} ({:.3} %)",
            count(p.trainable_params),
            count(p.params_total),
            100.0 * p.trainable_params as f64 / p.params_total.max(1) as f64
        ),
    ));
    r.push((
        "GPUs".into(),
        format!(
            "{} data-parallel, ZeRO stage {}",
            p.num_gpus,
            p.zero_stage.number()
        ),
    ));
    r.push((
        "batch".into(),
        format!(
            "micro-batch {} × {} tokens, {} attention{}",
            p.micro_batch_size,
            p.seq_len,
            match p.attention {
                AttentionImpl::Flash => "flash",
                AttentionImpl::Eager => "eager",
            },
            if p.gradient_checkpointing {
                ", gradient checkpointing"
            } else {
                ""
            }
        ),
    ));
    r.push(("per GPU".into(), String::new()));
    r.push(("  weights".into(), gib(p.weights_bytes)));
    r.push(("  gradients".into(), gib(p.gradients_bytes)));
    let master = if p.master_weights_bytes > 0.0 && p.offloaded_optimizer_bytes == 0.0 {
        format!(" (fp32 master {})", gib(p.master_weights_bytes))
    } else {
        String::new()
    };
    r.push((
        "  optimizer states".into(),
        format!("{}{master}", gib(p.optimizer_bytes)),
    ));
    r.push(("  activations".into(), gib(p.activations_bytes)));
    if p.zero3_gather_bytes > 0.0 {
        r.push(("  ZeRO-3 gathered layers".into(), gib(p.zero3_gather_bytes)));
    }
    r.push(("  framework overhead".into(), gib(p.overhead_bytes)));
    r.push(("  total".into(), gib(p.total_bytes_per_gpu)));
    if p.offloaded_optimizer_bytes > 0.0 || p.offloaded_params_bytes > 0.0 {
        r.push((
            "host per GPU".into(),
            format!(
                "{} optimizer + {} parameters",
                gib(p.offloaded_optimizer_bytes),
                gib(p.offloaded_params_bytes)
            ),
        ));
    }
    r.push((
        "fits".into(),
        if p.fits {
            format!(
                "yes ({} free)",
                gib(p.gpu_memory_bytes - p.total_bytes_per_gpu)
            )
        } else {
            format!("no: {} more per GPU needed", gib(p.shortfall_bytes_per_gpu))
        },
    ));
    r.push((
        "minimum GPUs".into(),
        match p.min_gpus {
            Some(n) => format!("{n} at ZeRO stage {}", p.zero_stage.number()),
            None => "none (see note)".into(),
        },
    ));
    r.push((
        "max micro-batch".into(),
        format!("{} on {} GPU(s)", p.max_micro_batch_size, p.num_gpus),
    ));
    r
}

/// The fine-tuning job the flags describe: its options and model (serving-only flags
/// are refused).
fn job(
    mode: TrainMode,
    args: &FinetuneArgs,
    deployment: &DeploymentArgs,
    seq_len: Option<u32>,
    paths: &DataPaths,
) -> Result<(FinetuneOptions, crate::model::ModelSpec)> {
    reject_serving_flags(deployment)?;
    let opts = args.options(mode, seq_len)?;
    let model = ModelCatalog::for_paths(paths)?.resolve(
        deployment
            .model
            .as_deref()
            .unwrap_or(crate::deployment::DEFAULT_MODEL),
    )?;
    Ok((opts, model))
}

/// The fine-tuning plan `servesim memory --train MODE` prints (also when it does not
/// fit: [`fit_check`] is the command's error then).
pub fn plan(mode: TrainMode, m: &super::MemoryArgs, paths: &DataPaths) -> Result<FinetunePlan> {
    let deployment = &m.deployment;
    let (opts, model) = job(mode, &m.finetune, deployment, m.seq_len, paths)?;
    let gpu = HardwareCatalog::load(&paths.hardware_dir())?
        .resolve(deployment.hardware.as_deref().unwrap_or(DEFAULT_HARDWARE))?;
    let capacity = usable_capacity_bytes(&gpu, &MemoryModel::load(&paths.perf_model)?);
    let consts = FinetuneConstants::load(&paths.perf_model)?;
    Ok(finetune::plan(
        &model, &gpu, capacity, &consts, &opts, m.max_gpus,
    )?)
}

/// Print a fine-tuning plan in `format`.
pub fn print_plan(format: Format, plan: &FinetunePlan) -> Result<()> {
    print_record(format, plan, &rows(plan))?;
    if format == Format::Table {
        // Notes are sentences; printed under the table so they do not widen it.
        for n in &plan.notes {
            println!("note: {n}");
        }
    }
    Ok(())
}

/// The command's error when the plan does not fit.
pub fn fit_check(plan: &FinetunePlan) -> Result<()> {
    if !plan.fits {
        bail!(
            "{} does not fit on {} × {} for {} fine-tuning: {} more per GPU needed{}",
            plan.model,
            plan.num_gpus,
            plan.hardware,
            plan.mode.name(),
            gib(plan.shortfall_bytes_per_gpu),
            match plan.min_gpus {
                Some(n) => format!(
                    " (it fits on {n} GPUs at ZeRO stage {})",
                    plan.zero_stage.number()
                ),
                None => String::new(),
            }
        );
    }
    Ok(())
}

/// `memory --train MODE --recommend`'s result: the devices that fit the job, ranked,
/// and those that do not.
#[derive(Debug, serde::Serialize)]
pub struct Recommended {
    model: String,
    mode: &'static str,
    fits: Vec<crate::finetune::recommend::Recommendation>,
    do_not_fit: Vec<String>,
    /// The job's tokens per sequence, micro-batch and ZeRO stage (the table's heading).
    #[serde(skip)]
    job: (u32, u32, u8),
}

/// `memory --train MODE --recommend`: the devices that fit the job, ranked.
pub fn recommend(
    mode: TrainMode,
    m: &super::MemoryArgs,
    paths: &DataPaths,
    devices: &[crate::hardware::GpuSpec],
) -> Result<Recommended> {
    let deployment = &m.deployment;
    if deployment.hardware.is_some() {
        bail!(crate::Error::input(
            "<command line>",
            Some("--recommend"),
            "ranks the whole catalog: leave out --hardware (or drop --recommend)"
        ));
    }
    let (opts, model) = job(mode, &m.finetune, deployment, m.seq_len, paths)?;
    let mm = MemoryModel::load(&paths.perf_model)?;
    let consts = FinetuneConstants::load(&paths.perf_model)?;
    let (fits, do_not_fit) =
        crate::finetune::recommend::recommend(&model, devices, &mm, &consts, &opts, m.max_gpus)?;
    Ok(Recommended {
        model: model.name,
        mode: mode.name(),
        fits,
        do_not_fit,
        job: (
            opts.seq_len,
            opts.micro_batch_size,
            opts.zero_stage.number(),
        ),
    })
}

/// Print a ranking in `format` (`max_gpus`: the search's limit, named in the table).
pub fn print_recommended(format: Format, max_gpus: u32, r: &Recommended) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(r)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            for f in &r.fits {
                w.serialize(f)?;
            }
            w.flush()?;
        }
        Format::Table => {
            let (seq_len, micro_batch_size, zero_stage) = r.job;
            println!(
                "{}: {} fine-tuning, {} tokens per sequence, micro-batch {}, ZeRO stage {}; devices that fit, fewest GPUs first",
                r.model, r.mode, seq_len, micro_batch_size, zero_stage
            );
            let mut t = crate::report::table::Table::new(&[
                "hardware",
                "GPUs",
                "max micro-batch",
                "GiB/GPU",
                "of GiB",
                "USD/h",
            ]);
            for f in &r.fits {
                t.row(vec![
                    f.hardware.clone(),
                    f.gpus.to_string(),
                    f.max_micro_batch_size.to_string(),
                    format!("{:.1}", f.memory_per_gpu_gib),
                    format!("{:.1}", f.capacity_gib),
                    f.usd_per_hour
                        .map_or_else(|| "-".into(), |p| format!("{p:.2}")),
                ]);
            }
            print!("{}", t.render());
            if !r.do_not_fit.is_empty() {
                println!(
                    "no fit within {} GPUs: {}",
                    max_gpus,
                    r.do_not_fit.join(", ")
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    /// Parse `servesim memory ARGS` into the memory arguments.
    fn parse(args: &str) -> Result<super::super::MemoryArgs, clap::Error> {
        let argv = ["servesim", "memory"]
            .into_iter()
            .chain(args.split_whitespace());
        match Cli::try_parse_from(argv)?.command {
            Command::Memory(m) => Ok(*m),
            other => panic!("parsed {other:?}"),
        }
    }

    fn options(args: &str) -> Result<FinetuneOptions> {
        let m = parse(args)?;
        m.finetune
            .options(m.train.expect("--train given"), m.seq_len)
    }

    #[test]
    fn flags_map_to_options() {
        let o = options(
            "--train qlora --fsdp full-shard --num-gpus 4 --lora-targets all --lora-rank 64 \
             --seq-len 512 --micro-batch-size 2 --gradient-checkpointing --attention eager \
             --optimizer adamw-8bit --offload-optimizer",
        )
        .unwrap();
        assert_eq!(o.mode, TrainMode::Qlora);
        assert_eq!(o.zero_stage, ZeroStage::Stage3);
        assert_eq!((o.num_gpus, o.seq_len, o.micro_batch_size), (4, 512, 2));
        assert_eq!(o.lora.rank, 64);
        assert_eq!(o.lora.targets, LoraTarget::ALL);
        assert!(o.gradient_checkpointing && o.offload.optimizer && !o.offload.params);
        assert_eq!(o.attention, AttentionImpl::Eager);
        assert_eq!(o.optimizer, OptimizerKind::AdamW8bit);
        assert_eq!(o.precision(), Precision::Bf16);

        let o = options("--train full --zero 2").unwrap();
        assert_eq!(o.zero_stage, ZeroStage::Stage2);
        assert_eq!((o.seq_len, o.micro_batch_size, o.num_gpus), (2048, 1, 1));
        assert_eq!(o.precision(), Precision::Mixed);
    }

    #[test]
    fn training_flags_need_train_and_lora_flags_need_adapters() {
        assert!(parse("--lora-rank 8").is_err());
        assert!(parse("--train full --zero 3 --fsdp full-shard").is_err());
        let e = options("--train full --lora-targets q")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--lora-targets"), "{e}");
        let e = options("--train lora --zero 4").unwrap_err().to_string();
        assert!(e.contains("--zero"), "{e}");
        let m = parse("--train lora --quantization awq").unwrap();
        let e = reject_serving_flags(&m.deployment).unwrap_err().to_string();
        assert!(e.contains("--quantization"), "{e}");
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(4_194_304), "4,194,304");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
    }
}
