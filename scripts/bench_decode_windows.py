#!/usr/bin/env python3
"""Decode-only one-second windows of the LLMServingSim vLLM 0.19 bench runs.

For every second of `timeseries.csv` in which no prompt token was processed (in that
second and the one before), writes the measured iteration time (mean running
requests / generated tokens per second) and the context length of every request
decoding at the middle of the window (from `requests.jsonl`: input tokens plus the
fraction of its output produced by then). The output feeds the ignored test
`perf::measured::tests::decode_windows_residuals`, which fits the constants in
`host.step_us` of `perf_model/stacks/vllm-v1.toml` and
`perf_model/profiles/rtx-pro-6000-blackwell-server/network/link_calibration.toml`.

    python3 scripts/bench_decode_windows.py [--shared ../shared] > windows.csv
    SERVESIM_BENCH_WINDOWS=windows.csv cargo test --release decode_windows_residuals -- --ignored --nocapture

The timeseries clock is aligned to vLLM's monotonic clock by the offset (10 ms grid,
±3 s) that best matches the running-request counts. Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

RUNS = ["RTX4090_Llama-3.1-8B", "RTXPRO6000_Llama-3.1-8B", "RTXPRO6000_Qwen3-32B"]


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=here.parent / "shared")
    args = ap.parse_args()
    base = args.shared / "validation/llmservingsim-vllm-bench"
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["run", "t", "measured_ms", "running_avg", "contexts"])
    for run in RUNS:
        reqs = [json.loads(l) for l in (base / run / "requests.jsonl").open()]
        ts = list(csv.DictReader((base / run / "timeseries.csv").open()))
        t0 = min(r["queued_ts"] for r in reqs)

        def running(tm: float) -> int:
            return sum(1 for r in reqs if r["scheduled_ts"] <= tm < r["last_token_ts"])

        best = min(
            (sum(abs(running(t0 + k * 0.01 + float(row["t"])) - int(row["running"])) for row in ts[::3]), k)
            for k in range(-300, 300)
        )
        off = best[1] * 0.01
        print(f"{run}: clock offset {off:+.2f} s", file=sys.stderr)
        for prev, row in zip(ts, ts[1:]):
            if float(row["prompt_throughput"]) or float(prev["prompt_throughput"]) or not float(row["gen_throughput"]):
                continue
            tm = t0 + off + float(row["t"]) - 0.5
            ctx = []
            for r in reqs:
                if r["first_token_ts"] <= tm < r["last_token_ts"]:
                    frac = (tm - r["first_token_ts"]) / (r["last_token_ts"] - r["first_token_ts"])
                    ctx.append(int(r["input_toks"] + 1 + frac * (r["output_toks"] - 1)))
            ravg = (int(row["running"]) + int(prev["running"])) / 2
            if ctx and ravg >= 1:
                w.writerow([run, row["t"], f"{1000 * ravg / float(row['gen_throughput']):.3f}", ravg, " ".join(map(str, ctx))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
