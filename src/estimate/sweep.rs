//! Estimates over every combination of batch sizes, prompt and output lengths.
//!
//! Each point is an independent [`estimate`](super::estimate) on the same replica,
//! run on every core; the points come back in the order of the grid (batch size
//! slowest, output length fastest), whatever the thread count. A point the engine
//! cannot run (longer than `max_model_len`, more KV than the cache holds for one
//! request, past the estimate's limits) is a row with its reason instead of numbers.

use super::{estimate_with_work, BatchMemory, BatchSpec, Estimate};
use crate::perf::roofline::Roofline;
use crate::perf::Bound;
use crate::setup::ReplicaSetup;
use serde::Serialize;
use std::sync::Arc;

/// The most points a sweep runs (each is a whole static batch through the engine).
pub const MAX_POINTS: usize = 10_000;

/// Every combination of the lists, batch size slowest, output length fastest.
pub fn grid(batch_sizes: &[u32], input_lens: &[u32], output_lens: &[u32]) -> Vec<BatchSpec> {
    let mut v = Vec::new();
    for &batch_size in batch_sizes {
        for &input_len in input_lens {
            for &output_len in output_lens {
                v.push(BatchSpec {
                    batch_size,
                    input_len,
                    output_len,
                });
            }
        }
    }
    v
}

/// One row of a sweep: the headline of a point's estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Requests in the batch.
    pub batch_size: u32,
    /// Prompt tokens per request.
    pub input_len: u32,
    /// Output tokens per request.
    pub output_len: u32,
    /// Mean time to first token, s (none when the point could not run).
    pub ttft_s: Option<f64>,
    /// Mean time per output token after the first, s.
    pub tpot_s: Option<f64>,
    /// The last request's finish, s.
    pub e2e_s: Option<f64>,
    /// Output tokens per second of E2E.
    pub output_tokens_per_s: Option<f64>,
    /// Prompt and output tokens per second of E2E.
    pub total_tokens_per_s: Option<f64>,
    /// Memory per GPU with the batch at its longest, GiB.
    pub memory_per_gpu_gib: Option<f64>,
    /// Whether the batch's KV fits in the cache at once (no preemption needed).
    pub fits: bool,
    /// Preemptions the engine made.
    pub preemptions: Option<u64>,
    /// `phase/op/bound` of the dominant cost (`decode/linear/memory`).
    pub bottleneck: Option<String>,
    /// Share of the GPU's peak FLOP/s used while the engine ran.
    pub compute_utilization: Option<f64>,
    /// Share of the GPU's peak memory bandwidth used while the engine ran.
    pub memory_bandwidth_utilization: Option<f64>,
    /// Why the point has no numbers.
    pub error: Option<String>,
}

impl Row {
    /// The headline of `e`.
    pub fn of(e: &Estimate) -> Self {
        let b = &e.bottleneck;
        Row {
            batch_size: e.batch.batch_size,
            input_len: e.batch.input_len,
            output_len: e.batch.output_len,
            ttft_s: Some(e.ttft_s),
            tpot_s: Some(e.tpot_s),
            e2e_s: Some(e.e2e_s),
            output_tokens_per_s: Some(e.output_tokens_per_s),
            total_tokens_per_s: Some(e.total_tokens_per_s),
            memory_per_gpu_gib: Some(e.memory.total_gib),
            fits: e.memory.fits,
            preemptions: Some(e.preemptions),
            bottleneck: Some(format!("{}/{}/{}", b.phase, b.op, Bound::label(b.bound))),
            compute_utilization: e.utilization.map(|u| u.compute),
            memory_bandwidth_utilization: e.utilization.map(|u| u.memory_bandwidth),
            error: None,
        }
    }

    /// A point that could not run.
    fn failed(setup: &ReplicaSetup, batch: BatchSpec, error: String) -> Self {
        let m = BatchMemory::of(setup, batch);
        Row {
            batch_size: batch.batch_size,
            input_len: batch.input_len,
            output_len: batch.output_len,
            ttft_s: None,
            tpot_s: None,
            e2e_s: None,
            output_tokens_per_s: None,
            total_tokens_per_s: None,
            memory_per_gpu_gib: Some(m.total_gib),
            fits: false,
            preemptions: None,
            bottleneck: None,
            compute_utilization: None,
            memory_bandwidth_utilization: None,
            error: Some(error),
        }
    }
}

/// Estimate every point of `batches` on `setup` (FLOPs and bytes counted by `work`),
/// on up to `threads` threads.
pub fn sweep(
    setup: &ReplicaSetup,
    batches: &[BatchSpec],
    work: Option<Arc<Roofline>>,
    threads: usize,
) -> Vec<Row> {
    let run = |b: BatchSpec| match estimate_with_work(setup, b, work.clone()) {
        Ok(e) => Row::of(&e),
        Err(err) => Row::failed(setup, b, err.to_string()),
    };
    let points: Vec<usize> = (0..batches.len()).collect();
    crate::plan::exec::par_map(&points, threads, |i| run(batches[i]), &|| {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::{Deployment, DeploymentRequest};
    use crate::engine::config::EngineOverrides;
    use crate::paths::DataPaths;
    use crate::perf::roofline::RooflineParams;

    fn setup_and_work() -> (ReplicaSetup, Arc<Roofline>) {
        let paths = DataPaths::builtin();
        let d = Deployment::resolve(&DeploymentRequest::default(), &paths).unwrap();
        let params = RooflineParams::load_for(&paths.perf_model, d.gpu()).unwrap();
        let work = Arc::new(Roofline::new(&d, params));
        let setup = ReplicaSetup::new(d, &EngineOverrides::default(), &paths).unwrap();
        (setup, work)
    }

    #[test]
    fn the_grid_runs_batch_size_slowest_and_output_length_fastest() {
        let g = grid(&[1, 8], &[128, 512], &[16, 32, 64]);
        assert_eq!(g.len(), 12);
        assert_eq!(
            (g[0].batch_size, g[0].input_len, g[0].output_len),
            (1, 128, 16)
        );
        assert_eq!(
            (g[1].batch_size, g[1].input_len, g[1].output_len),
            (1, 128, 32)
        );
        assert_eq!(
            (g[3].batch_size, g[3].input_len, g[3].output_len),
            (1, 512, 16)
        );
        assert_eq!(
            (g[11].batch_size, g[11].input_len, g[11].output_len),
            (8, 512, 64)
        );
    }

    /// Rows are each point's own estimate, in grid order, whatever the thread count;
    /// a point that cannot run keeps its place with its reason.
    #[test]
    fn rows_are_the_points_estimates_in_order_on_any_thread_count() {
        let (setup, work) = setup_and_work();
        let too_long = setup.engine.max_model_len;
        let batches = grid(&[1, 4], &[64, too_long], &[8]);
        let one = sweep(&setup, &batches, Some(work.clone()), 1);
        let three = sweep(&setup, &batches, Some(work.clone()), 3);
        assert_eq!(one, three);
        for (b, r) in batches.iter().zip(&one) {
            assert_eq!(
                (r.batch_size, r.input_len, r.output_len),
                (b.batch_size, b.input_len, b.output_len)
            );
            if b.input_len == too_long {
                assert!(
                    r.error.as_deref().unwrap().contains("--max-model-len"),
                    "{r:?}"
                );
                assert!(r.ttft_s.is_none() && !r.fits);
            } else {
                let e = estimate_with_work(&setup, *b, Some(work.clone())).unwrap();
                assert_eq!(*r, Row::of(&e));
            }
        }
    }

    /// Every iteration reads every weight matrix once (the embedding table only by the
    /// rows it gathers): the counted bytes per GPU are at least the weights per GPU
    /// less the embedding table, times the iterations; utilisation stays within the
    /// peaks.
    #[test]
    fn counted_work_reads_the_weights_every_iteration() {
        let (setup, work) = setup_and_work();
        for b in grid(&[1, 16], &[256], &[32]) {
            let e = estimate_with_work(&setup, b, Some(work.clone())).unwrap();
            let u = e.utilization.unwrap();
            let m = &setup.deployment.model;
            let embedding = (m.embedding.vocab_size * m.embedding.dim) as f64 * 2.0;
            let weights = setup.memory.weight_bytes_per_gpu - embedding;
            assert!(u.bytes_per_gpu >= weights * e.iterations as f64, "{u:?}");
            assert!(u.compute > 0.0 && u.compute < 1.0, "{u:?}");
            assert!(
                u.memory_bandwidth > 0.0 && u.memory_bandwidth < 1.0,
                "{u:?}"
            );
            assert!((u.busy_s - (e.prefill_time_s + e.decode_time_s)).abs() < 1e-12);
        }
    }
}
