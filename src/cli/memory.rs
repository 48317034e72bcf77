//! `servesim memory`: the serving memory plan per GPU, or with `--train` the
//! fine-tuning plan ([`finetune_args`]).

use super::args::{gib, print_record, DeploymentArgs, Format};
use crate::deployment::Deployment;
use crate::hardware::GpuSpec;
use crate::hardware::HardwareCatalog;
use crate::memory::load::{self as mem_load, Load, LoadFit};
use crate::memory::{self, MemoryModel, MemoryOptions, MemoryPlan};
use crate::model::ModelCatalog;
use crate::model::ModelSpec;
use crate::paths::DataPaths;
use crate::stack::ServingStack;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

// A child of this command rather than of `cli`, so `cli/mod.rs` stays untouched.
#[path = "finetune_args.rs"]
mod finetune_args;

/// Arguments of `servesim memory`.
#[derive(Args, Debug)]
pub struct MemoryArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,

    /// Plan fine-tuning instead of serving: full, lora or qlora (see the LoRA, optimizer,
    /// ZeRO/FSDP and batch flags, which require it).
    #[arg(long, value_enum, value_name = "MODE")]
    train: Option<crate::finetune::TrainMode>,

    #[command(flatten)]
    finetune: finetune_args::FinetuneArgs,

    /// With --train: rank the devices of the catalog (--catalog) that fit the job, each
    /// with the fewest GPUs that hold it and the largest micro-batch those allow.
    #[arg(long, requires = "train")]
    recommend: bool,

    /// Tokens per KV-cache block.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    block_size: u32,

    /// Tokens in vLLM's profiling forward pass (its --max-num-batched-tokens).
    #[arg(long, default_value_t = 2048)]
    max_num_batched_tokens: u32,

    /// Sequences whose logits the sampler holds (vLLM's --max-num-seqs).
    #[arg(long, default_value_t = 256)]
    max_num_seqs: u32,

    /// Sequence length for "max concurrent sequences" (default: --max-model-len). With
    /// --train: tokens per training sequence (default: 2048).
    #[arg(long, value_name = "TOKENS")]
    seq_len: Option<u32>,

    /// Plan for a load: this many sequences of --seq-len tokens held at once. Gives the
    /// memory of each GPU and the fewest GPUs (replicas × TP × PP) that hold them on
    /// --hardware (only replicas are added when -tp or -pp is given), or without
    /// --hardware one row per catalog device.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Option<u32>,

    /// Draw the memory of a GPU as a stacked bar (weights, KV cache, activations,
    /// overhead) against its budget and capacity into this SVG file; one bar per device
    /// without --hardware (with --concurrency).
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,

    /// Find the fewest GPUs of the given kind (TP within a node, then PP) that fit.
    /// Implied when --hardware is omitted, for every device in the catalog.
    #[arg(long)]
    min_gpus: bool,

    /// Without --hardware: which devices the fewest-GPU search covers: the curated
    /// catalog, or also the database tier (about 2,500 GPUs, estimated rates).
    #[arg(long, value_enum, default_value_t = CatalogScope::Curated)]
    catalog: CatalogScope,

    /// Largest number of GPUs --min-gpus (and --train's minimum-GPU search) tries.
    #[arg(long, default_value_t = 128, value_name = "N")]
    max_gpus: u32,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn rows(p: &MemoryPlan) -> Vec<(String, String)> {
    let mut r = vec![
        ("model".into(), p.model.clone()),
        (
            "hardware".into(),
            format!("{} ({})", p.hardware, gib(p.gpu_memory_bytes)),
        ),
        (
            "parallelism".into(),
            format!(
                "TP{} × PP{} = {} GPUs",
                p.tensor_parallel_size,
                p.pipeline_parallel_size,
                p.tensor_parallel_size * p.pipeline_parallel_size
            ),
        ),
        (
            "parameters".into(),
            format!(
                "{:.3} B total, {:.3} B active",
                p.params_total as f64 / 1e9,
                p.params_active as f64 / 1e9
            ),
        ),
        (
            "weights (all GPUs)".into(),
            format!("{} ({})", gib(p.weight_bytes_total), p.weight_dtype),
        ),
        ("usable per GPU".into(), gib(p.usable_bytes_per_gpu)),
        ("  weights".into(), gib(p.weight_bytes_per_gpu)),
        ("  activation peak".into(), gib(p.activation_bytes_per_gpu)),
        ("  runtime overhead".into(), gib(p.overhead_bytes_per_gpu)),
        ("  KV cache".into(), gib(p.kv_cache_bytes_per_gpu)),
        (
            "KV per token".into(),
            format!(
                "{:.0} B model, {:.0} B per GPU ({})",
                p.kv_bytes_per_token, p.kv_bytes_per_token_per_gpu, p.kv_cache_dtype
            ),
        ),
        (
            "KV blocks".into(),
            format!(
                "{} × {} tokens = {} tokens",
                p.num_gpu_blocks, p.block_size, p.max_kv_tokens
            ),
        ),
        (
            "max concurrent seqs".into(),
            format!("{} at {} tokens", p.max_concurrent_seqs, p.seq_len),
        ),
        (
            "fits".into(),
            if p.fits {
                "yes".into()
            } else {
                format!("no: {} more per GPU needed", gib(p.shortfall_bytes_per_gpu))
            },
        ),
    ];
    if p.max_model_len != p.seq_len {
        r.push(("max model len".into(), p.max_model_len.to_string()));
    }
    r
}

/// Run `servesim memory`.
pub fn run(args: MemoryArgs, paths: &DataPaths) -> Result<()> {
    if let (Some(mode), true) = (args.train, args.recommend) {
        let devices = catalog_devices(args.catalog, paths)?;
        return finetune_args::recommend(mode, &args, paths, &devices);
    }
    if let Some(mode) = args.train {
        return finetune_args::run(mode, &args, paths);
    }
    let mm = MemoryModel::load(&paths.perf_model)?;
    let opts = MemoryOptions {
        block_size: args.block_size,
        max_num_batched_tokens: args.max_num_batched_tokens,
        max_num_seqs: args.max_num_seqs,
        seq_len: args.seq_len,
    };
    let req = args.deployment.request();
    if let Some(concurrency) = args.concurrency {
        return for_load(&args, &req, paths, &mm, &opts, concurrency);
    }
    if req.hardware.is_none() {
        if args.chart.is_some() {
            anyhow::bail!(crate::Error::input(
                "<command line>",
                Some("--chart"),
                "without --hardware, the chart needs a load: add --concurrency N (and --seq-len)"
            ));
        }
        return min_gpus_over_catalog(&args, &req, paths, &mm, &opts);
    }
    let d = Deployment::resolve(&req, paths)?;
    if args.min_gpus {
        let (d, plan) = memory::min_gpus(&d, &mm, &opts, args.max_gpus).ok_or_else(|| {
            anyhow::anyhow!(
                "{} does not fit on {} {} GPUs",
                d.model.name,
                args.max_gpus,
                d.gpu().name
            )
        })?;
        let mut r = rows(&plan);
        r.insert(0, ("minimum GPUs".into(), d.num_gpus().to_string()));
        return print_record(args.format, &plan, &r);
    }
    let plan = memory::plan(&d, &mm, &opts);
    print_record(args.format, &plan, &rows(&plan))?;
    if let Some(path) = &args.chart {
        memory::chart::write_svg(
            path,
            &format!("{} on {}: memory per GPU", plan.model, plan.hardware),
            &[LoadFit::of_plan(&d, &plan)],
        )?;
    }
    if !plan.fits {
        anyhow::bail!(
            "{} does not fit on {} × {} at TP{} PP{}: {} more per GPU needed (try --min-gpus)",
            plan.model,
            d.num_gpus(),
            plan.hardware,
            d.tp,
            d.pp,
            gib(plan.shortfall_bytes_per_gpu)
        );
    }
    Ok(())
}

/// The devices a catalog-wide search covers (`--catalog`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogScope {
    /// The curated device files (perf_model/hardware/*.toml).
    Curated,
    /// The curated devices, then the database tier.
    All,
}

/// The devices `--catalog` covers, curated first.
fn catalog_devices(scope: CatalogScope, paths: &DataPaths) -> Result<Vec<GpuSpec>> {
    let catalog = HardwareCatalog::load(&paths.hardware_dir())?;
    let database = match scope {
        CatalogScope::Curated => &[][..],
        CatalogScope::All => catalog.database()?,
    };
    Ok(catalog.entries().iter().chain(database).cloned().collect())
}

/// What a catalog-wide search runs on: the model, the devices and the serving stack.
fn catalog_search(
    args: &MemoryArgs,
    req: &crate::deployment::DeploymentRequest,
    paths: &DataPaths,
) -> Result<(ModelSpec, Vec<GpuSpec>, Arc<ServingStack>)> {
    let model = ModelCatalog::for_paths(paths)?.resolve(
        req.model
            .as_deref()
            .unwrap_or(crate::deployment::DEFAULT_MODEL),
    )?;
    let stack = Arc::new(ServingStack::load(paths, req.serving_stack.as_deref())?);
    Ok((model, catalog_devices(args.catalog, paths)?, stack))
}

/// The deployment of `model` on each device that can take the flags (a device whose
/// limits a flag exceeds is left out); when no device can, the first device's error,
/// which names the flag (`-tp 0`, `--gpu-memory-utilization 0`, ...).
fn deployments<'g>(
    model: &ModelSpec,
    devices: &'g [GpuSpec],
    stack: &Arc<ServingStack>,
    req: &crate::deployment::DeploymentRequest,
) -> Result<Vec<(&'g GpuSpec, Deployment)>> {
    let mut first_error = None;
    let mut out = Vec::new();
    for gpu in devices {
        match Deployment::from_parts(model.clone(), gpu.clone(), stack.clone(), req) {
            Ok(d) => out.push((gpu, d)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (out.is_empty(), first_error) {
        (true, Some(e)) => Err(e.into()),
        _ => Ok(out),
    }
}

/// One row per catalog device: the fewest GPUs that fit.
fn min_gpus_over_catalog(
    args: &MemoryArgs,
    req: &crate::deployment::DeploymentRequest,
    paths: &DataPaths,
    mm: &MemoryModel,
    opts: &MemoryOptions,
) -> Result<()> {
    let (model, devices, stack) = catalog_search(args, req, paths)?;
    #[derive(serde::Serialize)]
    struct Row {
        hardware: String,
        min_gpus: Option<u32>,
        tensor_parallel_size: Option<u32>,
        pipeline_parallel_size: Option<u32>,
        kv_cache_gib_per_gpu: Option<f64>,
        max_kv_tokens: Option<u64>,
    }
    let mut out = Vec::new();
    for (gpu, d) in deployments(&model, &devices, &stack, req)? {
        let found = memory::min_gpus(&d, mm, opts, args.max_gpus);
        out.push(Row {
            hardware: gpu.name.clone(),
            min_gpus: found.as_ref().map(|(d, _)| d.num_gpus()),
            tensor_parallel_size: found.as_ref().map(|(d, _)| d.tp),
            pipeline_parallel_size: found.as_ref().map(|(d, _)| d.pp),
            kv_cache_gib_per_gpu: found
                .as_ref()
                .map(|(_, p)| p.kv_cache_bytes_per_gpu / crate::units::BYTES_PER_GIB),
            max_kv_tokens: found.as_ref().map(|(_, p)| p.max_kv_tokens),
        });
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            for r in &out {
                w.serialize(r)?;
            }
            w.flush()?;
        }
        Format::Table => {
            println!(
                "{}: fewest GPUs that fit (TP within a node, then PP)",
                model.name
            );
            let mut t = crate::report::table::Table::new(&[
                "hardware",
                "GPUs",
                "TP",
                "PP",
                "KV GiB/GPU",
                "KV tokens",
            ]);
            let s = |x: Option<String>| x.unwrap_or_else(|| "-".into());
            for r in &out {
                t.row(vec![
                    r.hardware.clone(),
                    s(r.min_gpus.map(|x| x.to_string())),
                    s(r.tensor_parallel_size.map(|x| x.to_string())),
                    s(r.pipeline_parallel_size.map(|x| x.to_string())),
                    s(r.kv_cache_gib_per_gpu.map(|x| format!("{x:.1}"))),
                    s(r.max_kv_tokens.map(|x| x.to_string())),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}

/// The rows of a load's fit.
fn load_rows(model: &str, load: Load, f: &LoadFit) -> Vec<(String, String)> {
    let g = &f.per_gpu;
    vec![
        ("model".into(), model.to_owned()),
        (
            "load".into(),
            format!(
                "{} sequences of {} tokens at once",
                load.concurrency, load.seq_len
            ),
        ),
        ("hardware".into(), f.hardware.clone()),
        (
            "GPUs needed".into(),
            format!(
                "{} ({} replica{} × TP{} × PP{}; {} sequences per replica)",
                f.gpus,
                f.replicas,
                if f.replicas == 1 { "" } else { "s" },
                f.tensor_parallel_size,
                f.pipeline_parallel_size,
                f.seqs_per_replica
            ),
        ),
        (
            "per GPU".into(),
            format!(
                "{:.2} GiB of a {:.2} GiB budget ({:.1}%), {:.2} GiB on the GPU",
                g.used_gib,
                g.budget_gib,
                f.memory_load * 100.0,
                g.capacity_gib
            ),
        ),
        ("  weights".into(), format!("{:.2} GiB", g.weights_gib)),
        ("  KV cache".into(), format!("{:.2} GiB", g.kv_gib)),
        (
            "  activations".into(),
            format!("{:.2} GiB", g.activations_gib),
        ),
        ("  overhead".into(), format!("{:.2} GiB", g.overhead_gib)),
        (
            "KV load".into(),
            format!("{:.1}% of the layout's KV cache", f.kv_load * 100.0),
        ),
    ]
}

/// `--concurrency N`: the GPUs and memory for N sequences of --seq-len tokens.
fn for_load(
    args: &MemoryArgs,
    req: &crate::deployment::DeploymentRequest,
    paths: &DataPaths,
    mm: &MemoryModel,
    opts: &MemoryOptions,
    concurrency: u32,
) -> Result<()> {
    if args.seq_len == Some(0) {
        anyhow::bail!(crate::Error::input(
            "<command line>",
            Some("--seq-len"),
            "must be at least 1"
        ));
    }
    if req.hardware.is_some() {
        let d = Deployment::resolve(req, paths)?;
        let load = Load {
            concurrency,
            seq_len: args.seq_len.unwrap_or(d.max_model_len),
        };
        let fixed = req.tensor_parallel_size.is_some() || req.pipeline_parallel_size.is_some();
        let f = mem_load::fit(&d, mm, opts, load, args.max_gpus, fixed).ok_or_else(|| {
            crate::Error::input(
                "<command line>",
                Some("--concurrency"),
                format!(
                    "{} sequences of {} tokens of {} do not fit on {} or fewer {} GPUs{}",
                    load.concurrency,
                    load.seq_len,
                    d.model.name,
                    args.max_gpus,
                    d.gpu().name,
                    if fixed {
                        format!(" at TP{} PP{}", d.tp, d.pp)
                    } else {
                        String::new()
                    }
                ),
            )
        })?;
        #[derive(serde::Serialize)]
        struct Out<'a> {
            model: &'a str,
            load: Load,
            #[serde(flatten)]
            fit: &'a LoadFit,
        }
        let out = Out {
            model: &d.model.name,
            load,
            fit: &f,
        };
        print_record(args.format, &out, &load_rows(&d.model.name, load, &f))?;
        if let Some(path) = &args.chart {
            memory::chart::write_svg(
                path,
                &format!(
                    "{}: {} × {} tokens on {}, memory per GPU",
                    d.model.name, load.concurrency, load.seq_len, f.hardware
                ),
                std::slice::from_ref(&f),
            )?;
        }
        return Ok(());
    }
    let (model, devices, stack) = catalog_search(args, req, paths)?;
    let mut load = None;
    let mut fits = Vec::new();
    let mut none = Vec::new();
    for (gpu, d) in deployments(&model, &devices, &stack, req)? {
        let l = *load.get_or_insert(Load {
            concurrency,
            seq_len: args.seq_len.unwrap_or(d.max_model_len),
        });
        match mem_load::fit(&d, mm, opts, l, args.max_gpus, false) {
            Some(f) => fits.push(f),
            None => none.push(gpu.name.clone()),
        }
    }
    let load = load.unwrap_or(Load {
        concurrency,
        seq_len: args.seq_len.unwrap_or(0),
    });
    match args.format {
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Out<'a> {
                model: &'a str,
                load: Load,
                fits: &'a [LoadFit],
                do_not_fit: &'a [String],
            }
            let out = Out {
                model: &model.name,
                load,
                fits: &fits,
                do_not_fit: &none,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record([
                "hardware",
                "gpus",
                "replicas",
                "tensor_parallel_size",
                "pipeline_parallel_size",
                "weights_gib",
                "kv_gib",
                "activations_gib",
                "overhead_gib",
                "used_gib",
                "budget_gib",
                "memory_load",
                "kv_load",
            ])?;
            for f in &fits {
                let g = &f.per_gpu;
                w.write_record([
                    f.hardware.clone(),
                    f.gpus.to_string(),
                    f.replicas.to_string(),
                    f.tensor_parallel_size.to_string(),
                    f.pipeline_parallel_size.to_string(),
                    format!("{:.3}", g.weights_gib),
                    format!("{:.3}", g.kv_gib),
                    format!("{:.3}", g.activations_gib),
                    format!("{:.3}", g.overhead_gib),
                    format!("{:.3}", g.used_gib),
                    format!("{:.3}", g.budget_gib),
                    format!("{:.4}", f.memory_load),
                    format!("{:.4}", f.kv_load),
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
            println!(
                "{}: {} sequences of {} tokens at once; fewest GPUs per device (replicas × TP × PP)",
                model.name, load.concurrency, load.seq_len
            );
            let mut t = crate::report::table::Table::new(&[
                "hardware", "GPUs", "layout", "GiB/GPU", "budget", "load", "KV load",
            ]);
            for f in &fits {
                t.row(vec![
                    f.hardware.clone(),
                    f.gpus.to_string(),
                    format!(
                        "{}×TP{}×PP{}",
                        f.replicas, f.tensor_parallel_size, f.pipeline_parallel_size
                    ),
                    format!("{:.1}", f.per_gpu.used_gib),
                    format!("{:.1}", f.per_gpu.budget_gib),
                    format!("{:.0}%", f.memory_load * 100.0),
                    format!("{:.0}%", f.kv_load * 100.0),
                ]);
            }
            print!("{}", t.render());
            if !none.is_empty() {
                println!("no fit within {} GPUs: {}", args.max_gpus, none.join(", "));
            }
        }
    }
    if let Some(path) = &args.chart {
        memory::chart::write_svg(
            path,
            &format!(
                "{}: {} × {} tokens, memory per GPU",
                model.name, load.concurrency, load.seq_len
            ),
            &fits,
        )?;
    }
    Ok(())
}
