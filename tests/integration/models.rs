//! `--model` beyond the shipped catalog: a checkpoint folder and the local HuggingFace
//! hub cache, in `memory`, `estimate` and `simulate`.

use crate::util::*;
use std::path::Path;
use std::process::{Command, Output};

/// Run `servesim args…` in `cwd` with the hub cache at `hub`.
fn servesim_with_cache(cwd: &Path, hub: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_servesim"))
        .args(args)
        .arg("--data-dir")
        .arg(root())
        .env("HF_HUB_CACHE", hub)
        .current_dir(cwd)
        .output()
        .expect("run servesim")
}

/// The rows `servesim args… --format json` prints (run in a fresh folder).
fn json_rows(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let (o, _d) = servesim(&all);
    ok(&o);
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// A checkpoint folder `dir` with Llama-3.1-8B's config (and ModelOpt's FP8
/// description when `fp8`).
fn checkpoint(dir: &Path, fp8: bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(
        root().join("model_configs/meta-llama/Llama-3.1-8B.json"),
        dir.join("config.json"),
    )
    .unwrap();
    if fp8 {
        std::fs::write(
            dir.join("hf_quant_config.json"),
            r#"{"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}}"#,
        )
        .unwrap();
    }
}

/// A hub cache under `hub` holding `org/name` at revision `rev` (named by refs/main).
fn cached(hub: &Path, org: &str, name: &str, rev: &str) {
    let repo = hub.join(format!("models--{org}--{name}"));
    checkpoint(&repo.join("snapshots").join(rev), false);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), rev).unwrap();
}

#[test]
fn a_checkpoint_folder_is_a_model() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(&dir.path().join("my-llama"), false);
    checkpoint(&dir.path().join("my-llama-fp8"), true);
    let o = servesim_in(
        dir.path(),
        &["memory", "--model", "./my-llama", "--hardware", "h100"],
    );
    ok(&o);
    let plain = stdout(&o);
    assert!(
        plain.contains("my-llama") && plain.contains("8.030 B"),
        "{plain}"
    );
    // ModelOpt's hf_quant_config.json makes the linear layers FP8.
    let o = servesim_in(
        dir.path(),
        &["memory", "--model", "my-llama-fp8/", "--hardware", "h100"],
    );
    ok(&o);
    let fp8 = stdout(&o);
    assert!(fp8.contains("fp8"), "{fp8}");
    let o = servesim_in(
        dir.path(),
        &[
            "estimate",
            "--model",
            "./my-llama",
            "--batch-size",
            "2",
            "--input-len",
            "128",
            "--output-len",
            "8",
        ],
    );
    ok(&o);
    assert!(stdout(&o).contains("TPOT"), "{}", stdout(&o));
    // A folder without config.json says so.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let o = servesim_in(dir.path(), &["memory", "--model", "./empty"]);
    fails_with(&o, &["empty", "config.json"]);
}

#[test]
fn models_in_the_hub_cache_resolve_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    cached(&hub, "acme", "Tiny-Llama-8B", "0123abcd");
    let run = |args: &[&str]| servesim_with_cache(dir.path(), &hub, args);
    let o = run(&[
        "memory",
        "--model",
        "acme/Tiny-Llama-8B",
        "--hardware",
        "h100",
    ]);
    ok(&o);
    assert!(stdout(&o).contains("acme/Tiny-Llama-8B"), "{}", stdout(&o));
    let o = run(&[
        "estimate",
        "--model",
        "acme/Tiny-Llama-8B",
        "--batch-size",
        "1",
        "--input-len",
        "64",
        "--output-len",
        "4",
    ]);
    ok(&o);
    let o = run(&[
        "simulate",
        "--model",
        "acme/Tiny-Llama-8B",
        "--max-requests",
        "20",
        "--output-dir",
        "out",
    ]);
    ok(&o);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["completed"], 20);
    // Not in the cache: the usual unknown-model error.
    let o = run(&["memory", "--model", "acme/Missing-7B"]);
    fails_with(&o, &["unknown model `acme/Missing-7B`"]);
}

#[test]
fn list_models_filters_by_family_and_size() {
    let rows = json_rows(&["list", "models", "--family", "qwen3"]);
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"Qwen/Qwen3-8B") && ids.contains(&"Qwen/Qwen3-235B-A22B"));
    assert!(ids.iter().all(|i| i.starts_with("Qwen/Qwen3")), "{ids:?}");
    let rows = json_rows(&["list", "models", "--min-params", "60", "--max-params", "80"]);
    assert!(!rows.is_empty());
    for r in &rows {
        let b = r["params_total"].as_f64().unwrap() / 1e9;
        assert!((60.0..=80.0).contains(&b), "{r}");
    }
    let (o, _d) = servesim(&["list", "models", "--min-params", "5", "--max-params", "1"]);
    fails_with(&o, &["--min-params 5 is larger than --max-params 1"]);
    let (o, _d) = servesim(&["list", "hardware", "--family", "llama"]);
    fails_with(&o, &["apply to `list models` only"]);
}

/// The README's filtered `servesim list models` block is the command's real output.
#[test]
fn readme_list_models_filter_is_real_output() {
    let cmd = "$ servesim list models --family qwen3 --max-params 40\n";
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find(cmd).expect("README shows the filtered listing") + cmd.len();
    let end = start + readme[start..].find("\n$ ").unwrap() + 1;
    let (o, _d) = servesim(&["list", "models", "--family", "qwen3", "--max-params", "40"]);
    ok(&o);
    assert_eq!(stdout(&o), &readme[start..end]);
}

#[test]
fn list_hardware_reaches_the_database_tier_and_filters() {
    let rows = json_rows(&["list", "hardware", "--all"]);
    assert!(rows.len() >= 2000, "{}", rows.len());
    let tier = |t: &str| rows.iter().filter(|r| r["tier"] == t).count();
    assert!(tier("curated") >= 30 && tier("database") >= 2000);
    assert!(rows
        .iter()
        .all(|r| !r["source"].as_str().unwrap().is_empty()));
    let rows = json_rows(&[
        "list",
        "hardware",
        "--all",
        "--vendor",
        "nvidia",
        "--min-memory-gib",
        "100",
    ]);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["vendor"], "NVIDIA");
        assert!(
            r["memory_gb"].as_f64().unwrap() * 1e9 / 1073741824.0 >= 100.0,
            "{r}"
        );
    }
    let rows = json_rows(&["list", "hardware", "--type", "tpu"]);
    assert_eq!(rows.len(), 4);
    let rows = json_rows(&["list", "hardware", "--type", "cpu"]);
    assert!(rows.len() >= 4, "{}", rows.len());
    let (o, _d) = servesim(&["list", "models", "--all"]);
    fails_with(&o, &["apply to `list hardware` only"]);
}

/// Devices people ask about that only the database knows resolve by name in every
/// command; an ambiguous name lists the candidates.
#[test]
fn database_devices_resolve_by_name() {
    let (o, _d) = servesim(&[
        "memory",
        "--hardware",
        "rtx 5090",
        "--max-model-len",
        "8192",
    ]);
    ok(&o);
    assert!(stdout(&o).contains("GeForce RTX 5090"), "{}", stdout(&o));
    let (o, _d) = servesim(&[
        "estimate",
        "--hardware",
        "L20",
        "--max-model-len",
        "4096",
        "--batch-size",
        "2",
        "--input-len",
        "256",
        "--output-len",
        "8",
    ]);
    ok(&o);
    assert!(stdout(&o).contains("on 1 × L20"), "{}", stdout(&o));
    let (o, _d) = servesim(&["memory", "--hardware", "h800"]);
    fails_with(&o, &["`h800` is ambiguous", "H800 SXM5"]);
}

/// `memory --min-gpus --catalog all` searches the database tier too.
#[test]
fn memory_searches_the_whole_catalog() {
    let rows = json_rows(&[
        "memory",
        "--model",
        "meta-llama/Llama-3.1-70B",
        "--max-model-len",
        "8192",
        "--min-gpus",
        "--catalog",
        "all",
    ]);
    // Every device with a 16-bit rate (the 660 fixed-function parts have none).
    assert!(rows.len() >= 1800, "{}", rows.len());
    let h800 = rows.iter().find(|r| r["hardware"] == "H800 SXM5").unwrap();
    assert_eq!(h800["min_gpus"], 2);
}
