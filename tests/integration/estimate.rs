//! `estimate` runs its batch through the same replica and engine as `simulate`.

use crate::util::*;

fn json(args: &[&str]) -> serde_json::Value {
    let o = servesim_in(&root(), args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        a > 0.0 && (a - b).abs() <= 0.01 * b,
        "{what}: estimate {a} vs simulate {b}"
    );
}

/// `estimate --batch-size 1` and `simulate` of that one request agree on TTFT and TPOT,
/// whichever latency model the GPU gets, and when the prompt is longer than the token
/// budget (2048 by default) so the engine chunks its prefill.
#[test]
fn estimate_of_one_request_agrees_with_simulate() {
    let dir = tempfile::tempdir().unwrap();
    for (hardware, input, output, model) in [
        ("h100", 1024, 128, "measured"),
        ("h100", 5000, 64, "measured"),
        ("mi300x", 1024, 128, "roofline"),
        ("mi300x", 5000, 64, "roofline"),
        ("a100-40gb", 3000, 32, "roofline"),
    ] {
        let case = format!("{hardware} {input}/{output}");
        let trace = dir.path().join(format!("{hardware}_{input}.csv"));
        std::fs::write(
            &trace,
            format!("arrival_time_s,input_tokens,output_tokens\n0,{input},{output}\n"),
        )
        .unwrap();
        let sim = json(&[
            "simulate",
            "--hardware",
            hardware,
            "--trace",
            trace.to_str().unwrap(),
            "--no-output",
            "--format",
            "json",
        ]);
        let (input, output) = (input.to_string(), output.to_string());
        let est = json(&[
            "estimate",
            "--hardware",
            hardware,
            "--batch-size",
            "1",
            "--input-len",
            &input,
            "--output-len",
            &output,
            "--format",
            "json",
        ]);
        let mean = |k: &str| sim[k]["mean"].as_f64().unwrap();
        close(est["ttft_s"].as_f64().unwrap(), mean("ttft_s"), &case);
        close(est["tpot_s"].as_f64().unwrap(), mean("tpot_s"), &case);
        close(est["e2e_s"].as_f64().unwrap(), mean("e2e_s"), &case);
        let described = est["latency_model"].as_str().unwrap();
        assert!(described.starts_with(model), "{case}: {described}");
        let chunks = est["prefill_iterations"].as_u64().unwrap();
        let budget = est["engine"]["max_num_batched_tokens"].as_u64().unwrap();
        assert_eq!(
            chunks,
            input.parse::<u64>().unwrap().div_ceil(budget),
            "{case}: prefill chunks"
        );
    }
}

#[test]
fn a_batch_larger_than_the_kv_cache_is_preempted_and_completes() {
    let run = |blocks: &str| {
        json(&[
            "estimate",
            "--batch-size",
            "16",
            "--input-len",
            "512",
            "--output-len",
            "256",
            "--num-gpu-blocks-override",
            blocks,
            "--format",
            "json",
        ])
    };
    // Each request needs 48 blocks of 16 tokens: 100 blocks hold two at a time.
    let tight = run("100");
    let roomy = run("1000");
    assert!(tight["preemptions"].as_u64().unwrap() > 0);
    assert_eq!(roomy["preemptions"], 0);
    let e2e = |v: &serde_json::Value| v["e2e_s"].as_f64().unwrap();
    assert!(
        e2e(&tight) > e2e(&roomy),
        "{} vs {}",
        e2e(&tight),
        e2e(&roomy)
    );
}

#[test]
fn table_and_csv_carry_the_headline() {
    let args = [
        "estimate",
        "--hardware",
        "mi300x",
        "--batch-size",
        "2",
        "--input-len",
        "256",
        "--output-len",
        "8",
    ];
    let o = servesim_in(&root(), &args);
    ok(&o);
    let table = stdout(&o);
    for needle in [
        "TTFT ",
        "latency model: roofline",
        "bottleneck: ",
        "prefill op (1 iteration)",
        "decode op (mid-output step)",
    ] {
        assert!(table.contains(needle), "lacks `{needle}`:\n{table}");
    }
    let mut csv_args = args.to_vec();
    csv_args.extend(["--format", "csv"]);
    let o = servesim_in(&root(), &csv_args);
    ok(&o);
    let text = stdout(&o);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &header[..4],
        ["batch_size", "input_len", "output_len", "ttft_s"]
    );
    let est = json(&[&args[..], &["--format", "json"]].concat());
    let ttft = est["ttft_s"].as_f64().unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let phase = header.iter().position(|h| *h == "phase").unwrap();
    assert_eq!(phase, 15, "the 15 headline columns come first");
    assert!(
        rows.iter().any(|r| r[phase] == "prefill") && rows.iter().any(|r| r[phase] == "decode")
    );
    for r in &rows {
        assert_eq!(r.len(), header.len());
        assert!((r[3].parse::<f64>().unwrap() - ttft).abs() < 1e-9);
    }
}

/// Lists sweep: one headline row per combination (batch size slowest), each the
/// estimate of that point alone.
#[test]
fn lists_sweep_one_headline_row_per_combination() {
    let args = [
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100",
        "--input-len",
        "128,512,2048",
        "--output-len",
        "128,512",
        "--batch-size",
        "1,8,32",
        "--format",
        "csv",
    ];
    let o = servesim_in(&root(), &args);
    ok(&o);
    let text = stdout(&o);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for col in [
        "batch_size",
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "output_tokens_per_s",
        "total_tokens_per_s",
        "memory_per_gpu_gib",
        "fits",
        "bottleneck",
        "compute_utilization",
        "memory_bandwidth_utilization",
    ] {
        assert!(header.contains(&col), "no `{col}` in {header:?}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 18);
    let col =
        |r: &Vec<&str>, name: &str| r[header.iter().position(|h| *h == name).unwrap()].to_owned();
    assert_eq!(
        (
            col(&rows[0], "batch_size"),
            col(&rows[0], "input_len"),
            col(&rows[0], "output_len")
        ),
        ("1".into(), "128".into(), "128".into())
    );
    assert_eq!(
        (
            col(&rows[17], "batch_size"),
            col(&rows[17], "input_len"),
            col(&rows[17], "output_len")
        ),
        ("32".into(), "2048".into(), "512".into())
    );
    // A row is the estimate of its point alone.
    let single = json(&[
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100",
        "--batch-size",
        "8",
        "--input-len",
        "512",
        "--output-len",
        "128",
        "--format",
        "json",
    ]);
    let r = rows
        .iter()
        .find(|r| {
            col(r, "batch_size") == "8"
                && col(r, "input_len") == "512"
                && col(r, "output_len") == "128"
        })
        .unwrap();
    let ttft: f64 = col(r, "ttft_s").parse().unwrap();
    assert!((ttft - single["ttft_s"].as_f64().unwrap()).abs() < 1e-9);
    let mem: f64 = col(r, "memory_per_gpu_gib").parse().unwrap();
    assert!((mem - single["memory"]["total_gib"].as_f64().unwrap()).abs() < 1e-3);
    for r in &rows {
        let u: f64 = col(r, "memory_bandwidth_utilization").parse().unwrap();
        assert!(u > 0.0 && u < 1.0, "{r:?}");
        assert_eq!(col(r, "fits"), "true");
    }
}

/// A single point names what limits it and the change that helps most, with the
/// numbers it would give; a KV cache too small for the batch is the limit then.
#[test]
fn one_point_says_what_limits_it_and_what_helps_most() {
    let e = json(&[
        "estimate",
        "--batch-size",
        "8",
        "--input-len",
        "2048",
        "--output-len",
        "256",
        "--num-gpu-blocks-override",
        "600",
        "--format",
        "json",
    ]);
    let advice = &e["advice"];
    let limit = advice["limit"].as_str().unwrap();
    assert!(limit.starts_with("KV-cache capacity"), "{limit}");
    assert_eq!(e["memory"]["fits"], false);
    let options = advice["options"].as_array().unwrap();
    let changes: Vec<&str> = options
        .iter()
        .map(|o| o["change"].as_str().unwrap())
        .collect();
    assert!(
        changes.contains(&"larger-batch") && changes.contains(&"more-tensor-parallel"),
        "{changes:?}"
    );
    let best = &options[advice["best"].as_u64().unwrap() as usize];
    assert!(best["output_tokens_per_s_per_gpu"].as_f64().unwrap() > 0.0);
}

/// The README's `servesim estimate` examples are the command's real output.
#[test]
fn readme_examples_are_real_output() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut checked = 0;
    for block in readme.split("```text\n$ servesim estimate ").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        let (command, expected) = block.split_once('\n').unwrap();
        let mut args = vec!["estimate"];
        args.extend(command.split_whitespace());
        let o = servesim_in(&root(), &args);
        ok(&o);
        assert_eq!(stdout(&o), expected, "README: servesim estimate {command}");
        checked += 1;
    }
    assert_eq!(checked, 3, "README estimate examples");
}
