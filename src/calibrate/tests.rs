//! Calibration recovers parameters from data the roofline itself generated.

use super::*;
use crate::deployment::DeploymentRequest;
use crate::paths::DataPaths;

fn deployment(model: &str, hw: &str, tp: u32) -> Deployment {
    Deployment::resolve(
        &DeploymentRequest {
            model: Some(model.into()),
            hardware: Some(hw.into()),
            tensor_parallel_size: Some(tp),
            dtype: Some("float16".into()),
            ..DeploymentRequest::default()
        },
        &DataPaths::builtin(),
    )
    .unwrap()
}

/// Splitwise-like observations of `truth` on two models (32 and 80 layers, so the two
/// overheads separate): prefills of growing size, decodes of growing batch.
fn synthetic(truth: &RooflineParams, stack: Option<&str>) -> Calibration {
    let mut c = Calibration::new(&[]);
    let set = c.add_set("synthetic", "A100-SXM4-80GB", stack);
    for d in [
        deployment("meta-llama/Llama-2-7b-hf", "a100-80gb", 1),
        deployment("meta-llama/Llama-2-70b-hf", "a100-80gb", 4),
    ] {
        let model = roofline_with_overheads(&d, truth);
        for (batch, len) in [
            (1, 128),
            (1, 1024),
            (1, 8192),
            (4, 8192),
            (8, 512),
            (32, 512),
        ] {
            let mut s = StepShape::new();
            for _ in 0..batch {
                s.push_prefill(len, 0);
            }
            let t = model.evaluate(&s, None);
            c.add_steps(set, &d, Metric::Ttft, vec![(s, 1.0)], 1.0, t);
        }
        // Chunks late in long prompts: attention-bound.
        for (chunk, ctx) in [(512, 16384), (2048, 30000), (1024, 60000)] {
            let mut s = StepShape::new();
            s.push_prefill(chunk, ctx);
            let t = model.evaluate(&s, None);
            c.add_steps(set, &d, Metric::Ttft, vec![(s, 1.0)], 1.0, t);
        }
        for (batch, ctx) in [
            (1, 512),
            (4, 512),
            (16, 512),
            (64, 512),
            (256, 512),
            (64, 8192),
        ] {
            let dec = shapes::compress(&shapes::static_decodes(batch, ctx, 129));
            let t: f64 = dec
                .iter()
                .map(|(s, w)| w * model.evaluate(s, None))
                .sum::<f64>()
                / 128.0;
            c.add_steps(set, &d, Metric::Tpot, dec, 128.0, t);
        }
    }
    c
}

fn start() -> RooflineParams {
    RooflineParams::load(&DataPaths::builtin().perf_model).unwrap()
}

#[test]
fn recovers_known_parameters() {
    let truth = RooflineParams {
        gemm_compute_efficiency: 0.55,
        memory_efficiency: 0.68,
        attention_compute_efficiency: 0.35,
        step_overhead_s: 0.0025,
        per_layer_overhead_s: 0.00004,
        kernel_latency_s: 0.0,
    };
    let c = synthetic(&truth, None);
    let fit = c.fit(&start(), &optimize::NelderMead::default()).unwrap();
    let p = fit.params_for("A100-SXM4-80GB").unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b;
    assert!(rel(p.gemm_compute_efficiency, 0.55) < 0.02, "{p:?}");
    assert!(rel(p.memory_efficiency, 0.68) < 0.02, "{p:?}");
    assert!(rel(p.attention_compute_efficiency, 0.35) < 0.05, "{p:?}");
    assert!((p.step_overhead_s - 0.0025).abs() < 2e-4, "{p:?}");
    assert!((p.per_layer_overhead_s - 0.00004).abs() < 5e-6, "{p:?}");
    let after = &fit.sets[0].metrics;
    assert!(
        after.iter().all(|m| m.after.median_abs_pct < 1.0),
        "{after:?}"
    );
    assert!(
        after.iter().all(|m| m.before.median_abs_pct > 5.0),
        "{after:?}"
    );
    assert!(fit.loss_after < fit.loss_before);
}

#[test]
fn own_overheads_are_not_written() {
    let truth = RooflineParams {
        step_overhead_s: 0.02,
        per_layer_overhead_s: 0.0,
        ..start()
    };
    let c = synthetic(&truth, Some("other"));
    let fit = c.fit(&start(), &optimize::NelderMead::default()).unwrap();
    // No set on the simulated stack: its parameters keep their start; the set's own
    // stack absorbs the 20 ms.
    assert!(!fit.stack_fitted);
    let p = fit.params_for("A100-SXM4-80GB").unwrap();
    assert_eq!(p.step_overhead_s, start().step_overhead_s);
    let (name, own) = fit.sets[0].own_stack.clone().unwrap();
    assert_eq!(name, "other");
    assert!((own.step_overhead_s - 0.02).abs() < 1e-3, "{own:?}");
    assert!(fit.sets[0].metrics[0].as_written.is_some());
}

#[test]
fn calibrated_file_round_trips_and_is_only_read_when_given() {
    let c = synthetic(&start(), None);
    let fit = c
        .fit(
            &start(),
            &optimize::NelderMead {
                max_evals: 50,
                ..Default::default()
            },
        )
        .unwrap();
    let text = calibrated_toml(
        &fit,
        &fit.groups[0],
        "servesim calibrate --hardware a100-80gb x.csv",
        "2025-01-01",
        &["x.csv".into()],
    );
    assert!(text.starts_with("# Calibrated roofline parameters for A100-SXM4-80GB"));
    let dir = tempfile::tempdir().unwrap();
    let pm = dir.path();
    std::fs::copy(
        DataPaths::builtin().perf_model.join("roofline.toml"),
        pm.join("roofline.toml"),
    )
    .unwrap();
    let gpu = deployment("meta-llama/Llama-2-7b-hf", "a100-80gb", 1)
        .gpu()
        .clone();
    // Without a calibrated file: roofline.toml.
    assert_eq!(RooflineParams::load_for(pm, &gpu).unwrap(), start());
    let path = RooflineParams::calibrated_path(pm, &gpu);
    assert!(path.ends_with("calibrated/a100-sxm4-80gb.toml"), "{path:?}");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &text).unwrap();
    // A calibrated file is an in-sample fit: never the default, read when given.
    assert_eq!(RooflineParams::load_for(pm, &gpu).unwrap(), start());
    let loaded = RooflineParams::from_file(&path).unwrap();
    let p = fit.params_for("A100-SXM4-80GB").unwrap();
    assert!((loaded.memory_efficiency - p.memory_efficiency).abs() < 1e-4);
    std::fs::write(&path, "memory_efficiency = -1\n").unwrap();
    let e = RooflineParams::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("a100-sxm4-80gb.toml"), "{e}");
}

#[test]
fn civil_date_is_well_formed() {
    let d = utc_date();
    assert_eq!(d.len(), 10);
    assert!(d.starts_with("20"), "{d}");
}

/// The ROCm build's priors are the fit on its one public timing (vllm-project/vllm#8310,
/// `perf_model/measurements/vllm-rocm-public/`) with the host time per iteration held at
/// the V0 loop's prior (`vllm-0.5`'s, from public offline runs): refitting that table
/// alone so gives the stack file's `prior_*` figures back.
#[test]
fn rocm_priors_are_the_fit_on_the_public_rows() {
    use crate::stack::ServingStack;
    let paths = DataPaths::builtin();
    let rocm = ServingStack::load(&paths, Some("vllm-0.6-rocm")).unwrap();
    let file = paths
        .perf_model
        .join("measurements/vllm-rocm-public/static_batches.csv");
    let opts = crate::validate::OpenOptions {
        framework: Some(rocm.framework.clone()),
        ..crate::validate::OpenOptions::default()
    };
    let table = crate::validate::open(&file, None, &opts).unwrap();
    let set = stack_fit::FitSet {
        name: "vllm-rocm-public".into(),
        measurements: vec![table],
    };
    let v0 = ServingStack::load(&paths, Some("vllm-0.5")).unwrap();
    let host = &rocm.execution.host;
    assert_eq!(host.prior_step_us, v0.execution.host.prior_step_us);
    let f = stack_fit::fit(&rocm, &[set], &paths, false, Some(host.prior_step_us)).unwrap();
    assert!((f.step_us - host.prior_step_us).abs() < 0.05, "{f:?}");
    // The written file says the step was held, not fitted.
    assert!(f.step_held);
    let text = stack_fit::rewrite(&rocm.path, &f, "test").unwrap();
    assert!(text.contains("per iteration, held (the section's other figures fitted)"));
    assert_eq!(f.per_kernel_us, host.prior_per_kernel_us);
    assert_eq!(
        f.decode_bandwidth_efficiency,
        rocm.paged_attention
            .as_ref()
            .and_then(|p| p.prior_decode_bandwidth_efficiency)
    );
    assert_eq!(
        f.gemm_bandwidth_efficiency,
        rocm.gemm
            .as_ref()
            .and_then(|g| g.prior_bandwidth_efficiency)
    );
    // Within 1.3 % on the six rows (0.9 % with the step fitted too).
    assert!(f.loss_after < 0.015, "{f:?}");
}
