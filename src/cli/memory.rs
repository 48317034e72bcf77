//! `servesim memory`: the serving memory plan per GPU, or with `--train` the
//! fine-tuning plan (`finetune_args.rs`).

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

/// What `servesim memory` computed for its flags, before it is printed.
enum Computed {
    /// A deployment's serving plan; `min_gpus`: the fewest GPUs --min-gpus found.
    Plan {
        d: Box<Deployment>,
        plan: MemoryPlan,
        min_gpus: bool,
    },
    /// Without --hardware: one row per catalog device, the fewest GPUs that fit.
    Catalog {
        model: String,
        rows: Vec<CatalogRow>,
    },
    /// `--concurrency N` on --hardware.
    Load(LoadOnDevice),
    /// `--concurrency N` over the catalog.
    LoadCatalog(LoadOverCatalog),
    /// `--train MODE`.
    Train(Box<crate::finetune::FinetunePlan>),
    /// `--train MODE --recommend`.
    Recommend(finetune_args::Recommended),
}

/// One catalog device's fewest GPUs (none: no fit within --max-gpus).
#[derive(serde::Serialize)]
struct CatalogRow {
    hardware: String,
    min_gpus: Option<u32>,
    tensor_parallel_size: Option<u32>,
    pipeline_parallel_size: Option<u32>,
    kv_cache_gib_per_gpu: Option<f64>,
    max_kv_tokens: Option<u64>,
}

/// A load's fit on one device.
#[derive(serde::Serialize)]
struct LoadOnDevice {
    model: String,
    load: Load,
    #[serde(flatten)]
    fit: LoadFit,
}

/// A load's fit on every catalog device that holds it.
#[derive(serde::Serialize)]
struct LoadOverCatalog {
    model: String,
    load: Load,
    fits: Vec<LoadFit>,
    do_not_fit: Vec<String>,
}

/// Compute what the flags ask for (no printing, no chart).
fn compute(args: &MemoryArgs, paths: &DataPaths) -> Result<Computed> {
    if let (Some(mode), true) = (args.train, args.recommend) {
        let devices = catalog_devices(args.catalog, paths)?;
        return Ok(Computed::Recommend(finetune_args::recommend(
            mode, args, paths, &devices,
        )?));
    }
    if let Some(mode) = args.train {
        return Ok(Computed::Train(Box::new(finetune_args::plan(
            mode, args, paths,
        )?)));
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
        return for_load(args, &req, paths, &mm, &opts, concurrency);
    }
    if req.hardware.is_none() {
        if args.chart.is_some() {
            anyhow::bail!(crate::Error::input(
                "<command line>",
                Some("--chart"),
                "without --hardware, the chart needs a load: add --concurrency N (and --seq-len)"
            ));
        }
        return min_gpus_over_catalog(args, &req, paths, &mm, &opts);
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
        return Ok(Computed::Plan {
            d: Box::new(d),
            plan,
            min_gpus: true,
        });
    }
    let plan = memory::plan(&d, &mm, &opts);
    Ok(Computed::Plan {
        d: Box::new(d),
        plan,
        min_gpus: false,
    })
}

impl Computed {
    /// What `--format json` prints.
    fn json(&self) -> Result<String> {
        Ok(match self {
            Computed::Plan { plan, .. } => serde_json::to_string_pretty(plan)?,
            Computed::Catalog { rows, .. } => serde_json::to_string_pretty(rows)?,
            Computed::Load(l) => serde_json::to_string_pretty(l)?,
            Computed::LoadCatalog(l) => serde_json::to_string_pretty(l)?,
            Computed::Train(plan) => serde_json::to_string_pretty(plan)?,
            Computed::Recommend(r) => serde_json::to_string_pretty(r)?,
        })
    }

    /// Print in `args.format`.
    fn print(&self, args: &MemoryArgs) -> Result<()> {
        match self {
            Computed::Plan {
                d,
                plan,
                min_gpus: true,
            } => {
                let mut r = rows(plan);
                r.insert(0, ("minimum GPUs".into(), d.num_gpus().to_string()));
                print_record(args.format, plan, &r)
            }
            Computed::Plan { plan, .. } => print_record(args.format, plan, &rows(plan)),
            Computed::Catalog { model, rows } => print_catalog(args.format, model, rows),
            Computed::Load(l) => print_record(args.format, l, &load_rows(&l.model, l.load, &l.fit)),
            Computed::LoadCatalog(l) => print_load_catalog(args, l),
            Computed::Train(plan) => finetune_args::print_plan(args.format, plan),
            Computed::Recommend(r) => {
                finetune_args::print_recommended(args.format, args.max_gpus, r)
            }
        }
    }

    /// Draw `--chart` (a deployment's plan, a load's fits; the other results have none).
    fn chart(&self, args: &MemoryArgs) -> Result<()> {
        let Some(path) = &args.chart else {
            return Ok(());
        };
        match self {
            Computed::Plan {
                d,
                plan,
                min_gpus: false,
            } => memory::chart::write_svg(
                path,
                &format!("{} on {}: memory per GPU", plan.model, plan.hardware),
                &[LoadFit::of_plan(d, plan)],
            )?,
            Computed::Load(l) => memory::chart::write_svg(
                path,
                &format!(
                    "{}: {} × {} tokens on {}, memory per GPU",
                    l.model, l.load.concurrency, l.load.seq_len, l.fit.hardware
                ),
                std::slice::from_ref(&l.fit),
            )?,
            Computed::LoadCatalog(l) => memory::chart::write_svg(
                path,
                &format!(
                    "{}: {} × {} tokens, memory per GPU",
                    l.model, l.load.concurrency, l.load.seq_len
                ),
                &l.fits,
            )?,
            _ => {}
        }
        Ok(())
    }

    /// The command's error for a plan that does not fit (printed first).
    fn fit_check(&self) -> Result<()> {
        match self {
            Computed::Plan {
                d,
                plan,
                min_gpus: false,
            } if !plan.fits => anyhow::bail!(
                "{} does not fit on {} × {} at TP{} PP{}: {} more per GPU needed (try --min-gpus)",
                plan.model,
                d.num_gpus(),
                plan.hardware,
                d.tp,
                d.pp,
                gib(plan.shortfall_bytes_per_gpu)
            ),
            Computed::Train(plan) => finetune_args::fit_check(plan),
            _ => Ok(()),
        }
    }
}

/// What `servesim memory --format json` prints for `args` (whatever `--format` says),
/// with `--chart` drawn. A plan that does not fit is a result here (`fits` false),
/// where the command prints it and then fails.
pub fn json(args: &MemoryArgs, paths: &DataPaths) -> Result<String> {
    let c = compute(args, paths)?;
    c.chart(args)?;
    c.json()
}

/// Run `servesim memory`.
pub fn run(args: MemoryArgs, paths: &DataPaths) -> Result<()> {
    let c = compute(&args, paths)?;
    c.print(&args)?;
    c.chart(&args)?;
    c.fit_check()
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
) -> Result<Computed> {
    let (model, devices, stack) = catalog_search(args, req, paths)?;
    let mut rows = Vec::new();
    for (gpu, d) in deployments(&model, &devices, &stack, req)? {
        let found = memory::min_gpus(&d, mm, opts, args.max_gpus);
        rows.push(CatalogRow {
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
    Ok(Computed::Catalog {
        model: model.name,
        rows,
    })
}

/// Print the fewest GPUs per catalog device in `format`.
fn print_catalog(format: Format, model: &str, rows: &[CatalogRow]) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            for r in rows {
                w.serialize(r)?;
            }
            w.flush()?;
        }
        Format::Table => {
            println!("{model}: fewest GPUs that fit (TP within a node, then PP)");
            let mut t = crate::report::table::Table::new(&[
                "hardware",
                "GPUs",
                "TP",
                "PP",
                "KV GiB/GPU",
                "KV tokens",
            ]);
            let s = |x: Option<String>| x.unwrap_or_else(|| "-".into());
            for r in rows {
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
) -> Result<Computed> {
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
        let fit = mem_load::fit(&d, mm, opts, load, args.max_gpus, fixed).ok_or_else(|| {
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
        return Ok(Computed::Load(LoadOnDevice {
            model: d.model.name.clone(),
            load,
            fit,
        }));
    }
    let (model, devices, stack) = catalog_search(args, req, paths)?;
    let mut load = None;
    let mut fits = Vec::new();
    let mut do_not_fit = Vec::new();
    for (gpu, d) in deployments(&model, &devices, &stack, req)? {
        let l = *load.get_or_insert(Load {
            concurrency,
            seq_len: args.seq_len.unwrap_or(d.max_model_len),
        });
        match mem_load::fit(&d, mm, opts, l, args.max_gpus, false) {
            Some(f) => fits.push(f),
            None => do_not_fit.push(gpu.name.clone()),
        }
    }
    let load = load.unwrap_or(Load {
        concurrency,
        seq_len: args.seq_len.unwrap_or(0),
    });
    Ok(Computed::LoadCatalog(LoadOverCatalog {
        model: model.name,
        load,
        fits,
        do_not_fit,
    }))
}

/// Print a load's fits over the catalog in `args.format`.
fn print_load_catalog(args: &MemoryArgs, l: &LoadOverCatalog) -> Result<()> {
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(l)?),
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
            for f in &l.fits {
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
                l.model, l.load.concurrency, l.load.seq_len
            );
            let mut t = crate::report::table::Table::new(&[
                "hardware", "GPUs", "layout", "GiB/GPU", "budget", "load", "KV load",
            ]);
            for f in &l.fits {
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
            if !l.do_not_fit.is_empty() {
                println!(
                    "no fit within {} GPUs: {}",
                    args.max_gpus,
                    l.do_not_fit.join(", ")
                );
            }
        }
    }
    Ok(())
}
