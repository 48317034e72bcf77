#!/usr/bin/env python3
"""Replay the public serving runs of perf_model/measurements/serving-public-runs/ with
`servesim validate` and compare each run's mean TTFT, TPOT and E2E (and its output
throughput) with the measured ones.

Every folder has a `runs.csv` manifest: the file, and the model, GPU, TP / DP, serving
stack, engine version and flags its source states. The vLLM 0.8.3 runs of llm-k8s carry
no send times (Poisson arrivals are regenerated with seed 0); the SGLang runs are bursts
(all requests at t = 0, at most 100 in flight); the vLLM 0.15 runs of benchmaq replay
their recorded send times. The sweeps that ran every prompt length on one server with
prompts shared by index (SWEEP_SETS) replay each later point after the earlier ones
(`servesim validate --after`), so the prefix cache is as the measured point found it;
the figure of each such run replayed alone is printed beside it. Nothing here was used
to fit any parameter.

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
SETS = ["llm-k8s", "benchmaq-sglang", "benchmaq-vllm", "benchmaxxing-vllm", "benchmaxxing-sglang"]
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


def group_of(set_name, row):
    """The group a run's errors are summarised in: its layout, and its client count
    (vLLM 0.15), request rate (llm-k8s) or whether it is its sweep's cold first point
    (SGLang, 1,024 tokens in)."""
    f = row["file"].lower()
    if set_name.startswith("benchmaxxing"):
        # One server per layout ran the prompt lengths in turn: the first (1,024) found
        # it fresh, the later ones after the earlier points' prompts.
        first = "_ctx1024_" in f or "_in1024_" in f
        gpu, model = row["file"].split("/")[:2]
        return (f"{gpu.split('-')[0]} {model} TP{row['tensor_parallel']}xDP{row['data_parallel']} "
                f"{'first point' if first else 'later points'}")
    layout = f"TP{row['tensor_parallel']}"
    if "pp2" in f:
        layout += "xPP2"
    if row["data_parallel"] != "1":
        layout += f"xDP{row['data_parallel']}"
    if set_name == "benchmaq-vllm":
        return f"{layout} c{f.split('_c')[-1].split('_')[0]}"
    if set_name == "benchmaq-sglang":
        return f"{layout} {'cold first point' if '_in1024_' in f else 'in >= 2048'}"
    return f"{layout} qps {f.split('qps_')[-1].split('.')[0]}"


def waves(folder, row, out_dir, name):
    """Closed-loop waves of a run with send times (`start_times`): requests sent within
    30 ms of the previous one form a wave. Returns (waves, median size, median measured
    TTFT of each wave's first request, the simulated TTFT of the same requests), ms."""
    run = json.loads((folder / row["file"]).read_text())
    starts = run.get("start_times")
    if not starts or run.get("max_concurrency") is None:
        return None
    order = sorted(range(len(starts)), key=lambda i: starts[i])
    groups, cur = [], [order[0]]
    for a, b in zip(order, order[1:]):
        if starts[b] - starts[a] > 0.030:
            groups.append(cur)
            cur = []
        cur.append(b)
    groups.append(cur)
    sim = {}
    with open(out_dir / name / "comparison.csv") as f:
        for r in csv.DictReader(f):
            sim[int(r["request_id"])] = float(r["simulated_ttft_s"])
    firsts = [g[0] for g in groups]
    ttft = run["ttfts"]
    return (len(groups), statistics.median(len(g) for g in groups),
            1e3 * statistics.median(ttft[i] for i in firsts),
            1e3 * statistics.median(sim[i] for i in firsts if i in sim))


# Sets whose sweeps ran every point on one server with prompts shared by index: the
# prompt lengths in ascending order (vLLM `bench serve --dataset-name random`, SGLang
# `bench_serving`), or one ShareGPT sample at rising request rates (llm-k8s). A later
# point is replayed after the earlier ones (`--after`).
SWEEP_SETS = {"llm-k8s", "benchmaq-sglang", "benchmaxxing-vllm", "benchmaxxing-sglang"}


def point_order(row):
    """Where a run stands in its sweep: its request rate (llm-k8s), else its prompt length."""
    f = row["file"]
    if "_qps_" in f:
        rate = f.split("_qps_")[1].split(".")[0]
        return float("inf") if rate == "inf" else float(rate)
    tag = "_CTX" if "_CTX" in f else "_in"
    return int(f.split(tag)[1].split("_")[0])


def earlier_points(rows, row):
    """The runs of `row`'s server (same folder and layout) that ran before it."""
    key = (str(Path(row["file"]).parent), row["tensor_parallel"], row["data_parallel"])
    same = [r for r in rows
            if (str(Path(r["file"]).parent), r["tensor_parallel"], r["data_parallel"]) == key]
    return sorted((r for r in same if point_order(r) < point_order(row)), key=point_order)


def replay(servesim, folder, row, out, after=(), suffix=""):
    # The run's path in its set, as one name (two sweeps may hold the same file name).
    name = str(Path(row["file"]).with_suffix("")).replace("/", "__") + suffix
    cmd = [
        servesim, "validate", str(folder / row["file"]),
        "--model", row["model"], "--hardware", row["hardware"],
        "--tensor-parallel-size", row["tensor_parallel"],
        "--data-parallel-size", row["data_parallel"],
        "--serving-stack", row["serving_stack"], "--engine-version", row["engine_version"],
        "--output-dir", str(out / name),
    ] + row["flags"].split()
    for r in after:
        cmd += ["--after", str(folder / r["file"])]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return name, None, done.stderr.strip().splitlines()[-1:] or ["failed"]
    return name, signed_errors(json.loads((out / name / "validation.json").read_text())), []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(ROOT / "target/release/servesim"))
    ap.add_argument("--out", default=str(ROOT / "output/validation/public-runs"))
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated folders to replay")
    args = ap.parse_args()
    out = Path(args.out)
    summary, failed = {}, 0
    for s in args.sets.split(","):
        folder = DATA / s
        rows = list(csv.DictReader(open(folder / "runs.csv")))
        per_run, groups, wave_lines = {}, {}, []
        print(f"## {s} ({len(rows)} runs; signed % error of the simulated mean)")
        cold_errs = {}
        for row in rows:
            name, errs, why = replay(args.servesim, folder, row, out / s)
            earlier = earlier_points(rows, row) if s in SWEEP_SETS else []
            if errs is not None and earlier:
                cold_errs[name] = errs
                _, errs, why = replay(args.servesim, folder, row, out / s, earlier, "__after")
            if errs is None:
                failed += 1
                print(f"FAILED {name}: {' '.join(why)}")
                continue
            per_run[name] = errs
            groups.setdefault(group_of(s, row), []).append(errs)
            w = waves(folder, row, out / s, name)
            if w and row["file"].split("/")[0] == "Qwen3-8B" and "_in1024_" in row["file"]:
                wave_lines.append(
                    f"  {name:75s} {w[0]:4d} waves of {w[1]:5.1f}; first request's TTFT "
                    f"{w[2]:6.1f} ms measured, {w[3]:6.1f} simulated")
            cells = "  ".join(f"{k} {errs[k]:+6.1f}" for k in METRICS + ["throughput"] if k in errs)
            if name in cold_errs:
                cells += f"  (alone: e2e {cold_errs[name]['e2e']:+6.1f})"
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
        if cold_errs:
            alone = {**per_run, **cold_errs}
            print(f"median |error| {s}, every run replayed alone (later points on a cold cache): "
                  + ", ".join(f"{k} {statistics.median(abs(e[k]) for e in alone.values() if k in e):.1f} %"
                              for k in METRICS))
        print(f"by group, median signed % ({s}):")
        for g, errs in sorted(groups.items()):
            cells = "  ".join(
                f"{k} {statistics.median(e[k] for e in errs if k in e):+6.1f}"
                for k in METRICS if any(k in e for e in errs))
            print(f"  {g:44s} {len(errs):3d} runs  {cells}")
        if wave_lines:
            print(f"closed-loop waves (sends within 30 ms of each other), Qwen3-8B at 1,024 tokens in ({s}):")
            print("\n".join(wave_lines))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if failed:
        print(f"{failed} runs failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
