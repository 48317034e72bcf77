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
    assert!(rows.iter().any(|r| r[8] == "prefill") && rows.iter().any(|r| r[8] == "decode"));
    for r in &rows {
        assert_eq!(r.len(), header.len());
        assert!((r[3].parse::<f64>().unwrap() - ttft).abs() < 1e-9);
    }
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
    assert_eq!(checked, 2, "README estimate examples");
}
