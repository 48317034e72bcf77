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
This script takes the ones whose kernels servesim models: the Mixtral batches of #3240
(vLLM 0.3.3, A100 TP2) and #4002 (vLLM 0.4.0, A100 TP8) with the fused-MoE tile
configurations those PRs tuned. Left out: the same PRs' default-tile rows (servesim has
no untuned-kernel state) and #2542 (vLLM 0.2.7, the first untuned MoE kernel); #4002 at
TP4 is in the table but servesim's memory plan refuses it.

It writes those rows as a static-batch table (`Batch Latency`, see `servesim validate`)
into a temporary folder and runs `servesim fit-stack --serving-stack vllm-0.5` on it
alone (nothing in the repository changes); the step time it prints is the prior.

Usage: scripts/fit_v0_offline_prior.py [--servesim target/release/servesim]
"""
import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vllm_public_check as vpc  # noqa: E402

# (pull request, variant): the tuned-kernel rows of each source.
ROWS = [
    ("https://github.com/vllm-project/vllm/pull/3240",
     "MoE kernel configuration tuned for A100 TP2 (this PR)"),
    ("https://github.com/vllm-project/vllm/pull/4002",
     "MoE kernel configuration tuned for this model (this PR)"),
]


def write_table(path):
    """The selected rows of latency.csv as a static-batch table; returns their count."""
    n = 0
    with open(path, "w") as f:
        f.write("Hardware,Num of Hardware,Framework,Model,Input Length,Output Length,"
                "Batch Size,Batch Latency\n")
        for row in csv.DictReader(open(vpc.DATA / "latency.csv")):
            if (row["source"], row["variant"]) in ROWS:
                f.write(f"{row['gpu']},{row['tp']},vLLM,{row['model']},{row['input_len']},"
                        f"{row['output_len']},{row['batch_size']},{row['avg_latency_s']}\n")
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=str(vpc.ROOT / "target/release/servesim"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "tuned_static_batches.csv"
        n = write_table(table)
        print(f"rows: {n} of latency.csv ({', '.join(s.rsplit('/', 1)[-1] for s, _ in ROWS)},"
              " tuned kernels)")
        p = subprocess.run([args.servesim, "fit-stack", "--serving-stack", "vllm-0.5",
                            "--set", f"vllm-public={table}"], capture_output=True, text=True)
        sys.stdout.write(p.stdout)
        if p.returncode != 0:
            sys.exit(p.stderr)


if __name__ == "__main__":
    sys.exit(main())
