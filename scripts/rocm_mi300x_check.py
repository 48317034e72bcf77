#!/usr/bin/env python3
"""Score servesim on AMD's published vLLM latency tables for 8 × MI300X
(perf_model/measurements/serving-rocm-vllm-mi300x/latency.csv): each row is one
`benchmark_latency.py` static batch (batch_size identical requests, input_len in,
output_len out), replayed with `servesim estimate` and compared on the batch's latency.

Each row runs on the stack of its engine: V0 images (vLLM 0.6.6 – 0.9.0.1) on `vllm-0.6`
(V0 engine, asynchronous output processing), V1 images (0.9.1) on `vllm-v1-sync` (V1
before asynchronous scheduling became the default). FP8 weights and activations; the V0
commands pass --kv-cache-dtype fp8, the V1 command does not (16-bit KV cache). Nothing
here was used to fit any parameter: every figure is out of sample.

Usage: scripts/rocm_mi300x_check.py [--servesim target/release/servesim] [--out DIR]
Prints one line per image and model (median signed error at each batch size) and the
median |error| per image and overall; writes DIR/comparison.csv and DIR/summary.json.
"""
import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "perf_model/measurements/serving-rocm-vllm-mi300x/latency.csv"
# AMD's Quark FP8 checkpoints → the shipped config with the same layers.
MODELS = {
    "amd/Llama-3.1-70B-Instruct-FP8-KV": "meta-llama/Llama-3.1-70B",
    "amd/Llama-3.1-405B-Instruct-FP8-KV": "meta-llama/Llama-3.1-405B",
}
STACK = {"V0": "vllm-0.6", "V1": "vllm-v1-sync"}
KV = {"V0": "fp8", "V1": "auto"}


def estimate(servesim, r):
    n_in, n_out = int(r["input_len"]), int(r["output_len"])
    cmd = [
        servesim, "estimate", "--model", MODELS[r["model"]], "--hardware", "mi300x",
        "--tensor-parallel-size", r["tp"], "--quantization", "fp8",
        "--kv-cache-dtype", KV[r["engine"]], "--serving-stack", STACK[r["engine"]],
        "--batch-size", r["batch_size"], "--input-len", str(n_in),
        "--output-len", str(n_out), "--max-model-len", str(n_in + n_out),
        "--format", "json",
        # benchmark_latency runs the engine as a library (vLLM's LLM class): its batch
        # defaults, where the stack has them (V1), not the server's.
        "--offline",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    return json.loads(p.stdout)["e2e_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(ROOT / "target/release/servesim"))
    ap.add_argument("--out", default=str(ROOT / "output/validation/rocm-mi300x"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(open(DATA)))
    for r in rows:
        r["simulated_s"] = estimate(args.servesim, r)
        r["error_pct"] = 100.0 * (r["simulated_s"] / float(r["latency_s"]) - 1.0)
    with open(out / "comparison.csv", "w", newline="") as f:
        keys = ["readme_commit", "vllm_version", "engine", "model", "batch_size",
                "input_len", "output_len", "latency_s", "simulated_s", "error_pct"]
        w = csv.DictWriter(f, keys, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "simulated_s": f"{r['simulated_s']:.3f}",
                        "error_pct": f"{r['error_pct']:.2f}"})
    images = {}
    for r in rows:
        images.setdefault((r["readme_commit"], r["vllm_version"], r["engine"]), []).append(r)
    medians = []
    for (commit, version, eng), rs in images.items():
        m = statistics.median(abs(r["error_pct"]) for r in rs)
        medians.append(m)
        print(f"vLLM {version} ({eng}, README {commit}, stack {STACK[eng]}): "
              f"median |error| {m:.1f} % over {len(rs)} batches")
        for model in sorted({r["model"] for r in rs}):
            by_b = {}
            for r in rs:
                if r["model"] == model:
                    by_b.setdefault(int(r["batch_size"]), []).append(r["error_pct"])
            cells = " ".join(f"b{b}:{statistics.median(v):+.0f}" for b, v in sorted(by_b.items()))
            print(f"    {model.split('/')[1]}: {cells}")
    all_abs = [abs(r["error_pct"]) for r in rows]
    print(f"median |error| of the batch latency: {statistics.median(all_abs):.1f} % over "
          f"{len(rows)} batches; median over images {statistics.median(medians):.1f} %")
    summary = {
        "images": [
            {"readme_commit": c, "vllm_version": v, "engine": e, "stack": STACK[e],
             "batches": len(rs), "median_abs_error_pct": round(m, 2)}
            for ((c, v, e), rs), m in zip(images.items(), medians)
        ],
        "median_abs_error_pct_over_images": round(statistics.median(medians), 2),
        "median_abs_error_pct_over_batches": round(statistics.median(all_abs), 2),
    }
    with open(out / "summary.json", "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
