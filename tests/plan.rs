//! Capacity planning: sweeps, shards, the rate search and its monotonicity.

use servesim::paths::DataPaths;
use servesim::perf::fixed::FixedLatency;
use servesim::plan::planner::{plan, PlanOptions};
use servesim::plan::search::{PlanSlo, SloTarget};
use servesim::plan::{chart, run_points, table, Shard, SweepConfig, SweepContext};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn context(toml_text: &str) -> SweepContext {
    let cfg: SweepConfig = toml::from_str(toml_text).expect("valid test config");
    SweepContext::new(
        cfg,
        Path::new("test.toml"),
        &DataPaths::builtin(),
        &BTreeMap::new(),
    )
    .expect("context")
}

/// A grid with feasible and infeasible points (T4 cannot hold Llama-3.1-8B in bf16;
/// TP 3 does not divide its 32 heads), two replica counts and two loads.
const SMALL_SWEEP: &str = r#"
name = "t"
max-model-len = 4096
slo-ttft-s = 1.0
slo-tpot-s = 0.05
[prices]
h100 = 2.0
[grid]
hardware = ["h100", "t4"]
tensor-parallel-size = [1, 3]
num-replicas = [1, 2]
[workload]
arrival = "poisson"
rate-rps = [4.0, 16.0]
input = "uniform:100:400"
output = "uniform:10:60"
num-requests = 60
"#;

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("charts")] {
        let Ok(rd) = std::fs::read_dir(&sub) else {
            continue;
        };
        let mut names: Vec<_> = rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn sweep_into(ctx: &SweepContext, dir: &Path, jobs: usize, shard: Option<Shard>) {
    let meta = servesim::plan::meta(ctx);
    let idx = match shard {
        Some(s) => s.indices(meta.total_points),
        None => (0..meta.total_points).collect(),
    };
    let rows = run_points(ctx, &idx, jobs, &|| {}).unwrap();
    table::write_points(dir, &meta, shard, &rows).unwrap();
    if shard.is_none() {
        chart::sweep_charts(dir, &rows).unwrap();
    }
}

#[test]
fn one_thread_and_two_threads_write_identical_files() {
    let ctx = context(SMALL_SWEEP);
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    sweep_into(&ctx, &a, 1, None);
    sweep_into(&ctx, &b, 2, None);
    let (fa, fb) = (files(&a), files(&b));
    assert!(fa.len() >= 4);
    assert_eq!(fa, fb);
}

#[test]
fn shards_merge_into_the_unsharded_files_byte_for_byte() {
    let ctx = context(SMALL_SWEEP);
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    sweep_into(&ctx, &whole, 2, None);
    let shards: Vec<_> = (0..3)
        .map(|i| {
            let d = tmp.path().join(format!("s{i}"));
            sweep_into(&ctx, &d, 1, Some(Shard { index: i, count: 3 }));
            d
        })
        .collect();
    let merged = tmp.path().join("merged");
    let dirs: Vec<&Path> = shards.iter().map(|d| d.as_path()).collect();
    let (_, rows) = table::merge(&dirs, &merged).unwrap();
    chart::sweep_charts(&merged, &rows).unwrap();
    assert_eq!(files(&whole), files(&merged));
    // A missing shard is an error, not a short file.
    assert!(table::merge(&dirs[..2], &tmp.path().join("bad")).is_err());
}

#[test]
fn infeasible_points_are_recorded_not_crashed() {
    let ctx = context(SMALL_SWEEP);
    let rows = run_points(
        &ctx,
        &(0..ctx.grid.num_points()).collect::<Vec<_>>(),
        2,
        &|| {},
    )
    .unwrap();
    assert_eq!(rows.len(), 16);
    // Order: hardware, tp, replicas, load. h100 TP1 runs; TP3 and every T4 point do not.
    for r in &rows {
        let feasible = r.get("hardware") == "h100" && r.get("tensor_parallel_size") == "1";
        assert_eq!(
            r.get("status"),
            if feasible { "ok" } else { "infeasible" },
            "{r:?}"
        );
        if !feasible {
            assert!(!r.get("reason").is_empty());
            assert!(r.get("ttft_p99_s").is_empty());
        }
    }
    let t4 = rows
        .iter()
        .find(|r| r.get("hardware") == "t4" && r.get("tensor_parallel_size") == "1")
        .unwrap();
    assert!(
        t4.get("reason").contains("does not fit"),
        "{}",
        t4.get("reason")
    );
    // h100 is priced by the file: cost = GPUs × 2 $/h.
    assert_eq!(rows[2].get("num_replicas"), "2");
    assert_eq!(rows[2].get("cost_usd_per_hour"), "4.000000");
}

/// Hand-checked plan. Requests arrive evenly (constant arrivals), each with a 100-token
/// prompt and one output token (finished by its prefill). The fixed latency model costs
/// 10 µs per prompt token and nothing else, so a replica serves 100 × 10 µs = 1 ms of
/// work per request, however requests are batched: capacity 1,000 req/s per replica.
/// Below that TTFT ≈ 1 ms. Above it the queue grows: a request arriving at time t waits
/// about t × (r/1000 − 1), so over 2 s the p99 TTFT (t ≈ 1.98 s) stays within 50 ms only
/// for r ≤ 1000 × (1 + 0.05/1.98) ≈ 1025 req/s. The search (tolerance 2 %) must land
/// in [1000 × 0.98, 1025 × 1.02]; two replicas (round-robin) double it. The API server
/// takes the default stack's handling per request but no queue forms for its handlers
/// (`hand_stack`), or a handler, not the engine, would bound the rate.
const HAND_PLAN: &str = r#"
name = "hand"
max-model-len = 4096
serving-stack = "STACK"
[grid]
num-replicas = [1, 2, 3]
[workload]
arrival = "constant"
rate-rps = [100.0]
input = "fixed:100"
output = "fixed:1"
duration-s = 2.0
"#;

/// The default stack with `api_server.handlers = 0`, written once for the tests.
fn hand_stack() -> std::path::PathBuf {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let src = DataPaths::builtin().perf_model.join("stacks/vllm-v1.toml");
        let text = std::fs::read_to_string(src).unwrap();
        assert!(
            text.contains("\nhandlers = 1\n"),
            "vllm-v1.toml names its handlers"
        );
        let dir = std::env::temp_dir().join(format!("servesim-hand-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vllm-v1-no-handlers.toml");
        std::fs::write(&path, text.replace("\nhandlers = 1\n", "\nhandlers = 0\n")).unwrap();
        path
    })
    .clone()
}

fn hand_plan(ttft_s: f64, target_rps: Option<f64>) -> servesim::plan::planner::PlanReport {
    hand_plan_with_headroom(ttft_s, target_rps, 0)
}

fn hand_plan_with_headroom(
    ttft_s: f64,
    target_rps: Option<f64>,
    headroom: u32,
) -> servesim::plan::planner::PlanReport {
    hand_plan_with(ttft_s, target_rps, headroom, 0, 2)
}

fn hand_plan_with(
    ttft_s: f64,
    target_rps: Option<f64>,
    headroom: u32,
    replications: u32,
    jobs: usize,
) -> servesim::plan::planner::PlanReport {
    let stack = hand_stack();
    let mut ctx = context(&HAND_PLAN.replace("STACK", &stack.display().to_string()));
    ctx.latency_override = Some(Arc::new(FixedLatency::from_micros(0, 10, 0)));
    let opts = PlanOptions {
        slo: PlanSlo {
            ttft_s: Some(ttft_s),
            tpot_s: None,
            target: SloTarget::Percentile(99.0),
        },
        tolerance: 0.02,
        target_rps,
        jobs,
        max_replicas: 8,
        headroom,
        replications,
        bootstrap_block_s: 60.0,
    };
    plan(&ctx, &opts, &|| {}).unwrap()
}

#[test]
fn hand_checked_plan_and_monotonicity() {
    let tight = hand_plan(0.05, Some(2500.0));
    let rates: Vec<f64> = tight.configs.iter().map(|c| c.max_rps).collect();
    assert!((980.0..=1046.0).contains(&rates[0]), "{rates:?}");
    assert!((1960.0..=2092.0).contains(&rates[1]), "{rates:?}");
    // More replicas never lower the maximum rate.
    assert!(rates.windows(2).all(|w| w[1] >= w[0]), "{rates:?}");
    // 2,500 req/s needs three 1,000 req/s replicas.
    assert_eq!(tight.targets.len(), 1);
    assert_eq!(tight.targets[0].answer.as_ref().map(|a| a.0), Some(3));
    // With two replicas down the SLO still holds: five, and their cost counts all five.
    let spare = hand_plan_with_headroom(0.05, Some(2500.0), 2);
    let (n, m) = spare.targets[0].answer.as_ref().unwrap();
    let (n0, m0) = tight.targets[0].answer.as_ref().unwrap();
    assert_eq!((*n, m.gpus), (5, m0.gpus / n0 * 5));
    assert_eq!(m.ttft, m0.ttft, "the run is the three serving replicas'");
    // A looser SLO never lowers it.
    let loose = hand_plan(0.5, None);
    for (t, l) in tight.configs.iter().zip(&loose.configs) {
        assert!(l.max_rps >= t.max_rps, "{} < {}", l.max_rps, t.max_rps);
    }
}

#[test]
fn bad_grids_name_the_file_and_field() {
    let cfg: SweepConfig =
        toml::from_str("[grid]\nnum-replicas = []\n[workload]\ntrace = \"x.csv\"\n").unwrap();
    let e = SweepContext::new(
        cfg,
        Path::new("s.toml"),
        &DataPaths::builtin(),
        &BTreeMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("s.toml") && e.contains("grid.num-replicas"),
        "{e}"
    );
    assert!("3/2".parse::<Shard>().is_err());
    assert_eq!("1/4".parse::<Shard>().unwrap().indices(10), vec![1, 5, 9]);
}

#[test]
fn example_grids_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if (name.starts_with("sweep_") || name.starts_with("plan_")) && name.ends_with(".toml") {
            let cfg = SweepConfig::load(&p).unwrap();
            let ctx = SweepContext::new(cfg, &p, &DataPaths::builtin(), &BTreeMap::new()).unwrap();
            assert!(ctx.grid.num_points() > 0, "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 2);
}

#[test]
fn replicated_maximum_rates_have_intervals_whatever_the_threads() {
    let one = hand_plan_with(0.05, None, 0, 8, 1);
    let two = hand_plan_with(0.05, None, 0, 8, 2);
    assert_eq!(one, two);
    for c in &one.configs {
        let [lo, hi] = c.max_rps_ci95.expect("an interval");
        // The hand workload's replicas serve 1,000 req/s each; the replications vary
        // its requests (a reseeded generator) and the speed by a percent or so.
        assert!(
            lo <= hi && lo > 0.8 * c.max_rps && hi < 1.2 * c.max_rps,
            "{c:?}"
        );
    }
    assert!(hand_plan(0.05, None)
        .configs
        .iter()
        .all(|c| c.max_rps_ci95.is_none()));
}

/// The execution keys of a grid file act on every point as the flags do on `simulate`:
/// on vLLM 0.5, eager iterations (kernels launched from Python) and the collective
/// library's all-reduce make a TP2 decode step longer than the stack's CUDA graphs and
/// custom all-reduce.
#[test]
fn execution_keys_apply_to_every_point() {
    let grid = |extra: &str| {
        format!(
            "name = \"x\"\nmax-model-len = 4096\nserving-stack = \"vllm-0.5\"\n{extra}\n[grid]\nhardware = [\"h100\"]\n\
             tensor-parallel-size = [2]\n[workload]\narrival = \"constant\"\nrate-rps = [2.0]\n\
             input = \"fixed:200\"\noutput = \"fixed:50\"\nnum-requests = 10\n"
        )
    };
    let tpot = |extra: &str| {
        let ctx = context(&grid(extra));
        let rows = run_points(&ctx, &[0], 1, &|| {}).unwrap();
        assert_eq!(rows[0].get("status"), "ok", "{extra}: {:?}", rows[0]);
        rows[0].get("tpot_mean_s").parse::<f64>().unwrap()
    };
    let base = tpot("");
    let eager = tpot("enforce-eager = true");
    let nccl = tpot("disable-custom-all-reduce = true");
    assert!(eager > base, "eager {eager} vs {base}");
    assert!(nccl > base, "NCCL {nccl} vs {base}");
    assert_eq!(tpot("enforce-eager = false"), base);
}

/// A sweep's rows say when the point's GPU runs a serving stack built for another
/// vendor's GPUs (the default `vllm-v1` is vLLM's NVIDIA build), beside the cost notes.
#[test]
fn rows_name_a_stack_built_for_another_vendor() {
    let ctx = context(
        r#"
name = "vendors"
max-model-len = 4096
[prices]
h100 = 2.0
[grid]
hardware = ["h100", "mi300x"]
[workload]
arrival = "poisson"
rate-rps = [4.0]
input = "uniform:100:400"
output = "uniform:10:60"
num-requests = 20
"#,
    );
    let rows = run_points(&ctx, &[0, 1], 1, &|| {}).unwrap();
    let note = |hw: &str| {
        rows.iter()
            .find(|r| r.get("hardware") == hw)
            .unwrap()
            .get("note")
            .to_owned()
    };
    assert_eq!(note("h100"), "");
    let amd = note("mi300x");
    assert!(
        amd.starts_with("no price for this hardware")
            && amd.contains("; the engine's NVIDIA build, run here on a GPU by AMD"),
        "{amd}"
    );
}
