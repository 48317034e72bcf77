//! The latency of one static batch, from the simulated engine.
//!
//! `batch_size` identical requests of `input_len` prompt and `output_len` output tokens
//! arrive together at time zero on one replica built exactly as `simulate` builds it
//! ([`ReplicaSetup`]: the same memory plan, engine settings and latency model), and run
//! through the engine: its scheduler, token budget (chunked prefill), KV capacity
//! (preemption) and host overheads decide the iterations, and the latency model times
//! them. The headline numbers are the engine's:
//!
//! * TTFT: the mean over the batch of the time to each request's first token;
//! * TPOT: the mean over the batch of `(e2e − ttft) / (output_len − 1)` (0 when
//!   `output_len` is 1), as `simulate` reports it;
//! * E2E: the last request's finish; throughput is the batch's tokens over E2E.
//!
//! TTFT and E2E are as clients see them, as `simulate` reports them: they include the
//! serving stack's API server (request handling before the engine sees the batch, and
//! the time a token takes to reach the client; [`crate::sim::api`]). The batch reaches
//! the server as one: its requests do not queue for the server's request handlers, as
//! separate clients sending at once would.
//!
//! The operator breakdown comes from the same latency model
//! ([`LatencyModel::op_breakdown`]) applied to
//! the iterations the engine ran: the iterations with prefill work (prompt chunks,
//! including recomputation after a preemption) summed, and one decode-only iteration
//! from the middle of decoding.
//!
//! With `--data-parallel-size N` the batch runs on one rank (one engine); the latency
//! model assumes every rank equally loaded, as in `simulate`.
//!
//! ```no_run
//! use servesim::deployment::{Deployment, DeploymentRequest};
//! use servesim::engine::config::EngineOverrides;
//! use servesim::estimate::{estimate, BatchSpec};
//! use servesim::paths::DataPaths;
//! use servesim::setup::ReplicaSetup;
//!
//! let paths = DataPaths::builtin();
//! let d = Deployment::resolve(&DeploymentRequest::default(), &paths).unwrap();
//! let setup = ReplicaSetup::new(d, &EngineOverrides::default(), &paths).unwrap();
//! let e = estimate(&setup, BatchSpec { batch_size: 4, input_len: 1024, output_len: 128 }).unwrap();
//! println!("TTFT {:.1} ms, TPOT {:.2} ms", e.ttft_s * 1e3, e.tpot_s * 1e3);
//! ```

mod advice;
mod batch_memory;
pub mod sweep;

pub use advice::{advise, Advice, Change, Tried};
pub use batch_memory::BatchMemory;

use crate::engine::{RequestRecord, RequestStatus};
use crate::error::{Error, Result};
use crate::perf::roofline::Roofline;
use crate::perf::{Bound, LatencyModel, OpCost, StepShape};
use crate::setup::ReplicaSetup;
use crate::simulate::simulate_requests;
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// The most tokens (`batch_size × (input_len + output_len)`) [`estimate`] simulates;
/// larger batches are refused rather than left running for minutes.
pub const MAX_BATCH_TOKENS: u64 = 1 << 27;

/// The most engine iterations [`estimate`] simulates (seconds of a release build): a
/// batch that needs more, even without preemption, is refused up front, and one that
/// preempts so often that it reaches the limit stops there with an error.
pub const MAX_ITERATIONS: u64 = 1_000_000;

/// The shape of a static batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BatchSpec {
    /// Requests in the batch.
    pub batch_size: u32,
    /// Prompt tokens per request.
    pub input_len: u32,
    /// Output tokens per request (including the first).
    pub output_len: u32,
}

impl BatchSpec {
    /// The batch's requests: ids `0..batch_size`, all arriving at time zero.
    pub fn requests(&self) -> Vec<Request> {
        (0..self.batch_size)
            .map(|i| Request::new(u64::from(i), SimTime::ZERO, self.input_len, self.output_len))
            .collect()
    }

    /// Prompt plus output tokens of the whole batch.
    pub fn total_tokens(&self) -> u64 {
        u64::from(self.batch_size) * (u64::from(self.input_len) + u64::from(self.output_len))
    }

    /// Check that the batch can run to completion on `setup` and is small enough to
    /// simulate ([`MAX_BATCH_TOKENS`]); errors name the flag to change.
    pub fn check(&self, setup: &ReplicaSetup) -> Result<()> {
        let bad = |flag: &str, msg: String| Err(Error::input("<command line>", Some(flag), msg));
        for (flag, v) in [
            ("--batch-size", self.batch_size),
            ("--input-len", self.input_len),
            ("--output-len", self.output_len),
        ] {
            if v == 0 {
                return bad(flag, "must be at least 1".into());
            }
        }
        let e = &setup.engine;
        let per_request = u64::from(self.input_len) + u64::from(self.output_len);
        if per_request > u64::from(e.max_model_len) {
            return bad(
                "--max-model-len",
                format!(
                    "--input-len {} + --output-len {} = {per_request} tokens exceed --max-model-len {}; the engine would reject every request: raise --max-model-len (the model allows {}) or shorten the request",
                    self.input_len,
                    self.output_len,
                    e.max_model_len,
                    setup.deployment.model.max_position_embeddings
                ),
            );
        }
        // As the engine's admission: the KV of every token but the last.
        let blocks = (per_request - 1).div_ceil(u64::from(e.block_size));
        if blocks > u64::from(e.num_gpu_blocks) {
            return bad(
                "--input-len",
                format!(
                    "one request of {per_request} tokens needs {blocks} KV blocks of {} tokens but the whole cache holds {}; shorten the request, or give the cache more memory (--gpu-memory-utilization, more GPUs, --kv-cache-dtype fp8, --num-gpu-blocks-override)",
                    e.block_size, e.num_gpu_blocks
                ),
            );
        }
        if let Some(n) = e.longest_prompt().filter(|&n| self.input_len > n) {
            return bad(
                "--input-len",
                format!(
                    "{} prompt tokens exceed the {} stack's token budget of {n} without chunked prefill, which turns longer prompts away (as TensorRT-LLM's max_num_tokens does); pass --enable-chunked-prefill or a larger --max-num-batched-tokens",
                    self.input_len, setup.deployment.stack.name
                ),
            );
        }
        // Iterations without preemption: the decode steps of each group of at most
        // max_num_seqs sequences, and the prompt tokens over the token budget.
        let groups = u64::from(self.batch_size).div_ceil(u64::from(e.max_num_seqs.max(1)));
        let iterations = groups * u64::from(self.output_len)
            + (u64::from(self.batch_size) * u64::from(self.input_len))
                .div_ceil(u64::from(e.max_num_batched_tokens.max(1)));
        if iterations > MAX_ITERATIONS {
            return bad(
                "--batch-size",
                format!(
                    "--batch-size {} with --output-len {} needs at least {iterations} engine iterations ({groups} groups of --max-num-seqs {} decoding {} tokens), more than the {MAX_ITERATIONS} estimate simulates; use a smaller batch, a shorter output or a larger --max-num-seqs",
                    self.batch_size, self.output_len, e.max_num_seqs, self.output_len
                ),
            );
        }
        if self.total_tokens() > MAX_BATCH_TOKENS {
            return bad(
                "--batch-size",
                format!(
                    "--batch-size {} × (--input-len {} + --output-len {}) = {} tokens is more than the {MAX_BATCH_TOKENS} tokens estimate simulates; use a smaller batch or shorter requests",
                    self.batch_size,
                    self.input_len,
                    self.output_len,
                    self.total_tokens()
                ),
            );
        }
        Ok(())
    }
}

/// Run `batch` on one replica of `setup` through the engine, stopping with
/// [`Error::IterationLimit`] after `max_iterations` iterations when given. Returns
/// every request's record in end order, rejected ones included (see
/// [`BatchSpec::check`] to refuse those beforehand).
pub fn run_static_batch(
    setup: &ReplicaSetup,
    batch: BatchSpec,
    max_iterations: Option<u64>,
) -> Result<Vec<RequestRecord>> {
    let opts = crate::simulate::ReplayOptions {
        max_iterations,
        ..Default::default()
    };
    Ok(simulate_requests(setup, 1, batch.requests(), opts)?.records)
}

/// The result of [`estimate`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// The batch.
    pub batch: BatchSpec,
    /// Where the latency model's predictions come from
    /// ([`LatencyModel::describe`]).
    pub latency_model: String,
    /// Mean over the batch of the time to first token, s.
    pub ttft_s: f64,
    /// Mean over the batch of the time per output token after the first, s (0 when
    /// `output_len` is 1).
    pub tpot_s: f64,
    /// The last request's finish, s.
    pub e2e_s: f64,
    /// Output tokens of the batch per second of E2E.
    pub output_tokens_per_s: f64,
    /// Prompt plus output tokens of the batch per second of E2E.
    pub total_tokens_per_s: f64,
    /// Iterations the engine ran.
    pub iterations: u64,
    /// Of which with prefill work (prompt chunks, possibly with decodes).
    pub prefill_iterations: u64,
    /// Preemptions over the batch.
    pub preemptions: u64,
    /// Summed time of the iterations with prefill work, s.
    pub prefill_time_s: f64,
    /// Summed time of the decode-only iterations, s.
    pub decode_time_s: f64,
    /// Operators of the iterations with prefill work, summed, slowest first.
    pub prefill_ops: Vec<OpCost>,
    /// Operators of the decode-only iteration in the middle of decoding (past a
    /// thousand such iterations, the nearest one before the middle of those kept, one
    /// in a power of two), slowest first; empty when `output_len` is 1.
    pub decode_ops: Vec<OpCost>,
    /// What limits the batch as a whole.
    pub bottleneck: Bottleneck,
    /// Memory per GPU with the batch at its longest.
    pub memory: BatchMemory,
    /// The work the batch's iterations do and how much of the GPU it uses (when a
    /// work counter was given: [`estimate_with_work`]).
    pub utilization: Option<Utilization>,
}

/// The batch's work against the GPU's peaks, per GPU: FLOPs and bytes of every
/// iteration as the roofline counts them (the batch padded to its captured size, as
/// it runs), over the time the engine was busy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Utilization {
    /// FLOPs per GPU over every iteration.
    pub flops_per_gpu: f64,
    /// Bytes moved to or from each GPU's memory over every iteration.
    pub bytes_per_gpu: f64,
    /// The summed iteration times, s.
    pub busy_s: f64,
    /// `flops_per_gpu / (busy_s × peak FLOP/s)` at the matrix dtype's peak.
    pub compute: f64,
    /// `bytes_per_gpu / (busy_s × peak memory bandwidth)`.
    pub memory_bandwidth: f64,
}

/// The dominant cost of the batch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bottleneck {
    /// `prefill` or `decode`: the phase (iterations with prefill work, or decode-only
    /// iterations) taking most of the engine's time.
    pub phase: String,
    /// The operator (or measured component) taking most of that phase.
    pub op: String,
    /// What limits that operator (`None`: measured, not known).
    pub bound: Option<Bound>,
    /// Share of the phase's time by bound (`compute`, `memory`, `communication`,
    /// `overhead`, and `measured` for measured times of unknown bound), non-zero ones.
    pub time_share_by_bound: Vec<(String, f64)>,
}

/// Rows summed over iterations, merged by name.
#[derive(Default)]
struct OpSum {
    rows: Vec<OpCost>,
    /// Per row, the largest single-iteration time (its bound is the row's).
    largest: Vec<f64>,
    /// Time by bound over every row of every iteration.
    by_bound: Vec<(Option<Bound>, f64)>,
}

impl OpSum {
    fn add(&mut self, ops: Vec<OpCost>) {
        for o in ops {
            match self.by_bound.iter_mut().find(|(b, _)| *b == o.bound) {
                Some((_, t)) => *t += o.time_s,
                None => self.by_bound.push((o.bound, o.time_s)),
            }
            match self.rows.iter().position(|r| r.name == o.name) {
                Some(i) => {
                    let r = &mut self.rows[i];
                    // Instances per iteration, not summed over iterations.
                    r.count = r.count.max(o.count);
                    r.flops = r.flops.zip(o.flops).map(|(a, b)| a + b);
                    r.bytes = r.bytes.zip(o.bytes).map(|(a, b)| a + b);
                    r.time_s += o.time_s;
                    if o.time_s > self.largest[i] {
                        self.largest[i] = o.time_s;
                        r.bound = o.bound;
                    }
                }
                None => {
                    self.largest.push(o.time_s);
                    self.rows.push(o);
                }
            }
        }
    }

    fn total(&self) -> f64 {
        self.by_bound.iter().map(|(_, t)| t).sum()
    }

    fn shares(&self) -> Vec<(String, f64)> {
        let total = self.total();
        let mut v: Vec<_> = self
            .by_bound
            .iter()
            .filter(|(_, t)| *t > 0.0)
            .map(|(b, t)| (*b, t / total))
            .collect();
        // Compute, memory, communication, overhead, then measured.
        v.sort_by_key(|(b, _)| (b.is_none(), *b));
        v.into_iter()
            .map(|(b, s)| (Bound::label(b).to_owned(), s))
            .collect()
    }
}

fn sorted(mut ops: Vec<OpCost>) -> Vec<OpCost> {
    ops.sort_by(|a, b| {
        b.time_s
            .total_cmp(&a.time_s)
            .then_with(|| a.name.cmp(&b.name))
    });
    ops
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (n, s) = xs
        .filter(|x| x.is_finite())
        .fold((0u32, 0.0), |(n, s), x| (n + 1, s + x));
    if n > 0 {
        s / f64::from(n)
    } else {
        0.0
    }
}

/// Decode-only iterations kept for the mid-decode breakdown: every `stride`-th, the
/// stride doubling whenever this many are kept.
const DECODE_SAMPLES: usize = 1024;

/// What the engine's iterations add up to, tallied as they run.
#[derive(Default)]
struct Tally {
    prefill: OpSum,
    decode: OpSum,
    prefill_iterations: u64,
    decode_iterations: u64,
    /// Decode-only iterations number 0, stride, 2·stride, ...
    decode_samples: Vec<StepShape>,
    stride: u64,
    /// FLOPs and bytes per GPU the work counter gave, summed over iterations.
    flops: f64,
    bytes: f64,
}

/// A latency model that answers with `inner` and tallies the breakdown of every
/// iteration the engine asks about (it asks once per iteration it runs).
struct Tallying {
    inner: Arc<dyn LatencyModel>,
    tally: Mutex<Tally>,
    /// Counts each iteration's FLOPs and bytes (its times are not used).
    work: Option<Arc<Roofline>>,
}

impl LatencyModel for Tallying {
    fn step_time(&self, shape: &StepShape) -> SimDuration {
        let ops = self.inner.op_breakdown(shape);
        let (mut flops, mut bytes) = (0.0, 0.0);
        if let Some(w) = &self.work {
            let mut counted = Vec::new();
            w.evaluate(shape, Some(&mut counted));
            flops = counted.iter().filter_map(|o| o.flops).sum();
            bytes = counted.iter().filter_map(|o| o.bytes).sum();
        }
        let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        t.flops += flops;
        t.bytes += bytes;
        if shape.prefills.is_empty() {
            let k = t.decode_iterations;
            t.decode_iterations += 1;
            t.decode.add(ops);
            if k % t.stride == 0 {
                t.decode_samples.push(shape.clone());
                if t.decode_samples.len() == DECODE_SAMPLES {
                    let mut i = 0;
                    t.decode_samples.retain(|_| {
                        i += 1;
                        i % 2 == 1
                    });
                    t.stride *= 2;
                }
            }
        } else {
            t.prefill_iterations += 1;
            t.prefill.add(ops);
        }
        self.inner.step_time(shape)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn op_breakdown(&self, shape: &StepShape) -> Vec<OpCost> {
        self.inner.op_breakdown(shape)
    }
}

/// Run `batch` on one replica of `setup` through the simulated engine (see the
/// [module docs](self)) and break its iterations down by operator.
pub fn estimate(setup: &ReplicaSetup, batch: BatchSpec) -> Result<Estimate> {
    estimate_with_work(setup, batch, None)
}

/// [`estimate`], with the batch's FLOPs and bytes counted by `work` (the roofline of
/// the same deployment) for [`Estimate::utilization`].
pub fn estimate_with_work(
    setup: &ReplicaSetup,
    batch: BatchSpec,
    work: Option<Arc<Roofline>>,
) -> Result<Estimate> {
    batch.check(setup)?;
    estimate_bounded(setup, batch, MAX_ITERATIONS, work)
}

/// [`estimate`] after the checks, stopping after `max_iterations` iterations.
fn estimate_bounded(
    setup: &ReplicaSetup,
    batch: BatchSpec,
    max_iterations: u64,
    work: Option<Arc<Roofline>>,
) -> Result<Estimate> {
    let counting = work.is_some();
    let tallying = Arc::new(Tallying {
        inner: setup.latency.clone(),
        tally: Mutex::new(Tally {
            stride: 1,
            ..Tally::default()
        }),
        work,
    });
    let mut tallied = setup.clone();
    tallied.latency = tallying.clone();
    // The batch is handed to the API server as one: each request's handling shifts its
    // clock, but the requests do not queue for the server's handlers one by one.
    if tallied.deployment.stack.api_server.handlers > 0 {
        let mut stack = (*tallied.deployment.stack).clone();
        stack.api_server.handlers = 0;
        tallied.deployment.stack = Arc::new(stack);
    }
    // Through the stack's API server, as clients (and `simulate`) see it.
    let opts = crate::simulate::ReplayOptions {
        max_iterations: Some(max_iterations),
        api_server: true,
        ..Default::default()
    };
    let replayed = simulate_requests(&tallied, 1, batch.requests(), opts).map(|r| r.records);
    let records = match replayed {
        Err(Error::IterationLimit { outstanding, .. }) => {
            let e = &setup.engine;
            let blocks = (u64::from(batch.input_len) + u64::from(batch.output_len) - 1)
                .div_ceil(u64::from(e.block_size));
            return Err(Error::input(
                "<command line>",
                Some("--batch-size"),
                format!(
                    "the batch did not finish within {max_iterations} engine iterations ({outstanding} of {} requests left): its KV cache of {} blocks holds {} of the {} requests at full length ({blocks} blocks each), so they are preempted and recomputed over and over; use a smaller --batch-size, shorter requests or a larger KV cache",
                    batch.batch_size,
                    e.num_gpu_blocks,
                    u64::from(e.num_gpu_blocks) / blocks.max(1),
                    batch.batch_size
                ),
            ));
        }
        r => r?,
    };
    let t = std::mem::take(&mut *tallying.tally.lock().unwrap_or_else(|e| e.into_inner()));
    if records.len() != batch.batch_size as usize
        || records.iter().any(|r| r.status != RequestStatus::Finished)
    {
        return Err(Error::Config(format!(
            "the engine did not finish the batch of {} requests of {} + {} tokens ({} finished)",
            batch.batch_size,
            batch.input_len,
            batch.output_len,
            records
                .iter()
                .filter(|r| r.status == RequestStatus::Finished)
                .count(),
        )));
    }

    let mid = (t.decode_iterations / 2 / t.stride) as usize;
    let decode_ops = t
        .decode_samples
        .get(mid.min(t.decode_samples.len().saturating_sub(1)))
        .map_or_else(Vec::new, |s| sorted(setup.latency.op_breakdown(s)));
    let (prefill_time, decode_time) = (t.prefill.total(), t.decode.total());
    let (phase, sum) = if decode_time > prefill_time {
        ("decode", &t.decode)
    } else {
        ("prefill", &t.prefill)
    };
    let top = sum
        .rows
        .iter()
        .max_by(|a, b| a.time_s.total_cmp(&b.time_s).then(b.name.cmp(&a.name)));
    let bottleneck = Bottleneck {
        phase: phase.to_owned(),
        op: top.map_or_else(String::new, |o| o.name.clone()),
        bound: top.and_then(|o| o.bound),
        time_share_by_bound: sum.shares(),
    };

    let e2e = records.iter().map(|r| r.finish_time_s).fold(0.0, f64::max);
    let out_tokens = f64::from(batch.batch_size) * f64::from(batch.output_len);
    let per_s = |tokens: f64| if e2e > 0.0 { tokens / e2e } else { 0.0 };
    let utilization = counting.then(|| {
        let d = &setup.deployment;
        let busy_s = prefill_time + decode_time;
        let share = |x: f64, peak: f64| {
            if busy_s > 0.0 && peak > 0.0 {
                x / (busy_s * peak)
            } else {
                0.0
            }
        };
        Utilization {
            flops_per_gpu: t.flops,
            bytes_per_gpu: t.bytes,
            busy_s,
            compute: share(t.flops, d.peak_flops(d.matrix_dtype())),
            memory_bandwidth: share(t.bytes, d.gpu().memory_bandwidth_bytes_per_s()),
        }
    });
    Ok(Estimate {
        batch,
        latency_model: setup.latency.describe(),
        ttft_s: mean(records.iter().map(|r| r.ttft_s)),
        tpot_s: mean(records.iter().map(|r| r.tpot_s)),
        e2e_s: e2e,
        output_tokens_per_s: per_s(out_tokens),
        total_tokens_per_s: per_s(batch.total_tokens() as f64),
        iterations: t.prefill_iterations + t.decode_iterations,
        prefill_iterations: t.prefill_iterations,
        preemptions: records.iter().map(|r| u64::from(r.preemptions)).sum(),
        prefill_time_s: prefill_time,
        decode_time_s: decode_time,
        prefill_ops: sorted(t.prefill.rows),
        decode_ops,
        bottleneck,
        memory: BatchMemory::of(setup, batch),
        utilization,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::{Deployment, DeploymentRequest};
    use crate::engine::config::EngineOverrides;
    use crate::memory::MemoryModel;
    use crate::paths::DataPaths;
    use crate::perf::fixed::FixedLatency;

    /// Llama-3.1-8B on an H100 with the fixed model: 1 ms per iteration + 10 µs per
    /// prefill token + 100 µs per decode, and no API server.
    fn setup(overrides: EngineOverrides) -> ReplicaSetup {
        let mut s = setup_with_api(overrides);
        let mut stack = (*s.deployment.stack).clone();
        stack.api_server.request_us = 0.0;
        stack.api_server.per_prompt_token_us = 0.0;
        stack.api_server.per_token_out_us = 0.0;
        s.deployment.stack = Arc::new(stack);
        s
    }

    /// As [`setup`], with the default stack's API server.
    fn setup_with_api(overrides: EngineOverrides) -> ReplicaSetup {
        let paths = DataPaths::builtin();
        let d = Deployment::resolve(&DeploymentRequest::default(), &paths).unwrap();
        let mm = MemoryModel::load(&paths.perf_model).unwrap();
        let latency = Arc::new(FixedLatency::from_micros(1000, 10, 100));
        ReplicaSetup::with_latency(d, &overrides, &mm, latency).unwrap()
    }

    fn batch(batch_size: u32, input_len: u32, output_len: u32) -> BatchSpec {
        BatchSpec {
            batch_size,
            input_len,
            output_len,
        }
    }

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn hand_computed_batch() {
        // One iteration prefills both prompts: 1 ms + 200 × 10 µs = 3 ms, the first
        // tokens. Two decode iterations of two sequences: 1 ms + 2 × 100 µs = 1.2 ms
        // each, so the batch ends at 5.4 ms and TPOT = 2.4 ms / 2.
        let e = estimate(&setup(EngineOverrides::default()), batch(2, 100, 3)).unwrap();
        assert!(near(e.ttft_s, 0.003), "{}", e.ttft_s);
        assert!(near(e.tpot_s, 0.0012), "{}", e.tpot_s);
        assert!(near(e.e2e_s, 0.0054), "{}", e.e2e_s);
        assert!(near(e.output_tokens_per_s, 6.0 / 0.0054));
        assert!(near(e.total_tokens_per_s, 206.0 / 0.0054));
        assert_eq!(
            (e.iterations, e.prefill_iterations, e.preemptions),
            (3, 1, 0)
        );
        assert!(near(e.prefill_time_s, 0.003) && near(e.decode_time_s, 0.0024));
        // The fixed model has no operators: one `step` row per phase.
        assert_eq!(e.prefill_ops.len(), 1);
        assert_eq!(e.prefill_ops[0].name, "step");
        assert!(near(e.decode_ops[0].time_s, 0.0012));
        // Clients see the API server's time on top of TTFT and E2E, not on TPOT.
        let with_api = setup_with_api(EngineOverrides::default());
        let c = estimate(&with_api, batch(2, 100, 3)).unwrap();
        let a = &with_api.deployment.stack.api_server;
        let shift = (a.ingress_us(100) + a.per_token_out_us) * 1e-6;
        assert!(shift > 0.0, "the default stack has an API server");
        assert!((c.ttft_s - 0.003 - shift).abs() < 1e-8, "{}", c.ttft_s);
        assert!((c.e2e_s - 0.0054 - shift).abs() < 1e-8);
        assert!(near(c.tpot_s, 0.0012));
        assert_eq!(e.bottleneck.phase, "prefill");
        assert_eq!(e.bottleneck.op, "step");
        assert_eq!(e.bottleneck.bound, None);
        assert_eq!(
            e.bottleneck.time_share_by_bound,
            vec![("measured".into(), 1.0)]
        );
    }

    #[test]
    fn a_prompt_longer_than_the_token_budget_is_chunked() {
        // 3000 tokens under a 2048-token budget (set: the H100's own default is 8192):
        // 1 ms + 2048 × 10 µs, then 1 ms + 952 × 10 µs: the first token at 32 ms.
        // One-token output: TPOT 0.
        let budget = EngineOverrides {
            max_num_batched_tokens: Some(2048),
            ..EngineOverrides::default()
        };
        let e = estimate(&setup(budget), batch(1, 3000, 1)).unwrap();
        assert_eq!(e.prefill_iterations, 2);
        assert!(near(e.ttft_s, 0.032), "{}", e.ttft_s);
        assert_eq!(e.tpot_s, 0.0);
        assert!(near(e.e2e_s, 0.032));
        assert!(e.decode_ops.is_empty());
        assert_eq!(e.bottleneck.phase, "prefill");
    }

    #[test]
    fn a_prompt_over_a_rejecting_budget_is_an_error_naming_the_flags() {
        // TensorRT-LLM without chunked context turns the prompt away: estimate says so.
        let mut s = setup(EngineOverrides::default());
        s.engine.enable_chunked_prefill = false;
        s.engine.long_prompts = crate::engine::LongPrompts::Reject;
        s.engine.max_num_batched_tokens = 2048;
        let err = estimate(&s, batch(1, 3000, 1)).unwrap_err().to_string();
        assert!(
            err.contains("--input-len") && err.contains("--enable-chunked-prefill"),
            "{err}"
        );
        assert!(estimate(&s, batch(1, 2048, 1)).is_ok());
    }

    #[test]
    fn preemption_is_the_engines() {
        // Each request needs 8 blocks of 16 tokens; 24 blocks hold three of eight.
        let tight = EngineOverrides {
            num_gpu_blocks_override: Some(24),
            ..EngineOverrides::default()
        };
        let e = estimate(&setup(tight), batch(8, 64, 64)).unwrap();
        let roomy = estimate(&setup(EngineOverrides::default()), batch(8, 64, 64)).unwrap();
        assert!(e.preemptions > 0);
        assert_eq!(roomy.preemptions, 0);
        assert!(e.e2e_s > roomy.e2e_s);
        assert!(e.prefill_iterations > roomy.prefill_iterations);
        // The same run as validate's static batches.
        let records = run_static_batch(&setup(tight), batch(8, 64, 64), None).unwrap();
        let last = records.iter().map(|r| r.finish_time_s).fold(0.0, f64::max);
        assert_eq!(last, e.e2e_s);
    }

    #[test]
    fn thrashing_stops_at_the_iteration_limit() {
        let tight = EngineOverrides {
            num_gpu_blocks_override: Some(24),
            ..EngineOverrides::default()
        };
        let err = estimate_bounded(&setup(tight), batch(8, 64, 64), 20, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--batch-size"), "{err}");
        assert!(err.contains("within 20 engine iterations"), "{err}");
        assert!(err.contains("holds 3 of the 8 requests"), "{err}");
    }

    #[test]
    fn checks_name_the_flag() {
        let s = setup(EngineOverrides::default());
        let err = |b: BatchSpec| b.check(&s).unwrap_err().to_string();
        assert!(err(batch(0, 10, 10)).contains("`--batch-size`: must be at least 1"));
        assert!(err(batch(1, 0, 10)).contains("`--input-len`"));
        let long = err(batch(1, s.engine.max_model_len, 1));
        assert!(long.contains("--max-model-len"), "{long}");
        let huge = err(batch(u32::MAX, 1000, 1000));
        assert!(huge.contains("`--batch-size`"), "{huge}");
        assert!(batch(256, 1024, 1024).check(&s).is_ok());
    }

    #[test]
    fn the_mid_decode_sample_survives_decimation() {
        // 5000 decode-only iterations: the kept samples are every 8th, and the one
        // shown is the last kept at or before the middle (2500): 312 × 8 = 2496.
        let t = Tallying {
            inner: Arc::new(FixedLatency::from_micros(1000, 10, 100)),
            tally: Mutex::new(Tally {
                stride: 1,
                ..Tally::default()
            }),
            work: None,
        };
        for ctx in 0..5000 {
            let mut s = StepShape::new();
            s.push_decode(ctx + 1);
            t.step_time(&s);
        }
        let tally = t.tally.into_inner().unwrap();
        assert_eq!(tally.stride, 8);
        assert!(tally.decode_samples.len() < DECODE_SAMPLES);
        let mid = tally.decode_samples[(tally.decode_iterations / 2 / tally.stride) as usize]
            .decode_context_max;
        assert_eq!(mid, 2497);
        assert!(near(tally.decode.total(), 5000.0 * 0.0011));
    }

    #[test]
    fn sums_merge_rows_by_name_keeping_counts_per_iteration() {
        let row = |name: &str, t: f64, bound: Option<Bound>| OpCost {
            name: name.into(),
            count: Some(32),
            flops: Some(1.0),
            bytes: None,
            time_s: t,
            bound,
        };
        let mut s = OpSum::default();
        s.add(vec![
            row("a", 1.0, Some(Bound::Compute)),
            row("b", 1.0, None),
        ]);
        s.add(vec![row("a", 3.0, Some(Bound::Memory))]);
        let a = &s.rows[0];
        assert_eq!((a.count, a.flops, a.bytes), (Some(32), Some(2.0), None));
        assert_eq!(
            a.bound,
            Some(Bound::Memory),
            "the bound of its largest share"
        );
        assert!(near(s.total(), 5.0));
        assert_eq!(
            s.shares(),
            vec![
                ("compute".to_owned(), 0.2),
                ("memory".to_owned(), 0.6),
                ("measured".to_owned(), 0.2)
            ]
        );
    }
}
