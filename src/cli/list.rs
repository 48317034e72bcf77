//! `servesim list models|hardware|stacks`: the catalogs with their key figures.

use super::args::Format;
use crate::dtype::DType;
use crate::hardware::{DeviceType, HardwareCatalog, HardwareFilter};
use crate::model::{ModelCatalog, ModelFilter};
use crate::paths::DataPaths;
use crate::report::table::Table;
use crate::stack::ServingStack;
use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;

/// What to list.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum What {
    /// Model configs under model_configs/.
    Models,
    /// Accelerators under perf_model/hardware/.
    Hardware,
    /// Serving stacks under perf_model/stacks/ (`--serving-stack NAME`).
    Stacks,
}

/// Arguments of `servesim list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// The catalog to list.
    #[arg(value_enum)]
    what: What,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Models: keep one family, by the config's `model_type` (`qwen3` also keeps
    /// `qwen3_moe`) or a part of the id (`llama`, `deepseek`, `gpt-oss`).
    #[arg(long, value_name = "NAME")]
    family: Option<String>,

    /// Models: keep those with at least this many parameters (total), billions.
    #[arg(long, value_name = "B")]
    min_params: Option<f64>,

    /// Models: keep those with at most this many parameters (total), billions.
    #[arg(long, value_name = "B")]
    max_params: Option<f64>,

    /// Hardware: also list the database tier (about 2,500 GPUs with estimated tensor
    /// rates, perf_model/hardware/database/), after the curated devices.
    #[arg(long)]
    all: bool,

    /// Hardware: keep one kind of device.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    device_type: Option<DeviceType>,

    /// Hardware: keep one vendor (case-insensitive: `nvidia`, `amd`, `intel`, ...).
    #[arg(long, value_name = "NAME")]
    vendor: Option<String>,

    /// Hardware: keep devices with at least this much memory, GiB.
    #[arg(long, value_name = "GIB")]
    min_memory_gib: Option<f64>,
}

impl ListArgs {
    /// Check every filter flag (range, and that it applies to the listed catalog);
    /// the model filter they give.
    fn checked_model_filter(&self) -> Result<ModelFilter> {
        for (flag, v) in [
            ("--min-params", self.min_params),
            ("--max-params", self.max_params),
        ] {
            if let Some(v) = v {
                anyhow::ensure!(
                    v.is_finite() && v >= 0.0,
                    "{flag}: expected a number of billions ≥ 0, got {v}"
                );
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_params, self.max_params) {
            anyhow::ensure!(
                lo <= hi,
                "--min-params {lo} is larger than --max-params {hi}"
            );
        }
        let filtering =
            self.family.is_some() || self.min_params.is_some() || self.max_params.is_some();
        anyhow::ensure!(
            !filtering || matches!(self.what, What::Models),
            "--family, --min-params and --max-params apply to `list models` only"
        );
        let hw_filtering = self.all
            || self.device_type.is_some()
            || self.vendor.is_some()
            || self.min_memory_gib.is_some();
        anyhow::ensure!(
            !hw_filtering || matches!(self.what, What::Hardware),
            "--all, --type, --vendor and --min-memory-gib apply to `list hardware` only"
        );
        if let Some(m) = self.min_memory_gib {
            anyhow::ensure!(
                m.is_finite() && m >= 0.0,
                "--min-memory-gib: expected a number of GiB ≥ 0, got {m}"
            );
        }
        Ok(ModelFilter {
            family: self.family.clone(),
            min_params_b: self.min_params,
            max_params_b: self.max_params,
        })
    }
}

#[derive(Serialize)]
struct ModelRow {
    id: String,
    params_total: u64,
    params_active: u64,
    layers: u64,
    hidden_size: u64,
    attention: String,
    kv_bytes_per_token_bf16: f64,
    weight_gib: f64,
    weight_dtype: String,
    max_position_embeddings: u64,
}

#[derive(Serialize)]
struct HardwareRow {
    name: String,
    vendor: String,
    device_type: DeviceType,
    /// `curated` (perf_model/hardware/*.toml) or `database` (estimated rates).
    tier: &'static str,
    source: String,
    aliases: String,
    memory_gb: f64,
    memory_bandwidth_gb_per_s: f64,
    dense_bf16_tflops: Option<f64>,
    dense_fp8_tflops: Option<f64>,
    intra_node_link: String,
    intra_node_gb_per_s_per_direction: f64,
    gpus_per_node: u32,
    price_usd_per_gpu_hour: Option<f64>,
}

#[derive(Serialize)]
struct StackRow {
    name: String,
    /// The engine it stands for (the stack file's `framework`).
    engine: String,
    description: String,
    platforms: String,
    kernel_generation: String,
    scheduler: String,
    cuda_graphs: String,
    host_step_us: f64,
    host_per_kernel_us: f64,
    /// Host work per sequence that the overlap reaches, µs.
    host_per_sequence_us: f64,
    /// Host work per sequence between iterations whatever the overlap, µs.
    host_per_sequence_serial_us: f64,
    host_overlap: String,
    api_server_request_us: f64,
    /// Validation sets any of the stack's constants was fitted on.
    fitted_on: String,
}

/// The name a unit enum has in the data files (`"full-and-piecewise"`).
fn serde_name(v: impl Serialize) -> Result<String> {
    Ok(serde_json::to_value(v)?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn stack_rows(paths: &DataPaths) -> Result<Vec<StackRow>> {
    let mut rows = Vec::new();
    for name in ServingStack::names(paths) {
        let s = ServingStack::load(paths, Some(&name))?;
        let h = &s.execution.host;
        let mut sets: Vec<&str> = Vec::new();
        for set in s.fitted_sections().into_iter().flat_map(|(_, v)| v) {
            if !sets.contains(&set.as_str()) {
                sets.push(set);
            }
        }
        rows.push(StackRow {
            name: s.name.clone(),
            engine: s.framework.clone(),
            description: s.description.clone(),
            platforms: if s.platforms.is_empty() {
                "any".into()
            } else {
                s.platforms.join(" ")
            },
            kernel_generation: match s.kernel_generation {
                Some(g) => serde_name(g)?,
                None => "-".into(),
            },
            scheduler: serde_name(s.scheduler.kind)?,
            cuda_graphs: serde_name(s.execution.graph_mode)?,
            host_step_us: h.step_us,
            host_per_kernel_us: h.per_kernel_us,
            host_per_sequence_us: h.per_sequence_us,
            host_per_sequence_serial_us: h.per_sequence_serial_us,
            host_overlap: serde_name(h.overlap)?,
            api_server_request_us: s.api_server.request_us,
            fitted_on: sets.join(" "),
        });
    }
    Ok(rows)
}

fn list_stacks(format: Format, paths: &DataPaths) -> Result<()> {
    let rows = stack_rows(paths)?;
    emit(format, &rows, || {
        let mut t = Table::new(&[
            "stack",
            "engine",
            "platforms",
            "kernels",
            "scheduler",
            "CUDA graphs",
            "host µs/iter",
            "µs/kernel",
            "µs/seq",
            "overlap",
            "API µs",
            "fitted on",
        ]);
        for r in &rows {
            t.row(vec![
                r.name.clone(),
                r.engine.clone(),
                r.platforms.clone(),
                r.kernel_generation.clone(),
                r.scheduler.clone(),
                r.cuda_graphs.clone(),
                format!("{:.1}", r.host_step_us),
                format!("{:.2}", r.host_per_kernel_us),
                if r.host_per_sequence_serial_us > 0.0 {
                    format!(
                        "{:.1}+{:.1}",
                        r.host_per_sequence_us, r.host_per_sequence_serial_us
                    )
                } else {
                    format!("{:.1}", r.host_per_sequence_us)
                },
                r.host_overlap.clone(),
                format!("{:.0}", r.api_server_request_us),
                if r.fitted_on.is_empty() {
                    "-".into()
                } else {
                    r.fitted_on.clone()
                },
            ]);
        }
        t
    })
}

fn emit<T: Serialize>(format: Format, rows: &[T], table: impl FnOnce() -> Table) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            for r in rows {
                w.serialize(r)?;
            }
            w.flush()?;
        }
        Format::Table => print!("{}", table().render()),
    }
    Ok(())
}

/// The model catalog's rows that pass `args`' filters (`servesim list models`).
fn model_rows(args: &ListArgs, paths: &DataPaths) -> Result<Vec<ModelRow>> {
    let model_filter = args.checked_model_filter()?;
    let cat = ModelCatalog::load(&paths.model_configs)?;
    cat.entries()
        .iter()
        .filter(|e| model_filter.matches(e))
        .map(|e| -> Result<ModelRow> {
            let s = e.spec()?;
            let p = s.params();
            let attention = s.layers.first().map_or_else(String::new, |l| {
                let a = &l.attention;
                match &a.mla {
                    Some(m) => format!("MLA {}h latent {}", a.num_heads, m.kv_lora_rank),
                    None if a.num_kv_heads == a.num_heads => {
                        format!("MHA {}h×{}", a.num_heads, a.head_dim)
                    }
                    None if a.num_kv_heads == 1 => {
                        format!("MQA {}h×{}", a.num_heads, a.head_dim)
                    }
                    None => {
                        format!("GQA {}q/{}kv×{}", a.num_heads, a.num_kv_heads, a.head_dim)
                    }
                }
            });
            let wdt = s
                .weight_format
                .quantization
                .as_ref()
                .map_or(s.weight_format.torch_dtype, |q| q.dtype);
            Ok(ModelRow {
                id: e.id.clone(),
                params_total: p.total,
                params_active: p.active,
                layers: s.num_layers,
                hidden_size: s.hidden_size,
                attention,
                kv_bytes_per_token_bf16: s.kv_bytes_per_token(DType::Bf16),
                weight_gib: s.weight_bytes(None) / crate::units::BYTES_PER_GIB,
                weight_dtype: wdt.to_string(),
                max_position_embeddings: s.max_position_embeddings,
            })
        })
        .collect::<Result<_>>()
}

/// The hardware catalog's rows that pass `args`' filters (`servesim list hardware`).
fn hardware_rows(args: &ListArgs, paths: &DataPaths) -> Result<Vec<HardwareRow>> {
    let cat = HardwareCatalog::load(&paths.hardware_dir())?;
    let database = if args.all { cat.database()? } else { &[] };
    let filter = HardwareFilter {
        device_type: args.device_type,
        vendor: args.vendor.clone(),
        min_memory_gib: args.min_memory_gib,
    };
    let tiers = cat
        .entries()
        .iter()
        .map(|g| (g, "curated"))
        .chain(database.iter().map(|g| (g, "database")));
    Ok(tiers
        .filter(|(g, _)| filter.matches(g))
        .map(|(g, tier)| HardwareRow {
            name: g.name.clone(),
            vendor: g.vendor.clone(),
            device_type: g.device_type,
            tier,
            source: g.source.clone(),
            aliases: g.aliases.join(" "),
            memory_gb: g.memory_gb,
            memory_bandwidth_gb_per_s: g.memory_bandwidth_gb_per_s,
            dense_bf16_tflops: g.dense_bf16_tflops,
            dense_fp8_tflops: g.dense_fp8_tflops,
            intra_node_link: g.intra_node.name.clone(),
            intra_node_gb_per_s_per_direction: g.intra_node.bandwidth_bytes_per_s / 1e9,
            gpus_per_node: g.gpus_per_node,
            price_usd_per_gpu_hour: g.price_usd_per_gpu_hour,
        })
        .collect())
}

/// The rows `servesim list` prints, as the JSON `--format json` prints (columns in
/// the table's order).
pub fn rows_json(args: &ListArgs, paths: &DataPaths) -> Result<String> {
    args.checked_model_filter()?;
    Ok(match args.what {
        What::Models => serde_json::to_string(&model_rows(args, paths)?)?,
        What::Hardware => serde_json::to_string(&hardware_rows(args, paths)?)?,
        What::Stacks => serde_json::to_string(&stack_rows(paths)?)?,
    })
}

/// Run `servesim list`.
pub fn run(args: ListArgs, paths: &DataPaths) -> Result<()> {
    args.checked_model_filter()?;
    match args.what {
        What::Stacks => list_stacks(args.format, paths),
        What::Models => {
            let rows = model_rows(&args, paths)?;
            emit(args.format, &rows, || {
                let mut t = Table::new(&[
                    "model",
                    "params",
                    "active",
                    "layers",
                    "attention",
                    "KV KiB/tok",
                    "weights GiB",
                    "dtype",
                    "max len",
                ]);
                for r in &rows {
                    t.row(vec![
                        r.id.clone(),
                        format!("{:.2}B", r.params_total as f64 / 1e9),
                        format!("{:.2}B", r.params_active as f64 / 1e9),
                        r.layers.to_string(),
                        r.attention.clone(),
                        format!("{:.1}", r.kv_bytes_per_token_bf16 / 1024.0),
                        format!("{:.1}", r.weight_gib),
                        r.weight_dtype.clone(),
                        r.max_position_embeddings.to_string(),
                    ]);
                }
                t
            })
        }
        What::Hardware => {
            let rows = hardware_rows(&args, paths)?;
            emit(args.format, &rows, || {
                let mut t = Table::new(&[
                    "hardware",
                    "alias",
                    "mem GB",
                    "GB/s",
                    "BF16 TF",
                    "FP8 TF",
                    "link",
                    "link GB/s",
                    "per node",
                    "$/GPU-h",
                    "type",
                    "tier",
                ]);
                let o = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{v}"));
                // Estimated rates carry many digits: one decimal is their precision.
                let r1 = |x: Option<f64>| o(x.map(|v| (v * 10.0).round() / 10.0));
                for r in &rows {
                    t.row(vec![
                        r.name.clone(),
                        r.aliases.split(' ').next().unwrap_or_default().to_owned(),
                        format!("{}", (r.memory_gb * 100.0).round() / 100.0),
                        format!("{}", (r.memory_bandwidth_gb_per_s * 10.0).round() / 10.0),
                        r1(r.dense_bf16_tflops),
                        r1(r.dense_fp8_tflops),
                        r.intra_node_link.clone(),
                        format!("{}", r.intra_node_gb_per_s_per_direction),
                        r.gpus_per_node.to_string(),
                        o(r.price_usd_per_gpu_hour),
                        serde_name(r.device_type).unwrap_or_default(),
                        r.tier.to_owned(),
                    ]);
                }
                t
            })
        }
    }
}
