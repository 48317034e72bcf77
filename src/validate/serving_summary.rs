//! The AIConfigurator serving summary table
//! (`perf_model/measurements/serving-aiconfigurator-silicon/serving_summary.csv`; see its
//! README): one row per measured closed-loop serving point,
//!
//! `engine, engine_version, gpu, model, precision, gemm_quant, moe_quant, tp, pp,
//! attention_dp, moe_tp, moe_ep, isl, osl, batch_size, concurrency, ttft_ms, tpot_ms,
//! measured_date, image, wip, source_id, copies, client`
//!
//! with the mean TTFT and TPOT (ms) the benchmark client measured at `concurrency`
//! requests in flight, requests of `isl` tokens in and `osl` out (exactly, or drawn up
//! to them: see [`RowClient`]). `client` (optional) names the benchmark client where
//! the source shows it; `statistic` (optional: blank or `mean`, `median`) says which
//! statistic of the requests' latencies the two times are ([`RowStatistic`]).
//!
//! Rows are grouped by (engine, version, model, GPU, precision, TP, PP, attention DP,
//! MoE TP, MoE EP). A group maps to a deployment through [`aic_mapping`]:
//! the model to a shipped config, the GPU to a hardware file, the engine and version
//! to a serving stack, the precision to a weight format and the parallelism columns to
//! servesim's TP / attention-DP / expert-parallel layout. Groups that do not map are
//! skipped with the reason. Within a group rows are sorted by (ISL, OSL, concurrency,
//! line); repeated measurements of one point stay separate rows.
//!
//! A blank `concurrency` (12 rows) is read as `batch_size × attention_dp` (the README:
//! `batch_size` is the per-rank batch) and said so in the notes. Blank `attention_dp`
//! is 1; blank or 0 `moe_tp`/`moe_ep` mean "not recorded". Malformed rows are errors
//! naming the file, line and column.

use super::aic_mapping::{self, AicModel, Formats, Layout};
use super::csv_table::CsvTable;
use super::mapping::HardwareMapping;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Whether the header is the serving summary's.
pub(crate) fn looks_like_summary(t: &CsvTable) -> bool {
    ["engine", "isl", "osl", "concurrency", "ttft_ms", "tpot_ms"]
        .iter()
        .all(|c| t.col(&[c]).is_some())
}

/// What the table names a group by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SummaryKey {
    /// `vllm`, `sglang`, `trtllm`.
    pub engine: String,
    /// The engine's version as written (may be empty).
    pub version: String,
    /// Model as the table names it.
    pub model: String,
    /// GPU slug.
    pub gpu: String,
    /// Precision as written.
    pub precision: String,
    /// Tensor-parallel size.
    pub tp: u32,
    /// Pipeline-parallel size.
    pub pp: u32,
    /// Attention data-parallel ranks (1 where blank).
    pub attention_dp: u32,
    /// MoE tensor parallelism (`None` where blank or 0).
    pub moe_tp: Option<u32>,
    /// MoE expert parallelism (`None` where blank or 0).
    pub moe_ep: Option<u32>,
}

impl SummaryKey {
    /// A file-name-safe label (`vllm-0.12.0_qwen3-32b_h100-sxm5-80gb_tp2_bf16`): the
    /// parallelism beyond TP only where it is not 1.
    pub fn slug(&self) -> String {
        let clean = |s: &str| {
            let s = s.split('(').next().unwrap_or(s).trim();
            let s = s.rsplit('/').next().unwrap_or(s).to_ascii_lowercase();
            let mut out = String::new();
            for c in s.chars() {
                if c.is_ascii_alphanumeric() || c == '.' {
                    out.push(c);
                } else if !out.ends_with('-') {
                    out.push('-');
                }
            }
            out.trim_matches('-').to_owned()
        };
        let version = if self.version.is_empty() {
            "unknown".into()
        } else {
            clean(&self.version)
        };
        let mut s = format!(
            "{}-{version}_{}_{}_tp{}",
            clean(&self.engine),
            clean(&self.model),
            clean(&self.gpu),
            self.tp
        );
        if self.pp > 1 {
            s += &format!("_pp{}", self.pp);
        }
        if self.attention_dp > 1 {
            s += &format!("_dp{}", self.attention_dp);
        }
        if let Some(ep) = self.moe_ep.filter(|&e| e > 1) {
            s += &format!("_ep{ep}");
        }
        format!("{s}_{}", clean(&self.precision))
    }
}

/// One measured point. Times in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryRow {
    /// 1-based line in the file.
    pub line: u64,
    /// Prompt tokens per request.
    pub isl: u32,
    /// Output tokens per request.
    pub osl: u32,
    /// Requests in flight.
    pub concurrency: u32,
    /// Whether `concurrency` was blank and came from `batch_size × attention_dp`.
    pub concurrency_from_batch: bool,
    /// The batch of one attention-DP rank (`batch_size`; blank: `concurrency` over the
    /// ranks, rounded up).
    pub batch_size: u32,
    /// Measured mean time to first token, s.
    pub ttft_s: f64,
    /// Measured mean time per output token, s.
    pub tpot_s: f64,
    /// The source's work-in-progress flag.
    pub wip: bool,
    /// The benchmark client that measured the row, where the table says.
    pub client: RowClient,
    /// Which statistic of the requests' TTFT and TPOT `ttft_s` and `tpot_s` are.
    pub statistic: RowStatistic,
}

/// Which statistic over a row's measured requests its times are (the table's
/// `statistic` column); the replay takes the same one of the simulated requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatistic {
    /// The mean (`mean`, blank, or no column).
    #[default]
    Mean,
    /// The median (`median`): the middle request, or the mean of the middle two.
    Median,
}

impl RowStatistic {
    /// The statistic named `s` in the table (blank: the mean).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "mean" => Some(Self::Mean),
            "median" => Some(Self::Median),
            _ => None,
        }
    }

    /// This statistic of `values` (NaN when there are none).
    pub fn of(self, values: &[f64]) -> f64 {
        match self {
            Self::Mean if values.is_empty() => f64::NAN,
            Self::Mean => values.iter().sum::<f64>() / values.len() as f64,
            Self::Median => super::stats::median(values),
        }
    }
}

/// The benchmark client behind a row (the table's `client` column).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowClient {
    /// Not recorded (blank or no column): the launch rule's client, if any.
    #[default]
    Unrecorded,
    /// InferenceX's serving benchmark (`inferencex`): random prompts whose lengths are
    /// drawn up to ISL and OSL, a fixed number of requests per client, all measured
    /// (`launch.toml`'s `[inferencex_client]`).
    InferenceX,
}

impl RowClient {
    /// The client named `s` in the table (blank: not recorded).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" => Some(Self::Unrecorded),
            "inferencex" => Some(Self::InferenceX),
            _ => None,
        }
    }
}

/// The rows of one configuration, with its mapping.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryGroup {
    /// The table's names.
    pub key: SummaryKey,
    /// The group's name: [`SummaryKey::slug`], with `_2`, `_3`, ... on the later of
    /// groups whose keys differ only in what the slug leaves out (the precision's
    /// remark, a MoE TP of 1 against a blank one).
    pub slug: String,
    /// The catalog model.
    #[serde(skip)]
    pub model: AicModel,
    /// The catalog device.
    pub hardware: HardwareMapping,
    /// The serving stack (a name under `perf_model/stacks/`).
    pub stack: String,
    /// The weight and KV-cache formats.
    #[serde(skip)]
    pub formats: Formats,
    /// TP / DP / EP as servesim lays them out.
    #[serde(skip)]
    pub layout: Layout,
    /// What each mapping chose and why.
    pub notes: Vec<String>,
    /// Points, sorted by (ISL, OSL, concurrency, line).
    pub rows: Vec<SummaryRow>,
}

/// A serving summary table, grouped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryTable {
    /// The file.
    pub source: PathBuf,
    /// Groups that map, sorted by key.
    pub groups: Vec<SummaryGroup>,
    /// Groups left out, with the reason.
    pub skipped: Vec<String>,
}

/// Read a serving summary table.
pub fn read(path: &Path) -> Result<SummaryTable> {
    let t = CsvTable::read(path)?;
    if !looks_like_summary(&t) {
        return Err(Error::input_at(
            path,
            1,
            None,
            "not an AIConfigurator serving summary: expected the columns engine, isl, osl, concurrency, ttft_ms, tpot_ms",
        ));
    }
    read_table(&t)
}

/// A column's optional whole number (blank or 0 = `None`).
fn opt_count(t: &CsvTable, row: &(u64, Vec<String>), c: Option<usize>) -> Result<Option<u32>> {
    let Some(c) = c else { return Ok(None) };
    let s = t.text(row, c)?;
    if s.is_empty() || s.parse::<f64>().is_ok_and(|x| x == 0.0) {
        return Ok(None);
    }
    t.count(row, c).map(Some)
}

/// A column's named value (`parse`; an unknown one is an error naming the line, the
/// field and the `allowed` values); no column: the default.
fn named<T: Default>(
    t: &CsvTable,
    row: &(u64, Vec<String>),
    c: Option<usize>,
    parse: fn(&str) -> Option<T>,
    what: &str,
    allowed: &str,
) -> Result<T> {
    let Some(c) = c else {
        return Ok(T::default());
    };
    let s = t.text(row, c)?;
    parse(s).ok_or_else(|| t.bad(row, c, format!("unknown {what} `{s}` ({allowed})")))
}

/// A column's positive duration in ms, as seconds.
fn ms(t: &CsvTable, row: &(u64, Vec<String>), c: usize) -> Result<f64> {
    let x = t.num(row, c)?;
    if x <= 0.0 {
        return Err(t.bad(row, c, format!("must be positive, got {x}")));
    }
    Ok(x * 1e-3)
}

pub(crate) fn read_table(t: &CsvTable) -> Result<SummaryTable> {
    let req = |n: &str| t.required(&[n]);
    let (c_engine, c_version, c_gpu, c_model, c_prec) = (
        req("engine")?,
        req("engine_version")?,
        req("gpu")?,
        req("model")?,
        req("precision")?,
    );
    let (c_tp, c_pp, c_isl, c_osl, c_conc) = (
        req("tp")?,
        req("pp")?,
        req("isl")?,
        req("osl")?,
        req("concurrency")?,
    );
    let (c_ttft, c_tpot) = (req("ttft_ms")?, req("tpot_ms")?);
    let (c_dp, c_mtp, c_mep) = (
        t.col(&["attention_dp"]),
        t.col(&["moe_tp"]),
        t.col(&["moe_ep"]),
    );
    let (c_batch, c_date, c_wip) = (
        t.col(&["batch_size"]),
        t.col(&["measured_date"]),
        t.col(&["wip"]),
    );
    let (c_client, c_stat) = (t.col(&["client"]), t.col(&["statistic"]));
    let mut groups: BTreeMap<SummaryKey, (Vec<SummaryRow>, Option<String>)> = BTreeMap::new();
    for row in &t.rows {
        let text = |c: usize| -> Result<String> { Ok(t.text(row, c)?.to_owned()) };
        let nonempty = |c: usize, what: &str| -> Result<String> {
            let s = text(c)?;
            if s.is_empty() {
                return Err(t.bad(row, c, format!("empty {what}")));
            }
            Ok(s)
        };
        let attention_dp = opt_count(t, row, c_dp)?.unwrap_or(1);
        let key = SummaryKey {
            engine: nonempty(c_engine, "engine")?,
            version: text(c_version)?,
            model: nonempty(c_model, "model")?,
            gpu: nonempty(c_gpu, "GPU")?,
            precision: nonempty(c_prec, "precision")?,
            tp: t.count(row, c_tp)?,
            pp: t.count(row, c_pp)?,
            attention_dp,
            moe_tp: opt_count(t, row, c_mtp)?,
            moe_ep: opt_count(t, row, c_mep)?,
        };
        let (concurrency, from_batch) = match opt_count(t, row, Some(c_conc))? {
            Some(c) => (c, false),
            None => match opt_count(t, row, c_batch)? {
                Some(b) => (b.saturating_mul(attention_dp), true),
                None => {
                    return Err(t.bad(
                        row,
                        c_conc,
                        "empty, and no batch_size to read it from".into(),
                    ))
                }
            },
        };
        let batch_size = opt_count(t, row, c_batch)?
            .unwrap_or_else(|| concurrency.div_ceil(attention_dp.max(1)));
        let r = SummaryRow {
            line: row.0,
            isl: t.count(row, c_isl)?,
            osl: t.count(row, c_osl)?,
            concurrency,
            concurrency_from_batch: from_batch,
            batch_size,
            ttft_s: ms(t, row, c_ttft)?,
            tpot_s: ms(t, row, c_tpot)?,
            wip: match c_wip {
                Some(c) => t.text(row, c)?.eq_ignore_ascii_case("true"),
                None => false,
            },
            client: named(
                t,
                row,
                c_client,
                RowClient::parse,
                "client",
                "blank or `inferencex`",
            )?,
            statistic: named(
                t,
                row,
                c_stat,
                RowStatistic::parse,
                "statistic",
                "blank, `mean` or `median`",
            )?,
        };
        let date = match c_date {
            Some(c) => Some(text(c)?).filter(|d| !d.is_empty()),
            None => None,
        };
        let g = groups.entry(key).or_default();
        g.0.push(r);
        if date > g.1 {
            g.1 = date;
        }
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (key, (mut rows, latest)) in groups {
        rows.sort_by_key(|r| (r.isl, r.osl, r.concurrency, r.line));
        match map_group(&key, latest.as_deref()) {
            Ok((model, hardware, stack, formats, layout, notes)) => out.push(SummaryGroup {
                slug: key.slug(),
                key,
                model,
                hardware,
                stack,
                formats,
                layout,
                notes,
                rows,
            }),
            Err(e) => skipped.push(format!("{} ({} rows): {e}", key.slug(), rows.len())),
        }
    }
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for g in &mut out {
        let n = seen.entry(g.slug.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            g.slug = format!("{}_{n}", g.slug);
        }
    }
    Ok(SummaryTable {
        source: t.path.clone(),
        groups: out,
        skipped,
    })
}

type Mapped = (
    AicModel,
    HardwareMapping,
    String,
    Formats,
    Layout,
    Vec<String>,
);

/// Every mapping of a group, or the first reason it does not map.
fn map_group(key: &SummaryKey, latest_date: Option<&str>) -> std::result::Result<Mapped, String> {
    let model = aic_mapping::model(&key.model)?;
    let hardware = aic_mapping::hardware(&key.gpu)?;
    let (stack, stack_note) = aic_mapping::stack(&key.engine, &key.version, latest_date)?;
    let formats = aic_mapping::formats(&key.precision, &key.model)?;
    let layout = aic_mapping::layout(
        key.tp,
        key.pp,
        key.attention_dp,
        key.moe_tp,
        key.moe_ep,
        model.moe,
    )?;
    let mut notes: Vec<String> = [&model.mapping.note, &hardware.note]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    notes.extend([stack_note, formats.note.clone(), layout.note.clone()]);
    Ok((model, hardware, stack, formats, layout, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "engine,engine_version,gpu,model,precision,gemm_quant,moe_quant,tp,pp,attention_dp,moe_tp,moe_ep,isl,osl,batch_size,concurrency,ttft_ms,tpot_ms,measured_date,image,wip,source_id,copies\n";

    fn write(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serving_summary.csv");
        std::fs::write(&p, format!("{HEAD}{body}")).unwrap();
        (dir, p)
    }

    #[test]
    fn rows_group_map_and_skip() {
        let (_d, p) = write(
            "vllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,bf16 (blank in source),,,2,1,,1,1,1024,128,32,32,250.0,29.4,,,,a,1\n\
             vllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,bf16 (blank in source),,,2,1,,1,1,1024,128,8,8,154.0,18.0,,,True,b,1\n\
             vllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,bf16 (blank in source),,,2,1,,1,1,1024,128,24,,200.0,20.0,,,,c,1\n\
             trtllm,1.1.0rc2.post2,h200-sxm-141gb,deepseek-ai/DeepSeek-R1,fp8,fp8,fp8,8,1,1,1,8,1024,1024,8,8,300,9,2025-11-01,,False,d,1\n\
             vllm,0.19.0,b300-sxm (no catalog entry),MiniMaxAI/MiniMax-M2.5,fp8,fp8,fp8,2,1,1,2,1,1024,1024,4,4,100,5,,,,e,1\n\
             sglang,0.5.9,b200,deepseek-ai/DeepSeek-R1,fp8,fp8,fp8_block,64,1,1,8,8,1024,1024,4,4,100,5,,,,f,1\n",
        );
        let t = read(&p).unwrap();
        assert_eq!(t.groups.len(), 2, "{:?}", t.skipped);
        let q = t.groups.iter().find(|g| g.key.engine == "vllm").unwrap();
        assert_eq!(
            q.key.slug(),
            "vllm-0.12.0_qwen3-32b_h100-sxm5-80gb_tp2_bf16"
        );
        assert_eq!(q.stack, "vllm-v1-sync");
        assert_eq!(q.formats.quantization, "bf16");
        assert_eq!(q.formats.kv_cache_dtype, None);
        assert_eq!(
            q.rows
                .iter()
                .map(|r| (r.line, r.concurrency))
                .collect::<Vec<_>>(),
            vec![(3, 8), (4, 24), (2, 32)]
        );
        assert!(q.rows[0].wip && q.rows[1].concurrency_from_batch);
        assert!((q.rows[2].ttft_s - 0.25).abs() < 1e-12);
        assert!((q.rows[2].tpot_s - 0.0294).abs() < 1e-12);
        let d = t.groups.iter().find(|g| g.key.engine == "trtllm").unwrap();
        assert_eq!(
            d.key.slug(),
            "trtllm-1.1.0rc2.post2_deepseek-r1_h200-sxm-141gb_tp8_ep8_fp8"
        );
        assert_eq!(d.model.mapping.model, "deepseek-ai/DeepSeek-V3");
        assert!(d.layout.expert_parallel);
        assert_eq!(d.stack, "trtllm");
        assert_eq!(d.slug, d.key.slug());
        assert_eq!(t.skipped.len(), 2, "{:?}", t.skipped);
        assert!(t.skipped.iter().any(|s| s.contains("MiniMax")));
        assert!(t.skipped.iter().any(|s| s.contains("hybrid")));
    }

    #[test]
    fn slugs_stay_unique() {
        let row = "vllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,PREC,,,2,1,,1,1,1024,128,8,8,154.0,18.0,,,,a,1\n";
        let (_d, p) = write(
            &[
                row.replace("PREC", "bf16"),
                row.replace("PREC", "bf16 (blank in source)"),
            ]
            .concat(),
        );
        let t = read(&p).unwrap();
        let slugs: Vec<&str> = t.groups.iter().map(|g| g.slug.as_str()).collect();
        assert_eq!(
            slugs,
            [
                "vllm-0.12.0_qwen3-32b_h100-sxm5-80gb_tp2_bf16",
                "vllm-0.12.0_qwen3-32b_h100-sxm5-80gb_tp2_bf16_2"
            ]
        );
    }

    #[test]
    fn malformed_rows_name_line_and_column() {
        let good = "vllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,bf16,,,2,1,,1,1,1024,128,32,32,250.0,29.4,,,,a,1\n";
        let cases = [
            (
                good.replace(",250.0,", ",abc,"),
                ":3: field `ttft_ms`: not a finite number: `abc`",
            ),
            (
                good.replace(",29.4,", ",-1,"),
                ":3: field `tpot_ms`: must be positive, got -1",
            ),
            (
                good.replace(",1024,", ",0,"),
                ":3: field `isl`: must be a whole number ≥ 1, got 0",
            ),
            (
                good.replace(",32,32,", ",,,"),
                ":3: field `concurrency`: empty, and no batch_size",
            ),
            (
                good.replacen("vllm", "", 1),
                ":3: field `engine`: empty engine",
            ),
        ];
        for (row, want) in cases {
            let (_d, p) = write(&format!("{good}{row}"));
            let e = read(&p).unwrap_err().to_string();
            assert!(
                e.contains(&format!("serving_summary.csv{want}")),
                "{e}\nwanted {want}"
            );
        }
        let (_d, p) = write("");
        std::fs::write(&p, "engine,isl\nvllm,1\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains(":1: not an AIConfigurator serving summary"),
            "{e}"
        );
    }

    /// One row of the table with an extra `column`, once per cell of `cells` (its
    /// value), read back.
    fn read_with_column(column: &str, cells: &[&str]) -> Result<SummaryTable> {
        let head = HEAD.trim_end().to_owned() + "," + column + "\n";
        let row = "vllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,bf16,,,2,1,,1,1,1024,128,32,32,250.0,29.4,,,,a,1,";
        let rows: String = cells.iter().map(|c| format!("{row}{c}\n")).collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serving_summary.csv");
        std::fs::write(&p, head + &rows).unwrap();
        read(&p)
    }

    #[test]
    fn the_client_column_is_read_and_unknown_clients_name_the_line() {
        let t = read_with_column("client", &["inferencex", ""]).unwrap();
        let clients: Vec<_> = t.groups[0].rows.iter().map(|r| r.client).collect();
        assert_eq!(clients, [RowClient::InferenceX, RowClient::Unrecorded]);
        let e = read_with_column("client", &["aiperf"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("serving_summary.csv:2: field `client`: unknown client `aiperf`"),
            "{e}"
        );
    }

    /// `statistic` is read per row (blank: the mean), an unknown one names its line,
    /// and each statistic is computed as named.
    #[test]
    fn the_statistic_column_is_read_and_computed() {
        let t = read_with_column("statistic", &["median", "", "mean"]).unwrap();
        let stats: Vec<_> = t.groups[0].rows.iter().map(|r| r.statistic).collect();
        assert_eq!(
            stats,
            [RowStatistic::Median, RowStatistic::Mean, RowStatistic::Mean]
        );
        let e = read_with_column("statistic", &["p99"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("serving_summary.csv:2: field `statistic`: unknown statistic `p99`"),
            "{e}"
        );
        let skewed = [1.0, 2.0, 3.0, 10.0];
        assert_eq!(RowStatistic::Mean.of(&skewed), 4.0);
        assert_eq!(RowStatistic::Median.of(&skewed), 2.5);
        assert_eq!(RowStatistic::Median.of(&skewed[..3]), 2.0);
        assert!(RowStatistic::Mean.of(&[]).is_nan() && RowStatistic::Median.of(&[]).is_nan());
    }
}
