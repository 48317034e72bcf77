#!/usr/bin/env python3
"""How much of vLLM V0's per-sequence host work does 0.6's asynchronous output
processing hide? Read off the one public A/B of that feature alone.

vllm-project/vllm#7049 (the asynchronous output processor, August 2024) ran
`benchmark_throughput.py` on one H100 (Llama-3.1-8B-Instruct, FP8, 1,000 prompts of
128 tokens in and 256 out, offline) with and without it and found 11 % more throughput
(`perf_model/measurements/vllm-host-overhead/observations.csv`). The V0 loop does about
100 µs of host work per running sequence per iteration (`vllm-0.5`'s `per_sequence_us`,
read from its stack file):
on a synchronous loop all of it sits between iterations; with the processor, the output
part (`per_sequence_us`) runs while the GPU computes and the rest
(`per_sequence_serial_us`: scheduling, building each sequence's inputs) stays between
iterations. This script replays the A/B on `vllm-0.6` at its priors (its public
figures, no validation set) for each split of the 100 µs and prints the split whose
simulated gain is the measured one: `vllm-0.6`'s `prior_per_sequence_serial_us`.

Usage: scripts/fit_v0_output_overlap.py [--servesim target/release/servesim] [--out DIR]
"""
import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "perf_model/measurements/vllm-host-overhead/observations.csv"
ROW = ("vllm-project/vllm#7049", "asynchronous output processor over synchronous (PR)",
       "request_throughput_ratio")
# The V0 loop's whole host work per sequence: vllm-0.5's (synchronous) per_sequence_us.
TOTAL_US = tomllib.load(open(ROOT / "perf_model/stacks/vllm-0.5.toml", "rb"))["host"]["per_sequence_us"]
REQUESTS, INPUT, OUTPUT = 1000, 128, 256


def measured_gain():
    hits = [r for r in csv.DictReader(open(DATA))
            if (r["source"], r["variant"], r["metric"]) == ROW]
    if len(hits) != 1:
        sys.exit(f"{DATA}: expected one row for {ROW}, found {len(hits)}")
    return float(hits[0]["value"])


def set_key(text, key, value):
    """`key = value` in the [host] table of a stack file (the key added if missing)."""
    head, sep, rest = text.partition("\n[host]\n")
    end = rest.find("\n[")
    body, tail = (rest, "") if end < 0 else (rest[:end], rest[end:])
    line = f"{key} = {value}"
    pat = re.compile(rf"^{re.escape(key)}\s*=.*$", re.M)
    body = pat.sub(line, body) if pat.search(body) else body.rstrip("\n") + f"\n{line}\n"
    return head + sep + body + tail


def throughput(servesim, data, trace, run_dir):
    cmd = [servesim, "--data-dir", str(data), "simulate", "--trace", str(trace),
           "--model", "meta-llama/Llama-3.1-8B", "--hardware", "h100",
           "--quantization", "fp8", "--max-model-len", "8192", "--offline",
           "--serving-stack", "vllm-0.6", "--output-dir", str(run_dir)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    return json.load(open(run_dir / "summary.json"))["request_throughput_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(ROOT / "target/release/servesim"))
    ap.add_argument("--out", default=str(ROOT / "output/validation/v0-output-overlap"))
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    trace = out / "trace.csv"
    with open(trace, "w") as f:
        f.write("request_id,arrival_time_s,input_tokens,output_tokens\n")
        for i in range(REQUESTS):
            f.write(f"{i},0.0,{INPUT},{OUTPUT}\n")
    data = out / "data"
    data.mkdir()
    for d in ("model_configs", "traces"):
        (data / d).symlink_to(ROOT / d)
    shutil.copytree(ROOT / "perf_model", data / "perf_model")
    stack_file = data / "perf_model/stacks/vllm-0.6.toml"
    original = (ROOT / "perf_model/stacks/vllm-0.6.toml").read_text()
    prior_step = re.search(r"^prior_step_us\s*=\s*([0-9.]+)", original, re.M).group(1)
    target = measured_gain()
    print(f"{ROW[0]}: measured throughput gain {100 * (target - 1):.1f} %"
          f" ({REQUESTS} prompts x {INPUT} in / {OUTPUT} out, Llama-3.1-8B FP8, one H100)")
    points = []
    for serial in range(0, int(TOTAL_US) + 1, 10):  # 10 µs steps
        text = set_key(original, "step_us", prior_step)
        text = set_key(text, "per_sequence_us", f"{TOTAL_US - serial:.1f}")
        text = set_key(text, "per_sequence_serial_us", f"{float(serial):.1f}")
        stack_file.write_text(set_key(text, "overlap", '"async"'))
        fast = throughput(args.servesim, data, trace, out / f"async-{serial}")
        stack_file.write_text(set_key(text, "overlap", '"serial"'))
        slow = throughput(args.servesim, data, trace, out / f"sync-{serial}")
        points.append((float(serial), fast / slow))
        print(f"  {serial:5.1f} us of {TOTAL_US:.0f} between iterations: simulated gain"
              f" {100 * (fast / slow - 1):5.1f} %")
    stack_file.write_text(original)
    # The gain falls as more of the work stays between iterations: interpolate.
    for (s0, g0), (s1, g1) in zip(points, points[1:]):
        if (g0 - target) * (g1 - target) <= 0 and g0 != g1:
            s = s0 + (s1 - s0) * (g0 - target) / (g0 - g1)
            print(f"per_sequence_serial_us = {s:.1f} (per_sequence_us = {TOTAL_US - s:.1f})")
            return 0
    sys.exit("the measured gain lies outside the simulated range")


if __name__ == "__main__":
    sys.exit(main())
