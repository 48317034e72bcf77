//! Bad input gets a clear error naming the file, line and field, exit code 2, no panic.

use crate::util::*;

#[test]
fn malformed_trace_row_names_file_line_and_field() {
    let (dir, trace) = temp_file(
        "bad.csv",
        "arrival_time_s,input_tokens,output_tokens\n0.0,100,10\n0.5,abc,10\n",
    );
    let o = servesim_in(
        dir.path(),
        &[
            "simulate",
            "--trace",
            trace.to_str().unwrap(),
            "--no-output",
        ],
    );
    fails_with(&o, &["bad.csv:3", "input_tokens"]);
}

#[test]
fn unsorted_trace_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("unsorted.csv");
    std::fs::write(
        &trace,
        "arrival_time_s,input_tokens,output_tokens\n1.0,100,10\n0.5,100,10\n",
    )
    .unwrap();
    let o = servesim_in(
        dir.path(),
        &[
            "simulate",
            "--trace",
            trace.to_str().unwrap(),
            "--no-output",
        ],
    );
    fails_with(&o, &["unsorted.csv:3"]);
}

#[test]
fn unknown_model_suggests_close_names() {
    let (o, _d) = servesim(&["memory", "--model", "lama-3.1-8b", "--hardware", "h100"]);
    fails_with(&o, &["unknown model `lama-3.1-8b`", "Llama-3.1-8B"]);
}

#[test]
fn unknown_hardware_suggests_close_names() {
    let (o, _d) = servesim(&["memory", "--hardware", "h1000"]);
    fails_with(&o, &["unknown hardware `h1000`", "did you mean"]);
}

#[test]
fn model_that_does_not_fit_says_by_how_much() {
    let (o, _d) = servesim(&[
        "simulate",
        "--model",
        "llama-3.1-405b",
        "--hardware",
        "rtx4090",
        "--no-output",
    ]);
    fails_with(&o, &["does not fit", "GiB more per GPU"]);
    let (o, _d) = servesim(&[
        "memory",
        "--model",
        "llama-3.1-405b",
        "--hardware",
        "rtx4090",
    ]);
    fails_with(&o, &["does not fit"]);
}

#[test]
fn config_missing_a_field_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, r#"{"num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "intermediate_size": 64}"#).unwrap();
    let o = servesim_in(
        dir.path(),
        &[
            "memory",
            "--model",
            cfg.to_str().unwrap(),
            "--hardware",
            "h100",
        ],
    );
    fails_with(&o, &["config.json", "hidden_size"]);
}

#[test]
fn bad_run_config_key_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, "trace = \"x.csv\"\n\n[engine]\nmax-num-seqz = 3\n").unwrap();
    let o = servesim_in(dir.path(), &["simulate", "--config", cfg.to_str().unwrap()]);
    fails_with(&o, &["run.toml:4", "max-num-seqz"]);
}

#[test]
fn impossible_parallelism_is_explained() {
    let (o, _d) = servesim(&["estimate", "--model", "llama-3.1-8b", "-tp", "3"]);
    fails_with(
        &o,
        &["--tensor-parallel-size 3 does not divide the 32 attention heads"],
    );
}

#[test]
fn estimate_refuses_batches_it_cannot_run_naming_the_flag() {
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--batch-size", "0"], &["--batch-size", "at least 1"]),
        (&["--output-len", "0"], &["--output-len", "at least 1"]),
        (
            &["--input-len", "5000", "--max-model-len", "4096"],
            &["--max-model-len", "5128 tokens exceed --max-model-len 4096"],
        ),
        (
            &["--input-len", "4096", "--num-gpu-blocks-override", "100"],
            &["--input-len", "264 KV blocks", "holds 100"],
        ),
        (
            &["--batch-size", "4000000000"],
            &["--batch-size", "engine iterations"],
        ),
        (
            &[
                "--batch-size",
                "100000",
                "--output-len",
                "1",
                "--input-len",
                "2000",
            ],
            &["--batch-size", "tokens is more than"],
        ),
    ];
    for (args, needles) in cases {
        let (o, _d) = servesim(&[&["estimate"], args].concat());
        fails_with(&o, needles);
    }
}

#[test]
fn missing_trace_file_names_it() {
    let (o, _d) = servesim(&["simulate", "--trace", "no/such/trace.csv", "--no-output"]);
    fails_with(&o, &["no/such/trace.csv"]);
}

#[test]
fn interactive_refuses_without_a_terminal() {
    let (o, _d) = servesim(&["interactive"]);
    fails_with(&o, &["needs a terminal", "servesim estimate"]);
}

/// Engine and SLO flags out of range are refused naming the flag, never a panic.
#[test]
fn out_of_range_engine_and_slo_flags_name_the_flag() {
    let cases: [(&[&str], &[&str]); 6] = [
        (
            &["simulate", "--block-size", "0", "--no-output"],
            &["--block-size"],
        ),
        (
            &["memory", "--hardware", "h100", "--block-size", "0"],
            &["--block-size"],
        ),
        (
            &[
                "simulate",
                "--num-gpu-blocks-override",
                "4294967295",
                "--no-output",
            ],
            &["--num-gpu-blocks-override"],
        ),
        (
            &["estimate", "--num-gpu-blocks-override", "2000000000"],
            &["--num-gpu-blocks-override"],
        ),
        (
            &["simulate", "--slo-ttft-s=-1", "--no-output"],
            &["--slo-ttft-s", "above 0"],
        ),
        (
            &["simulate", "--slo-tpot-s", "-0.5", "--no-output"],
            &["--slo-tpot-s", "above 0"],
        ),
    ];
    for (args, needles) in cases {
        let (o, _d) = servesim(args);
        fails_with(&o, needles);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    }
}

/// A catalog-wide `memory` whose flags no device can take says why (and fails) instead
/// of printing an empty table.
#[test]
fn catalog_wide_memory_with_impossible_flags_names_them() {
    let cases: [(&[&str], &str); 4] = [
        (&["memory", "-tp", "0"], "--tensor-parallel-size"),
        (
            &["memory", "--gpu-memory-utilization", "0"],
            "--gpu-memory-utilization",
        ),
        (&["memory", "--max-model-len", "0"], "--max-model-len"),
        (
            &[
                "memory",
                "--concurrency",
                "2",
                "--seq-len",
                "100",
                "-tp",
                "0",
            ],
            "--tensor-parallel-size",
        ),
    ];
    for (args, flag) in cases {
        let (o, _d) = servesim(args);
        fails_with(&o, &[flag]);
    }
}

#[test]
fn duplicate_request_ids_name_the_line() {
    let (o, d) = servesim(&["--version"]);
    ok(&o);
    let trace = d.path().join("dup.csv");
    std::fs::write(
        &trace,
        "request_id,arrival_time_s,input_tokens,output_tokens\n7,0,10,5\n3,0.1,10,5\n7,0.2,10,5\n",
    )
    .unwrap();
    let o = servesim_in(d.path(), &["simulate", "--trace", "dup.csv", "--no-output"]);
    fails_with(
        &o,
        &[
            "dup.csv:4",
            "request_id",
            "request id 7 appears more than once",
        ],
    );
}

#[test]
fn validate_refuses_a_run_spanning_centuries_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("century.csv");
    std::fs::write(
        &run,
        "arrival_s,first_token_s,finish_s,input_tokens,output_tokens\n0,0.1,1.0,100,10\n5e10,5e10,5.0000001e10,100,10\n",
    )
    .unwrap();
    let o = servesim_in(
        dir.path(),
        &[
            "validate",
            run.to_str().unwrap(),
            "--model",
            "meta-llama/Llama-3.1-8B",
            "--hardware",
            "h100",
            "--output-dir",
            dir.path().join("out").to_str().unwrap(),
        ],
    );
    fails_with(
        &o,
        &["century.csv", "field `arrival`", "request 1", "1584 years"],
    );
}

#[test]
fn config_paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("configs");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("t.csv"),
        "arrival_time_s,input_tokens,output_tokens\n0.0,100,10\n0.5,50,5\n",
    )
    .unwrap();
    std::fs::write(
        sub.join("run.toml"),
        "trace = \"t.csv\"\n\n[deployment]\nmodel = \"meta-llama/Llama-3.1-8B\"\nhardware = \"h100\"\n",
    )
    .unwrap();
    // Run from the folder above: the trace is found next to the config, not here.
    let o = servesim_in(
        dir.path(),
        &[
            "simulate",
            "--config",
            "configs/run.toml",
            "--no-output",
            "--format",
            "json",
        ],
    );
    ok(&o);
    assert!(stdout(&o).contains("\"completed\": 2"), "{}", stdout(&o));
    // A sweep whose trace is not beside it names the config, the key and the rule.
    std::fs::write(
        sub.join("sweep.toml"),
        "name = \"s\"\nmodel = \"meta-llama/Llama-3.1-8B\"\n[grid]\nhardware = [\"h100\"]\n[workload]\ntrace = \"missing.csv\"\n",
    )
    .unwrap();
    let o = servesim_in(
        dir.path(),
        &[
            "sweep",
            "--config",
            "configs/sweep.toml",
            "--output-dir",
            "out",
        ],
    );
    fails_with(
        &o,
        &[
            "sweep.toml",
            "workload.trace",
            "relative to the config's folder",
        ],
    );
}

#[test]
fn negative_and_zero_counts_reach_the_range_checks_naming_the_flag() {
    let (o, _d) = servesim(&["simulate", "--rate-scale", "-1", "--no-output"]);
    fails_with(&o, &["rate_scale", "positive", "-1"]);
    let (o, _d) = servesim(&["simulate", "--num-replicas", "0", "--no-output"]);
    fails_with(&o, &["--num-replicas", "0"]);
}

#[test]
fn a_missing_file_is_named_once_with_the_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let o = servesim_in(dir.path(), &["validate", "no-such-run.json"]);
    fails_with(&o, &["no-such-run.json"]);
    let err = stderr(&o);
    assert_eq!(err.matches("no-such-run.json").count(), 1, "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}
