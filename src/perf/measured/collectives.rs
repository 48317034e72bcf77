//! Collectives measured on whole GPUs (`perf_model/measurements/tp-collectives/*.csv`,
//! see its README): the tensor-parallel all-reduce of vLLM, SGLang or TensorRT-LLM as
//! the engine dispatches it inside CUDA graphs (custom kernel for small messages, NCCL
//! or another path for large ones), and NCCL's or RCCL's own all-reduce, all-gather and
//! reduce-scatter (nccl-tests, rccl-tests), by GPU count and message size.
//!
//! A library test (nccl-tests, rccl-tests: the library at its best on one box) is a
//! measurement of that box's topology. Where its bus bandwidth at its largest message
//! is far below the GPU's own link (`link_check.toml` says how far), the data did not
//! move over that link (peer-to-peer traffic bounced through host memory, say): the
//! table is kept but marked ([`CollectiveTable::unlike_link`]), and the model costs the
//! link instead. An engine's own all-reduce is not checked: how it dispatches large
//! messages is the engine's (vLLM 0.19.0 moves 1 GiB between two RTX PRO 6000 at a
//! quarter of the rate 0.24.0 reaches on the same box).

use super::measurements::csv_error;
use super::profile::CollectiveTable;
use super::table::MonotoneTable;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The collective measurements under the perf-model folder.
fn collectives_dir(perf_model: &Path) -> PathBuf {
    perf_model.join("measurements").join("tp-collectives")
}

/// Every file of the collectives folder (`*.csv`), sorted by name.
fn collective_files(perf_model: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(collectives_dir(perf_model)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".csv"))
        })
        .collect();
    files.sort();
    files
}

fn one_node() -> u32 {
    1
}

#[derive(Deserialize)]
struct Row {
    gpu: String,
    num_gpus: u32,
    #[serde(default = "one_node")]
    nodes: u32,
    implementation: String,
    #[serde(default)]
    version: String,
    mode: String,
    collective: String,
    #[serde(default)]
    dtype: String,
    message_bytes: f64,
    latency_us: f64,
}

/// Which collective rows a table is built from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CollectiveRows<'a> {
    /// The serving engine's own all-reduce (`implementation`) timed inside CUDA graphs.
    EngineGraph(&'a str),
    /// The collective library's own benchmark (nccl-tests, rccl-tests) of `collective`
    /// (`all_reduce`, `all_gather`, `reduce_scatter`) inside one node, on floating-point
    /// buffers (the activations; the int8 runs left out): what NCCL or RCCL takes where
    /// the engine hands the collective to it.
    LibraryTest(&'a str),
}

impl<'a> CollectiveRows<'a> {
    /// The collective the rows time.
    fn collective(self) -> &'a str {
        match self {
            CollectiveRows::EngineGraph(_) => "all_reduce",
            CollectiveRows::LibraryTest(c) => c,
        }
    }

    fn keeps(self, r: &Row) -> bool {
        match self {
            CollectiveRows::EngineGraph(imp) => {
                r.collective == "all_reduce" && r.implementation == imp && r.mode == "graph"
            }
            CollectiveRows::LibraryTest(collective) => {
                r.collective == collective
                    && r.nodes == 1
                    && matches!(r.mode.as_str(), "nccl-tests" | "rccl-tests")
                    && r.dtype.starts_with("float")
            }
        }
    }
}

/// Every collective measured on one GPU (all files of the collectives folder), read
/// once per deployment; [`GpuCollectives::tables`] selects from it.
#[derive(Default)]
pub(crate) struct GpuCollectives {
    rows: Vec<Row>,
    check: Option<LinkCheck>,
}

impl GpuCollectives {
    /// The rows of the GPU `slug` in every file of the collectives folder (none when
    /// the folder or the GPU's rows are missing).
    pub(crate) fn load(perf_model: &Path, slug: &str) -> Result<Self> {
        let mut rows = Vec::new();
        for file in collective_files(perf_model) {
            let mut rdr = csv::Reader::from_path(&file).map_err(|e| csv_error(&file, e))?;
            let headers = rdr.byte_headers().map_err(|e| csv_error(&file, e))?.clone();
            let gpu_col = headers.iter().position(|h| h == b"gpu");
            let mut rec = csv::ByteRecord::new();
            while rdr
                .read_byte_record(&mut rec)
                .map_err(|e| csv_error(&file, e))?
            {
                // Rows of other GPUs (most of the file) are skipped unparsed.
                if gpu_col.is_some_and(|c| rec.get(c) != Some(slug.as_bytes())) {
                    continue;
                }
                let r: Row = rec
                    .deserialize(Some(&headers))
                    .map_err(|e| csv_error(&file, e))?;
                if r.gpu == slug {
                    rows.push(r);
                }
            }
        }
        let check = LinkCheck::load(&collectives_dir(perf_model))?;
        Ok(GpuCollectives { rows, check })
    }

    /// The tables of `which`, one per GPU count: of `version` where that version was
    /// measured at that count (versions compared by their numbers: `0.19` is `0.19.0`),
    /// else every version merged (equal sizes averaged). Library tests are checked
    /// against the GPU's own link, `line_rate_bytes_per_s` per direction (see the module
    /// docs).
    pub(crate) fn tables(
        &self,
        which: CollectiveRows<'_>,
        version: Option<&str>,
        line_rate_bytes_per_s: f64,
    ) -> Vec<CollectiveTable> {
        let mut groups: Vec<(u32, Vec<&Row>)> = Vec::new();
        for r in self.rows.iter().filter(|r| which.keeps(r)) {
            match groups.iter_mut().find(|g| g.0 == r.num_gpus) {
                Some(g) => g.1.push(r),
                None => groups.push((r.num_gpus, vec![r])),
            }
        }
        groups
            .into_iter()
            .filter_map(|(n, rows)| {
                let same = |r: &Row, v: &str| {
                    crate::stack::version::compare(&r.version, v) == Some(std::cmp::Ordering::Equal)
                };
                let own = version.filter(|v| rows.iter().any(|r| same(r, v)));
                let pts = rows
                    .into_iter()
                    .filter(|r| own.is_none_or(|v| same(r, v)))
                    .map(|r| (r.message_bytes, r.latency_us));
                MonotoneTable::from_points(pts).map(|table| CollectiveTable {
                    num_workers: n,
                    devices_per_node: n,
                    unlike_link: self
                        .check
                        .filter(|_| matches!(which, CollectiveRows::LibraryTest(_)))
                        .and_then(|c| {
                            c.verdict(which.collective(), n, &table, line_rate_bytes_per_s)
                        }),
                    table,
                    version: own.map(str::to_owned),
                })
            })
            .collect()
    }
}

/// The graph-mode all-reduce tables of `implementation` on the GPU `slug`, one per GPU
/// count, of the engine `version` where measured (see [`GpuCollectives::tables`]; an
/// engine's tables are not checked against the link, so the line rate passed is moot).
#[cfg(test)]
pub(crate) fn load_all_reduce(
    perf_model: &Path,
    slug: &str,
    implementation: &str,
    version: Option<&str>,
) -> Result<Vec<CollectiveTable>> {
    Ok(GpuCollectives::load(perf_model, slug)?.tables(
        CollectiveRows::EngineGraph(implementation),
        version,
        450e9,
    ))
}

/// `link_check.toml`: how far below its link's line rate a measured collective may run
/// and still describe that link.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkCheckFile {
    min_bus_bandwidth_fraction_of_line_rate: f64,
    #[allow(dead_code)]
    source: String,
}

/// The check of a measured table against the GPU's own link.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkCheck {
    /// Least bus bandwidth at the table's largest message, as a fraction of the link's
    /// line rate per direction.
    min_fraction: f64,
}

impl LinkCheck {
    /// The check in `dir/link_check.toml`; none when the file is absent.
    fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join("link_check.toml");
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let file: LinkCheckFile =
            toml::from_str(&text).map_err(|e| crate::error::toml_error(&path, &text, &e))?;
        let f = file.min_bus_bandwidth_fraction_of_line_rate;
        if !(f > 0.0 && f <= 1.0) {
            return Err(Error::input(
                &path,
                Some("min_bus_bandwidth_fraction_of_line_rate"),
                format!("{f} is not a fraction in (0, 1]"),
            ));
        }
        Ok(Some(LinkCheck { min_fraction: f }))
    }

    /// Why `table` (of `collective` over `n` GPUs) does not describe a link of
    /// `line_rate` bytes/s per direction, or none when it does.
    fn verdict(
        &self,
        collective: &str,
        n: u32,
        table: &MonotoneTable,
        line_rate: f64,
    ) -> Option<String> {
        let (bytes, us) = table.last_point();
        let busbw = bus_bandwidth_bytes_per_s(collective, n, bytes, us);
        let fraction = busbw / line_rate;
        (line_rate > 0.0 && fraction < self.min_fraction).then(|| {
            format!(
                "the measured {collective} over {n} GPUs on this GPU runs at {:.1} GB/s bus bandwidth at {:.0} MiB, {fraction:.2} of the link's {:.1} GB/s line rate (below {}: another topology, not used; perf_model/measurements/tp-collectives/link_check.toml)",
                busbw / 1e9,
                bytes / 1048576.0,
                line_rate / 1e9,
                self.min_fraction
            )
        })
    }
}

/// nccl-tests' bus bandwidth of one collective: the algorithm bandwidth (`bytes` over
/// the time) times what each GPU's link carries per byte, `2(n−1)/n` for an all-reduce
/// and `(n−1)/n` for an all-gather, reduce-scatter or all-to-all (whose `bytes` is the
/// whole gathered output or input).
pub(crate) fn bus_bandwidth_bytes_per_s(collective: &str, n: u32, bytes: f64, us: f64) -> f64 {
    let n = f64::from(n.max(1));
    let factor = if collective == "all_reduce" {
        2.0 * (n - 1.0) / n
    } else {
        (n - 1.0) / n
    };
    factor * bytes / (us * 1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataPaths;

    #[test]
    fn h100_vllm_all_reduce_has_a_small_floor() {
        let t = load_all_reduce(
            &DataPaths::builtin().perf_model,
            "h100-sxm5-80gb",
            "vllm-all-reduce",
            None,
        )
        .unwrap();
        let four = t.iter().find(|t| t.num_workers == 4).expect("TP4 rows");
        // About 5 µs for 8 KiB inside a CUDA graph, about 1 ms for 128 MiB.
        let small = four.table.eval(8192.0);
        assert!((3.0..8.0).contains(&small), "{small}");
        assert!(four.table.eval(128.0 * 1024.0 * 1024.0) > 300.0);
        assert!(load_all_reduce(
            &DataPaths::builtin().perf_model,
            "no-such-gpu",
            "vllm-all-reduce",
            None
        )
        .unwrap()
        .is_empty());
    }

    /// A deployment that names its engine version gets that version's measurement
    /// where there is one (vLLM 0.19.0 and 0.24.0 on two RTX PRO 6000 differ 3× at
    /// 1 MiB: 92 and 30 µs); otherwise the versions are averaged.
    #[test]
    fn the_engine_versions_own_all_reduce_is_preferred() {
        let at = |v: Option<&str>| {
            let t = load_all_reduce(
                &DataPaths::builtin().perf_model,
                "rtx-pro-6000-blackwell-server",
                "vllm-all-reduce",
                v,
            )
            .unwrap();
            let two = t.iter().find(|t| t.num_workers == 2).expect("TP2 rows");
            two.table.eval(1048576.0)
        };
        let (old, new, all) = (at(Some("0.19.0")), at(Some("0.24.0")), at(None));
        let versions = |v: Option<&str>| {
            load_all_reduce(
                &DataPaths::builtin().perf_model,
                "rtx-pro-6000-blackwell-server",
                "vllm-all-reduce",
                v,
            )
            .unwrap()
            .into_iter()
            .map(|t| (t.num_workers, t.version))
            .collect::<Vec<_>>()
        };
        // Only TP2 was measured in 0.19.0: the other counts average what there is.
        assert!(versions(Some("0.19.0")).contains(&(2, Some("0.19.0".into()))));
        assert!(versions(Some("0.19.0")).contains(&(4, None)));
        assert!(versions(None).iter().all(|(_, v)| v.is_none()));
        assert!((old - 91.5).abs() < 1.0, "{old}");
        assert!((new - 30.1).abs() < 1.0, "{new}");
        assert!(all > new && all < old, "{all}");
        assert_eq!(at(Some("0.99.0")).to_bits(), all.to_bits());
        assert_eq!(at(Some("0.19")).to_bits(), old.to_bits());
    }

    /// NCCL's own tests on L40S at 4 and 8 GPUs (0.16 and 0.05 of PCIe Gen4) are marked,
    /// its 2-GPU test (0.64) and every H100 test are not, and engine tables never are.
    #[test]
    fn library_tests_far_below_their_link_are_marked() {
        let pm = DataPaths::builtin().perf_model;
        let l40s = GpuCollectives::load(&pm, "l40s").unwrap();
        let marked = |t: &[CollectiveTable]| {
            let mut m: Vec<(u32, bool)> = t
                .iter()
                .map(|t| (t.num_workers, t.unlike_link.is_some()))
                .collect();
            m.sort();
            m
        };
        let lib = l40s.tables(CollectiveRows::LibraryTest("all_reduce"), None, 31.5e9);
        assert_eq!(marked(&lib), [(2, false), (4, true), (8, true)]);
        let why = lib[2..].iter().find_map(|t| t.unlike_link.clone()).unwrap();
        assert!(why.contains("below 0.25"), "{why}");
        let engine = l40s.tables(CollectiveRows::EngineGraph("vllm-all-reduce"), None, 31.5e9);
        assert!(engine.iter().all(|t| t.unlike_link.is_none()));
        let h100 = GpuCollectives::load(&pm, "h100-sxm5-80gb").unwrap();
        for c in ["all_reduce", "all_gather", "reduce_scatter"] {
            let t = h100.tables(CollectiveRows::LibraryTest(c), None, 450e9);
            assert!(
                !t.is_empty() && t.iter().all(|t| t.unlike_link.is_none()),
                "{c}"
            );
        }
    }

    /// A bus bandwidth is nccl-tests': 2(n−1)/n of the algorithm bandwidth for an
    /// all-reduce, (n−1)/n otherwise.
    #[test]
    fn bus_bandwidth_is_nccl_tests() {
        let ar = bus_bandwidth_bytes_per_s("all_reduce", 8, 1e9, 1e6);
        assert!((ar - 1.75e9).abs() < 1.0, "{ar}");
        let ag = bus_bandwidth_bytes_per_s("all_gather", 4, 1e9, 1e6);
        assert!((ag - 0.75e9).abs() < 1.0, "{ag}");
    }

    /// A fraction outside (0, 1] is refused, naming the file and the field; no file, no
    /// check.
    #[test]
    fn a_bad_link_check_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LinkCheck::load(dir.path()).unwrap().is_none());
        let path = dir.path().join("link_check.toml");
        std::fs::write(
            &path,
            "min_bus_bandwidth_fraction_of_line_rate = 1.5\nsource = \"s\"\n",
        )
        .unwrap();
        let err = LinkCheck::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("link_check.toml") && err.contains("min_bus_bandwidth_fraction"),
            "{err}"
        );
    }
}
