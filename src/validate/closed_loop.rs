//! Closed-loop validation of serving summaries: replay the rows of the AIConfigurator
//! serving summary ([`serving_summary`](super::serving_summary)) through the simulated
//! engine, as [`offline`](super::offline) replays the TensorRT-LLM throughput table.
//!
//! Each row becomes a closed loop on the group's deployment: `concurrency` requests in
//! flight (over all attention-DP replicas), the next sent as soon as one finishes,
//! [`requests_for`] requests in all (`max(4 × concurrency, 64)`), each exactly ISL
//! tokens in and OSL out. The first `concurrency` requests, sent together at t = 0, are
//! the warm-up and left out: the simulated mean TTFT and mean TPOT over the rest (the
//! steady state) are compared with the row's ([`Metric::Ttft`], [`Metric::Tpot`]).
//! With a launch rule beside the table the rule's client replaces this one, and rows
//! that InferenceX measured (`client` = `inferencex`) replay with InferenceX's client
//! ([`inferencex_client`](super::inferencex_client)): lengths drawn up to ISL and
//! OSL, every request measured. Rows whose `statistic` is `median` are compared with
//! the median of the simulated requests instead of the mean.
//! Why: the source does not describe its client, but its TTFTs at high concurrency and
//! long prompts (115 ms for Llama-3.1-8B FP8 on H200 at 128 clients × 4000 tokens) are
//! far below what the first burst alone would add to a mean over every request
//! (its 512k prompt tokens take seconds to prefill).
//!
//! Engine settings are the serving stack's defaults ([`aic_mapping::stack`](super::aic_mapping::stack):
//! `vllm-v1`, `vllm-v1-sync`, `sglang`, `trtllm`) with prefix caching off (the prompts
//! are random), then, where the table has a launch rule beside it
//! ([`aic_launch`](super::aic_launch)), the batch, token budget, SGLang prefill limit
//! and CUDA-graph sizes its runs were launched with, per row; formats from
//! [`aic_mapping::formats`](super::aic_mapping::formats) (16-bit rows a 16-bit KV
//! cache, quantized rows an FP8 one). `max_model_len` is the group's longest ISL + OSL.
//! Flags override every choice.

use super::aic_launch::AicLaunch;
use super::groups::GroupRun;
use super::inferencex_client::InferenceXClient;
use super::report::{ComparisonRows, Metric, ReplayMode, Validation, ValidationKind};
use super::serving_summary::{RowClient, RowStatistic, SummaryGroup, SummaryRow};
use crate::deployment::DeploymentRequest;
use crate::engine::config::EngineOverrides;
use crate::engine::RequestStatus;
use crate::error::Result;
use crate::estimate::BatchSpec;
use crate::simulate::simulate_requests;
use std::collections::BTreeMap;

/// Requests per client of a replayed row.
pub const REQUESTS_PER_CLIENT: u32 = 4;

/// The fewest requests a row is replayed with.
pub const MIN_REQUESTS: u32 = 64;

/// Requests replayed for a row at `concurrency`: `max(4 × concurrency, 64)`.
pub fn requests_for(concurrency: u32) -> u32 {
    concurrency
        .saturating_mul(REQUESTS_PER_CLIENT)
        .max(MIN_REQUESTS)
}

/// The deployment request of `group`: `base` (flags) wins; the mapping fills the
/// model, GPU, serving stack, parallelism, formats and `max_model_len`.
pub fn group_request(group: &SummaryGroup, base: &DeploymentRequest) -> DeploymentRequest {
    let l = &group.layout;
    let mut r = base.clone();
    r.model
        .get_or_insert_with(|| group.model.mapping.model.clone());
    r.hardware
        .get_or_insert_with(|| group.hardware.hardware.clone());
    r.serving_stack.get_or_insert_with(|| group.stack.clone());
    if r.engine_version.is_none() && !group.key.version.is_empty() {
        r.engine_version = Some(group.key.version.clone());
    }
    r.tensor_parallel_size.get_or_insert(l.tp);
    r.pipeline_parallel_size.get_or_insert(l.pp);
    if l.expert_parallel && r.data_parallel_size.is_none() && !r.enable_expert_parallel {
        r.data_parallel_size = Some(l.dp);
        r.enable_expert_parallel = true;
    }
    r.quantization
        .get_or_insert_with(|| group.formats.quantization.clone());
    if r.kv_cache_dtype.is_none() {
        r.kv_cache_dtype.clone_from(&group.formats.kv_cache_dtype);
    }
    if r.max_model_len.is_none() {
        r.max_model_len = group.rows.iter().map(|x| x.isl.saturating_add(x.osl)).max();
    }
    r
}

/// The engine settings of a replay: `base` (flags) wins; prefix caching is off.
pub fn engine_overrides(base: &EngineOverrides) -> EngineOverrides {
    let mut ov = *base;
    ov.enable_prefix_caching.get_or_insert(false);
    ov
}

/// What the replay of one row gives.
#[derive(Clone, Copy, Debug)]
struct RowSim {
    /// Mean TTFT, s (NaN when a request was rejected).
    ttft_s: f64,
    /// Mean TPOT, s (NaN when a request was rejected).
    tpot_s: f64,
    /// Preemptions over the replay.
    preemptions: u32,
    /// Whether the engine rejected a request.
    rejected: bool,
}

/// The launch rule of the measured runs and the flags that win over it.
#[derive(Clone, Copy, Debug)]
pub struct Launch<'a> {
    /// The source's rule.
    pub rule: &'a AicLaunch,
    /// The command line's engine settings.
    pub flags: &'a EngineOverrides,
    /// The engine version of the group, as the table writes it.
    pub version: &'a str,
}

/// The InferenceX client of `row`, where the row says InferenceX measured it and the
/// launch rule describes that client.
fn inferencex_client<'a>(
    launch: Option<Launch<'a>>,
    row: &SummaryRow,
) -> Option<&'a InferenceXClient> {
    match row.client {
        RowClient::InferenceX => launch.and_then(|l| l.rule.inferencex_client.as_ref()),
        RowClient::Unrecorded => None,
    }
}

/// The `--scheduler-recv-interval` InferenceX's script launched `row`'s engine with,
/// where its client says the script sets one on `setup`'s GPU.
fn recv_interval(
    ix: Option<&InferenceXClient>,
    setup: &crate::setup::ReplicaSetup,
    row: &SummaryRow,
) -> Option<u32> {
    let d = &setup.deployment;
    ix?.sglang_recv_interval
        .as_ref()?
        .interval(&d.gpu().name, row.concurrency, d.dp > 1)
}

/// The requests `row` is replayed with, (warm-up, measured): InferenceX's client for
/// its rows, else the launch rule's client where there is one, else `c` warm-up
/// requests (the burst at t = 0) and the rest of [`requests_for`].
fn row_requests(launch: Option<Launch<'_>>, row: &SummaryRow) -> (u32, u32) {
    let c = row.concurrency;
    if let Some(x) = inferencex_client(launch, row) {
        return (0, x.count(c));
    }
    match launch {
        Some(l) => l.rule.requests(c),
        None => (c, requests_for(c).saturating_sub(c)),
    }
}

/// Replay one row: a closed loop of `c` clients.
fn replay_row(run: &GroupRun<'_>, launch: Option<Launch<'_>>, row: &SummaryRow) -> Result<RowSim> {
    let (isl, osl, c) = (row.isl, row.osl, row.concurrency);
    let ix = inferencex_client(launch, row);
    let own;
    // The rule's engine flags stand for InferenceX's rows too (an approximation:
    // `launch.toml` and docs/validation.md say why).
    let setup = match launch {
        Some(l) => {
            let mut s = run.setup.clone();
            s.engine = l
                .rule
                .engine(&s.engine, l.flags, l.version, isl, row.batch_size);
            if let Some(n) = recv_interval(ix, &s, row).filter(|_| {
                l.flags.scheduler_recv_interval.is_none()
                    && s.engine.scheduler == crate::engine::config::SchedulerKind::Sglang
            }) {
                s.engine.scheduler_recv_interval = n;
            }
            s.engine.validate()?;
            own = s;
            &own
        }
        None => run.setup,
    };
    let (warmup, measured) = row_requests(launch, row);
    let total = warmup.saturating_add(measured);
    let reqs = match ix {
        Some(x) => x.requests(isl, osl, total)?,
        None => BatchSpec {
            batch_size: total,
            input_len: isl,
            output_len: osl,
        }
        .requests(),
    };
    let n = reqs.len();
    // Latencies measured by the benchmark client: the API server is on the path.
    let opts = crate::simulate::ReplayOptions {
        closed_loop: Some(c),
        api_server: true,
        ..Default::default()
    };
    let out = simulate_requests(setup, run.replicas, reqs, opts)?;
    let finished = |x: &&crate::engine::RequestRecord| x.status == RequestStatus::Finished;
    let rejected = out.records.iter().filter(finished).count() < n;
    // Ids are the issue order: the first `warmup` are left out.
    let done: Vec<_> = out
        .records
        .iter()
        .filter(finished)
        .filter(|x| x.request_id >= u64::from(warmup))
        .collect();
    let preemptions = out.records.iter().map(|x| x.preemptions).sum();
    // The row's statistic (mean or median) of the measured requests.
    let stat = |f: fn(&&crate::engine::RequestRecord) -> f64| {
        if rejected {
            f64::NAN
        } else {
            row.statistic.of(&done.iter().map(f).collect::<Vec<f64>>())
        }
    };
    Ok(RowSim {
        ttft_s: stat(|x| x.ttft_s),
        tpot_s: stat(|x| x.tpot_s),
        preemptions,
        rejected,
    })
}

/// Replay every row of `group` as a closed loop and compare mean TTFT and TPOT, with
/// the engine flags of `launch` where given (else the setup's). Identical points (ISL,
/// OSL, concurrency, batch) are simulated once: the replay is deterministic.
pub fn validate_group(
    run: GroupRun<'_>,
    group: &SummaryGroup,
    launch: Option<Launch<'_>>,
) -> Result<Validation> {
    let setup = run.setup;
    let mut notes = run.notes.clone();
    notes.extend(group.notes.iter().cloned());
    let by_inferencex = group
        .rows
        .iter()
        .filter(|r| inferencex_client(launch, r).is_some())
        .count();
    if let Some(x) = launch.and_then(|l| l.rule.inferencex_client.as_ref()) {
        if by_inferencex > 0 {
            notes.push(x.describe(by_inferencex));
        }
    }
    let medians = group
        .rows
        .iter()
        .filter(|r| r.statistic == RowStatistic::Median)
        .count();
    if medians > 0 {
        notes.push(format!(
            "{medians} of {} rows give the median TTFT and TPOT of their requests: their replays take the median of the simulated requests' (the others the mean)",
            group.rows.len()
        ));
    }
    notes.push(match launch {
        Some(_) if by_inferencex == group.rows.len() => format!(
            "replay mode: closed loop per row at its concurrency (over {} replica(s)), every row with InferenceX's client",
            run.replicas
        ),
        Some(l) => format!(
            "replay mode: closed loop per row at its concurrency (over {} replica(s)); rows with no recorded client: {} warm-up requests per client left out, then {} measured, each exactly ISL in / OSL out (the launch rule's client)",
            run.replicas, l.rule.warmup_requests_per_client, l.rule.requests_per_client
        ),
        None => format!(
            "replay mode: closed loop per row at its concurrency (over {} replica(s)), max(4 × concurrency, 64) requests of exactly ISL in / OSL out; simulated mean TTFT and TPOT over the steady state: the first `concurrency` requests (the burst at t = 0) are warm-up and left out (the source does not describe its client; its TTFTs at high concurrency and long prompts are far below what that burst would add)",
            run.replicas
        ),
    });
    notes.push(format!(
        "engine: the {} stack's defaults ({} scheduler, {} tokens and {} sequences per iteration, chunked prefill {}), prefix caching off",
        setup.deployment.stack.name,
        setup.engine.scheduler,
        setup.engine.max_num_batched_tokens,
        setup.engine.max_num_seqs,
        if setup.engine.enable_chunked_prefill { "on" } else { "off" }
    ));
    notes.push(match launch {
        Some(l) => l.rule.describe(by_inferencex < group.rows.len()),
        None => {
            "the launch settings of the measured runs are not recorded: the stack's defaults stand"
                .into()
        }
    });
    let mut rows = ComparisonRows {
        key_columns: vec![
            "line",
            "isl",
            "osl",
            "concurrency",
            "num_requests",
            "wip",
            "simulated_preemptions",
        ],
        ..ComparisonRows::default()
    };
    let (mut ttft, mut tpot) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    type Point = (u32, u32, u32, u32, RowClient, RowStatistic);
    let mut memo: BTreeMap<Point, RowSim> = BTreeMap::new();
    let (mut rejected, mut from_batch) = (0usize, 0usize);
    for r in &group.rows {
        let k = (
            r.isl,
            r.osl,
            r.concurrency,
            r.batch_size,
            r.client,
            r.statistic,
        );
        let sim = match memo.get(&k) {
            Some(s) => *s,
            None => {
                let s = replay_row(&run, launch, r)?;
                memo.insert(k, s);
                s
            }
        };
        rejected += usize::from(sim.rejected);
        from_batch += usize::from(r.concurrency_from_batch);
        ttft.0.push(sim.ttft_s);
        ttft.1.push(r.ttft_s);
        tpot.0.push(sim.tpot_s);
        tpot.1.push(r.tpot_s);
        rows.keys.push(vec![
            r.line.to_string(),
            r.isl.to_string(),
            r.osl.to_string(),
            r.concurrency.to_string(),
            {
                let (w, m) = row_requests(launch, r);
                (w + m).to_string()
            },
            r.wip.to_string(),
            sim.preemptions.to_string(),
        ]);
    }
    if from_batch > 0 {
        notes.push(format!(
            "{from_batch} rows have no concurrency: read as batch_size × attention_dp"
        ));
    }
    if rejected > 0 {
        notes.push(format!(
            "{rejected} rows had requests the simulated engine rejects (longer than max_model_len or the whole KV cache) and are left out of the errors"
        ));
    }
    rows.metrics.push((Metric::Ttft, ttft.0, ttft.1));
    rows.metrics.push((Metric::Tpot, tpot.0, tpot.1));
    Ok(run.finish(
        ValidationKind::ServingSummary,
        Some(ReplayMode::ClosedLoop { concurrency: None }),
        notes,
        rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::Deployment;
    use crate::paths::DataPaths;
    use crate::perf::fixed::FixedLatency;
    use crate::setup::ReplicaSetup;
    use crate::validate::serving_summary::{read, SummaryRow};
    use std::sync::Arc;

    fn group() -> SummaryGroup {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(
            &p,
            "engine,engine_version,gpu,model,precision,tp,pp,attention_dp,moe_tp,moe_ep,isl,osl,concurrency,ttft_ms,tpot_ms\n\
             vllm,0.19.0,h200-sxm-141gb,openai/gpt-oss-120b,fp4,2,1,1,1,2,100,20,1,4,2\n",
        )
        .unwrap();
        read(&p).unwrap().groups.remove(0)
    }

    #[test]
    fn requests_and_deployment_follow_the_mapping() {
        assert_eq!(requests_for(1), 64);
        assert_eq!(requests_for(100), 400);
        let g = group();
        let r = group_request(&g, &DeploymentRequest::default());
        assert_eq!(r.model.as_deref(), Some("openai/gpt-oss-120b"));
        assert_eq!(r.serving_stack.as_deref(), Some("vllm-v1"));
        assert_eq!(
            (r.tensor_parallel_size, r.data_parallel_size),
            (Some(2), Some(1))
        );
        assert!(r.enable_expert_parallel);
        assert_eq!(r.quantization.as_deref(), Some("mxfp4"));
        assert_eq!(r.kv_cache_dtype.as_deref(), Some("fp8"));
        assert_eq!(r.max_model_len, Some(120));
        let d = Deployment::resolve(&r, &DataPaths::builtin()).unwrap();
        assert_eq!((d.tp, d.dp, d.ep), (2, 1, 2));
    }

    /// A deployment of the default model whose iterations take a fixed time: 1 ms, plus
    /// 10 µs per prefill token, plus 100 µs per decoding sequence.
    fn fixed_setup() -> ReplicaSetup {
        let paths = DataPaths::builtin();
        let req = DeploymentRequest {
            max_model_len: Some(4096),
            ..DeploymentRequest::default()
        };
        let d = Deployment::resolve(&req, &paths).unwrap();
        let mm = crate::memory::MemoryModel::load(&paths.perf_model).unwrap();
        let ov = engine_overrides(&EngineOverrides::default());
        let lat = Arc::new(FixedLatency::from_micros(1000, 10, 100));
        ReplicaSetup::with_latency(d, &ov, &mm, lat).unwrap()
    }

    /// A launch rule with `requests` per client after `warmup`, and InferenceX's client.
    fn rule(requests: u32, warmup: u32, inferencex: Option<InferenceXClient>) -> AicLaunch {
        AicLaunch {
            prefill_margin_tokens: 1500,
            sglang_mixed_chunk_versions: Vec::new(),
            capture_every_batch_size: false,
            requests_per_client: requests,
            warmup_requests_per_client: warmup,
            source: "test".into(),
            inferencex_client: inferencex,
            path: "launch.toml".into(),
        }
    }

    fn run<'a>(setup: &'a ReplicaSetup, notes: Vec<String>) -> GroupRun<'a> {
        GroupRun {
            name: "g",
            source: std::path::Path::new("s.csv"),
            setup,
            replicas: 1,
            notes,
        }
    }

    /// One client: requests run one after another, so every TTFT is the API server's
    /// time per request plus one prefill iteration (1 ms + 100 × 10 µs = 2 ms) and
    /// every TPOT one decode iteration (1 ms + 100 µs); the warm-up (request 0)
    /// changes nothing here.
    #[test]
    fn one_client_gives_hand_computed_means() {
        let setup = fixed_setup();
        let api_s = setup.deployment.stack.api_server.ingress_us(100) * 1e-6;
        let mut g = group();
        g.rows.push(SummaryRow {
            line: 3,
            ..g.rows[0].clone()
        });
        let run = run(&setup, vec!["from setup".into()]);
        let v = validate_group(run, &g, None).unwrap();
        assert_eq!(v.notes[0], "from setup");
        let (ttft, meas) = v.rows.pairs(Metric::Ttft).unwrap();
        assert_eq!(meas, [0.004, 0.004]);
        assert!((ttft[0] - 0.002 - api_s).abs() < 1e-9, "{ttft:?}");
        let (tpot, _) = v.rows.pairs(Metric::Tpot).unwrap();
        assert!((tpot[1] - 0.0011).abs() < 1e-9, "{tpot:?}");
        assert_eq!(v.rows.keys[1], ["3", "100", "20", "1", "64", "false", "0"]);
        let e = v.metrics[0].errors.unwrap();
        assert_eq!(e.count, 2);
        let bias = ((0.002 + api_s) / 0.004 - 1.0) * 100.0;
        assert!((e.bias_pct - bias).abs() < 1e-6, "{e:?}");
    }

    #[test]
    fn the_launch_rule_caps_each_rows_batch() {
        // Four clients on a deployment launched with a batch of 2: two requests wait
        // for each one running, so the mean TTFT grows; without the rule they all run.
        let setup = fixed_setup();
        let mut g = group();
        g.rows[0].concurrency = 4;
        g.rows[0].batch_size = 2;
        let rule = rule(4, 1, None);
        let ttft = |launch| {
            let v = validate_group(run(&setup, Vec::new()), &g, launch).unwrap();
            v.rows.pairs(Metric::Ttft).unwrap().0[0]
        };
        let flags = EngineOverrides::default();
        let capped = ttft(Some(Launch {
            rule: &rule,
            flags: &flags,
            version: "0.19.0",
        }));
        let free = ttft(None);
        assert!(capped > free + 0.005, "{capped} vs {free}");
    }

    /// A group of two rows of eight clients, 2,000 tokens in and 50 out, the second one
    /// changed by `second`.
    fn eight_clients(second: impl FnOnce(&mut SummaryRow)) -> SummaryGroup {
        let mut g = group();
        let r = &mut g.rows[0];
        (r.concurrency, r.batch_size, r.isl, r.osl) = (8, 8, 2000, 50);
        let mut other = SummaryRow {
            line: 3,
            ..g.rows[0].clone()
        };
        second(&mut other);
        g.rows.push(other);
        g
    }

    /// `g` replayed under `rule` with no command-line flags.
    fn under_rule(setup: &ReplicaSetup, g: &SummaryGroup, rule: &AicLaunch) -> Validation {
        let flags = EngineOverrides::default();
        let launch = Launch {
            rule,
            flags: &flags,
            version: "0.19.0",
        };
        validate_group(run(setup, Vec::new()), g, Some(launch)).unwrap()
    }

    /// A median row is compared with the median of the simulated requests: eight
    /// clients of exactly one length start together, so the first wave's prompts wait
    /// for one another's prefill chunks and the longest TTFTs pull the mean above the
    /// median (identical points with another statistic are simulated apart).
    #[test]
    fn median_rows_take_the_median_of_the_simulated_requests() {
        let setup = fixed_setup();
        let mut g = eight_clients(|r| r.statistic = RowStatistic::Median);
        // Every request measured, the burst at t = 0 included.
        let rule = rule(4, 0, None);
        let v = under_rule(&setup, &g, &rule);
        let (ttft, _) = v.rows.pairs(Metric::Ttft).unwrap();
        assert!(ttft[1] < ttft[0] - 1e-3, "{ttft:?}");
        assert!(v
            .notes
            .iter()
            .any(|n| n.starts_with("1 of 2 rows give the median TTFT and TPOT")));
        // Mean rows alone: no such note.
        g.rows.pop();
        let v = under_rule(&setup, &g, &rule);
        assert!(!v.notes.iter().any(|n| n.contains("give the median")));
    }

    #[test]
    fn inferencex_rows_draw_their_lengths_and_do_not_run_in_waves() {
        // Eight clients of exactly one length start together and finish together, so
        // every prompt of a wave waits for the wave's prefill (16,000 tokens in chunks
        // of 3,508); InferenceX's drawn lengths spread the finishes, so prompts
        // arrive one by one.
        let setup = fixed_setup();
        let g = eight_clients(|r| r.client = RowClient::InferenceX);
        let client = InferenceXClient {
            requests_per_client: 10,
            length_range_ratio: 0.8,
            source: "test".into(),
            sglang_recv_interval: None,
        };
        let rule = rule(10, 0, Some(client));
        let flags = EngineOverrides::default();
        let launch = Launch {
            rule: &rule,
            flags: &flags,
            version: "0.19.0",
        };
        let v = validate_group(run(&setup, Vec::new()), &g, Some(launch)).unwrap();
        let (ttft, _) = v.rows.pairs(Metric::Ttft).unwrap();
        assert!(ttft[1] < 0.8 * ttft[0], "{ttft:?}");
        assert_eq!(v.rows.keys[0][4], "80");
        assert_eq!(v.rows.keys[1][4], "80");
        assert!(v
            .notes
            .iter()
            .any(|n| n.starts_with("1 rows measured by InferenceX")));
        // Without the client in the rule, the row replays as the others.
        let rule = AicLaunch {
            inferencex_client: None,
            ..rule.clone()
        };
        let launch = Launch {
            rule: &rule,
            ..launch
        };
        let v = validate_group(run(&setup, Vec::new()), &g, Some(launch)).unwrap();
        let (same, _) = v.rows.pairs(Metric::Ttft).unwrap();
        assert_eq!(same[0], same[1]);
    }
}
