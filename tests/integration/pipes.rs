//! A closed stdout (`servesim ... | head -1`) ends every output path quietly with
//! status 0: aligned tables and JSON printed whole, CSV writers, streamed traces.

use crate::util::root;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Run `servesim args`, read its first line of stdout and close the pipe: the command
/// must exit 0 and say nothing on stderr. Each output is larger than a pipe's buffer,
/// so the command is still writing when the reader goes.
fn closes_quietly(args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_servesim"))
        .args(args)
        .arg("--data-dir")
        .arg(root())
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run servesim");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty(), "{args:?} printed nothing");
    // The reader is dropped here: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {:?}\n{stderr}", out.status);
    assert!(stderr.is_empty(), "{args:?} wrote to stderr:\n{stderr}");
}

#[test]
fn a_long_table_json_and_csv_end_quietly() {
    for format in ["table", "json", "csv"] {
        closes_quietly(&[
            "memory",
            "--model",
            "llama-3.1-8b",
            "--catalog",
            "all",
            "--format",
            format,
        ]);
    }
}

#[test]
fn an_estimate_sweep_ends_quietly() {
    // 1,024 points: over 100 kB in every format.
    for format in ["table", "json", "csv"] {
        closes_quietly(&[
            "estimate",
            "--batch-size",
            "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
            "--input-len",
            "8,16,32,64,128,256,512,1024",
            "--output-len",
            "2,3,4,5,6,7,8,9",
            "--format",
            format,
        ]);
    }
}

#[test]
fn a_streamed_trace_ends_quietly() {
    closes_quietly(&[
        "trace",
        "gen",
        "--arrival",
        "poisson",
        "--rate-rps",
        "10",
        "--num-requests",
        "1000000",
        "--input-len",
        "100",
        "--output-len",
        "100",
    ]);
}
