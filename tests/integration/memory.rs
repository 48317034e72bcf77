//! `memory --concurrency N --seq-len S`: GPUs needed for a load, and the memory chart.

use crate::util::*;

/// A well-formed SVG of `bars` stacked bars: the root element closes, every element
/// opened is closed, and each bar has its four parts.
fn check_svg(path: &std::path::Path, names: &[&str]) {
    let svg = std::fs::read_to_string(path).unwrap();
    assert!(
        svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"),
        "{svg:.200}"
    );
    let opened = svg.matches("<text").count();
    assert_eq!(opened, svg.matches("</text>").count(), "unbalanced <text>");
    for name in names {
        assert!(svg.contains(name), "no `{name}` in the chart");
    }
    // Four parts per bar plus the legend's four swatches and the backgrounds.
    assert!(
        svg.matches("<rect").count() >= 4 * names.len() + 4,
        "too few bars"
    );
}

#[test]
fn a_load_on_one_gpu_kind_names_the_gpus_needed_and_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("m.svg");
    let o = servesim_in(
        &root(),
        &[
            "memory",
            "--model",
            "llama-3.1-70b",
            "--hardware",
            "h100",
            "--concurrency",
            "8",
            "--seq-len",
            "4096",
            "--chart",
            chart.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let gpus = v["gpus"].as_u64().unwrap();
    assert_eq!(
        gpus,
        v["replicas"].as_u64().unwrap()
            * v["tensor_parallel_size"].as_u64().unwrap()
            * v["pipeline_parallel_size"].as_u64().unwrap()
    );
    // 141 GB of bf16 weights do not fit on two 80 GB GPUs.
    assert!(gpus >= 2, "{v}");
    let g = &v["per_gpu"];
    let parts: f64 = ["weights_gib", "kv_gib", "activations_gib", "overhead_gib"]
        .iter()
        .map(|k| g[k].as_f64().unwrap())
        .sum();
    assert!((parts - g["used_gib"].as_f64().unwrap()).abs() < 1e-9);
    assert!(g["used_gib"].as_f64().unwrap() <= g["budget_gib"].as_f64().unwrap());
    // 8 × 4096 tokens × 320 KiB per token (bf16, 80 layers × 8 KV heads × 128 × 2 × 2 B),
    // spread over the layout's GPUs.
    let kv_total_gib = 8.0 * 4096.0 * 327_680.0 / f64::from(1u32 << 30);
    let split = (v["tensor_parallel_size"].as_u64().unwrap()
        * v["pipeline_parallel_size"].as_u64().unwrap()) as f64;
    let kv = g["kv_gib"].as_f64().unwrap();
    assert!(kv >= kv_total_gib / split * 0.999, "{kv} GiB per GPU");
    check_svg(&chart, &["H100-SXM5-80GB"]);
}

#[test]
fn a_load_without_hardware_is_a_row_per_device_and_one_bar_each() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("m.svg");
    let args = [
        "memory",
        "--model",
        "llama-3.1-70b",
        "--concurrency",
        "8",
        "--seq-len",
        "4096",
        "--chart",
        chart.to_str().unwrap(),
    ];
    let o = servesim_in(&root(), &args);
    ok(&o);
    let table = stdout(&o);
    assert!(
        table.contains("GPUs") && table.contains("layout"),
        "{table}"
    );
    let h100 = table
        .lines()
        .find(|l| l.starts_with("H100-SXM5-80GB"))
        .unwrap();
    assert!(h100.contains("1×TP1×PP3"), "{h100}");
    check_svg(&chart, &["H100-SXM5-80GB", "A100-SXM4-80GB", "MI300X"]);
    let o = servesim_in(&root(), &[&args[..7], &["--format", "csv"]].concat());
    ok(&o);
    let csv = stdout(&o);
    assert!(csv.starts_with("hardware,gpus,replicas,"), "{csv}");
}

#[test]
fn bad_loads_name_the_flag() {
    let (o, _d) = servesim(&["memory", "--concurrency", "0", "--seq-len", "10"]);
    fails_with(&o, &["--concurrency"]);
    let (o, _d) = servesim(&["memory", "--chart", "x.svg"]);
    fails_with(&o, &["--chart", "--concurrency"]);
    let (o, _d) = servesim(&[
        "memory",
        "--model",
        "llama-3.1-70b",
        "--hardware",
        "h100",
        "-tp",
        "1",
        "--concurrency",
        "1",
        "--seq-len",
        "1000",
    ]);
    fails_with(&o, &["--concurrency", "do not fit", "TP1 PP1"]);
}

/// The README's `servesim memory` examples are the command's real output.
#[test]
fn readme_examples_are_real_output() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut checked = 0;
    for block in readme.split("```text\n$ servesim memory ").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        let (command, expected) = block.split_once('\n').unwrap();
        let mut args = vec!["memory"];
        args.extend(command.split_whitespace());
        let o = servesim_in(&root(), &args);
        ok(&o);
        assert_eq!(stdout(&o), expected, "README: servesim memory {command}");
        checked += 1;
    }
    assert!(checked >= 3, "README memory examples: {checked}");
}

/// `--train --recommend` ranks the devices that fit, fewest GPUs first; each row is the
/// plan `--hardware` gives for that device.
#[test]
fn training_recommendations_are_the_per_device_plans_ranked() {
    let base = [
        "memory",
        "--train",
        "lora",
        "--model",
        "llama-3.1-8b",
        "--seq-len",
        "4096",
        "--micro-batch-size",
        "2",
    ];
    let o = servesim_in(
        &root(),
        &[&base[..], &["--recommend", "--format", "json"]].concat(),
    );
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let fits = v["fits"].as_array().unwrap();
    assert!(fits.len() > 5, "{v}");
    let gpus: Vec<u64> = fits.iter().map(|r| r["gpus"].as_u64().unwrap()).collect();
    assert!(gpus.windows(2).all(|w| w[0] <= w[1]), "{gpus:?}");
    for r in fits {
        assert!(r["max_micro_batch_size"].as_u64().unwrap() >= 2, "{r}");
        assert!(r["memory_per_gpu_gib"].as_f64().unwrap() <= r["capacity_gib"].as_f64().unwrap());
    }
    let h100 = fits
        .iter()
        .find(|r| r["hardware"] == "H100-SXM5-80GB")
        .unwrap();
    let o = servesim_in(
        &root(),
        &[&base[..], &["--hardware", "h100", "--format", "json"]].concat(),
    );
    ok(&o);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(h100["gpus"], plan["min_gpus"]);
    assert_eq!(h100["max_micro_batch_size"], plan["max_micro_batch_size"]);
    let gib = plan["total_bytes_per_gpu"].as_f64().unwrap() / f64::from(1u32 << 30);
    assert!((h100["memory_per_gpu_gib"].as_f64().unwrap() - gib).abs() < 1e-9);
    // Devices too small are named, not dropped silently.
    assert!(
        v["do_not_fit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "T4"),
        "{v}"
    );
    let o = servesim_in(
        &root(),
        &[&base[..], &["--recommend", "--hardware", "h100"]].concat(),
    );
    fails_with(&o, &["--recommend", "--hardware"]);
}

#[test]
fn a_load_of_empty_sequences_is_refused_and_the_chart_folder_is_made() {
    let (o, _d) = servesim(&[
        "memory",
        "--hardware",
        "h100",
        "--concurrency",
        "8",
        "--seq-len",
        "0",
    ]);
    fails_with(&o, &["--seq-len", "at least 1"]);
    let (o, d) = servesim(&[
        "memory",
        "--hardware",
        "h100",
        "--concurrency",
        "8",
        "--seq-len",
        "64",
        "--chart",
        "new/folder/m.svg",
    ]);
    ok(&o);
    assert!(d.path().join("new/folder/m.svg").is_file());
}
