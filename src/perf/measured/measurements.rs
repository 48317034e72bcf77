//! Kernel measurements of whole GPUs, beside the per-model profiles
//! (`perf_model/measurements/`, see its README):
//!
//! * `tp-collectives/allreduce.csv`: the tensor-parallel all-reduce of vLLM, SGLang or
//!   TensorRT-LLM as the engine dispatches it inside CUDA graphs (custom kernel for
//!   small messages, NCCL or another path for large ones), by GPU count and message
//!   size;
//! * `attention/<gpu>__{context,generation}.csv`: one attention layer through vLLM's
//!   backend (FlashAttention, FlashInfer), prefill and decode, by batch, length and
//!   heads per GPU;
//! * `moe/<gpu>__bfloat16.csv`: vLLM's fused-MoE block by expert shape, TP/EP split
//!   and tokens.

use super::attention::AttnGeometry;
use super::build::MEASURED_ELEMENT_BYTES;
use super::profile::{AttentionRow, CollectiveTable};
use super::table::MonotoneTable;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The all-reduce measurement file under the perf-model folder.
pub(crate) fn all_reduce_path(perf_model: &Path) -> PathBuf {
    perf_model
        .join("measurements")
        .join("tp-collectives")
        .join("allreduce.csv")
}

#[derive(Deserialize)]
struct Row {
    gpu: String,
    num_gpus: u32,
    implementation: String,
    mode: String,
    collective: String,
    message_bytes: f64,
    latency_us: f64,
}

/// The graph-mode all-reduce tables of `implementation` on the GPU `slug`, one per GPU
/// count (versions of the engine merged: equal sizes are averaged). Empty when the
/// file or the GPU's rows are missing.
pub(crate) fn load_all_reduce(
    perf_model: &Path,
    slug: &str,
    implementation: &str,
) -> Result<Vec<CollectiveTable>> {
    let file = all_reduce_path(perf_model);
    if !file.is_file() {
        return Ok(Vec::new());
    }
    let mut rdr = csv::Reader::from_path(&file).map_err(|e| csv_error(&file, e))?;
    let mut groups: Vec<(u32, Vec<(f64, f64)>)> = Vec::new();
    for rec in rdr.deserialize::<Row>() {
        let r = rec.map_err(|e| csv_error(&file, e))?;
        if r.gpu != slug
            || r.implementation != implementation
            || r.mode != "graph"
            || r.collective != "all_reduce"
        {
            continue;
        }
        let p = (r.message_bytes, r.latency_us);
        match groups.iter_mut().find(|g| g.0 == r.num_gpus) {
            Some(g) => g.1.push(p),
            None => groups.push((r.num_gpus, vec![p])),
        }
    }
    Ok(groups
        .into_iter()
        .filter_map(|(n, pts)| {
            MonotoneTable::from_points(pts).map(|table| CollectiveTable {
                num_workers: n,
                devices_per_node: n,
                table,
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct AttnRecord {
    batch_size: f64,
    #[serde(alias = "prompt_tokens")]
    context_tokens: f64,
    num_heads: f64,
    num_kv_heads: f64,
    head_dim: f64,
    time_us: f64,
}

/// One attention layer measured through the engine's backend: its per-GPU geometry and
/// the batch in the profiles' row format. Prefill rows hold one prompt with no cached
/// prefix (batches of several prompts are left out: a row has one prefill chunk);
/// decode rows `batch_size` decodes of `context_tokens` each.
pub(crate) fn load_attention(
    perf_model: &Path,
    slug: &str,
) -> Result<Vec<(AttnGeometry, AttentionRow)>> {
    let dir = perf_model.join("measurements").join("attention");
    let mut out = Vec::new();
    for (kind, prefill) in [("context", true), ("generation", false)] {
        let file = dir.join(format!("{slug}__{kind}.csv"));
        if !file.is_file() {
            continue;
        }
        let mut rdr = csv::Reader::from_path(&file).map_err(|e| csv_error(&file, e))?;
        for rec in rdr.deserialize::<AttnRecord>() {
            let r = rec.map_err(|e| csv_error(&file, e))?;
            if prefill && r.batch_size != 1.0 {
                continue;
            }
            let g = AttnGeometry {
                q_heads: r.num_heads,
                kv_heads: r.num_kv_heads,
                pair_flops: 4.0 * r.head_dim,
                kv_bytes_per_token: 2.0 * r.num_kv_heads * r.head_dim * MEASURED_ELEMENT_BYTES,
                window: None,
            };
            let row = if prefill {
                AttentionRow {
                    prefill_chunk: r.context_tokens,
                    kv_prefill: 0.0,
                    n_decode: 0.0,
                    kv_decode: 0.0,
                    time_us: r.time_us,
                }
            } else {
                AttentionRow {
                    prefill_chunk: 0.0,
                    kv_prefill: 0.0,
                    n_decode: r.batch_size,
                    kv_decode: r.context_tokens,
                    time_us: r.time_us,
                }
            };
            out.push((g, row));
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct MoeRecord {
    hidden_size: u64,
    inter_size: u64,
    num_experts: u64,
    topk: u64,
    moe_tp: u32,
    moe_ep: u32,
    distribution: String,
    num_tokens: f64,
    time_us: f64,
}

/// The shape of one MoE layer on one GPU, as `moe/<gpu>__bfloat16.csv` keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MoeShape {
    pub hidden: u64,
    /// The full (unsplit) expert width.
    pub inter: u64,
    pub experts: u64,
    pub topk: u64,
    pub tp: u32,
    pub ep: u32,
}

/// The fused-MoE block (routing, grouped expert GEMMs, combine; no router GEMM)
/// measured through vLLM on the GPU `slug` for `shape` under balanced routing, by the
/// tokens entering the block; `None` when not measured.
pub(crate) fn load_moe(
    perf_model: &Path,
    slug: &str,
    shape: &MoeShape,
) -> Result<Option<MonotoneTable>> {
    let file = perf_model
        .join("measurements")
        .join("moe")
        .join(format!("{slug}__bfloat16.csv"));
    if !file.is_file() {
        return Ok(None);
    }
    let mut rdr = csv::Reader::from_path(&file).map_err(|e| csv_error(&file, e))?;
    let mut pts = Vec::new();
    for rec in rdr.deserialize::<MoeRecord>() {
        let r = rec.map_err(|e| csv_error(&file, e))?;
        let here = MoeShape {
            hidden: r.hidden_size,
            inter: r.inter_size,
            experts: r.num_experts,
            topk: r.topk,
            tp: r.moe_tp,
            ep: r.moe_ep,
        };
        if here == *shape && r.distribution == "balanced" {
            pts.push((r.num_tokens, r.time_us));
        }
    }
    Ok(MonotoneTable::from_points(pts))
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::input_at(path, line, None, e.to_string())
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
            "vllm-all-reduce"
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn h100_mixtral_moe_block_grows_with_tokens() {
        let shape = MoeShape {
            hidden: 4096,
            inter: 14336,
            experts: 8,
            topk: 2,
            tp: 2,
            ep: 1,
        };
        let t = load_moe(&DataPaths::builtin().perf_model, "h100-sxm5-80gb", &shape)
            .unwrap()
            .expect("Mixtral TP2 rows");
        assert!(t.eval(1.0) > 10.0 && t.eval(4096.0) > 4.0 * t.eval(1.0));
        let other = MoeShape { hidden: 1, ..shape };
        assert!(
            load_moe(&DataPaths::builtin().perf_model, "h100-sxm5-80gb", &other)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn h100_attention_has_prefill_and_decode_rows() {
        let rows = load_attention(&DataPaths::builtin().perf_model, "h100-sxm5-80gb").unwrap();
        assert!(rows.iter().any(|(_, r)| r.prefill_chunk > 0.0));
        assert!(rows.iter().any(|(_, r)| r.n_decode > 0.0));
        assert!(rows
            .iter()
            .all(|(g, r)| g.q_heads >= 1.0 && r.time_us > 0.0));
    }
}
