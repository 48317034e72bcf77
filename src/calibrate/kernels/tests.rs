//! The kernel-derived efficiencies: the shipped files are what the procedure writes,
//! they are the default selection, and the fit means what the roofline means.

use super::*;
use crate::deployment::{Deployment, DeploymentRequest};
use crate::paths::DataPaths;
use crate::perf::roofline::{ParamsSource, Roofline};
use crate::perf::LatencyModel;

fn perf_model() -> PathBuf {
    DataPaths::builtin().perf_model
}

fn catalog() -> HardwareCatalog {
    HardwareCatalog::load(&DataPaths::builtin().hardware_dir()).unwrap()
}

fn defaults() -> RooflineParams {
    RooflineParams::load(&perf_model()).unwrap()
}

/// Recompute `slug` from the CSVs and compare with the committed file, byte for byte.
fn reproduces(slug: &str) {
    let pm = perf_model();
    let sources = load_sources(&pm).unwrap();
    let k = derive(&pm, &catalog(), &sources, &defaults(), slug).unwrap();
    let path = folder(&pm).join(format!("{slug}.toml"));
    let committed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        to_toml(&k),
        committed,
        "{} is not what `servesim calibrate --kernels` writes; rerun it",
        path.display()
    );
    // The file reads back as what was derived.
    assert_eq!(read(&path).unwrap(), k);
    assert_eq!(RooflineParams::from_file(&path).unwrap(), k.params);
}

#[test]
fn a100_tables_reproduce_the_committed_file() {
    reproduces("a100-sxm4-80gb");
}

#[test]
fn microbenchmarks_and_transfers_reproduce_the_committed_files() {
    reproduces("max-1550-aurora");
    reproduces("gh200");
    reproduces("a100-sxm4-40gb");
}

/// A fraction transfer keeps the source's share of bandwidth; a rate transfer keeps
/// its bytes per second (up to the new part's datasheet figure); nothing else moves.
#[test]
fn transfers_carry_memory_as_a_fraction_or_as_a_rate() {
    let pm = perf_model();
    let sources = load_sources(&pm).unwrap();
    let cat = catalog();
    let derive_as = |mode: MemoryTransfer| {
        let mut s = sources.clone();
        let e = s
            .gpu
            .iter_mut()
            .find(|g| g.hardware == "a100-sxm4-40gb")
            .unwrap();
        e.memory_transfer = mode;
        derive(&pm, &cat, &s, &defaults(), "a100-sxm4-40gb").unwrap()
    };
    let src = derive(&pm, &cat, &sources, &defaults(), "a100-sxm4-80gb").unwrap();
    let fraction = derive_as(MemoryTransfer::Fraction);
    assert_eq!(fraction.params, src.params);
    assert_eq!(fraction.derivation.memory_transfer, None);
    let rate = derive_as(MemoryTransfer::Rate);
    let expected = src.params.memory_efficiency * 2039.0 / 1555.0;
    assert!(
        (rate.params.memory_efficiency - expected).abs() <= 0.00025,
        "{} vs {expected}",
        rate.params.memory_efficiency
    );
    assert_eq!(rate.derivation.memory_transfer, Some(MemoryTransfer::Rate));
    assert_eq!(
        RooflineParams {
            memory_efficiency: src.params.memory_efficiency,
            ..rate.params
        },
        src.params
    );
}

#[test]
fn every_file_is_listed_and_sane() {
    let pm = perf_model();
    let sources = load_sources(&pm).unwrap();
    let cat = catalog();
    let mut files: Vec<String> = std::fs::read_dir(folder(&pm))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && n != "sources.toml")
        .map(|n| n.trim_end_matches(".toml").to_owned())
        .collect();
    files.sort();
    let mut listed: Vec<String> = sources.gpu.iter().map(|g| g.hardware.clone()).collect();
    listed.sort();
    assert_eq!(files, listed, "kernel_efficiency/*.toml vs sources.toml");
    let defaults = defaults();
    for g in &sources.gpu {
        let gpu = gpu_by_slug(&cat, &g.hardware).unwrap();
        let path = folder(&pm).join(format!("{}.toml", g.hardware));
        let k = read(&path).unwrap();
        let p = k.params;
        for (name, v) in [
            ("gemm_compute_efficiency", p.gemm_compute_efficiency),
            ("memory_efficiency", p.memory_efficiency),
            (
                "attention_compute_efficiency",
                p.attention_compute_efficiency,
            ),
        ] {
            assert!(v > 0.0 && v <= 1.0, "{}: {name} = {v}", g.hardware);
            let derived = k.derivation.derived.iter().any(|x| x == name);
            let kept = k.derivation.kept_default.iter().any(|x| x == name);
            assert!(derived != kept, "{}: {name}", g.hardware);
        }
        // Unused keys are roofline.toml's.
        assert_eq!(p.step_overhead_s, defaults.step_overhead_s);
        assert_eq!(p.per_layer_overhead_s, defaults.per_layer_overhead_s);
        assert_eq!(k.derivation.name, gpu.name);
        assert_eq!(k.derivation.transfer_from, g.transfer_from);
        // Every table set fits its rows within reason.
        for s in &k.derivation.sets {
            if let Some(m) = s.median_abs_err_pct {
                assert!(m < 25.0, "{}: {} {m}%", g.hardware, s.file);
                assert!(s.rows_fitted > 0 && s.rows_fitted <= s.rows_in_range);
            }
        }
        // The selection picks it.
        assert_eq!(
            RooflineParams::source_for(&pm, gpu),
            ParamsSource::KernelEfficiency(path.clone())
        );
        assert_eq!(RooflineParams::load_for(&pm, gpu).unwrap(), p);
    }
}

#[test]
fn selection_prefers_kernel_data_and_never_picks_in_sample_fits() {
    let dir = tempfile::tempdir().unwrap();
    let pm = dir.path();
    std::fs::copy(perf_model().join("roofline.toml"), pm.join("roofline.toml")).unwrap();
    let gpu = catalog().resolve("a100-40gb").unwrap();
    let generic = defaults();
    // A calibrated (in-sample) file alone is not picked.
    let calibrated = RooflineParams::calibrated_path(pm, &gpu);
    assert!(calibrated.ends_with("calibrated/a100-sxm4-40gb.toml"));
    std::fs::create_dir_all(calibrated.parent().unwrap()).unwrap();
    let fitted = RooflineParams {
        gemm_compute_efficiency: 0.33,
        ..generic
    };
    std::fs::write(&calibrated, toml::to_string(&fitted).unwrap()).unwrap();
    assert_eq!(
        RooflineParams::source_for(pm, &gpu),
        ParamsSource::Generic(pm.join("roofline.toml"))
    );
    assert_eq!(RooflineParams::load_for(pm, &gpu).unwrap(), generic);
    // ... but reads when given.
    assert_eq!(RooflineParams::from_file(&calibrated).unwrap(), fitted);
    // A kernel-derived file wins.
    let kernel = RooflineParams::kernel_efficiency_path(pm, &gpu);
    assert!(kernel.ends_with("kernel_efficiency/a100-sxm4-40gb.toml"));
    std::fs::create_dir_all(kernel.parent().unwrap()).unwrap();
    std::fs::copy(folder(&perf_model()).join("a100-sxm4-40gb.toml"), &kernel).unwrap();
    assert_eq!(
        RooflineParams::source_for(pm, &gpu),
        ParamsSource::KernelEfficiency(kernel.clone())
    );
    let loaded = RooflineParams::load_for(pm, &gpu).unwrap();
    assert_eq!(loaded, read(&kernel).unwrap().params);
    assert_ne!(loaded, generic);
    // A GPU without kernel data keeps the generic file.
    let mi250 = catalog().resolve("mi250").unwrap();
    assert!(matches!(
        RooflineParams::source_for(&perf_model(), &mi250),
        ParamsSource::Generic(_)
    ));
    // A broken file is an error naming it, not a silent fallback.
    std::fs::write(&kernel, "memory_efficiency = -1\n").unwrap();
    let e = RooflineParams::load_for(pm, &gpu).unwrap_err().to_string();
    assert!(e.contains("a100-sxm4-40gb.toml"), "{e}");
}

/// Points generated by the roofline's own cost with known efficiencies and kernel
/// latency.
fn synthetic(kind: KernelKind, ec: f64, em: f64, latency_us: f64) -> Prepared {
    let (peak, bw) = (1e15, 3e12);
    let mut pts = Vec::new();
    // Ridge point 333 FLOP/byte: m ≤ 256 memory-bound, m ≥ 512 compute-bound.
    for &m in &[
        1.0, 4.0, 16.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
    ] {
        for &n in &[2048.0, 4096.0, 8192.0, 16384.0] {
            let (f, b) = linear_work(m, 8192.0, n, 2.0, 2.0);
            let t_us = latency_us + (f / (peak * ec)).max(b / (bw * em)) * 1e6;
            pts.push(Point::new(f, peak, b, bw, t_us));
        }
    }
    Prepared {
        source: SetSource {
            kind,
            file: "synthetic".into(),
            dtype: None,
            fit: true,
            fit_latency: true,
            gemm_metric: None,
            memory_metric: None,
            note: None,
        },
        dtype: DType::Bf16,
        rows: pts.len(),
        floor_us: 1.0,
        in_range: pts.clone(),
        fitted: pts,
    }
}

/// Where the synthetic fits start: efficiencies away from the truth, no latency.
fn fit_start() -> Effs {
    Effs {
        gemm: 0.7,
        memory: 0.8,
        attention: 0.5,
        latency_s: 0.0,
    }
}

#[test]
fn grid_fit_recovers_the_efficiencies_that_generated_the_data() {
    let gemm = synthetic(KernelKind::Gemm, 0.7315, 0.8420, 0.0);
    let start = fit_start();
    let fit = fit_identified(&[&gemm], start);
    assert_eq!(fit.free, [true, true, false, true]);
    assert!((fit.effs.gemm - 0.7315).abs() < 1e-9, "{:?}", fit.effs);
    assert!((fit.effs.memory - 0.8420).abs() < 1e-9, "{:?}", fit.effs);
    assert_eq!(fit.effs.latency_s, 0.0);
    assert_eq!(fit.effs.attention, 0.5);
    // Only compute-bound rows: the memory efficiency is not identified and keeps its
    // start, whatever value would fit.
    let mut big = synthetic(KernelKind::Gemm, 0.6, 0.3, 0.0);
    big.fitted.retain(Point::ideal_compute_bound);
    let fit = fit_at_latency(&[&big], start);
    assert_eq!(fit.free, [true, false, false, false]);
    assert_eq!(fit.effs.memory, 0.8);
}

#[test]
fn the_fit_recovers_a_kernel_latency_beside_the_efficiencies() {
    // 4.5 µs is on the latency grid; the efficiencies on the fine grid.
    let gemm = synthetic(KernelKind::Gemm, 0.7315, 0.8420, 4.5);
    let start = fit_start();
    let fit = fit_identified(&[&gemm], start);
    assert_eq!(fit.free, [true, true, false, true]);
    assert!(
        (fit.effs.latency_s - 4.5e-6).abs() < 1e-12,
        "{:?}",
        fit.effs
    );
    assert!((fit.effs.gemm - 0.7315).abs() < 1e-9, "{:?}", fit.effs);
    assert!((fit.effs.memory - 0.8420).abs() < 1e-9, "{:?}", fit.effs);
    // The same rows fitted without a latency land on a lower memory efficiency: the
    // bias the latency term removes.
    let without = fit_at_latency(&[&gemm], start);
    assert!(without.effs.memory < 0.8420 - 0.01, "{:?}", without.effs);
    // Attention tables alone do not bind a latency: it keeps its start.
    let attention = synthetic(KernelKind::AttentionPrefill, 0.5, 0.8, 4.5);
    let fit = fit_identified(&[&attention], start);
    assert!(!fit.free[3]);
    assert_eq!(fit.effs.latency_s, 0.0);
}

#[test]
fn fitted_costs_are_the_rooflines_costs() {
    let d = Deployment::resolve(
        &DeploymentRequest {
            model: Some("meta-llama/Llama-2-7b-hf".into()),
            hardware: Some("h100".into()),
            tensor_parallel_size: Some(1),
            ..DeploymentRequest::default()
        },
        &DataPaths::builtin(),
    )
    .unwrap();
    let r = Roofline::new(&d, defaults());
    let mut shape = StepShape::new();
    for _ in 0..8 {
        shape.push_decode(700);
    }
    shape.push_prefill(312, 100);
    let ops = r.op_breakdown(&shape);
    let op = |name: &str| ops.iter().find(|o| o.name == name).unwrap();
    let layers = 32.0;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    // The 4096 × 4096 output projection over the iteration's 320 tokens (a captured
    // size: no padding).
    let (f, b) = linear_work(320.0, 4096.0, 4096.0, 2.0, 2.0);
    let o = op("o_proj");
    assert!(close(o.flops.unwrap(), layers * f), "{o:?}");
    assert!(close(o.bytes.unwrap(), layers * b), "{o:?}");
    // Attention: 32 heads of 128, MHA.
    let (f, b) = attention_layer_work(32.0, 32.0, 128.0, 2.0, 2.0, &shape);
    let a = op("attention");
    assert!(close(a.flops.unwrap(), layers * f), "{a:?}");
    assert!(close(a.bytes.unwrap(), layers * b), "{a:?}");
    // Each kernel costs its fixed latency plus its roofline time, as the fit assumes.
    let with_latency = RooflineParams {
        kernel_latency_s: 5e-6,
        ..defaults()
    };
    let r2 = Roofline::new(&d, with_latency);
    let ops2 = r2.op_breakdown(&shape);
    let o2 = ops2.iter().find(|o| o.name == "o_proj").unwrap();
    assert!(
        close(o2.time_s, o.time_s + layers * 5e-6),
        "{o2:?} vs {o:?}"
    );
    let a2 = ops2.iter().find(|o| o.name == "attention").unwrap();
    assert!(
        close(a2.time_s, a.time_s + layers * 5e-6),
        "{a2:?} vs {a:?}"
    );
    let e1 = op("elementwise");
    let e2 = ops2.iter().find(|o| o.name == "elementwise").unwrap();
    assert_eq!(
        e1.time_s, e2.time_s,
        "elementwise kernels carry no fitted latency"
    );
}

/// A stack with its own decode attention kernel (vLLM's ROCm build) changes the
/// decode attention's time to KV bytes over that kernel's bandwidth, and nothing else.
#[test]
fn a_stacks_own_decode_kernel_times_decode_attention_only() {
    let paths = DataPaths::builtin();
    let resolve = |stack: &str| {
        Deployment::resolve(
            &DeploymentRequest {
                model: Some("meta-llama/Llama-3.1-8B".into()),
                hardware: Some("mi300x".into()),
                tensor_parallel_size: Some(1),
                serving_stack: Some(stack.into()),
                ..DeploymentRequest::default()
            },
            &paths,
        )
        .unwrap()
    };
    let rocm = resolve("vllm-0.6-rocm");
    let mut plain = resolve("vllm-0.6-rocm");
    let mut no_kernel = (*plain.stack).clone();
    no_kernel.paged_attention = None;
    plain.stack = std::sync::Arc::new(no_kernel);
    let (r, p) = (
        Roofline::new(&rocm, defaults()),
        Roofline::new(&plain, defaults()),
    );
    let op = |m: &Roofline, shape: &StepShape, name: &str| {
        m.op_breakdown(shape)
            .into_iter()
            .find(|o| o.name == name)
            .unwrap()
    };
    let mut decode = StepShape::new();
    for _ in 0..64 {
        decode.push_decode(2048);
    }
    let pa = rocm.stack.paged_attention.as_ref().unwrap();
    let eff = pa.decode_bandwidth_efficiency.unwrap();
    assert!(pa.reads_kv_per_query_head);
    let a = op(&r, &decode, "attention");
    let p_a = op(&p, &decode, "attention");
    // Llama-3.1-8B: 4 query heads per KV head, each re-reading it.
    let ratio = a.bytes.unwrap() / p_a.bytes.unwrap();
    assert!((ratio - 4.0).abs() < 1e-12, "{ratio}");
    let want = a.bytes.unwrap() / (rocm.gpu().memory_bandwidth_bytes_per_s() * eff);
    assert!((a.time_s - want).abs() <= 1e-9 * want, "{a:?} vs {want}");
    assert!(a.time_s > p_a.time_s);
    assert_eq!(op(&r, &decode, "o_proj"), op(&p, &decode, "o_proj"));
    let mut prefill = StepShape::new();
    prefill.push_prefill(512, 0);
    assert_eq!(
        op(&r, &prefill, "attention"),
        op(&p, &prefill, "attention"),
        "prefill attention is not the decode kernel's"
    );
}

/// GPUs with only a best square GEMM get `ratio × median / peak` (RTX 4090: four rows,
/// 0.863 × 166.575 / 165.2; T4 in fp16), and the files are what the procedure writes.
#[test]
fn best_square_gemms_reproduce_the_committed_files() {
    reproduces("rtx4090");
    reproduces("t4");
    let pm = perf_model();
    let k = derive(
        &pm,
        &catalog(),
        &load_sources(&pm).unwrap(),
        &defaults(),
        "rtx4090",
    )
    .unwrap();
    let want = 0.863 * 166.575 / 165.2;
    assert!(
        (k.params.gemm_compute_efficiency - want).abs() < 1e-4,
        "{want}"
    );
    assert_eq!(k.derivation.derived, ["gemm_compute_efficiency"]);
    assert_eq!(k.params.memory_efficiency, defaults().memory_efficiency);
}

/// The ratio in `sources.toml` is the median, over the GPUs with fitted GEMM tables and
/// a best-square row, of the written GEMM efficiency over the best square GEMM's share
/// of the dense bf16 peak: it moves when either side does.
#[test]
fn the_llm_gemm_ratio_is_recomputed_from_the_written_files() {
    let pm = perf_model();
    let sources = load_sources(&pm).unwrap();
    let cat = catalog();
    let csv = pm.join("measurements/torch-matmul/best_square.csv");
    let rows: Vec<best_square::BestRow> = read_rows(&csv).unwrap();
    let mut ratios = Vec::new();
    for g in &sources.gpu {
        if !g.set.iter().any(|s| s.kind == KernelKind::Gemm && s.fit) {
            continue;
        }
        let (Some(best), _) = best_square::best_of(&rows, &g.hardware, DType::Bf16) else {
            continue;
        };
        let written = RooflineParams::from_file(&folder(&pm).join(format!("{}.toml", g.hardware)))
            .unwrap()
            .gemm_compute_efficiency;
        let peak = gpu_by_slug(&cat, &g.hardware)
            .unwrap()
            .peak_flops(DType::Bf16)
            .unwrap()
            / 1e12;
        ratios.push(written / (best / peak));
    }
    assert_eq!(ratios.len(), 5, "{ratios:?}");
    let median = median(&ratios).unwrap();
    let shipped = sources.best_square_gemm.unwrap().llm_gemm_ratio;
    assert!((median - shipped).abs() < 5e-4, "{median} vs {shipped}");
}

/// A best-square set without the ratio, or a GPU without rows, is refused by name.
#[test]
fn a_best_square_set_needs_its_ratio_and_rows() {
    let pm = perf_model();
    let mut sources = load_sources(&pm).unwrap();
    let cat = catalog();
    let ratio = sources.best_square_gemm.take();
    let err = derive(&pm, &cat, &sources, &defaults(), "rtx4090").unwrap_err();
    assert!(err.to_string().contains("[best_square_gemm]"), "{err}");
    sources.best_square_gemm = ratio;
    let g = sources
        .gpu
        .iter_mut()
        .find(|g| g.hardware == "rtx4090")
        .unwrap();
    g.set[0].dtype = Some(DType::Fp8);
    let err = derive(&pm, &cat, &sources, &defaults(), "rtx4090").unwrap_err();
    assert!(
        err.to_string().contains("no `rtx4090` rows in fp8"),
        "{err}"
    );
}
