//! The interconnect table (`perf_model/interconnects.toml`): link kinds, reference
//! systems and the measurements their latencies and efficiencies come from.
//!
//! Device files name their links by the keys of `[links.*]`; [`Interconnects::link_spec`]
//! turns an entry into a [`LinkSpec`]. The measured rows are kept so that tests (and
//! users) can check each derived figure against the measurement it came from.

use super::link::LinkSpec;
use super::parse::{from_toml, invalid, read_text};
use crate::error::{closest_names, Error, Result};
use crate::units::BYTES_PER_GB;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Microseconds in one second.
const MICROS_PER_SEC: f64 = 1e6;

/// One kind of link, as written in `[links.<key>]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    /// Human-readable name.
    pub name: String,
    /// Line rate per direction per GPU (scale-up, PCIe) or per NIC (scale-out), GB/s.
    pub bandwidth_gb_per_s_per_direction: f64,
    /// Line rate per direction between one pair of GPUs, GB/s; absent = the full rate.
    pub pair_bandwidth_gb_per_s_per_direction: Option<f64>,
    /// A measured copy rate per direction, GB/s: the rate of point-to-point sends.
    pub measured_bandwidth_gb_per_s_per_direction: Option<f64>,
    /// PCIe generation, for the PCIe entries (how devices find their host link).
    pub pcie_gen: Option<u8>,
    /// Largest group the link joins all-to-all (2 for bridges); absent = whole node.
    pub max_gpus: Option<u32>,
    /// Latency α of one collective step, µs.
    pub latency_us: f64,
    /// Measured peak all-reduce bus bandwidth / line rate.
    pub allreduce_bus_efficiency: f64,
    /// The same for groups of more than two GPUs where it differs (PCIe); absent = the
    /// same.
    pub allreduce_bus_efficiency_beyond_pair: Option<f64>,
    /// Where the figures come from.
    pub source: String,
    /// What is not certain about them.
    pub uncertain: Option<String>,
}

/// A reference system (`[systems.<key>]`): where per-device node defaults come from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemEntry {
    /// Human-readable name.
    pub name: String,
    /// GPUs per node (NVLink domain).
    pub gpus: u32,
    /// Key of the scale-up link.
    pub intra_node_link: String,
    /// Key of the scale-out NIC link.
    pub scale_out_link: String,
    /// Scale-out NICs per node.
    pub scale_out_nics: u32,
    /// Where the facts come from.
    pub source: String,
}

/// A measured peak all-reduce bus bandwidth (`[[measured_allreduce_busbw]]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredBusBandwidth {
    /// The system measured.
    pub system: String,
    /// NCCL algorithm (`ring`, `nvls`, `default`).
    pub algorithm: String,
    /// Peak bus bandwidth, GB/s.
    pub busbw_gb_per_s: f64,
    /// The line rate it is compared with, GB/s per direction.
    pub line_rate_gb_per_s: f64,
    /// The link entry whose efficiency this row sets, if any.
    pub link: Option<String>,
    /// GPUs taking part, where the row says (a row of more than two GPUs on a link
    /// with a beyond-pair efficiency is evidence for that figure).
    pub ranks: Option<u32>,
    /// Citation.
    pub source: String,
}

/// A measured small-message all-reduce time (`[[measured_allreduce_latency]]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredLatency {
    /// The system measured.
    pub system: String,
    /// GPUs taking part.
    pub ranks: u32,
    /// Message size, bytes.
    pub message_bytes: u64,
    /// Measured time of the whole all-reduce, µs.
    pub measured_us: f64,
    /// Algorithm (`ring`, `tree`, `nvls`, `default`).
    pub algorithm: String,
    /// The link entry whose α this row sets, if any.
    pub calibrates: Option<String>,
    /// Citation.
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterconnectsFile {
    schema_version: u32,
    links: BTreeMap<String, LinkEntry>,
    #[serde(default)]
    systems: BTreeMap<String, SystemEntry>,
    #[serde(default)]
    measured_allreduce_busbw: Vec<MeasuredBusBandwidth>,
    #[serde(default)]
    measured_allreduce_latency: Vec<MeasuredLatency>,
}

/// The loaded interconnect table.
#[derive(Clone, Debug, PartialEq)]
pub struct Interconnects {
    path: PathBuf,
    /// Link kinds by key.
    pub links: BTreeMap<String, LinkEntry>,
    /// Reference systems by key.
    pub systems: BTreeMap<String, SystemEntry>,
    /// Measured all-reduce bus bandwidths.
    pub measured_allreduce_busbw: Vec<MeasuredBusBandwidth>,
    /// Measured small-message all-reduce times.
    pub measured_allreduce_latency: Vec<MeasuredLatency>,
}

/// The schema version this code reads.
const SCHEMA_VERSION: u32 = 1;

impl Interconnects {
    /// Load and validate an interconnect file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        Self::from_toml_str(&text, path)
    }

    /// Parse and validate interconnect TOML `text`; `path` is used in error messages.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        let file: InterconnectsFile = from_toml(path, text)?;
        if file.schema_version != SCHEMA_VERSION {
            return Err(invalid(
                path,
                text,
                None,
                "schema_version",
                format!("this servesim reads schema_version {SCHEMA_VERSION}"),
            ));
        }
        let this = Interconnects {
            path: path.to_owned(),
            links: file.links,
            systems: file.systems,
            measured_allreduce_busbw: file.measured_allreduce_busbw,
            measured_allreduce_latency: file.measured_allreduce_latency,
        };
        this.validate(text)?;
        Ok(this)
    }

    fn validate(&self, text: &str) -> Result<()> {
        let path = self.path.as_path();
        let mut gens = BTreeMap::new();
        for (key, e) in &self.links {
            let table = format!("links.{key}");
            let bad = |k: &str, m: &str| invalid(path, text, Some(&table), k, m);
            if !(e.bandwidth_gb_per_s_per_direction.is_finite()
                && e.bandwidth_gb_per_s_per_direction > 0.0)
            {
                return Err(bad("bandwidth_gb_per_s_per_direction", "must be > 0"));
            }
            if let Some(p) = e.pair_bandwidth_gb_per_s_per_direction {
                if !(p > 0.0 && p <= e.bandwidth_gb_per_s_per_direction) {
                    return Err(bad(
                        "pair_bandwidth_gb_per_s_per_direction",
                        "must be > 0 and at most bandwidth_gb_per_s_per_direction",
                    ));
                }
            }
            if !(e.latency_us.is_finite() && e.latency_us >= 0.0) {
                return Err(bad("latency_us", "must be ≥ 0"));
            }
            if !(e.allreduce_bus_efficiency > 0.0 && e.allreduce_bus_efficiency <= 2.0) {
                return Err(bad("allreduce_bus_efficiency", "must be in (0, 2]"));
            }
            if e.allreduce_bus_efficiency_beyond_pair
                .is_some_and(|b| !(b > 0.0 && b <= 2.0))
            {
                return Err(bad(
                    "allreduce_bus_efficiency_beyond_pair",
                    "must be in (0, 2]",
                ));
            }
            if e.measured_bandwidth_gb_per_s_per_direction
                .is_some_and(|m| !(m > 0.0 && m <= e.bandwidth_gb_per_s_per_direction))
            {
                return Err(bad(
                    "measured_bandwidth_gb_per_s_per_direction",
                    "must be > 0 and at most bandwidth_gb_per_s_per_direction",
                ));
            }
            if e.max_gpus.is_some_and(|m| m < 2) {
                return Err(bad("max_gpus", "must be at least 2"));
            }
            if let Some(g) = e.pcie_gen {
                if let Some(other) = gens.insert(g, key) {
                    return Err(bad(
                        "pcie_gen",
                        &format!("PCIe Gen{g} is already described by `links.{other}`"),
                    ));
                }
            }
        }
        for (key, s) in &self.systems {
            let table = format!("systems.{key}");
            for (k, v) in [
                ("intra_node_link", &s.intra_node_link),
                ("scale_out_link", &s.scale_out_link),
            ] {
                if !self.links.contains_key(v) {
                    return Err(invalid(path, text, Some(&table), k, self.unknown_link(v)));
                }
            }
        }
        let named = self
            .measured_allreduce_busbw
            .iter()
            .filter_map(|m| m.link.as_ref().map(|l| ("link", l)))
            .chain(
                self.measured_allreduce_latency
                    .iter()
                    .filter_map(|m| m.calibrates.as_ref().map(|l| ("calibrates", l))),
            );
        for (field, key) in named {
            if !self.links.contains_key(key) {
                return Err(Error::input(path, Some(field), self.unknown_link(key)));
            }
        }
        Ok(())
    }

    /// The message for a link key that is not in the table, with suggestions.
    pub(crate) fn unknown_link(&self, key: &str) -> String {
        let near = closest_names(key, self.links.keys().map(String::as_str), 3);
        let hint = if near.is_empty() {
            format!(
                "known links: {}",
                self.links.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        } else {
            format!("did you mean {}?", near.join(", "))
        };
        format!(
            "unknown link `{key}` (not in {}); {hint}",
            self.path.display()
        )
    }

    /// The file this table was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entry for `key`.
    pub fn link(&self, key: &str) -> Option<&LinkEntry> {
        self.links.get(key)
    }

    /// The entry describing PCIe generation `gen`, with its key.
    pub fn pcie(&self, gen: u8) -> Option<(&str, &LinkEntry)> {
        self.links
            .iter()
            .find(|(_, e)| e.pcie_gen == Some(gen))
            .map(|(k, e)| (k.as_str(), e))
    }

    /// The link `key` as a [`LinkSpec`] at the entry's own rates.
    pub fn link_spec(&self, key: &str) -> Option<LinkSpec> {
        let e = self.links.get(key)?;
        let bw = e.bandwidth_gb_per_s_per_direction * BYTES_PER_GB;
        let pair = e
            .pair_bandwidth_gb_per_s_per_direction
            .map_or(bw, |p| p * BYTES_PER_GB);
        Some(LinkSpec {
            key: key.to_owned(),
            name: e.name.clone(),
            bandwidth_bytes_per_s: bw,
            pair_bandwidth_bytes_per_s: pair,
            latency_s: e.latency_us / MICROS_PER_SEC,
            allreduce_bus_efficiency: e.allreduce_bus_efficiency,
            beyond_pair_bus_efficiency: e.allreduce_bus_efficiency_beyond_pair,
            copy_efficiency: e
                .measured_bandwidth_gb_per_s_per_direction
                .map(|m| m / e.bandwidth_gb_per_s_per_direction),
            max_gpus: e.max_gpus,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::link::AllReduceAlgorithm;
    use crate::paths::DataPaths;

    pub(crate) fn shipped() -> Interconnects {
        let path = DataPaths::builtin().perf_model.join("interconnects.toml");
        Interconnects::load(&path).unwrap()
    }

    #[test]
    fn shipped_file_loads_with_all_link_families() {
        let t = shipped();
        for key in [
            "nvlink3-nvswitch",
            "nvlink4-nvswitch",
            "nvlink4-nvswitch-nvls",
            "nvlink5-nvswitch",
            "nvlink3-bridge",
            "pcie4",
            "ib-hdr",
            "ib-ndr",
            "ib-xdr",
        ] {
            assert!(t.link(key).is_some(), "{key}");
        }
        for gen in 3..=6 {
            assert!(t.pcie(gen).is_some(), "pcie gen {gen}");
        }
        let (_, g4) = t.pcie(4).unwrap();
        assert_eq!(g4.bandwidth_gb_per_s_per_direction, 31.5);
        assert_eq!(
            t.link("ib-ndr").unwrap().bandwidth_gb_per_s_per_direction,
            50.0
        );
        assert_eq!(t.systems["dgx-h100"].scale_out_nics, 8);
    }

    /// Every α reproduces the measurement it was derived from (within 2 %).
    #[test]
    fn latencies_reproduce_their_calibration_rows() {
        let t = shipped();
        let mut checked = 0;
        for m in &t.measured_allreduce_latency {
            let Some(key) = &m.calibrates else { continue };
            let algo = match m.algorithm.as_str() {
                "ring" => AllReduceAlgorithm::Ring,
                "tree" => AllReduceAlgorithm::Tree,
                other => panic!("calibration row with algorithm {other}"),
            };
            let link = t.link_spec(key).unwrap();
            let model_us = link.all_reduce_s(m.message_bytes as f64, m.ranks, algo) * 1e6;
            let rel = (model_us - m.measured_us).abs() / m.measured_us;
            assert!(
                rel < 0.02,
                "{key}: model {model_us:.2} µs vs measured {} µs ({})",
                m.measured_us,
                m.source
            );
            checked += 1;
        }
        assert!(checked >= 5);
    }

    /// Every efficiency matches the bus bandwidth it was derived from (within 0.01).
    #[test]
    fn efficiencies_match_their_busbw_rows() {
        let t = shipped();
        let mut checked = 0;
        for m in &t.measured_allreduce_busbw {
            let Some(key) = &m.link else { continue };
            if m.ranks.is_some_and(|r| r > 2) {
                continue; // evidence for the beyond-pair figure (next test)
            }
            let eff = t.link(key).unwrap().allreduce_bus_efficiency;
            let ratio = m.busbw_gb_per_s / m.line_rate_gb_per_s;
            assert!((eff - ratio).abs() <= 0.01, "{key}: {eff} vs {ratio}");
            checked += 1;
        }
        assert!(checked >= 6);
    }

    /// Every PCIe link's efficiency beyond two GPUs is the median of the PCIe rows of
    /// more than two GPUs (within 0.005), and an all-reduce over 8 GPUs uses it.
    #[test]
    fn pcie_beyond_pair_efficiency_is_the_median_of_its_rows() {
        let t = shipped();
        let mut ratios: Vec<f64> = t
            .measured_allreduce_busbw
            .iter()
            .filter(|m| m.ranks.is_some_and(|r| r > 2))
            .filter(|m| {
                m.link
                    .as_ref()
                    .is_some_and(|k| t.link(k).unwrap().pcie_gen.is_some())
            })
            .map(|m| m.busbw_gb_per_s / m.line_rate_gb_per_s)
            .collect();
        ratios.sort_by(f64::total_cmp);
        assert!(ratios.len() >= 5, "{ratios:?}");
        let median = ratios[ratios.len() / 2];
        for (key, e) in &t.links {
            if e.pcie_gen.is_some() {
                let b = e.allreduce_bus_efficiency_beyond_pair.unwrap();
                assert!((b - median).abs() <= 0.005, "{key}: {b} vs {median}");
            }
        }
        // 8 × PCIe Gen4: 2·7/8 · 1 GB at 31.5 GB/s × 0.44 (+ α), a pair at × 0.638 (its
        // NCCL test), a point-to-point copy at the measured 25.13 GB/s.
        let l = t.link_spec("pcie4").unwrap();
        let eight = l.all_reduce_ring_s(1e9, 8);
        let want = 1.75 * 1e9 / (31.5e9 * 0.44);
        assert!((eight - want).abs() / want < 0.01, "{eight} vs {want}");
        let two = l.all_reduce_ring_s(1e9, 2);
        assert!((two - 1e9 / (31.5e9 * 0.638)).abs() < 1e-4, "{two}");
        let send = l.send_s(1e9);
        assert!((send - 1e9 / 25.13e9).abs() < 1e-4, "{send}");
        // A link without a measured copy rate sends at its all-reduce efficiency.
        let nv = t.link_spec("nvlink4-nvswitch").unwrap();
        assert_eq!(nv.copy_efficiency, None);
        assert_eq!(
            nv.effective_pair_bandwidth_bytes_per_s(),
            nv.pair_bandwidth_bytes_per_s * nv.allreduce_bus_efficiency
        );
    }

    #[test]
    fn h100_nvswitch_matches_measured_busbw_and_small_latency() {
        // Hand check: 8 × H100 ring all-reduce of 8 GB at 450 GB/s × 0.82 = 369 GB/s:
        // 2·7/8 · 8e9 / 369e9 = 37.94 ms (+ 14 · 2.9 µs), i.e. busbw ≈ 369 GB/s.
        let l = shipped().link_spec("nvlink4-nvswitch").unwrap();
        let t = l.all_reduce_ring_s(8e9, 8);
        let expect = 1.75 * 8e9 / 369e9 + 14.0 * 2.9e-6;
        assert!((t - expect).abs() < 1e-9, "{t} vs {expect}");
        let busbw = 1.75 * 8e9 / t / 1e9;
        assert!((busbw - 370.0).abs() < 5.0, "{busbw}");
    }

    #[test]
    fn bad_values_name_the_table_and_key() {
        let text = "schema_version = 1\n[links.x]\nname = \"x\"\nbandwidth_gb_per_s_per_direction = 10\nlatency_us = -3\nallreduce_bus_efficiency = 0.8\nsource = \"s\"\n";
        let e = Interconnects::from_toml_str(text, Path::new("ic.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ic.toml:5: field `links.x.latency_us`: must be ≥ 0"
        );
        let text = "schema_version = 1\n[links.x]\nname = \"x\"\nbandwidth_gb_per_s_per_direction = 10\nlatency_us = 3\nallreduce_bus_efficiency = 0.8\nsource = \"s\"\n[systems.s]\nname = \"s\"\ngpus = 8\nintra_node_link = \"y\"\nscale_out_link = \"x\"\nscale_out_nics = 8\nsource = \"s\"\n";
        let e = Interconnects::from_toml_str(text, Path::new("ic.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ic.toml:11: field `systems.s.intra_node_link`: unknown link `y`"),
            "{e}"
        );
    }
}
