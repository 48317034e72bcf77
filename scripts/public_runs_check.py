#!/usr/bin/env python3
"""Replay the public serving runs of perf_model/measurements/serving-public-runs/ with
`servesim validate` and compare each run's mean TTFT, TPOT and E2E (and its output
throughput) with the measured ones.

Every folder has a `runs.csv` manifest: the file, and the model, GPU, TP / DP, serving
stack, engine version and flags its source states. The vLLM 0.8.3 runs of llm-k8s carry
no send times (Poisson arrivals are regenerated with seed 0); the SGLang runs are bursts
(all requests at t = 0, at most 100 in flight); the vLLM 0.15 runs of benchmaq replay
their recorded send times. Nothing here was used to fit any parameter.

Usage: scripts/public_runs_check.py [--servesim target/release/servesim] [--out DIR]
"""
import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "perf_model/measurements/serving-public-runs"
SETS = ["llm-k8s", "benchmaq-sglang", "benchmaq-vllm"]
METRICS = ["e2e", "tpot", "ttft"]


def signed_errors(validation):
    """Signed % error of the simulated mean against the measured mean, per metric."""
    out = {}
    for m in validation["metrics"]:
        if m["metric"] in METRICS and m["measured"]["count"] and m["simulated"]["count"]:
            meas, sim = m["measured"]["mean"], m["simulated"]["mean"]
            out[m["metric"]] = 100.0 * (sim - meas) / meas
    tput = validation.get("throughput") or {}
    if tput.get("error_pct") is not None:
        out["throughput"] = tput["error_pct"]
    return out


def replay(servesim, folder, row, out):
    # The run's path in its set, as one name (two sweeps may hold the same file name).
    name = str(Path(row["file"]).with_suffix("")).replace("/", "__")
    cmd = [
        servesim, "validate", str(folder / row["file"]),
        "--model", row["model"], "--hardware", row["hardware"],
        "--tensor-parallel-size", row["tensor_parallel"],
        "--data-parallel-size", row["data_parallel"],
        "--serving-stack", row["serving_stack"], "--engine-version", row["engine_version"],
        "--output-dir", str(out / name),
    ] + row["flags"].split()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return name, None, done.stderr.strip().splitlines()[-1:] or ["failed"]
    return name, signed_errors(json.loads((out / name / "validation.json").read_text())), []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(ROOT / "target/release/servesim"))
    ap.add_argument("--out", default=str(ROOT / "output/validation/public-runs"))
    args = ap.parse_args()
    out = Path(args.out)
    summary, failed = {}, 0
    for s in SETS:
        folder = DATA / s
        rows = list(csv.DictReader(open(folder / "runs.csv")))
        per_run = {}
        print(f"## {s} ({len(rows)} runs; signed % error of the simulated mean)")
        for row in rows:
            name, errs, why = replay(args.servesim, folder, row, out / s)
            if errs is None:
                failed += 1
                print(f"FAILED {name}: {' '.join(why)}")
                continue
            per_run[name] = errs
            cells = "  ".join(f"{k} {errs[k]:+6.1f}" for k in METRICS + ["throughput"] if k in errs)
            print(f"{name:90s} {cells}")
        med = {
            k: statistics.median(abs(e[k]) for e in per_run.values() if k in e)
            for k in METRICS + ["throughput"]
            if any(k in e for e in per_run.values())
        }
        signed = {
            k: statistics.median(e[k] for e in per_run.values() if k in e) for k in med
        }
        summary[s] = {"runs": len(per_run), "median_abs_pct": med, "median_signed_pct": signed,
                      "per_run": per_run}
        print("median |error| " + s + ": " + ", ".join(f"{k} {v:.1f} % (signed {signed[k]:+.1f})" for k, v in med.items()))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if failed:
        print(f"{failed} runs failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
