//! One accelerator: [`GpuSpec`], loaded from a `perf_model/hardware/<slug>.toml` file.
//!
//! The file holds the vendor's figures in the units vendors print (GB, GB/s, TFLOPS,
//! with the unit in each key, see `perf_model/hardware/README.md`); [`GpuSpec`] keeps
//! them as written and converts to SI (bytes, bytes/s, FLOP/s) in its accessors. Links
//! are named by key and resolved against the [`Interconnects`] table while loading.

use super::interconnect::Interconnects;
use super::link::LinkSpec;
use super::parse::{from_toml, invalid, read_text};
use crate::dtype::DType;
use crate::error::Result;
use crate::units::BYTES_PER_GB;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The host CPU architecture of a device file that names none.
pub const DEFAULT_HOST_CPU_ARCH: &str = "x86_64";

/// FLOP/s in one TFLOPS (and op/s in one TOPS).
const FLOPS_PER_TFLOPS: f64 = 1e12;

/// The on-disk form of a device file. Keys carry their units.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuFile {
    name: String,
    vendor: String,
    #[serde(default)]
    aliases: Vec<String>,
    launch_year: u16,
    tdp_w: Option<f64>,
    memory_gb: f64,
    memory_bytes: Option<u64>,
    memory_bandwidth_gb_per_s: f64,
    dense_bf16_tflops: Option<f64>,
    dense_fp16_tflops: Option<f64>,
    dense_fp8_tflops: Option<f64>,
    dense_fp4_tflops: Option<f64>,
    dense_int8_tops: Option<f64>,
    fp32_tflops: Option<f64>,
    intra_node_link: String,
    intra_node_link_name: Option<String>,
    intra_node_bandwidth_gb_per_s_per_direction: Option<f64>,
    pcie_gen: Option<u8>,
    pcie_bandwidth_gb_per_s_per_direction: Option<f64>,
    gpus_per_node: u32,
    inter_node_link: String,
    inter_node_nics_per_gpu: Option<f64>,
    price_usd_per_gpu_hour: Option<f64>,
    price_source: Option<String>,
    source: String,
    notes: Option<String>,
    uncertain: Option<String>,
    compute_twin: Option<String>,
    host_cpu_arch: Option<String>,
    l2_cache_mb: Option<f64>,
    device_type: Option<DeviceType>,
}

/// What kind of device an entry is (`list hardware --type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    /// A discrete GPU or accelerator module.
    Gpu,
    /// A CPU socket.
    Cpu,
    /// Google's TPU.
    Tpu,
    /// Another neural-network accelerator (Gaudi, ...).
    Npu,
    /// A system on a chip with unified memory (Apple M-series, integrated GPUs).
    Soc,
}

impl DeviceType {
    /// The type a device file without `device_type` has: TPU for Google, NPU for
    /// Gaudi, SoC for Apple, else GPU.
    fn inferred(vendor: &str, name: &str) -> Self {
        let (v, n) = (vendor.to_ascii_lowercase(), name.to_ascii_lowercase());
        if v == "google" || n.contains("tpu") {
            DeviceType::Tpu
        } else if n.contains("gaudi") {
            DeviceType::Npu
        } else if v == "apple" {
            DeviceType::Soc
        } else {
            DeviceType::Gpu
        }
    }
}

/// One accelerator's peak figures, links and node defaults.
///
/// Fields keep the units of the data file (in their names); the accessors return SI
/// units. Rates are *dense* (no 2:4 sparsity) peaks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GpuSpec {
    /// Canonical name (`"H100-SXM5-80GB"`).
    pub name: String,
    /// Vendor (`"NVIDIA"`).
    pub vendor: String,
    /// Short lowercase names that also resolve to this device (`"h100"`).
    pub aliases: Vec<String>,
    /// Year of announcement or first availability.
    pub launch_year: u16,
    /// Maximum board/module power, W (absent when the vendor publishes none).
    pub tdp_w: Option<f64>,
    /// Device memory as marketed, in decimal GB (see [`GpuSpec::memory_bytes`]).
    pub memory_gb: f64,
    /// Exact device memory in bytes where known (driver-reported or documented in
    /// binary units); overrides `memory_gb` in [`GpuSpec::memory_bytes`].
    pub exact_memory_bytes: Option<u64>,
    /// Peak memory bandwidth, GB/s (1e9 bytes/s).
    pub memory_bandwidth_gb_per_s: f64,
    /// Dense BF16 tensor rate (FP32 accumulate), TFLOPS.
    pub dense_bf16_tflops: Option<f64>,
    /// Dense FP16 tensor rate (FP32 accumulate), TFLOPS.
    pub dense_fp16_tflops: Option<f64>,
    /// Dense FP8 tensor rate, TFLOPS.
    pub dense_fp8_tflops: Option<f64>,
    /// Dense FP4 (NVFP4) tensor rate, TFLOPS.
    pub dense_fp4_tflops: Option<f64>,
    /// Dense INT8 tensor rate, TOPS.
    pub dense_int8_tops: Option<f64>,
    /// FP32 non-tensor (vector/CUDA-core) rate, TFLOPS.
    pub fp32_tflops: Option<f64>,
    /// Host PCIe generation (absent where not a user-visible PCIe device).
    pub pcie_gen: Option<u8>,
    /// Host PCIe x16 theoretical rate per direction, GB/s.
    pub pcie_bandwidth_gb_per_s_per_direction: Option<f64>,
    /// Default GPUs per node: the GPUs that share the intra-node link.
    pub gpus_per_node: u32,
    /// Scale-up link between GPUs of one node.
    pub intra_node: LinkSpec,
    /// Default scale-out link per GPU (NIC rate × NICs per GPU).
    pub inter_node: LinkSpec,
    /// Host PCIe link (also the GPU-GPU path beyond an NVLink bridge's pair).
    pub host: Option<LinkSpec>,
    /// Rental price, USD per GPU-hour; absent = unknown. Shipped only with a cited,
    /// dated source (see `price_source`).
    pub price_usd_per_gpu_hour: Option<f64>,
    /// Where the default price comes from, with the date it was read.
    pub price_source: Option<String>,
    /// Where the figures come from.
    pub source: String,
    /// Explanations (accumulate modes, derivations, defaults).
    pub notes: Option<String>,
    /// Figures that are not certain, and why.
    pub uncertain: Option<String>,
    /// The catalog file (stem) of a device with the same chip, enabled units and clocks,
    /// which differs only in its memory (H200 and GH200 for H100 SXM): its kernel
    /// measurements describe this device's compute where this device has none of the
    /// serving stack's kernel generation.
    pub compute_twin: Option<String>,
    /// The instruction set of the host CPU the device comes with (`x86_64` unless the
    /// file says otherwise; `aarch64` for Grace superchips): which builds of an
    /// engine's packages exist for it.
    pub host_cpu_arch: String,
    /// On-chip L2 cache, MB (1e6 bytes), where the file gives it.
    pub l2_cache_mb: Option<f64>,
    /// The file this spec was loaded from.
    pub path: Option<PathBuf>,
    /// What kind of device this is.
    pub device_type: DeviceType,
}

impl GpuSpec {
    /// Load a device file, resolving its link keys against `links`.
    pub fn load(path: &Path, links: &Interconnects) -> Result<Self> {
        let text = read_text(path)?;
        Self::from_toml_str(&text, path, links)
    }

    /// Parse a device file's `text`; `path` is used in error messages.
    pub fn from_toml_str(text: &str, path: &Path, links: &Interconnects) -> Result<Self> {
        let f: GpuFile = from_toml(path, text)?;
        let bad = |key: &str, msg: String| invalid(path, text, None, key, msg);
        let positive = |key: &str, v: Option<f64>| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => {
                Err(bad(key, format!("must be a positive number, got {x}")))
            }
            _ => Ok(()),
        };

        if f.name.trim().is_empty() {
            return Err(bad("name", "must not be empty".into()));
        }
        if let Some(a) = f.aliases.iter().find(|a| a.trim().is_empty()) {
            return Err(bad("aliases", format!("empty alias `{a}`")));
        }
        positive("memory_gb", Some(f.memory_gb))?;
        positive(
            "memory_bandwidth_gb_per_s",
            Some(f.memory_bandwidth_gb_per_s),
        )?;
        positive("tdp_w", f.tdp_w)?;
        positive("dense_bf16_tflops", f.dense_bf16_tflops)?;
        positive("dense_fp16_tflops", f.dense_fp16_tflops)?;
        positive("dense_fp8_tflops", f.dense_fp8_tflops)?;
        positive("dense_fp4_tflops", f.dense_fp4_tflops)?;
        positive("dense_int8_tops", f.dense_int8_tops)?;
        positive("fp32_tflops", f.fp32_tflops)?;
        positive(
            "intra_node_bandwidth_gb_per_s_per_direction",
            f.intra_node_bandwidth_gb_per_s_per_direction,
        )?;
        positive(
            "pcie_bandwidth_gb_per_s_per_direction",
            f.pcie_bandwidth_gb_per_s_per_direction,
        )?;
        positive("inter_node_nics_per_gpu", f.inter_node_nics_per_gpu)?;
        if f.memory_bytes == Some(0) {
            return Err(bad("memory_bytes", "must be positive".into()));
        }
        if f.price_usd_per_gpu_hour.is_some() && f.price_source.is_none() {
            return Err(bad(
                "price_source",
                "a price needs its source and date (`price_source`)".into(),
            ));
        }
        if let Some(p) = f.price_usd_per_gpu_hour {
            if !(p.is_finite() && p >= 0.0) {
                return Err(bad(
                    "price_usd_per_gpu_hour",
                    format!("must be ≥ 0, got {p}"),
                ));
            }
        }
        if let Some(t) = &f.compute_twin {
            let own = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            if t.trim().is_empty() || own.as_deref() == Some(t.as_str()) {
                return Err(bad(
                    "compute_twin",
                    format!("`{t}` must name another device file (its stem)"),
                ));
            }
        }
        if f.gpus_per_node == 0 {
            return Err(bad("gpus_per_node", "must be at least 1".into()));
        }

        // Intra-node link: the entry's latency and efficiency, the device's rate.
        let mut intra = links
            .link_spec(&f.intra_node_link)
            .ok_or_else(|| bad("intra_node_link", links.unknown_link(&f.intra_node_link)))?;
        if let Some(bw) = f.intra_node_bandwidth_gb_per_s_per_direction {
            set_bandwidth(&mut intra, bw * BYTES_PER_GB);
        }
        if let Some(n) = f.intra_node_link_name {
            intra.name = n;
        }

        // Scale-out: per-NIC entry × NICs per GPU.
        let mut inter = links
            .link_spec(&f.inter_node_link)
            .ok_or_else(|| bad("inter_node_link", links.unknown_link(&f.inter_node_link)))?;
        if let Some(k) = f.inter_node_nics_per_gpu {
            inter.bandwidth_bytes_per_s *= k;
            inter.pair_bandwidth_bytes_per_s *= k;
        }

        // Host PCIe: the table's entry for the generation, at the device's rate if given.
        let host = match f.pcie_gen {
            None => None,
            Some(gen) => {
                let (key, _) = links.pcie(gen).ok_or_else(|| {
                    bad(
                        "pcie_gen",
                        format!("no link in {} has pcie_gen = {gen}", links.path().display()),
                    )
                })?;
                let mut l = links.link_spec(key).expect("key from the table");
                if let Some(bw) = f.pcie_bandwidth_gb_per_s_per_direction {
                    set_bandwidth(&mut l, bw * BYTES_PER_GB);
                }
                Some(l)
            }
        };
        let pcie_bandwidth = f.pcie_bandwidth_gb_per_s_per_direction.or_else(|| {
            host.as_ref()
                .map(|l| l.bandwidth_bytes_per_s / BYTES_PER_GB)
        });

        let device_type = f
            .device_type
            .unwrap_or_else(|| DeviceType::inferred(&f.vendor, &f.name));
        Ok(GpuSpec {
            name: f.name.trim().to_owned(),
            vendor: f.vendor,
            aliases: f.aliases.iter().map(|a| a.trim().to_owned()).collect(),
            launch_year: f.launch_year,
            tdp_w: f.tdp_w,
            memory_gb: f.memory_gb,
            exact_memory_bytes: f.memory_bytes,
            memory_bandwidth_gb_per_s: f.memory_bandwidth_gb_per_s,
            dense_bf16_tflops: f.dense_bf16_tflops,
            dense_fp16_tflops: f.dense_fp16_tflops,
            dense_fp8_tflops: f.dense_fp8_tflops,
            dense_fp4_tflops: f.dense_fp4_tflops,
            dense_int8_tops: f.dense_int8_tops,
            fp32_tflops: f.fp32_tflops,
            pcie_gen: f.pcie_gen,
            pcie_bandwidth_gb_per_s_per_direction: pcie_bandwidth,
            gpus_per_node: f.gpus_per_node,
            intra_node: intra,
            inter_node: inter,
            host,
            price_usd_per_gpu_hour: f.price_usd_per_gpu_hour,
            price_source: f.price_source,
            source: f.source,
            notes: f.notes,
            uncertain: f.uncertain,
            compute_twin: f.compute_twin,
            host_cpu_arch: f
                .host_cpu_arch
                .map_or_else(|| DEFAULT_HOST_CPU_ARCH.to_owned(), |a| a.trim().to_owned()),
            l2_cache_mb: f.l2_cache_mb,
            path: Some(path.to_owned()),
            device_type,
        })
    }

    /// L2 cache in bytes (0 where the file does not give it).
    pub fn l2_cache_bytes(&self) -> f64 {
        self.l2_cache_mb.map_or(0.0, |mb| mb * 1e6)
    }

    /// Device memory in bytes: `exact_memory_bytes` where the file gives it, else the
    /// marketed `memory_gb × 1e9`.
    ///
    /// Vendors' "80 GB" is often closer to 80 GiB of physical memory, so the decimal
    /// figure is a lower bound (by up to 7.4 %); the driver reserves some of it, and
    /// engines take a further fraction (`gpu_memory_utilization`).
    pub fn memory_bytes(&self) -> f64 {
        self.exact_memory_bytes
            .map_or(self.memory_gb * BYTES_PER_GB, |b| b as f64)
    }

    /// Peak memory bandwidth, bytes/s.
    pub fn memory_bandwidth_bytes_per_s(&self) -> f64 {
        self.memory_bandwidth_gb_per_s * BYTES_PER_GB
    }

    /// Peak dense math rate for `dtype`, FLOP/s (op/s for int8), or `None` where the
    /// device has no such rate.
    ///
    /// Weight-only formats (int4, mxfp4) run at the 16-bit rate
    /// ([`DType::compute_dtype`]). BF16 falls back to the FP16 rate where BF16 is absent
    /// (V100, T4) and FP16 to BF16 (TPUs). FP32 is the non-tensor rate. FP8, NVFP4 and
    /// INT8 do not fall back: an engine running FP8 weights on a device without FP8
    /// (weight-only kernels on Ampere) should ask for the 16-bit rate itself.
    pub fn peak_flops(&self, dtype: DType) -> Option<f64> {
        let tflops = match dtype.compute_dtype() {
            DType::Bf16 => self.dense_bf16_tflops.or(self.dense_fp16_tflops),
            DType::Fp16 => self.dense_fp16_tflops.or(self.dense_bf16_tflops),
            DType::Fp8 => self.dense_fp8_tflops,
            DType::Nvfp4 => self.dense_fp4_tflops,
            DType::Int8 => self.dense_int8_tops,
            DType::Fp32 => self.fp32_tflops,
            DType::Int4 | DType::Mxfp4 => unreachable!("compute_dtype maps these to bf16"),
        };
        tflops.map(|t| t * FLOPS_PER_TFLOPS)
    }

    /// The scale-up link between GPUs of one node.
    pub fn intra_node_link(&self) -> &LinkSpec {
        &self.intra_node
    }

    /// The default scale-out link of one GPU.
    pub fn inter_node_link(&self) -> &LinkSpec {
        &self.inter_node
    }

    /// The host PCIe link, where the device has one.
    pub fn host_link(&self) -> Option<&LinkSpec> {
        self.host.as_ref()
    }

    /// Host PCIe x16 theoretical rate per direction, bytes/s.
    pub fn pcie_bandwidth_bytes_per_s(&self) -> Option<f64> {
        self.pcie_bandwidth_gb_per_s_per_direction
            .map(|g| g * BYTES_PER_GB)
    }

    /// `link` as this device drives it: the device's own port rate caps the link's (a
    /// PCIe link at the device's PCIe rate, any other at its scale-up rate), so a flag
    /// naming a link describes the kind of link, not a faster device. A capped link
    /// says so in its name.
    pub fn capped_link(&self, mut link: LinkSpec) -> LinkSpec {
        let port = if link.key.starts_with("pcie") {
            self.pcie_bandwidth_bytes_per_s()
        } else {
            Some(self.intra_node.bandwidth_bytes_per_s)
        };
        if let Some(p) = port.filter(|&p| p < link.bandwidth_bytes_per_s) {
            set_bandwidth(&mut link, p);
            link.name = format!(
                "{} at {}'s {:.2} GB/s per direction",
                link.name,
                self.name,
                p / BYTES_PER_GB
            );
        }
        link
    }

    /// The canonical name followed by the aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The same device with a rental price (USD per GPU-hour), for cost planning.
    pub fn with_price_usd_per_gpu_hour(mut self, price: f64) -> Self {
        self.price_usd_per_gpu_hour = Some(price);
        self
    }
}

/// Set a link's per-GPU rate; a pair gets the smaller of its own rate and the new one
/// (a pair rate equal to the aggregate follows it).
fn set_bandwidth(link: &mut LinkSpec, bytes_per_s: f64) {
    let pair_is_full = link.pair_bandwidth_bytes_per_s >= link.bandwidth_bytes_per_s;
    link.bandwidth_bytes_per_s = bytes_per_s;
    link.pair_bandwidth_bytes_per_s = if pair_is_full {
        bytes_per_s
    } else {
        link.pair_bandwidth_bytes_per_s.min(bytes_per_s)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::paths::DataPaths;

    fn links() -> Interconnects {
        Interconnects::load(&DataPaths::builtin().perf_model.join("interconnects.toml")).unwrap()
    }

    const MINIMAL: &str = r#"
name = "Toy-1"
vendor = "Acme"
aliases = ["toy"]
launch_year = 2030
memory_gb = 10
memory_bandwidth_gb_per_s = 100
dense_fp16_tflops = 50
dense_fp8_tflops = 100
fp32_tflops = 5
intra_node_link = "nvlink3-bridge"
intra_node_bandwidth_gb_per_s_per_direction = 20
pcie_gen = 4
gpus_per_node = 4
inter_node_link = "ib-hdr"
inter_node_nics_per_gpu = 0.5
source = "test"
"#;

    fn toy() -> GpuSpec {
        GpuSpec::from_toml_str(MINIMAL, Path::new("toy.toml"), &links()).unwrap()
    }

    #[test]
    fn units_convert_to_si() {
        let g = toy();
        assert_eq!(g.memory_bytes(), 10e9);
        assert_eq!(g.memory_bandwidth_bytes_per_s(), 100e9);
        assert_eq!(g.peak_flops(DType::Fp16), Some(50e12));
        assert_eq!(g.peak_flops(DType::Fp32), Some(5e12));
        assert_eq!(g.price_usd_per_gpu_hour, None);
    }

    #[test]
    fn sixteen_bit_rates_fall_back_and_weight_only_formats_use_them() {
        let g = toy();
        assert_eq!(g.peak_flops(DType::Bf16), Some(50e12));
        assert_eq!(g.peak_flops(DType::Int4), Some(50e12));
        assert_eq!(g.peak_flops(DType::Mxfp4), Some(50e12));
        assert_eq!(g.peak_flops(DType::Fp8), Some(100e12));
        assert_eq!(g.peak_flops(DType::Int8), None);
        // NVFP4 is W4A4: its own rate, absent here, with no fallback.
        assert_eq!(g.peak_flops(DType::Nvfp4), None);
        let fp4 = MINIMAL.replace("fp32_tflops = 5", "fp32_tflops = 5\ndense_fp4_tflops = 200");
        let g = GpuSpec::from_toml_str(&fp4, Path::new("toy.toml"), &links()).unwrap();
        assert_eq!(g.peak_flops(DType::Nvfp4), Some(200e12));
    }

    #[test]
    fn links_take_the_device_rate_and_the_table_latency() {
        let g = toy();
        let table = links();
        let entry = table.link("nvlink3-bridge").unwrap();
        assert_eq!(g.intra_node_link().bandwidth_bytes_per_s, 20e9);
        assert_eq!(g.intra_node_link().pair_bandwidth_bytes_per_s, 20e9);
        assert_eq!(g.intra_node_link().latency_s, entry.latency_us * 1e-6);
        assert_eq!(g.intra_node_link().max_gpus, Some(2));
        // 0.5 × HDR 25 GB/s per NIC.
        assert_eq!(g.inter_node_link().bandwidth_bytes_per_s, 12.5e9);
        // PCIe rate from the table when the file gives only the generation.
        assert_eq!(g.pcie_bandwidth_bytes_per_s(), Some(31.5e9));
        assert_eq!(g.host_link().unwrap().key, "pcie4");
    }

    #[test]
    fn unknown_link_is_an_input_error_with_suggestions() {
        let text = MINIMAL.replace("\"ib-hdr\"", "\"ib-hrd\"");
        let e = GpuSpec::from_toml_str(&text, Path::new("toy.toml"), &links()).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("toy.toml:15: field `inter_node_link`: unknown link `ib-hrd`"),
            "{s}"
        );
        assert!(s.contains("ib-hdr"), "{s}");
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let text = MINIMAL.replace("memory_gb = 10", "memory_gb = -10");
        let e = GpuSpec::from_toml_str(&text, Path::new("toy.toml"), &links()).unwrap_err();
        assert!(
            e.to_string().starts_with("toy.toml:6: field `memory_gb`"),
            "{e}"
        );
        let text = MINIMAL.replace("gpus_per_node = 4", "gpus_per_node = 0");
        let e = GpuSpec::from_toml_str(&text, Path::new("toy.toml"), &links()).unwrap_err();
        assert!(
            matches!(e, Error::Input { ref field, .. } if field.as_deref() == Some("gpus_per_node"))
        );
    }

    #[test]
    fn typo_in_a_key_is_rejected() {
        let text = MINIMAL.replace("fp32_tflops", "fp32_tflop");
        let e = GpuSpec::from_toml_str(&text, Path::new("toy.toml"), &links()).unwrap_err();
        let Error::Input { field, line, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(field.as_deref(), Some("fp32_tflop"));
        assert_eq!(*line, Some(10));
    }

    #[test]
    fn a_compute_twin_names_another_device_file() {
        let with = |twin: &str| format!("{MINIMAL}compute_twin = \"{twin}\"\n");
        let g = GpuSpec::from_toml_str(&with("h100-sxm5-80gb"), Path::new("toy.toml"), &links())
            .unwrap();
        assert_eq!(g.compute_twin.as_deref(), Some("h100-sxm5-80gb"));
        assert_eq!(toy().compute_twin, None);
        for bad in ["toy", " "] {
            let e =
                GpuSpec::from_toml_str(&with(bad), Path::new("toy.toml"), &links()).unwrap_err();
            assert!(
                matches!(e, Error::Input { ref field, .. } if field.as_deref() == Some("compute_twin")),
                "{e}"
            );
        }
        // The shipped H200 names the H100 SXM, whose file exists.
        let dir = crate::paths::DataPaths::builtin().hardware_dir();
        let cat = crate::hardware::HardwareCatalog::load(&dir).unwrap();
        let twin = cat.get("h200").unwrap().compute_twin.clone().unwrap();
        assert_eq!(cat.get(&twin).unwrap().name, "H100-SXM5-80GB");
        // Found by file stem, as the measured model looks it up.
        assert_eq!(cat.by_file_stem(&twin).unwrap().name, "H100-SXM5-80GB");
        assert_eq!(cat.by_file_stem("gh200").unwrap().name, "GH200-96GB");
        assert!(cat.by_file_stem("no-such-device").is_none());
    }

    #[test]
    fn price_can_be_set_for_planning() {
        let g = toy().with_price_usd_per_gpu_hour(2.5);
        assert_eq!(g.price_usd_per_gpu_hour, Some(2.5));
    }
}
