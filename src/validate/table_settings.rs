//! Engine settings that an Argonne table varies beside model, device and device count,
//! each read into the flag servesim takes for it:
//!
//! * the weight and KV-cache formats (`kv_cache_dtype` of the Fig. 3 tables, e.g.
//!   `Weight = int8, KV Cache = fp8`): `--quantization` and `--kv-cache-dtype`;
//! * the KV-cache block size (`KV Cache Block_size`, Fig. 2b): `--block-size`;
//! * the kind of parallelism over the row's devices (`Parallelism Type`, Fig. 5a:
//!   tensor, pipeline, both, or experts): `--pipeline-parallel-size` and
//!   `--enable-expert-parallel`, the tensor-parallel size being the devices left;
//! * speculative decoding (`speculative model`, Fig. 4b): the rows without it are
//!   replayed, the others left out (servesim has no draft model).
//!
//! Rows of a setting servesim does not model are left out and counted, with the reason;
//! a value it cannot read is an error naming the file, line and column.

use super::csv_table::CsvTable;
use crate::error::{Error, Result};
use serde::Serialize;

/// The engine setting of a group of rows, as servesim's flags take it; the default is
/// "as the table's other rows", i.e. the engine's defaults with 16-bit weights and KV.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupSetting {
    /// Weight format (`--quantization`), where the table names a quantized one.
    pub quantization: Option<String>,
    /// KV-cache format (`--kv-cache-dtype`), where the table names one that is not
    /// 16-bit.
    pub kv_cache_dtype: Option<String>,
    /// KV-cache block size in tokens (`--block-size`).
    pub block_size: Option<u32>,
    /// Pipeline stages (`--pipeline-parallel-size`); the row's devices are TP × PP.
    pub pipeline_parallel_size: Option<u32>,
    /// Routed experts spread whole over the row's GPUs (`--enable-expert-parallel`).
    pub expert_parallel: bool,
}

impl GroupSetting {
    /// Pipeline stages (1 unless the table says otherwise).
    pub fn pipeline_stages(&self) -> u32 {
        self.pipeline_parallel_size.unwrap_or(1)
    }

    /// What a group's file name adds for its setting: `_pp2`, `_ep`, `_w-int8`,
    /// `_kv-fp8`, `_block8`; empty for the default.
    pub fn slug_suffix(&self) -> String {
        let mut s = String::new();
        if let Some(pp) = self.pipeline_parallel_size {
            s.push_str(&format!("_pp{pp}"));
        }
        if self.expert_parallel {
            s.push_str("_ep");
        }
        if let Some(q) = &self.quantization {
            s.push_str(&format!("_w-{q}"));
        }
        if let Some(kv) = &self.kv_cache_dtype {
            s.push_str(&format!("_kv-{kv}"));
        }
        if let Some(b) = self.block_size {
            s.push_str(&format!("_block{b}"));
        }
        s
    }
}

/// What a row's setting columns say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RowSetting {
    /// Replay the row with this setting.
    Keep(GroupSetting),
    /// Leave the row out, for this reason (a setting servesim does not model).
    Leave(String),
}

/// The setting columns an Argonne table has (most have none).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SettingColumns {
    formats: Option<usize>,
    block_size: Option<usize>,
    parallelism: Option<usize>,
    speculative: Option<usize>,
}

const FORMATS: &str = "kv_cache_dtype";
const BLOCK_SIZE: &str = "KV Cache Block_size";
const PARALLELISM: &str = "Parallelism Type";
const SPECULATIVE: &str = "speculative model";

impl SettingColumns {
    /// The setting columns of `t`; an error for a table whose varied setting servesim
    /// cannot map at all (with and without a KV cache, Fig. 2a).
    pub(crate) fn find(t: &CsvTable) -> Result<Self> {
        if t.col(&["KV Cache"]).is_some() {
            return Err(Error::input_at(
                &t.path,
                1,
                Some("KV Cache"),
                "this table compares generation with and without a KV cache, which servesim does not model (it always keeps one); use All_results.csv",
            ));
        }
        Ok(Self {
            formats: t.col(&[FORMATS]),
            block_size: t.col(&[BLOCK_SIZE]),
            parallelism: t.col(&[PARALLELISM]),
            speculative: t.col(&[SPECULATIVE]),
        })
    }

    /// Whether the table says how a row's devices are split (`Parallelism Type`): only
    /// then does [`Self::read`] look at its device count.
    pub(crate) fn splits_devices(&self) -> bool {
        self.parallelism.is_some()
    }

    /// The setting of `row`, whose devices (`Num of Hardware` times the devices in each)
    /// number `devices`.
    pub(crate) fn read(
        &self,
        t: &CsvTable,
        row: &(u64, Vec<String>),
        devices: u32,
    ) -> Result<RowSetting> {
        let mut s = GroupSetting::default();
        if let Some(c) = self.speculative {
            let draft = t.text(row, c)?;
            if !draft.eq_ignore_ascii_case("none") {
                return Ok(RowSetting::Leave(format!(
                    "speculative decoding (draft model {draft}): not modelled"
                )));
            }
        }
        if let Some(c) = self.formats {
            let text = t.text(row, c)?;
            match formats(text).map_err(|e| t.bad(row, c, e))? {
                Formats::Modelled { weight, kv } => {
                    (s.quantization, s.kv_cache_dtype) = (weight, kv)
                }
                Formats::NotModelled(why) => {
                    return Ok(RowSetting::Leave(format!("`{text}`: {why}")));
                }
            }
        }
        if let Some(c) = self.block_size {
            s.block_size = Some(t.count(row, c)?);
        }
        if let Some(c) = self.parallelism {
            let text = t.text(row, c)?;
            match parallelism(text, devices).map_err(|e| t.bad(row, c, e))? {
                Parallelism::Modelled { pp, ep } => {
                    s.pipeline_parallel_size = (pp > 1).then_some(pp);
                    s.expert_parallel = ep;
                }
                Parallelism::NotModelled(why) => {
                    return Ok(RowSetting::Leave(format!("`{text}`: {why}")));
                }
            }
        }
        Ok(RowSetting::Keep(s))
    }

    /// How the table's setting columns were read, for the notes of every group.
    pub(crate) fn notes(&self, t: &CsvTable) -> Vec<String> {
        let name = |c: usize| t.header[c].clone();
        let mut notes = Vec::new();
        if let Some(c) = self.formats {
            notes.push(format!(
                "column `{}` (`Weight = W, KV Cache = K`): W = fp16 / full_prec as 16-bit weights, int8 / int8_sq as int8 weights and activations (SmoothQuant, W8A8), fp8 as FP8; K as --kv-cache-dtype (fp16 the model's own)",
                name(c)
            ));
        }
        if let Some(c) = self.block_size {
            notes.push(format!("column `{}` as --block-size", name(c)));
        }
        if let Some(c) = self.parallelism {
            notes.push(format!(
                "column `{}`: the row's devices split by tensor parallelism, pipeline parallelism (--pipeline-parallel-size), both, or by experts (--enable-expert-parallel over a tensor-parallel group of all of them)",
                name(c)
            ));
        }
        if let Some(c) = self.speculative {
            notes.push(format!(
                "column `{}`: rows without a draft model replayed, rows with one left out",
                name(c)
            ));
        }
        notes
    }
}

/// What a `Weight = W, KV Cache = K` cell names.
#[derive(Debug, PartialEq, Eq)]
enum Formats {
    /// `--quantization` and `--kv-cache-dtype` values (none for 16-bit).
    Modelled {
        weight: Option<String>,
        kv: Option<String>,
    },
    /// A format servesim does not simulate (a weight-only int8 checkpoint, a name it
    /// does not know), and why.
    NotModelled(String),
}

/// Weight and KV-cache formats of `Weight = W, KV Cache = K` (either part may be
/// missing). A cell of another shape is an error; a format servesim does not know is
/// [`Formats::NotModelled`], so one unknown label leaves its rows out, not the table.
fn formats(text: &str) -> std::result::Result<Formats, String> {
    let (mut weight, mut kv) = (None, None);
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!("expected `Weight = W, KV Cache = K`, got `{text}`"));
        };
        let value = value.trim().to_ascii_lowercase();
        match key.trim().to_ascii_lowercase().as_str() {
            "weight" | "weights" => {
                weight = match value.as_str() {
                    "fp16" | "float16" | "bf16" | "bfloat16" | "full_prec" | "none" => None,
                    "int8" | "int8_sq" | "w8a8" | "smoothquant" => Some("int8".to_owned()),
                    "fp8" => Some("fp8".to_owned()),
                    "int4" | "int4_awq" | "awq" | "gptq" | "w4a16" => Some("int4".to_owned()),
                    "int8_wo" | "w8a16" | "int8_weight_only" => {
                        return Ok(Formats::NotModelled(
                            "weight-only int8 (16-bit math on int8 weights) is not modelled".into(),
                        ))
                    }
                    other => {
                        return Ok(Formats::NotModelled(format!(
                            "unknown weight format `{other}` (known: fp16, full_prec, int8, int8_sq, fp8, int4)"
                        )))
                    }
                }
            }
            "kv cache" | "kv_cache" | "kv" => {
                kv = match value.as_str() {
                    "fp16" | "float16" | "bf16" | "bfloat16" | "auto" => None,
                    "fp8" | "fp8_e4m3" | "fp8_e5m2" => Some("fp8".to_owned()),
                    "int8" => Some("int8".to_owned()),
                    other => {
                        return Ok(Formats::NotModelled(format!(
                            "unknown KV-cache format `{other}` (known: fp16, fp8, int8)"
                        )))
                    }
                }
            }
            other => {
                return Err(format!(
                    "unknown part `{other}` in `{text}`: expected `Weight = W, KV Cache = K`"
                ))
            }
        }
    }
    Ok(Formats::Modelled { weight, kv })
}

/// How a row's devices are split.
#[derive(Debug, PartialEq, Eq)]
enum Parallelism {
    /// `pp` pipeline stages of tensor-parallel groups; `ep`: experts spread whole.
    Modelled { pp: u32, ep: bool },
    /// A split servesim does not simulate, and why.
    NotModelled(String),
}

/// The split a `Parallelism Type` names over `devices` GPUs: `Tensor Parallelism` /
/// `TP`, `Pipeline Parallelism` / `PP`, `EP` / `Expert Parallelism`, or a hybrid that
/// names degrees (`Hybrid TP = 2 and PP = 2`, `Hybird Tensor (2) and Pipeline (2)
/// Parallelism`).
fn parallelism(text: &str, devices: u32) -> std::result::Result<Parallelism, String> {
    let lower = text.trim().to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let whole =
        |kinds: &[&str]| words.len() <= 2 && words.first().is_some_and(|w| kinds.contains(w));
    if whole(&["tp", "tensor"]) {
        return Ok(Parallelism::Modelled { pp: 1, ep: false });
    }
    if whole(&["pp", "pipeline"]) {
        return Ok(Parallelism::Modelled {
            pp: devices,
            ep: false,
        });
    }
    if whole(&["ep", "expert"]) {
        return Ok(Parallelism::Modelled { pp: 1, ep: true });
    }
    // A hybrid: each kind followed by its degree.
    let degree = |kinds: &[&str]| -> Option<u32> {
        words
            .windows(2)
            .find(|w| kinds.contains(&w[0]))
            .and_then(|w| w[1].parse().ok())
    };
    let (tp, pp, ep) = (
        degree(&["tp", "tensor"]),
        degree(&["pp", "pipeline"]),
        degree(&["ep", "expert"]),
    );
    match (tp, pp, ep) {
        (Some(t), Some(p), None) if t.checked_mul(p) == Some(devices) => {
            Ok(Parallelism::Modelled { pp: p, ep: false })
        }
        (Some(t), Some(p), None) => Err(format!(
            "TP {t} × PP {p} is not the row's {devices} devices"
        )),
        (Some(t), None, Some(e)) => Ok(Parallelism::NotModelled(format!(
            "experts split over TP {t} and spread over EP {e} is not modelled (servesim spreads whole experts over the whole tensor-parallel group)"
        ))),
        _ => Err(format!(
            "unknown parallelism `{text}`: expected Tensor Parallelism / TP, Pipeline Parallelism / PP, EP, or a hybrid naming its degrees (`Hybrid TP = 2 and PP = 2`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_weights_and_kv() {
        let m = |w: Option<&str>, kv: Option<&str>| Formats::Modelled {
            weight: w.map(str::to_owned),
            kv: kv.map(str::to_owned),
        };
        let f = |s| formats(s).unwrap();
        assert_eq!(f("Weight = fp16, KV Cache = fp16"), m(None, None));
        assert_eq!(
            f("Weight = int8_sq, KV Cache = fp8"),
            m(Some("int8"), Some("fp8"))
        );
        assert_eq!(
            f("Weight = full_prec, KV Cache = int8"),
            m(None, Some("int8"))
        );
        assert_eq!(f("Weight = fp8"), m(Some("fp8"), None));
        // Formats servesim does not simulate leave their rows out, with the reason.
        let left = |s| match formats(s).unwrap() {
            Formats::NotModelled(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(left("Weight = int3, KV Cache = fp8").contains("`int3`"));
        assert!(left("Weight = int8_wo, KV Cache = fp16").contains("weight-only"));
        assert!(left("Weight = fp16, KV Cache = int4").contains("`int4`"));
        // A cell of another shape is an error.
        assert!(formats("fp8").unwrap_err().contains("expected"));
        assert!(formats("Cache = fp8").unwrap_err().contains("`cache`"));
    }

    #[test]
    fn parallelism_names_and_hybrids() {
        let m = |pp, ep| Parallelism::Modelled { pp, ep };
        assert_eq!(parallelism("Tensor Parallelism", 4), Ok(m(1, false)));
        assert_eq!(parallelism("TP", 4), Ok(m(1, false)));
        assert_eq!(parallelism("Pipeline Parallelism", 4), Ok(m(4, false)));
        assert_eq!(parallelism("PP", 2), Ok(m(2, false)));
        assert_eq!(parallelism("EP", 4), Ok(m(1, true)));
        assert_eq!(
            parallelism("Hybird Tensor (2) and Pipeline (2) Parallelism", 4),
            Ok(m(2, false))
        );
        assert_eq!(parallelism("Hybrid TP = 2 and PP = 2", 4), Ok(m(2, false)));
        assert!(matches!(
            parallelism("Hybrid TP = 2 and EP = 2", 4),
            Ok(Parallelism::NotModelled(_))
        ));
        assert!(parallelism("Hybrid TP = 2 and PP = 2", 8)
            .unwrap_err()
            .contains("8 devices"));
        assert!(parallelism("Sequence Parallelism", 2).is_err());
    }

    #[test]
    fn slugs_name_the_setting() {
        assert_eq!(GroupSetting::default().slug_suffix(), "");
        let s = GroupSetting {
            quantization: Some("int8".into()),
            kv_cache_dtype: Some("fp8".into()),
            block_size: Some(8),
            pipeline_parallel_size: Some(2),
            expert_parallel: true,
        };
        assert_eq!(s.slug_suffix(), "_pp2_ep_w-int8_kv-fp8_block8");
    }
}
