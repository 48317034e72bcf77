#!/usr/bin/env python3
"""Replay TensorRT-LLM 0.14's online-serving table (Triton's TensorRT-LLM backend;
perf_model/measurements/serving-trtllm-overview/triton_online_0.14.csv) through `servesim simulate`
and compare mean TTFT and mean inter-token latency.

Each row becomes 500 requests of exactly its ISL and OSL arriving as a Poisson process at
its request rate (exponential gaps from a fixed seed; `INF`: all at t = 0), on the
`trtllm-engine` stack (TensorRT engines driven by the C++ executor, 0.10 - 0.18) with
the stack's engine limits and bf16 weights and KV cache. A request's mean ITL is its
TPOT: the table's mean ITL over every gap is the token-weighted mean TPOT, which for
requests of one length is the plain mean. Nothing here was used to fit any parameter.

Usage: scripts/trtllm_triton_check.py [--servesim target/release/servesim] [--out DIR]
"""
import argparse
import csv
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "perf_model/measurements/serving-trtllm-overview/triton_online_0.14.csv"
# The table's names -> the shipped config and hardware file (base and Instruct share
# their shapes; "H200 131GB HBM3" is how the page names the H200 SXM).
MODELS = {"LLaMA 3.1 8B": "meta-llama/Llama-3.1-8B", "LLaMA 3.1 70B": "meta-llama/Llama-3.1-70B"}
GPUS = {"H100 80GB HBM3": "H100-SXM5-80GB", "H200 131GB HBM3": "H200-SXM-141GB"}
REQUESTS = 500
SEED = 0
STACK = "trtllm-engine"


def arrivals(rate, n, seed):
    """Arrival times of n requests: a Poisson process at `rate` per second, or all at 0."""
    if rate == "INF":
        return [0.0] * n
    rng, t, out = random.Random(seed), 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(float(rate))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(ROOT / "target/release/servesim"))
    ap.add_argument("--out", default=str(ROOT / "output/validation/trtllm-triton"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for r in csv.DictReader(open(TABLE)):
        isl, osl, rate = int(r["isl"]), int(r["osl"]), r["request_rate"]
        name = (f"{r['model'].replace(' ', '-').lower()}_{GPUS[r['gpu']].lower()}_tp{r['tp']}"
                f"_{isl}-{osl}_qps-{rate.lower()}")
        trace = out / f"{name}.csv"
        with open(trace, "w") as f:
            f.write("request_id,arrival_time_s,input_tokens,output_tokens\n")
            for i, t in enumerate(arrivals(rate, REQUESTS, SEED)):
                f.write(f"{i},{t:.6f},{isl},{osl}\n")
        run_dir = out / name
        cmd = [args.servesim, "simulate", "--trace", str(trace), "--model", MODELS[r["model"]],
               "--hardware", GPUS[r["gpu"]], "--tensor-parallel-size", r["tp"],
               "--serving-stack", STACK, "--dtype", "bfloat16", "--kv-cache-dtype", "auto",
               "--max-model-len", str(isl + osl), "--output-dir", str(run_dir)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            print(f"FAILED: {name}: {p.stderr.strip().splitlines()[-1]}")
            continue
        s = json.load(open(run_dir / "summary.json"))
        sim = {"ttft": s["ttft_s"]["mean"] * 1e3, "itl": s["tpot_s"]["mean"] * 1e3}
        meas = {"ttft": float(r["mean_ttft_ms"]), "itl": float(r["mean_itl_ms"])}
        err = {k: 100 * (sim[k] - meas[k]) / meas[k] for k in sim}
        results.append((name, meas, sim, err))
    print(f"{'run':52} {'TTFT ms meas/sim (err %)':>28} {'ITL ms meas/sim (err %)':>26}")
    for name, m, s, e in results:
        print(f"{name:52} {m['ttft']:>8.0f}/{s['ttft']:<8.0f}({e['ttft']:+7.1f})"
              f" {m['itl']:>7.0f}/{s['itl']:<7.1f}({e['itl']:+7.1f})")
    for k in ("ttft", "itl"):
        errs = [abs(r[3][k]) for r in results]
        print(f"median |error| {k}: {statistics.median(errs):.1f} % over {len(errs)} rows")
    json.dump([{"run": r[0], "measured": r[1], "simulated": r[2], "error_pct": r[3]}
               for r in results], open(out / "summary.json", "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
