#!/usr/bin/env python3
"""Replay MLPerf Inference v4.0's (and v5.0's) Llama-2-70B Offline results
(perf_model/measurements/mlperf-inference-v4.0/) through `servesim simulate` and compare
output tokens per second. Nothing here was used to fit any parameter.

Each closed-division Offline result becomes one offline run: the benchmark's 24,576
OpenOrca prompts at their own input lengths (openorca_lengths.csv), all queued at
t = 0, on `num_accelerators / tp` replicas of the submitter's tensor-parallel engine
(TensorRT-LLM FP8 engines, the `trtllm-engine` stack), with the engine's batch limit
(`gpu_batch_size`), 16,384 tokens per iteration (the harness builder's default), an FP8
KV cache of 0.95 of the free memory, and contexts up to 1,024 + 1,024 tokens. The build
commands pass no KV flag, but the DGX-H100 Server summary's means put 711 requests in
flight per TP2 engine (Little's law: 70.98 queries/s x 40.06 s over 4 engines) at a mean
TTFT of 0.38 s, which a 16-bit cache (~280,000 tokens per engine) cannot hold: replayed
at that concurrency (the closed-loop block) with a 16-bit cache the engines preempt
thousands of requests and the mean TTFT is seconds; with an FP8 cache, a fifth of a
second. The output lengths are not in the dataset (it holds GPT-4's reference answers): each request
generates its reference answer's length scaled to the run's own mean output per sample
(tokens/s over samples/s), so the replay generates the run's output tokens.

Each Server result is replayed the way loadgen drives it: Poisson arrivals at the run's
`target_qps`, each query one prompt drawn at random from the 24,576 (seed 0), for the
run's minimum duration (600 s, 2,400 s for NVIDIA's 8-GPU, H200 and GH200 systems), on
the same engines with the Server batch limit; scored: p99 TTFT and p99 TPOT against
the run's (the benchmark bounds them at 2 s and 200 ms).

MLPerf v5.0's Offline results (perf_model/measurements/mlperf-inference-v5.0/, output
tokens/s only) are replayed last, on the engines NVIDIA's v5.0 harness config gives each
GPU (H100: TP1 x PP2; H200: TP1; B200: NVFP4, TP1), with the same prompts and stack.

Usage: scripts/mlperf_check.py [--servesim target/release/servesim] [--out DIR]
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
DATA = ROOT / "perf_model/measurements/mlperf-inference-v4.0"
DATA_V5 = ROOT / "perf_model/measurements/mlperf-inference-v5.0"
MODEL = "meta-llama/Llama-2-70b-hf"  # Llama-2-70b-chat-hf has the same shapes
MAX_TOKENS = 1024  # the dataset's input limit and the harness's max_output_len
# The batch limit of the NVIDIA class H100 SXM systems inherit where the submitter's
# own config file is not in the results repository (configs/llama2-70b/Offline).
INHERITED_BATCH = 896
SERVER_BATCH = 1024  # the same class's Server batch limit
V4_MAX_NUM_TOKENS = 16384  # the v4.0 builder's default max_num_tokens
# loadgen's min_duration: 2,400 s for these systems, 600 s for every other one.
LONG_RUNS = {"DGX-H100_H100-SXM-80GBx8_TRT", "H200-SXM-141GBx8_TRT",
             "H200-SXM-141GB-CTSx8_TRT", "H200-SXM-141GB-CTSx1_TRT",
             "GH200-GraceHopper-Superchip_GH200-144GB_aarch64x1_TRT"}
LONG_RUN_S, SHORT_RUN_S = 2400.0, 600.0


def replay_target(r):
    """(hardware, extra flags) for a result, or (None, why it is left out)."""
    acc, system = r["accelerator"], r["system"]
    if "MaxQ" in system:
        return None, "power-capped (MaxQ) system: servesim has no power limit"
    if acc == "NVIDIA H100-SXM-80GB":
        return "h100", []
    if acc == "NVIDIA H100-PCIe-80GB":
        if r["gpu_interconnect"].startswith("PCIe only"):
            return "h100-pcie-80gb", ["--intra-node-link", "pcie5"]
        return "h100-pcie-80gb", []
    if acc.startswith("NVIDIA H200-SXM-141GB (700W"):
        return "h200", []
    if "1000W" in acc:
        return None, "1,000 W H200 (CTS): the catalogued H200 is the 700 W part"
    return None, f"no hardware file or serving stack for {acc} ({r['framework']})"


def scaled_output(ref, mean_out, ref_mean):
    """A request's output length: its reference answer's, scaled to the run's mean."""
    return max(1, min(MAX_TOKENS, round(ref * mean_out / ref_mean)))


def write_trace(path, lengths, mean_out):
    ref_mean = sum(o for _, o in lengths) / len(lengths)
    with open(path, "w") as f:
        f.write("request_id,arrival_time_s,input_tokens,output_tokens\n")
        for i, (inp, ref) in enumerate(lengths):
            f.write(f"{i},0,{inp},{scaled_output(ref, mean_out, ref_mean)}\n")


def write_server_trace(path, lengths, mean_out, qps, duration_s):
    rng = random.Random(0)
    ref_mean = sum(o for _, o in lengths) / len(lengths)
    t, i = 0.0, 0
    with open(path, "w") as f:
        f.write("request_id,arrival_time_s,input_tokens,output_tokens\n")
        while True:
            t += rng.expovariate(qps)
            if t > duration_s:
                break
            inp, ref = lengths[rng.randrange(len(lengths))]
            f.write(f"{i},{t:.6f},{inp},{scaled_output(ref, mean_out, ref_mean)}\n")
            i += 1


def v4_layout(r):
    """A v4.0 result's engines: TP from its harness config, 16,384 tokens per iteration."""
    tp = int(r["tp"])
    return {"tp": tp, "pp": 1, "replicas": int(r["num_accelerators"]) // tp,
            "quantization": "fp8", "max_num_tokens": V4_MAX_NUM_TOKENS}


def simulate(servesim, trace, layout, hardware, extra, batch, run_dir, offline, kv="fp8"):
    cmd = [servesim, "simulate", "--trace", str(trace), "--model", MODEL,
           "--hardware", hardware, "--tensor-parallel-size", str(layout["tp"]),
           "--pipeline-parallel-size", str(layout["pp"]),
           "--num-replicas", str(layout["replicas"]), "--serving-stack", "trtllm-engine",
           "--quantization", layout["quantization"], "--kv-cache-dtype", kv,
           *(["--offline"] if offline else []),
           "--max-num-seqs", str(batch),
           "--max-num-batched-tokens", str(layout["max_num_tokens"]),
           "--max-model-len", str(2 * MAX_TOKENS), "--gpu-memory-utilization", "0.95",
           *extra, "--output-dir", str(run_dir)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    return json.load(open(run_dir / "summary.json"))


def server_results(args, out, lengths):
    """Replay the Server results: p99 TTFT and p99 TPOT, measured and simulated."""
    rows = [r for r in csv.DictReader(open(DATA / "results.csv"))
            if r["division"] == "closed" and r["scenario"] == "Server"]
    print(f"\n{'Server: system':<48} {'qps':>6} {'p99 TTFT ms meas/sim':>22}"
          f" {'p99 TPOT ms meas/sim':>22}")
    results = []
    for r in rows:
        hardware, extra = replay_target(r)
        if hardware is None:
            continue
        batch = int(r["gpu_batch_size"]) if r["gpu_batch_size"] else SERVER_BATCH
        qps = float(r["server_target_qps"])
        duration = LONG_RUN_S if r["system"] in LONG_RUNS else SHORT_RUN_S
        name = f"server_{r['submitter']}_{r['system']}"
        trace = out / f"{name}.csv"
        mean_out = float(r["tokens_per_s"]) / float(r["samples_per_s"])
        write_server_trace(trace, lengths, mean_out, qps, duration)
        s = simulate(args.servesim, trace, v4_layout(r), hardware, extra, batch, out / name,
                     False)
        ttft, tpot = s["ttft_s"]["p99"] * 1e3, s["tpot_s"]["p99"] * 1e3
        mt, mp = float(r["ttft_p99_ms"]), float(r["tpot_p99_ms"])
        results.append({"submitter": r["submitter"], "system": r["system"], "qps": qps,
                        "ttft_p99_ms": [mt, ttft], "tpot_p99_ms": [mp, tpot],
                        "ttft_error_pct": 100.0 * (ttft / mt - 1.0),
                        "tpot_error_pct": 100.0 * (tpot / mp - 1.0)})
        print(f"{name[7:55]:<48} {qps:>6.1f} {mt:>9.0f}/{ttft:<7.0f}({100 * (ttft / mt - 1):+5.0f})"
              f" {mp:>9.0f}/{tpot:<7.0f}({100 * (tpot / mp - 1):+5.0f})")
    for key in ("ttft_error_pct", "tpot_error_pct"):
        print(f"median |error| p99 {key[:4].upper()}: "
              f"{statistics.median(abs(x[key]) for x in results):.1f} % over {len(results)}"
              f" results (median signed {statistics.median(x[key] for x in results):+.1f} %)")
    return results


def steady_state(run_dir):
    """Means of a closed-loop run while every slot is busy: requests that arrive after
    the last of the t = 0 cohort finished (the start, when all slots prefill at once, is
    a transient a Server run at steady load never sees) and before the trace runs out
    (the drain). Returns mean TTFT (s), mean TPOT (s) and output tokens/s over that
    window, and the window."""
    reqs = list(csv.DictReader(open(run_dir / "requests.csv")))
    start = max(float(r["finish_time_s"]) for r in reqs if float(r["arrival_time_s"]) == 0.0)
    end = max(float(r["arrival_time_s"]) for r in reqs)
    window = [r for r in reqs if start < float(r["arrival_time_s"]) <= end]
    tokens = sum(float(r["output_tokens"]) for r in csv.DictReader(open(run_dir / "throughput.csv"))
                 if start <= float(r["time_s"]) < end)
    return (statistics.mean(float(r["ttft_s"]) for r in window),
            statistics.mean(float(r["tpot_s"]) for r in window),
            tokens / (end - start), (start, end))


def concurrency_check(args, out, lengths):
    """Replay each Server result closed-loop at the concurrency Little's law gives
    (scheduled rate x mean latency), admitting on the prompt (TensorRT-LLM's
    MAX_UTILIZATION): the engines' iteration at the load they really carried, free of
    how a near-saturated queue multiplies small throughput errors; scored while every
    slot is busy (`steady_state`). For the DGX-H100 x 8 run also with a 16-bit KV cache,
    which cannot hold that concurrency."""
    rows = [r for r in csv.DictReader(open(DATA / "results.csv"))
            if r["scenario"] == "Server" and r["mean_latency_ms"]]
    print(f"\n{'closed loop at the measured concurrency':<48} {'in flight':>9}"
          f" {'mean TPOT ms meas/sim':>22} {'tok/s meas/sim':>22} {'mean TTFT ms':>18}")
    errs = {"tpot": [], "tok": [], "ttft": []}
    for r in rows:
        hardware, extra = replay_target(r)
        if hardware is None:
            continue
        in_flight = round(float(r["scheduled_samples_per_s"])
                          * float(r["mean_latency_ms"]) / 1e3)
        mean_out = float(r["tokens_per_s"]) / float(r["samples_per_s"])
        trace = out / f"closed_{r['system']}.csv"
        write_server_trace(trace, lengths, mean_out, float(r["server_target_qps"]),
                           SHORT_RUN_S)
        batch = int(r["gpu_batch_size"]) if r["gpu_batch_size"] else SERVER_BATCH
        kvs = ("fp8", "auto") if r["system"] == "DGX-H100_H100-SXM-80GBx8_TRT" else ("fp8",)
        for kv in kvs:
            run_dir = out / f"closed_{kv}_{r['system']}"
            s = simulate(args.servesim, trace, v4_layout(r), hardware,
                         [*extra, "--concurrency", str(in_flight), "--kv-reservation", "false"],
                         batch, run_dir, False, kv)
            ttft, tpot, sk, (t0, t1) = steady_state(run_dir)
            st, ss = tpot * 1e3, ttft * 1e3
            mt, mk, ms = float(r["mean_tpot_ms"]), float(r["tokens_per_s"]), float(r["mean_ttft_ms"])
            label = f"{r['submitter']}_{r['system']}"[:40] + ("" if kv == "fp8" else " 16-bit KV")
            print(f"{label:<48} {in_flight:>9} {mt:>9.1f}/{st:<6.1f}({100 * (st / mt - 1):+5.1f})"
                  f" {mk:>9.0f}/{sk:<6.0f}({100 * (sk / mk - 1):+5.1f})"
                  f" {ms:>6.0f}/{ss:<5.0f}({100 * (ss / ms - 1):+5.1f})"
                  f"  {s['preemptions']} preemptions, steady {t0:.0f}-{t1:.0f} s")
            if kv == "fp8":
                errs["tpot"].append(100 * (st / mt - 1))
                errs["tok"].append(100 * (sk / mk - 1))
                errs["ttft"].append(100 * (ss / ms - 1))
    print(f"median |error| at the measured concurrency: mean TPOT"
          f" {statistics.median(abs(e) for e in errs['tpot']):.1f} % (signed"
          f" {statistics.median(errs['tpot']):+.1f}), output tokens/s"
          f" {statistics.median(abs(e) for e in errs['tok']):.1f} % (signed"
          f" {statistics.median(errs['tok']):+.1f}), mean TTFT"
          f" {statistics.median(abs(e) for e in errs['ttft']):.1f} % (signed"
          f" {statistics.median(errs['ttft']):+.1f}) over {len(errs['tpot'])} results,"
          f" each while every slot is busy")


# MLPerf v5.0's engines, from NVIDIA's Offline harness config (closed/NVIDIA/configs/
# llama2-70b/Offline/__init__.py of mlcommons/inference_results_v5.0 at 6069beb2): the
# class of each GPU, FP8 KV cache, 0.95 of the free memory for it. Other submitters'
# configs are not in the index read; their systems take NVIDIA's class for the GPU.
V5_ENGINES = {
    # H100_SXM_80GB_PP2x1 and its x2 / x4: TP1 x PP2, batch 1,024, 1,024 tokens
    "NVIDIA H100-SXM-80GB": ("h100", {"tp": 1, "pp": 2, "quantization": "fp8",
                                      "max_num_tokens": 1024}, 1024),
    # H200_SXM_141GBx1 and its x8: TP1, batch 2,048, 1,536 tokens
    "NVIDIA H200-SXM-141GB": ("h200", {"tp": 1, "pp": 1, "quantization": "fp8",
                                       "max_num_tokens": 1536}, 2048),
    # B200_SXM_180GBx1 and its x8: NVFP4 weights, TP1, batch 2,048, 3,584 tokens
    "NVIDIA B200-SXM-180GB": ("b200", {"tp": 1, "pp": 1, "quantization": "nvfp4",
                                       "max_num_tokens": 3584}, 2048),
    # no class for the 96 GB part: GH200_144GB_aarch64x1's (TP1, batch 2,048, 1,536 tokens)
    "NVIDIA GH200 Grace Hopper Superchip 96GB": ("gh200", {
        "tp": 1, "pp": 1, "quantization": "fp8", "max_num_tokens": 1536}, 2048),
}
# v5.0's summaries give tokens/s only; output tokens per sample as v4.0's runs (291.5-293.2)
V5_OUTPUT_PER_SAMPLE = 292.0


def v5_offline(args, out, lengths):
    """Replay MLPerf v5.0's Offline results on the engines NVIDIA's config gives."""
    rows = [r for r in csv.DictReader(open(DATA_V5 / "results.csv"))
            if r["scenario"] == "Offline"]
    trace = out / "v5_offline.csv"
    write_trace(trace, lengths, V5_OUTPUT_PER_SAMPLE)
    print(f"\n{'MLPerf v5.0 Offline: system':<56} {'layout':>9} {'tok/s meas/sim (err %)':>26}")
    results, skipped, cache = [], [], {}
    for r in rows:
        engine = V5_ENGINES.get(r["accelerator"])
        if engine is None or "MaxQ" in r["system"]:
            why = "power-capped" if engine else "no engine config or hardware file"
            skipped.append(f"{r['submitter']} {r['system']} ({r['accelerator']}): {why}")
            continue
        hardware, layout, batch = engine
        gpus = int(r["num_accelerators"])
        layout = {**layout, "replicas": gpus // (layout["tp"] * layout["pp"])}
        key = (hardware, gpus)
        if key not in cache:
            run_dir = out / f"v5_{hardware}_x{gpus}"
            cache[key] = simulate(args.servesim, trace, layout, hardware, [], batch, run_dir,
                                  True)["output_tokens_per_s"]
        sim, meas = cache[key], float(r["tokens_per_s"])
        err = 100.0 * (sim / meas - 1.0)
        results.append({"public_id": r["public_id"], "submitter": r["submitter"],
                        "system": r["system"], "benchmark": r["benchmark"],
                        "hardware": hardware, "measured_tok_s": meas,
                        "simulated_tok_s": sim, "error_pct": err})
        shape = f"{layout['tp']}x{layout['pp']}x{layout['replicas']}"
        print(f"{(r['submitter'] + ' ' + r['system'])[:56]:<56} {shape:>9}"
              f" {meas:>9.0f}/{sim:<7.0f} ({err:+6.1f})")
    for hw in sorted({x["hardware"] for x in results}):
        e = [x["error_pct"] for x in results if x["hardware"] == hw]
        print(f"  {hw}: {len(e)} results, signed error {min(e):+.1f} to {max(e):+.1f} %")
    print(f"median |error| output tokens/s (v5.0): "
          f"{statistics.median(abs(x['error_pct']) for x in results):.1f} % over"
          f" {len(results)} results (median signed"
          f" {statistics.median(x['error_pct'] for x in results):+.1f} %)")
    for s in skipped:
        print(f"skipped (v5.0): {s}")
    return {"results": results, "skipped": skipped}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(ROOT / "target/release/servesim"))
    ap.add_argument("--out", default=str(ROOT / "output/validation/mlperf-v4.0"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lengths = [(int(r["input_tokens"]), int(r["reference_output_tokens"]))
               for r in csv.DictReader(open(DATA / "openorca_lengths.csv"))]
    rows = [r for r in csv.DictReader(open(DATA / "results.csv"))
            if r["division"] == "closed" and r["scenario"] == "Offline"]
    results, skipped = [], []
    print(f"{'system':<48} {'hardware':<15} {'TPxN':>6} {'batch':>5}"
          f" {'tok/s meas/sim (err %)':>28}")
    for r in rows:
        hardware, extra = replay_target(r)
        if hardware is None:
            skipped.append(f"{r['submitter']} {r['system']}: {extra}")
            continue
        tp, gpus = int(r["tp"]), int(r["num_accelerators"])
        batch = int(r["gpu_batch_size"]) if r["gpu_batch_size"] else INHERITED_BATCH
        mean_out = float(r["tokens_per_s"]) / float(r["samples_per_s"])
        name = f"{r['submitter']}_{r['system']}"
        trace = out / f"{name}.csv"
        write_trace(trace, lengths, mean_out)
        summary = simulate(args.servesim, trace, v4_layout(r), hardware, extra, batch,
                           out / name, True)
        sim = summary["output_tokens_per_s"]
        meas = float(r["tokens_per_s"])
        err = 100.0 * (sim / meas - 1.0)
        results.append({"submitter": r["submitter"], "system": r["system"],
                        "hardware": hardware, "tp": tp, "replicas": gpus // tp,
                        "batch": batch, "batch_stated": bool(r["gpu_batch_size"]),
                        "measured_tok_s": meas, "simulated_tok_s": sim, "error_pct": err})
        flag = "" if r["gpu_batch_size"] else " (batch inherited)"
        print(f"{name[:48]:<48} {hardware:<15} {tp:>2}x{gpus // tp:<3} {batch:>5}"
              f" {meas:>11.0f}/{sim:<8.0f} ({err:+6.1f}){flag}")
    errs = [abs(x["error_pct"]) for x in results]
    print(f"median |error| output tokens/s: {statistics.median(errs):.1f} % over"
          f" {len(errs)} results (median signed"
          f" {statistics.median(x['error_pct'] for x in results):+.1f} %)")
    for s in skipped:
        print(f"skipped: {s}")
    server = server_results(args, out, lengths)
    concurrency_check(args, out, lengths)
    v5 = v5_offline(args, out, lengths)
    json.dump({"results": results, "server": server, "skipped": skipped, "v5.0": v5},
              open(out / "summary.json", "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
