//! The set of known devices: every `*.toml` file of a folder, looked up by name.
//!
//! Names resolve case-insensitively by canonical name or alias, then by a unique
//! *normalised* match (lowercase, only letters and digits: `"H100 SXM5 80GB"`,
//! `"h100_sxm5_80gb"` and `"H100-SXM5-80GB"` are the same). A path to a `.toml` file
//! also resolves, so a user can try a device without adding it to the folder.

use super::interconnect::Interconnects;
use super::spec::GpuSpec;
use crate::error::{closest_names, Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The interconnect table's file name, looked for in the hardware folder and then in
/// its parent (`perf_model/interconnects.toml`).
pub const INTERCONNECTS_FILE: &str = "interconnects.toml";

/// How many "did you mean" suggestions an unknown name gets.
const SUGGESTIONS: usize = 3;

/// Which devices a listing keeps (`servesim list hardware --type --vendor
/// --min-memory-gib`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HardwareFilter {
    /// One kind of device.
    pub device_type: Option<super::DeviceType>,
    /// One vendor, case-insensitively.
    pub vendor: Option<String>,
    /// Smallest device memory kept, GiB.
    pub min_memory_gib: Option<f64>,
}

impl HardwareFilter {
    /// Whether `g` passes every given condition.
    pub fn matches(&self, g: &GpuSpec) -> bool {
        self.device_type.is_none_or(|t| g.device_type == t)
            && self
                .vendor
                .as_deref()
                .is_none_or(|v| g.vendor.eq_ignore_ascii_case(v.trim()))
            && self
                .min_memory_gib
                .is_none_or(|m| g.memory_bytes() / crate::units::BYTES_PER_GIB >= m)
    }
}

/// Every device of a hardware folder.
#[derive(Clone, Debug)]
pub struct HardwareCatalog {
    dir: PathBuf,
    interconnects: Interconnects,
    /// Sorted by lowercase name.
    entries: Vec<GpuSpec>,
    /// Lowercase name or alias → index into `entries`.
    exact: HashMap<String, usize>,
    /// The database tier (`database/`), read on first use.
    database: std::sync::OnceLock<Vec<GpuSpec>>,
}

impl HardwareCatalog {
    /// Load every `*.toml` device file in `dir` (usually
    /// [`DataPaths::hardware_dir`](crate::paths::DataPaths::hardware_dir)).
    ///
    /// The interconnect table is `dir/interconnects.toml` if present (and then not read
    /// as a device), else `dir/../interconnects.toml`. A malformed file is an
    /// [`Error::Input`] naming the file, line and key; a name or alias used by two files
    /// is an error naming both.
    pub fn load(dir: &Path) -> Result<Self> {
        let inside = dir.join(INTERCONNECTS_FILE);
        let path = if inside.is_file() {
            inside
        } else {
            dir.parent()
                .map(|p| p.join(INTERCONNECTS_FILE))
                .unwrap_or(inside)
        };
        let interconnects = Interconnects::load(&path)?;
        Self::load_with(dir, interconnects)
    }

    /// Load every `*.toml` device file in `dir` against an already loaded table.
    pub fn load_with(dir: &Path, interconnects: Interconnects) -> Result<Self> {
        let listing = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        let mut files = Vec::new();
        for item in listing {
            let path = item.map_err(|e| Error::io(dir, e))?.path();
            let is_toml = path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("toml"));
            let is_table = path.file_name().is_some_and(|n| n == INTERCONNECTS_FILE);
            if is_toml && !is_table && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(Error::input(
                dir,
                None,
                "no *.toml hardware files in this folder",
            ));
        }
        files.sort();
        let mut entries = files
            .iter()
            .map(|p| GpuSpec::load(p, &interconnects))
            .collect::<Result<Vec<_>>>()?;
        entries.sort_by_cached_key(|g| (g.name.to_lowercase(), g.path.clone()));

        let mut exact: HashMap<String, usize> = HashMap::new();
        for (i, g) in entries.iter().enumerate() {
            for (field, n) in
                std::iter::once(("name", &g.name)).chain(g.aliases.iter().map(|a| ("aliases", a)))
            {
                match exact.insert(n.to_lowercase(), i) {
                    Some(j) if j != i => {
                        let other = &entries[j];
                        return Err(Error::input(
                            path_of(g),
                            Some(field),
                            format!(
                                "`{n}` is already the name or an alias of {} ({}); names and aliases must be unique",
                                other.name,
                                path_of(other).display()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(HardwareCatalog {
            dir: dir.to_owned(),
            interconnects,
            entries,
            exact,
            database: std::sync::OnceLock::new(),
        })
    }

    /// The device called `name` (name, alias, unique normalised match, or a path to a
    /// `.toml` device file), as an owned spec; a name no curated file knows is looked
    /// up in the database tier ([`Self::database_get`]).
    pub fn resolve(&self, name: &str) -> Result<GpuSpec> {
        let trimmed = name.trim();
        if trimmed.to_ascii_lowercase().ends_with(".toml") {
            return GpuSpec::load(Path::new(trimmed), &self.interconnects);
        }
        match self.get(trimmed) {
            Ok(g) => Ok(g.clone()),
            Err(unknown @ Error::Unknown { .. }) => {
                // A curated name the query begins (`h10`, `mi300`) is the likelier
                // meaning: then only an exact database name counts.
                let wanted = normalise(trimmed);
                let near_curated = self.exact.keys().any(|k| normalise(k).starts_with(&wanted));
                match self.database_get(trimmed, !near_curated)? {
                    Some(g) => Ok(g.clone()),
                    None => Err(unknown),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The database tier: about 2,500 devices of `database/gpus.csv` with estimated
    /// tensor rates ([`super::database`]), read on first use; empty without the folder.
    pub fn database(&self) -> Result<&[GpuSpec]> {
        if let Some(db) = self.database.get() {
            return Ok(db);
        }
        let db = super::database::load(&self.dir, &self.interconnects)?;
        Ok(self.database.get_or_init(|| db))
    }

    /// The database device called `name`: the one whose normalised name equals it
    /// (with or without the vendor), else the only one whose normalised name starts
    /// or ends with it (`rtx4090` finds `GeForce RTX 4090`), else the only one that
    /// contains it (`v100 pcie 16` finds `Tesla V100 PCIe 16 GB`; these partial
    /// matches only with `partial`); `None` when none does,
    /// [`Error::Ambiguous`] when several do.
    pub fn database_get(&self, name: &str, partial: bool) -> Result<Option<&GpuSpec>> {
        let wanted = normalise(name);
        if wanted.is_empty() {
            return Ok(None);
        }
        let db = self.database()?;
        let full = |g: &GpuSpec| {
            (
                normalise(&g.name),
                normalise(&format!("{} {}", g.vendor, g.name)),
            )
        };
        let equal: Vec<&GpuSpec> = db
            .iter()
            .filter(|g| {
                let (n, v) = full(g);
                n == wanted || v == wanted
            })
            .collect();
        let mut found = equal;
        if found.is_empty() && !partial {
            return Ok(None);
        }
        if found.is_empty() {
            found = db
                .iter()
                .filter(|g| {
                    let (n, _) = full(g);
                    n.starts_with(&wanted) || n.ends_with(&wanted)
                })
                .collect();
        }
        if found.is_empty() {
            found = db.iter().filter(|g| full(g).0.contains(&wanted)).collect();
        }
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => Err(Error::Ambiguous {
                kind: "hardware",
                name: name.to_owned(),
                candidates: many.iter().take(12).map(|g| g.name.clone()).collect(),
            }),
        }
    }

    /// The device called `name` (name, alias or unique normalised match; no paths).
    pub fn get(&self, name: &str) -> Result<&GpuSpec> {
        let name = name.trim();
        if let Some(&i) = self.exact.get(&name.to_lowercase()) {
            return Ok(&self.entries[i]);
        }
        let wanted = normalise(name);
        let mut hits: Vec<usize> = if wanted.is_empty() {
            Vec::new()
        } else {
            self.exact
                .iter()
                .filter(|(k, _)| normalise(k) == wanted)
                .map(|(_, &i)| i)
                .collect()
        };
        hits.sort_unstable();
        hits.dedup();
        match hits.as_slice() {
            [i] => Ok(&self.entries[*i]),
            [] => Err(Error::Unknown {
                kind: "hardware",
                name: name.to_owned(),
                suggestions: self.suggestions(name),
            }),
            many => Err(Error::Ambiguous {
                kind: "hardware",
                name: name.to_owned(),
                candidates: many.iter().map(|&i| self.entries[i].name.clone()).collect(),
            }),
        }
    }

    /// The device loaded from the file `<stem>.toml` (profile folders and
    /// `compute_twin` name devices this way), if any.
    pub fn by_file_stem(&self, stem: &str) -> Option<&GpuSpec> {
        self.entries.iter().find(|g| {
            g.path
                .as_ref()
                .and_then(|p| p.file_stem())
                .is_some_and(|s| s == stem)
        })
    }

    /// Every device, sorted by name (case-insensitive), for listings.
    pub fn entries(&self) -> &[GpuSpec] {
        &self.entries
    }

    /// The interconnect table the devices were resolved against.
    pub fn interconnects(&self) -> &Interconnects {
        &self.interconnects
    }

    /// The folder the devices were loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The closest names to `name`, at most one per device, best first.
    fn suggestions(&self, name: &str) -> Vec<String> {
        let all = self.entries.iter().flat_map(GpuSpec::names);
        let mut seen = Vec::new();
        closest_names(name, all, usize::MAX)
            .into_iter()
            .filter(|n| {
                let device = self.exact.get(&n.to_lowercase()).copied();
                let fresh = !seen.contains(&device);
                seen.push(device);
                fresh
            })
            .take(SUGGESTIONS)
            .collect()
    }
}

fn path_of(g: &GpuSpec) -> PathBuf {
    g.path.clone().unwrap_or_default()
}

/// Lowercase letters and digits only.
fn normalise(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::paths::DataPaths;
    use std::collections::BTreeSet;

    fn shipped() -> HardwareCatalog {
        HardwareCatalog::load(&DataPaths::builtin().hardware_dir()).unwrap()
    }

    /// The 28 rows of shared/reference/accelerators.csv; the other shipped files are
    /// checked by name in `every_file_loads_and_every_csv_row_is_present`.
    const CSV_NAMES: [&str; 28] = [
        "V100-SXM2-32GB",
        "T4",
        "A10",
        "A10G",
        "A100-SXM4-40GB",
        "A100-SXM4-80GB",
        "A100-PCIe-80GB",
        "L4",
        "L40S",
        "RTX3090",
        "RTX4090",
        "RTX A6000",
        "H100-SXM5-80GB",
        "H100-PCIe-80GB",
        "H200-SXM-141GB",
        "H20",
        "B200",
        "GB200 (per GPU)",
        "MI250X",
        "MI300X",
        "MI325X",
        "Gaudi2",
        "Gaudi3",
        "TPU v4",
        "TPU v5e",
        "TPU v5p",
        "TPU v6e (Trillium)",
        "Apple M2 Ultra",
    ];

    #[test]
    fn every_file_loads_and_every_csv_row_is_present() {
        let cat = shipped();
        // The CSV rows, two devices the measured profiles need, four the Argonne
        // validation rows need, five CPUs, seven Apple SoCs and six more GPUs.
        let added = [
            "RTX PRO 6000 Blackwell Server Edition",
            "A40",
            "GH200-96GB",
            "MI250 (per GCD)",
            "Max 1550",
            "Max 1550 (Aurora, 112 Xe cores)",
            "Xeon Platinum 8480+",
            "Xeon Platinum 8592+",
            "EPYC 9654",
            "Ryzen 9 7950X",
            "Core i9-13900K",
            "Apple M1 Max",
            "Apple M1 Ultra",
            "Apple M2 Max",
            "Apple M3 Max",
            "Apple M3 Ultra",
            "Apple M4 Max",
            "Apple M4 Pro",
            "H800-SXM5-80GB",
            "L20",
            "L40",
            "RTX4080",
            "RTX5090",
            "V100-SXM2-16GB",
        ];
        assert_eq!(cat.entries().len(), CSV_NAMES.len() + added.len());
        for n in CSV_NAMES.into_iter().chain(added) {
            assert_eq!(cat.get(n).unwrap().name, n);
        }
        let names: Vec<_> = cat
            .entries()
            .iter()
            .map(|g| g.name.to_lowercase())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // Shipped prices always carry a dated source.
        assert!(cat
            .entries()
            .iter()
            .all(|g| g.price_usd_per_gpu_hour.is_none() || g.price_source.is_some()));
    }

    #[test]
    fn spot_checks_against_accelerators_csv() {
        let cat = shipped();
        let h100 = cat.get("H100-SXM5-80GB").unwrap();
        assert_eq!(h100.peak_flops(DType::Bf16), Some(989.4e12));
        assert_eq!(h100.peak_flops(DType::Fp8), Some(1978.9e12));
        assert_eq!(h100.memory_bandwidth_bytes_per_s(), 3350e9);
        assert_eq!(h100.memory_bytes(), 80e9);
        assert_eq!(h100.intra_node_link().bandwidth_bytes_per_s, 450e9);
        assert_eq!(h100.pcie_bandwidth_bytes_per_s(), Some(63e9));
        assert_eq!(h100.tdp_w, Some(700.0));

        let a100 = cat.get("a100").unwrap();
        assert_eq!(a100.name, "A100-SXM4-80GB");
        assert_eq!(a100.memory_bandwidth_gb_per_s, 2039.0);
        assert_eq!(a100.peak_flops(DType::Int8), Some(624e12));
        assert_eq!(a100.peak_flops(DType::Fp8), None);

        let v100 = cat.get("v100").unwrap();
        assert_eq!(v100.dense_bf16_tflops, None);
        assert_eq!(v100.peak_flops(DType::Bf16), Some(125e12));
        assert_eq!(cat.get("t4").unwrap().peak_flops(DType::Fp16), Some(65e12));

        let mi300 = cat.get("mi300x").unwrap();
        assert_eq!(mi300.memory_gb, 192.0);
        assert_eq!(mi300.peak_flops(DType::Bf16), Some(1307.4e12));
        assert_eq!(mi300.intra_node_link().pair_bandwidth_bytes_per_s, 64e9);

        let v6e = cat.get("tpu-v6e").unwrap();
        assert_eq!(v6e.peak_flops(DType::Int8), Some(1836e12));
        assert_eq!(v6e.gpus_per_node, 8);

        // Exact memory where known.
        assert_eq!(cat.get("4090").unwrap().memory_bytes(), 25_250_627_584.0);
        assert_eq!(
            cat.get("tpu-v4").unwrap().memory_bytes(),
            32.0 * 1024.0 * 1024.0 * 1024.0
        );

        let pro = cat.get("rtx-pro-6000").unwrap();
        assert_eq!(pro.memory_bandwidth_gb_per_s, 1597.0);
        assert_eq!(pro.memory_gb, 96.0);
        assert_eq!(pro.peak_flops(DType::Bf16), Some(503.8e12));
        let a40 = cat.get("a40").unwrap();
        assert_eq!(a40.memory_bandwidth_gb_per_s, 696.0);
        assert_eq!(a40.intra_node_link().bandwidth_bytes_per_s, 56.25e9);
    }

    #[test]
    fn aliases_resolve() {
        let cat = shipped();
        for (alias, name) in [
            ("h100", "H100-SXM5-80GB"),
            ("h100-80gb", "H100-SXM5-80GB"),
            ("h100-pcie", "H100-PCIe-80GB"),
            ("a100", "A100-SXM4-80GB"),
            ("a100-80gb", "A100-SXM4-80GB"),
            ("a100-40gb", "A100-SXM4-40GB"),
            ("rtx4090", "RTX4090"),
            ("4090", "RTX4090"),
            ("rtx3090", "RTX3090"),
            ("a6000", "RTX A6000"),
            ("rtx-pro-6000", "RTX PRO 6000 Blackwell Server Edition"),
            ("rtxpro6000", "RTX PRO 6000 Blackwell Server Edition"),
            (
                "RTX6000ProBlackwellServer",
                "RTX PRO 6000 Blackwell Server Edition",
            ),
            ("RTX PRO 6000", "RTX PRO 6000 Blackwell Server Edition"),
            ("a40", "A40"),
            ("mi300x", "MI300X"),
            ("mi325x", "MI325X"),
            ("mi250x", "MI250X"),
            ("mi250", "MI250 (per GCD)"),
            ("gh200", "GH200-96GB"),
            ("max1550", "Max 1550"),
            ("pvc", "Max 1550"),
            ("MAX_1550", "Max 1550"),
            ("max1550-aurora", "Max 1550 (Aurora, 112 Xe cores)"),
            ("h200", "H200-SXM-141GB"),
            ("b200", "B200"),
            ("gb200", "GB200 (per GPU)"),
            ("l40s", "L40S"),
            ("l4", "L4"),
            ("a10", "A10"),
            ("a10g", "A10G"),
            ("t4", "T4"),
            ("v100", "V100-SXM2-32GB"),
            ("tpu-v6e", "TPU v6e (Trillium)"),
            ("TPU-v6e-1", "TPU v6e (Trillium)"),
            ("gaudi-2", "Gaudi2"),
            ("H100 SXM5 80GB", "H100-SXM5-80GB"),
            ("  h100_sxm5_80gb ", "H100-SXM5-80GB"),
            ("RTX_A6000", "RTX A6000"),
        ] {
            assert_eq!(cat.resolve(alias).unwrap().name, name, "{alias}");
        }
    }

    #[test]
    fn unknown_names_get_suggestions() {
        let cat = shipped();
        let e = cat.resolve("h10").unwrap_err();
        let Error::Unknown {
            kind, suggestions, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(*kind, "hardware");
        assert!(suggestions.iter().any(|s| s == "h100" || s == "h20"), "{e}");
        let e = cat.resolve("mi300").unwrap_err();
        assert!(
            e.to_string().to_lowercase().contains("did you mean mi300x"),
            "{e}"
        );
        // One suggestion per device, not its name and its alias.
        assert_eq!(
            e.to_string().to_lowercase().matches("mi300x").count(),
            1,
            "{e}"
        );
        assert!(matches!(cat.resolve(""), Err(Error::Unknown { .. })));
    }

    #[test]
    fn a_path_to_a_device_file_resolves() {
        let cat = shipped();
        let p = DataPaths::builtin().hardware_dir().join("l4.toml");
        assert_eq!(cat.resolve(p.to_str().unwrap()).unwrap().name, "L4");
        assert!(matches!(
            cat.resolve("/nonexistent/x.toml"),
            Err(Error::Io { .. })
        ));
    }

    /// Data hygiene for the shipped folder.
    #[test]
    fn shipped_names_are_clean_and_consistent() {
        let cat = shipped();
        let table = cat.interconnects();
        let mut normalised = BTreeSet::new();
        for g in cat.entries() {
            for a in &g.aliases {
                assert_eq!(a, &a.to_lowercase(), "{}: alias {a}", g.name);
            }
            // No shipped name is ambiguous under normalisation.
            let mine: BTreeSet<_> = g.names().map(normalise).collect();
            for n in mine {
                assert!(normalised.insert(n.clone()), "{}: `{n}` collides", g.name);
            }
            // PCIe rates agree with the table.
            if let Some(gen) = g.pcie_gen {
                let (_, e) = table.pcie(gen).unwrap();
                assert_eq!(
                    g.pcie_bandwidth_gb_per_s_per_direction,
                    Some(e.bandwidth_gb_per_s_per_direction),
                    "{}",
                    g.name
                );
            }
            assert!(!g.source.is_empty(), "{}", g.name);
            // fp16 = bf16 wherever both exist (no shipped device differs).
            if let (Some(a), Some(b)) = (g.dense_bf16_tflops, g.dense_fp16_tflops) {
                assert_eq!(a, b, "{}", g.name);
            }
        }
    }

    /// The devices added for the Argonne rows, against the published figures and
    /// derivations their files cite: a figure typed wrong, or a part swapped for its
    /// sibling (MI250X for MI250, a whole MI250 OAM for a GCD), fails here.
    #[test]
    fn argonne_devices_follow_their_sources() {
        let cat = shipped();
        let tflops = |g: &GpuSpec, d: DType| g.peak_flops(d).map(|f| f / 1e12);
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol;

        // MI250 GCD: half of AMD's per-OAM table (362.1 matrix, 45.3 vector FP32,
        // 128 GB); an MI250X package has 220 CUs where an MI250 OAM has 208.
        let gcd = cat.get("mi250").unwrap();
        let oam_gcds = 2.0;
        assert!(close(
            tflops(gcd, DType::Fp16).unwrap() * oam_gcds,
            362.1,
            1e-9
        ));
        assert!(close(
            tflops(gcd, DType::Int8).unwrap() * oam_gcds,
            362.1,
            1e-9
        ));
        assert_eq!(gcd.fp32_tflops.unwrap() * oam_gcds, 45.3);
        assert_eq!(gcd.memory_gb * oam_gcds, 128.0);
        assert_eq!(gcd.peak_flops(DType::Fp8), None);
        let x = cat.get("mi250x").unwrap();
        assert_eq!(
            gcd.memory_bandwidth_gb_per_s * oam_gcds,
            x.memory_bandwidth_gb_per_s
        );
        let cu_ratio = 208.0 / 220.0;
        let rate_ratio =
            tflops(gcd, DType::Bf16).unwrap() * oam_gcds / x.dense_bf16_tflops.unwrap();
        assert!(close(rate_ratio, cu_ratio, 1e-3), "{rate_ratio}");
        // 4 Infinity Fabric links of 50 GB/s to the sibling GCD; one link per pair.
        assert_eq!(gcd.intra_node_link().bandwidth_bytes_per_s, 200e9);
        assert_eq!(gcd.intra_node_link().pair_bandwidth_bytes_per_s, 50e9);
        assert_eq!(gcd.gpus_per_node, 8);

        // GH200: the H100 SXM5's tensor rates with 96 GB of HBM3 at 4 TB/s.
        let gh = cat.get("gh200").unwrap();
        let h100 = cat.get("h100").unwrap();
        for d in [
            DType::Bf16,
            DType::Fp16,
            DType::Fp8,
            DType::Int8,
            DType::Fp32,
        ] {
            assert_eq!(gh.peak_flops(d), h100.peak_flops(d), "{d:?}");
        }
        assert_eq!(gh.memory_bytes(), 96e9);
        assert_eq!(gh.memory_bandwidth_bytes_per_s(), 4000e9);
        assert_eq!(gh.gpus_per_node, 1);

        // Max 1550: Xe cores × per-core ops per clock × 1.6 GHz, whole card.
        let (ops_bf16, ops_int8, ops_fp32, clock_ghz) = (4096.0, 8192.0, 256.0, 1.6);
        let full = cat.get("max1550").unwrap();
        let aurora = cat.get("max1550-aurora").unwrap();
        for (g, cores) in [(full, 128.0), (aurora, 112.0)] {
            let peak = |ops: f64| cores * ops * clock_ghz / 1e3;
            assert!(
                close(tflops(g, DType::Bf16).unwrap(), peak(ops_bf16), 0.05),
                "{}",
                g.name
            );
            assert!(
                close(tflops(g, DType::Int8).unwrap(), peak(ops_int8), 0.05),
                "{}",
                g.name
            );
            assert!(
                close(g.fp32_tflops.unwrap(), peak(ops_fp32), 0.05),
                "{}",
                g.name
            );
            assert_eq!(g.peak_flops(DType::Fp8), None);
            assert_eq!(g.memory_gb, 128.0);
            assert_eq!(g.memory_bandwidth_gb_per_s, 3276.8);
            assert_eq!(g.gpus_per_node, 6);
        }
    }

    /// Devices built like a reference system use its links and NIC count.
    #[test]
    fn node_defaults_follow_the_reference_systems() {
        let cat = shipped();
        let table = cat.interconnects();
        for (device, system) in [
            ("v100", "dgx-1-v100"),
            ("a100", "dgx-a100"),
            ("a100-40gb", "dgx-a100"),
            ("h100", "dgx-h100"),
            ("h200", "dgx-h100"),
            ("b200", "hgx-b200"),
            ("gb200", "gb200-nvl72"),
        ] {
            let g = cat.get(device).unwrap();
            let s = &table.systems[system];
            assert_eq!(g.gpus_per_node, s.gpus, "{device}");
            assert_eq!(g.intra_node.key, s.intra_node_link, "{device}");
            assert_eq!(g.inter_node.key, s.scale_out_link, "{device}");
            let nic = table.link(&s.scale_out_link).unwrap();
            let per_gpu = nic.bandwidth_gb_per_s_per_direction * f64::from(s.scale_out_nics)
                / f64::from(s.gpus)
                * 1e9;
            assert_eq!(g.inter_node.bandwidth_bytes_per_s, per_gpu, "{device}");
        }
    }

    fn scratch(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let hw = tmp.path().join("hardware");
        std::fs::create_dir(&hw).unwrap();
        std::fs::copy(
            DataPaths::builtin().perf_model.join(INTERCONNECTS_FILE),
            tmp.path().join(INTERCONNECTS_FILE),
        )
        .unwrap();
        for (name, text) in files {
            std::fs::write(hw.join(name), text).unwrap();
        }
        (tmp, hw)
    }

    fn device(name: &str, aliases: &str) -> String {
        format!(
            "name = \"{name}\"\nvendor = \"Acme\"\naliases = [{aliases}]\nlaunch_year = 2030\n\
             memory_gb = 8\nmemory_bandwidth_gb_per_s = 100\ndense_bf16_tflops = 10\n\
             intra_node_link = \"pcie4\"\npcie_gen = 4\ngpus_per_node = 8\n\
             inter_node_link = \"roce-100g\"\nsource = \"test\"\n"
        )
    }

    #[test]
    fn a_dropped_in_file_is_a_new_device() {
        let (_tmp, hw) = scratch(&[("toy.toml", &device("Toy-9", "\"toy\""))]);
        std::fs::write(hw.join("README.md"), "not a device").unwrap();
        let cat = HardwareCatalog::load(&hw).unwrap();
        assert_eq!(cat.entries().len(), 1);
        assert_eq!(cat.resolve("TOY").unwrap().name, "Toy-9");
    }

    #[test]
    fn duplicate_alias_names_both_files() {
        let (_tmp, hw) = scratch(&[
            ("a.toml", &device("Alpha", "\"x1\"")),
            ("b.toml", &device("Beta", "\"X1\"")),
        ]);
        let e = HardwareCatalog::load(&hw).unwrap_err().to_string();
        assert!(e.contains("a.toml") && e.contains("b.toml"), "{e}");
        assert!(e.contains("`aliases`"), "{e}");
    }

    #[test]
    fn normalised_collisions_are_ambiguous() {
        let (_tmp, hw) = scratch(&[
            ("a.toml", &device("Toy-1", "")),
            ("b.toml", &device("Toy_1x", "\"toy 1\"")),
        ]);
        let cat = HardwareCatalog::load(&hw).unwrap();
        // "toy1" normalises to both "Toy-1" and "toy 1".
        let e = cat.resolve("TOY1").unwrap_err();
        let Error::Ambiguous { candidates, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(candidates, &["Toy-1", "Toy_1x"]);
        // Exact matches win over normalised ones.
        assert_eq!(cat.resolve("toy 1").unwrap().name, "Toy_1x");
    }

    #[test]
    fn malformed_file_names_file_line_and_key() {
        let bad = device("Toy", "").replace("memory_gb = 8", "memory_gb = \"eight\"");
        let (_tmp, hw) = scratch(&[("toy.toml", &bad)]);
        let e = HardwareCatalog::load(&hw).unwrap_err();
        let Error::Input {
            path, line, field, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert!(path.ends_with("toy.toml"));
        assert_eq!(*line, Some(5));
        assert_eq!(field.as_deref(), Some("memory_gb"));

        let (_tmp, hw) = scratch(&[("toy.toml", "name = \"x\"\n")]);
        let e = HardwareCatalog::load(&hw).unwrap_err().to_string();
        assert!(e.contains("toy.toml") && e.contains("missing field"), "{e}");
    }

    #[test]
    fn an_empty_or_missing_folder_is_an_error() {
        let (_tmp, hw) = scratch(&[]);
        assert!(matches!(
            HardwareCatalog::load(&hw),
            Err(Error::Input { .. })
        ));
        assert!(HardwareCatalog::load(&hw.join("nope")).is_err());
    }
}
