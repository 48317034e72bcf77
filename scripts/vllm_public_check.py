#!/usr/bin/env python3
"""Replay vLLM results (V0 and V1 engines) quoted in public GitHub threads
(perf_model/measurements/vllm-public/) through servesim and compare. No shipped constant
was fitted on them: every figure is out of sample. (The tuned-kernel Mixtral rows fit
`vllm-0.5`'s prior host time, which only a replay with Argonne left out takes:
scripts/fit_v0_offline_prior.py.)

* latency.csv: `benchmark_latency` / `vllm bench latency` (one static batch through the
  `LLM` class): replayed with `servesim estimate --offline` on the row's batch, lengths,
  model, GPU and TP; compared on the average batch latency.
* serving.csv: `benchmark_serving` / `vllm bench serve` with the random dataset (fixed
  lengths): the requests regenerated (all at t = 0 without a rate, Poisson arrivals with
  seed 0 at a rate, a closed loop with --max-concurrency) and replayed with `servesim
  simulate`; compared on mean TTFT, mean TPOT and output throughput.

Each row runs on the stack of its vLLM version (`stack_args`) with `--engine-version`.
Rows whose model is not shipped, or that servesim refuses, are listed as skipped. Where a
serving row gives the server's KV block count, the replay uses it and servesim's own
memory plan is printed beside it.

Usage: scripts/vllm_public_check.py [--servesim target/release/servesim] [--out DIR]
       [--data perf_model/measurements/vllm-public]
"""
import argparse
import csv
import functools
import json
import random
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "perf_model/measurements/vllm-public"

# Flags a row may carry that servesim takes as they are (the engine's own names).
PASSED_FLAGS = {
    "--enforce-eager", "--max-num-seqs", "--max-num-batched-tokens", "--max-model-len",
    "--enable-prefix-caching", "--no-enable-prefix-caching", "--enable-chunked-prefill",
    "--async-scheduling", "--kv-cache-dtype", "--gpu-memory-utilization", "--quantization",
    "--block-size", "--disable-custom-all-reduce", "--num-scheduler-steps",
}


def shipped_models():
    out = {}
    for p in (ROOT / "model_configs").rglob("*.json"):
        rel = p.relative_to(ROOT / "model_configs")
        name = str(rel.parent) if rel.name == "config.json" else str(rel.with_suffix(""))
        out[name.lower()] = name
    return out


def resolve_model(name, shipped):
    """The shipped config standing for `name` and a note when it is another checkpoint
    of the same architecture (an instruct or FP8 variant)."""
    n = name.strip()
    if n.lower() in shipped:
        return shipped[n.lower()], ""
    org, _, base = n.partition("/")
    tries = [base, re.sub(r"^Meta-Llama-3\.1", "Llama-3.1", base),
             re.sub(r"^Meta-Llama-3\.1", "Llama-3.1", re.sub(r"-Instruct$", "", base))]
    for t in list(tries):
        tries.append(re.sub(r"-(Instruct|Chat|it)(-\d+)?$", "", t))
        tries.append(t.replace("-Instruct", ""))
        tries.append(re.sub(r"-FP8(-Dynamic)?$", "", t))
    for t in tries:
        for o in (org, "meta-llama", "Qwen"):
            key = f"{o}/{t}".lower()
            if key in shipped:
                return shipped[key], f"{n} replayed on {shipped[key]}'s config (same layers)"
    return None, ""


def version_tuple(v):
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", v or "")
    return tuple(int(x or 0) for x in m.groups()) if m else None


def stack_args(row):
    """`--serving-stack` and `--engine-version` for a row's vLLM version: `vllm-0.5`
    before 0.6, `vllm-0.6` for 0.6 and 0.7 (V0), `vllm-v1-sync` from 0.8 to 0.13 (V1 with
    synchronous scheduling unless the row says --async-scheduling), `vllm-v1` from
    0.14."""
    v = version_tuple(row["vllm_version"])
    flags = row.get("extra_flags", "")
    if v is None:
        return ["--serving-stack", "vllm-v1"], "version unknown: vllm-v1"
    if v[:2] < (0, 6):
        stack = "vllm-0.5"
    elif v[:2] < (0, 8) or "VLLM_USE_V1=0" in flags:
        stack = "vllm-0.6"
    elif v[:2] < (0, 14):
        stack = "vllm-v1" if "--async-scheduling" in flags else "vllm-v1-sync"
    else:
        stack = "vllm-v1"
    return (["--serving-stack", stack, "--engine-version", ".".join(map(str, v))],
            f"{stack} at {'.'.join(map(str, v))}")


def engine_flags(row):
    out = []
    toks = shlex.split(row.get("extra_flags", "") or "")
    i = 0
    while i < len(toks):
        t = toks[i]
        key, _, val = t.partition("=")
        if key in PASSED_FLAGS:
            if key == "--no-enable-prefix-caching":
                out += ["--enable-prefix-caching", "false"]
            elif key in ("--enforce-eager", "--async-scheduling", "--disable-custom-all-reduce",
                         "--enable-prefix-caching", "--enable-chunked-prefill"):
                out += [key, "true"]
            elif val:
                out += [key, val]
            elif i + 1 < len(toks):
                out += [key, toks[i + 1]]
                i += 1
        i += 1
    return out


def deployment_args(row, model):
    args = ["--model", model, "--hardware", row["gpu"],
            "--tensor-parallel-size", row["tp"] or "1"]
    if row["dtype"].lower().startswith("fp8"):
        args += ["--quantization", "fp8"]
    for col, flag in (("gpu_memory_utilization", "--gpu-memory-utilization"),
                      ("max_model_len", "--max-model-len")):
        if (row.get(col) or "").strip():
            args += [flag, row[col].strip()]
    return args


def served_output_len(row):
    """Output tokens per request: the run's mean where it printed the total generated
    (runs without --ignore-eos stop some requests early), else the requested length."""
    gen, ok = (row.get("generated_tokens") or "").strip(), (row.get("successful_requests") or "").strip()
    if gen and ok and int(ok) > 0:
        return max(1, round(int(gen) / int(ok)))
    return int(row["output_len"])


def planned_blocks(row, model, exe):
    """servesim's own KV-cache plan (blocks) for the row's deployment."""
    args, _ = stack_args(row)
    cmd = [exe, "estimate", "--format", "json", *deployment_args(row, model), *args,
           *engine_flags(row), "--batch-size", "1", "--input-len", "16", "--output-len", "1"]
    if "--max-model-len" not in cmd:
        cmd += ["--max-model-len", str(int(row["input_len"]) + int(row["output_len"]) + 16)]
    return planned_blocks_of(tuple(cmd))


@functools.lru_cache(maxsize=None)
def planned_blocks_of(cmd):
    """The plan of one `estimate` command line (rows of one server share it)."""
    p = subprocess.run(list(cmd), capture_output=True, text=True)
    return json.loads(p.stdout)["engine"]["num_gpu_blocks"] if p.returncode == 0 else None


def pct(sim, meas):
    return 100.0 * (sim - meas) / meas if meas else float("nan")


def run_latency(row, model, exe):
    args, stack_note = stack_args(row)
    cmd = [exe, "estimate", "--format", "json", "--offline", "true",
           *deployment_args(row, model), *args, *engine_flags(row),
           "--batch-size", row["batch_size"], "--input-len", row["input_len"],
           "--output-len", row["output_len"]]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["?"])[-1]
    e2e = json.loads(p.stdout)["e2e_s"]
    meas = float(row["avg_latency_s"])
    return {"stack": stack_note, "measured_s": meas, "simulated_s": e2e,
            "error_pct": pct(e2e, meas)}, None


def trace_rows(row, seed=0):
    n = int(row["num_prompts"])
    isl, osl = int(row["input_len"]), served_output_len(row)
    rate = (row.get("request_rate") or "inf").strip().lower()
    rng = random.Random(seed)
    t, out = 0.0, []
    for i in range(n):
        if rate not in ("inf", "", "none"):
            t += rng.expovariate(float(rate))
        out.append((i, t, isl, osl))
    return out


def run_serving(row, model, exe, out_dir, name):
    args, stack_note = stack_args(row)
    trace = out_dir / f"{name}.csv"
    with open(trace, "w") as f:
        f.write("request_id,arrival_time_s,input_tokens,output_tokens\n")
        for i, t, isl, osl in trace_rows(row):
            f.write(f"{i},{t:.6f},{isl},{osl}\n")
    cmd = [exe, "simulate", "--trace", str(trace), *deployment_args(row, model), *args,
           *engine_flags(row), "--output-dir", str(out_dir / name)]
    if (row.get("max_concurrency") or "").strip():
        cmd += ["--concurrency", row["max_concurrency"]]
    if (row.get("num_gpu_blocks") or "").strip():
        # The run's own KV cache, as its server log reported it.
        cmd += ["--num-gpu-blocks-override", row["num_gpu_blocks"].strip()]
    if "--max-model-len" not in cmd:
        cmd += ["--max-model-len", str(int(row["input_len"]) + int(row["output_len"]) + 16)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["?"])[-1]
    s = json.load(open(out_dir / name / "summary.json"))
    sim = {"ttft_ms": s["ttft_s"]["mean"] * 1e3, "tpot_ms": s["tpot_s"]["mean"] * 1e3,
           "output_tok_s": s.get("output_tokens_per_s")}
    meas = {"ttft_ms": row["mean_ttft_ms"], "tpot_ms": row["mean_tpot_ms"],
            "output_tok_s": row["output_tok_throughput"]}
    res = {"stack": stack_note}
    if (row.get("num_gpu_blocks") or "").strip():
        res["kv_blocks"] = {"measured": int(row["num_gpu_blocks"]),
                            "planned": planned_blocks(row, model, exe)}
    for k in sim:
        m = float(meas[k]) if (meas[k] or "").strip() else None
        if m is None or sim[k] is None:
            continue
        res[k] = {"measured": m, "simulated": sim[k], "error_pct": pct(sim[k], m)}
    return res, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(ROOT / "target/release/servesim"))
    ap.add_argument("--out", default=str(ROOT / "output/validation/vllm-public"))
    ap.add_argument("--data", default=str(DATA), help="folder of latency.csv and serving.csv")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shipped = shipped_models()
    results, skipped = {"latency": [], "serving": []}, []
    for kind, fname in (("latency", "latency.csv"), ("serving", "serving.csv")):
        path = Path(args.data) / fname
        if not path.exists():
            continue
        for line, row in enumerate(csv.DictReader(open(path)), start=2):
            where = f"{fname}:{line} {row['source']}"
            model, note = resolve_model(row["model"], shipped)
            if model is None:
                skipped.append(f"{where}: model {row['model']} not shipped")
                continue
            if kind == "latency":
                res, err = run_latency(row, model, args.servesim)
            else:
                res, err = run_serving(row, model, args.servesim, out, f"serving_{line}")
            if err:
                skipped.append(f"{where}: servesim refused: {err}")
                continue
            res.update({"line": line, "source": row["source"], "model": model,
                        "gpu": row["gpu"], "tp": row["tp"], "variant": row["variant"],
                        "version": row["vllm_version"], "note": note})
            results[kind].append(res)
    report(results, skipped)
    json.dump({"results": results, "skipped": skipped}, open(out / "summary.json", "w"),
              indent=1)


def report(results, skipped):
    report_latency(results["latency"])
    report_serving(results["serving"])
    report_kv(results["serving"])
    for s in skipped:
        print(f"skipped: {s}")


def report_latency(lat):
    if not lat:
        return
    print(f"{'latency row':>11} {'model':32} {'gpu':15} {'tp':>2} {'stack':22}"
          f" {'meas s':>8} {'sim s':>8} {'err %':>7}")
    for r in lat:
        print(f"{r['line']:>11} {r['model'][:32]:32} {r['gpu'][:15]:15} {r['tp']:>2}"
              f" {r['stack'][:22]:22} {r['measured_s']:8.3f} {r['simulated_s']:8.3f}"
              f" {r['error_pct']:+7.1f}")
    groups = {}
    for r in lat:
        groups.setdefault((r["source"], r["variant"]), []).append(r["error_pct"])
    for (source, variant), errs in groups.items():
        print(f"by source: #{source.rsplit('/', 1)[-1]:>6} {variant[:58]:58}"
              f" median |error| {statistics.median(map(abs, errs)):5.1f} %"
              f" (signed {statistics.median(errs):+6.1f} %), {len(errs)} rows")
    errs = [r["error_pct"] for r in lat]
    print(f"median |error| batch latency: {statistics.median(map(abs, errs)):.1f} %"
          f" (median signed {statistics.median(errs):+.1f} %) over {len(errs)} rows")


METRICS = (("ttft_ms", "mean TTFT"), ("tpot_ms", "mean TPOT"),
           ("output_tok_s", "output throughput"))


def source_name(source):
    if "/pull/" in source or "/issues/" in source:
        return "#" + source.rsplit("/", 1)[-1]
    return source.split("/")[3] if "github.com" in source else source


def report_serving(srv):
    if not srv:
        return
    print(f"{'serving row':>11} {'model':32} {'gpu':15} {'tp':>2} {'stack':22}"
          f" {'TTFT err %':>10} {'TPOT err %':>10} {'tok/s err %':>11}")
    for r in srv:
        cells = [f"{r[k]['error_pct']:+.1f}" if k in r else "-" for k, _ in METRICS]
        print(f"{r['line']:>11} {r['model'][:32]:32} {r['gpu'][:15]:15} {r['tp']:>2}"
              f" {r['stack'][:22]:22} {cells[0]:>10} {cells[1]:>10} {cells[2]:>11}")
    groups = {}
    for r in srv:
        groups.setdefault(source_name(r["source"]), []).append(r)
    for name, rows in groups.items():
        cells = []
        for k, _ in METRICS:
            errs = [r[k]["error_pct"] for r in rows if k in r]
            if errs:
                cells.append(f"{k.split('_')[0]} {statistics.median(map(abs, errs)):.1f}"
                             f" ({statistics.median(errs):+.1f})")
        models = ", ".join(sorted({r["model"] for r in rows}))
        print(f"by source: {name[:14]:14} median |error| % (signed): {', '.join(cells)}"
              f" over {len(rows)} runs of {models}")
    for k, label in METRICS:
        errs = [r[k]["error_pct"] for r in srv if k in r]
        if errs:
            print(f"median |error| {label}: {statistics.median(map(abs, errs)):.1f} %"
                  f" (median signed {statistics.median(errs):+.1f} %) over {len(errs)} rows")


def report_kv(srv):
    kv = {}
    for r in srv:
        if "kv_blocks" in r and r["kv_blocks"]["planned"]:
            kv.setdefault((r["model"], r["gpu"], r["version"], r["kv_blocks"]["measured"]),
                          r["kv_blocks"]["planned"])
    for (model, gpu, version, measured), planned in kv.items():
        print(f"KV cache: {model} on {gpu} (vLLM {version}): {measured} blocks reported,"
              f" servesim's plan {planned} ({pct(planned, measured):+.1f} %)")


if __name__ == "__main__":
    sys.exit(main())
