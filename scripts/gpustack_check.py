#!/usr/bin/env python3
"""Replay gpustack's vLLM baseline bursts (perf_model/measurements/serving-gpustack/runs.csv)
through `servesim simulate` and compare mean TTFT, mean TPOT and the run's duration.

Each random-dataset row becomes a burst: every request at t = 0 (vllm bench serve with no
--request-rate), each of the row's mean input and output length (totals / requests), on
the stack of its vLLM version (vllm-v1-sync before 0.14, vllm-v1 after).
Rows of models servesim does not ship, and the ShareGPT rows (their prompts are not
here), are skipped and listed. Nothing here was used to fit any parameter.

Usage: scripts/gpustack_check.py [--servesim target/release/servesim] [--out DIR]
"""
import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The published checkpoints' ids → the shipped config with the same layers.
MODELS = {
    "Qwen/Qwen3-8B": "Qwen/Qwen3-8B",
    "Qwen/Qwen3-14B": "Qwen/Qwen3-14B",
    "Qwen/Qwen3-32B": "Qwen/Qwen3-32B",
    "Qwen/Qwen3-235B-A22B": "Qwen/Qwen3-235B-A22B",
    "openai/gpt-oss-20b": "openai/gpt-oss-20b",
    "openai/gpt-oss-120b": "openai/gpt-oss-120b",
    "deepseek-ai/DeepSeek-R1-0528": "deepseek-ai/DeepSeek-R1",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(ROOT / "target/release/servesim"))
    ap.add_argument("--out", default=str(ROOT / "output/validation/gpustack"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(open(ROOT / "perf_model/measurements/serving-gpustack/runs.csv")))
    results, skipped, seen = [], [], set()
    for r in rows:
        key = (r["gpu"], r["model"], r["case"], r["duration_s"], r["mean_ttft_ms"])
        if key in seen:
            skipped.append(f"{r['page']} {r['case']}: duplicate of another page's block")
            continue
        seen.add(key)
        model = MODELS.get(r["model"])
        if model is None or not r["case"].startswith("random"):
            why = "model not shipped" if model is None else "ShareGPT prompts not available"
            skipped.append(f"{r['page']} {r['case']}: {why}")
            continue
        n = int(r["requests"])
        isl = round(int(r["total_input_tokens"]) / n)
        osl = max(1, round(int(r["total_generated_tokens"]) / n))
        name = f"{Path(r['page']).parent.name}_{r['gpu']}_{r['case'].replace(' ', '-')}"
        trace = out / f"{name}.csv"
        with open(trace, "w") as f:
            f.write("request_id,arrival_time_s,input_tokens,output_tokens\n")
            for i in range(n):
                f.write(f"{i},0,{isl},{osl}\n")
        run_dir = out / name
        # vLLM before 0.14 schedules synchronously (stacks/vllm-v1-sync.toml).
        major, minor = (int(x) for x in r["engine_version"].split(".")[:2])
        stack = "vllm-v1" if (major, minor) >= (0, 14) else "vllm-v1-sync"
        cmd = [args.servesim, "simulate", "--trace", str(trace), "--model", model,
               "--serving-stack", stack,
               "--hardware", r["gpu"], "--tensor-parallel-size", r["tensor_parallel_size"],
               "--max-model-len", str(isl + osl + 16), "--output-dir", str(run_dir)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            skipped.append(f"{name}: servesim failed: {p.stderr.strip().splitlines()[-1]}")
            continue
        s = json.load(open(run_dir / "summary.json"))
        sim = {"ttft": s["ttft_s"]["mean"] * 1e3, "tpot": s["tpot_s"]["mean"] * 1e3,
               "duration": s["duration_s"]}
        meas = {"ttft": float(r["mean_ttft_ms"]), "tpot": float(r["mean_tpot_ms"]),
                "duration": float(r["duration_s"])}
        err = {k: 100 * (sim[k] - meas[k]) / meas[k] for k in sim}
        results.append((name, r["engine_version"], r["tensor_parallel_size"], isl, osl, n,
                        meas, sim, err))
    print(f"{'run':58} {'vLLM':>7} {'TP':>2} {'ISL':>6} {'OSL':>4} {'n':>5}"
          f" {'TTFT ms meas/sim (err %)':>30} {'TPOT ms meas/sim (err %)':>27}"
          f" {'duration s meas/sim (err %)':>30}")
    for name, v, tp, isl, osl, n, m, s, e in results:
        print(f"{name:58} {v:>7} {tp:>2} {isl:>6} {osl:>4} {n:>5}"
              f" {m['ttft']:>10.0f}/{s['ttft']:<9.0f}({e['ttft']:+6.1f})"
              f" {m['tpot']:>8.1f}/{s['tpot']:<7.1f}({e['tpot']:+6.1f})"
              f" {m['duration']:>9.1f}/{s['duration']:<8.1f}({e['duration']:+6.1f})")
    if results:
        for k in ("ttft", "tpot", "duration"):
            med = statistics.median(abs(r[8][k]) for r in results)
            print(f"median |error| {k}: {med:.1f} % over {len(results)} runs")
    for s in skipped:
        print(f"skipped: {s}")
    json.dump([{"run": r[0], "measured": r[6], "simulated": r[7], "error_pct": r[8]}
               for r in results], open(out / "summary.json", "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
