#!/usr/bin/env python3
"""Fit the prior of `vllm-0.5`'s host time per iteration on public offline runs.

`perf_model/stacks/vllm-0.5.toml` fits `host.step_us` on the Argonne tables; when that set
is left out (`scripts/validate_all.sh --cross-validate`) the stack falls back to
`host.prior_step_us`. That prior should describe the same thing: the engine run offline
through the `LLM` class (Argonne drove `llm.generate()`), where V0's synchronous loop
schedules, prepares inputs, samples and processes outputs between iterations with no
API server in the process.

The public offline static batches of that engine generation are the `benchmark_latency`
rows quoted in vLLM pull requests (`perf_model/measurements/vllm-public/latency.csv`).
This script uses the ones whose kernels servesim models: the Mixtral batches of #3240
(vLLM 0.3.3, A100 TP2) and #4002 (vLLM 0.4.0, A100 TP8) with the fused-MoE tile
configurations those PRs tuned. Left out: the same PRs' default-tile rows (servesim has
no untuned-kernel state), #2542 (vLLM 0.2.7, the first untuned MoE kernel, before the
custom all-reduce), and #4002 at TP4 (servesim's memory plan refuses it).

Each candidate host time is written into a copy of the stack file (nothing in the
repository changes); every row is replayed with `servesim estimate --offline` on that
copy, and the loss is the fit-stack loss: the mean over the two sources of the mean
|ln(simulated / measured)| batch latency. A golden-section search on ln(step_us) finds
the minimum. Prints the fitted value and each source's errors at it.

Usage: scripts/fit_v0_offline_prior.py [--servesim target/release/servesim]
"""
import argparse
import csv
import math
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vllm_public_check as vpc  # noqa: E402

STACK = vpc.ROOT / "perf_model/stacks/vllm-0.5.toml"
# (pull request, variant): the tuned-kernel rows of each source.
ROWS = [
    ("https://github.com/vllm-project/vllm/pull/3240",
     "MoE kernel configuration tuned for A100 TP2 (this PR)"),
    ("https://github.com/vllm-project/vllm/pull/4002",
     "MoE kernel configuration tuned for this model (this PR)"),
]


def selected_rows():
    shipped = vpc.shipped_models()
    out = []
    for line, row in enumerate(csv.DictReader(open(vpc.DATA / "latency.csv")), start=2):
        if (row["source"], row["variant"]) not in ROWS:
            continue
        model, _ = vpc.resolve_model(row["model"], shipped)
        if model is None:
            sys.exit(f"latency.csv:{line}: model {row['model']} not shipped")
        out.append((line, row, model))
    return out


def with_step(text, step_us):
    """The stack file's text with `host.step_us` set to `step_us`."""
    new, n = re.subn(r"(?m)^step_us = .*$", f"step_us = {step_us:.1f}", text)
    if n != 1:
        sys.exit(f"{STACK}: expected one `step_us` line, found {n}")
    return new


def replay(rows, stack_path, exe):
    """(source, line, measured, simulated) of every row that servesim accepts."""
    out = []
    for line, row, model in rows:
        res, err = vpc.run_latency(row, model, exe, stack_path)
        if not err:
            out.append((row["source"], line, res["measured_s"], res["simulated_s"]))
    return out


def loss(results):
    by_source = {}
    for source, _, meas, sim in results:
        by_source.setdefault(source, []).append(abs(math.log(sim / meas)))
    return statistics.mean(statistics.mean(v) for v in by_source.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(vpc.ROOT / "target/release/servesim"))
    args = ap.parse_args()
    rows = selected_rows()
    text = STACK.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vllm-0.5.toml"
        cache = {}

        def evaluate(step_us):
            key = round(step_us, 1)
            if key not in cache:
                path.write_text(with_step(text, key))
                cache[key] = replay(rows, path, args.servesim)
            return loss(cache[key]), cache[key]

        lo, hi = math.log(500.0), math.log(12000.0)
        r = (math.sqrt(5.0) - 1.0) / 2.0
        for _ in range(16):
            c, d = hi - r * (hi - lo), lo + r * (hi - lo)
            if evaluate(math.exp(c))[0] < evaluate(math.exp(d))[0]:
                hi = d
            else:
                lo = c
        best = round(math.exp((lo + hi) / 2.0), -1)
        best_loss, results = evaluate(best)
    print(f"rows: {len(results)} of {len(rows)} selected ({len(rows) - len(results)} refused)")
    for source in dict.fromkeys(s for s, *_ in results):
        errs = [100.0 * (sim / meas - 1.0) for s, _, meas, sim in results if s == source]
        print(f"{source}: {len(errs)} rows, median error {statistics.median(errs):+.1f} %, "
              f"median |error| {statistics.median(abs(e) for e in errs):.1f} %")
    print(f"fitted prior: host.step_us = {best:.0f} µs "
          f"(mean |ln(simulated/measured)| {best_loss:.3f})")


if __name__ == "__main__":
    sys.exit(main())
