#!/usr/bin/env python3
"""Restate InferenceX's history of DeepSeek-R1 serving points (medians) in the
serving-summary format.

Reads `packages/app/cypress/fixtures/api/benchmarks-history.json` (every dated point of
each configuration, with the median and p99 TTFT and TPOT, no engine image) from a git
snapshot of an InferenceX-app repository (a bare git directory; nothing is checked
out) and writes `serving-inferencex-history/serving_summary.csv`: the columns of
`serving-inferencex/serving_summary.csv` (extract_inferencex.py, whose mappings it
shares), with `ttft_ms` and `tpot_ms` the medians, `statistic = median` and
`client = inferencex` on every row, the engine version blank (the history does not
record the image).

Kept as there: one serving instance on one node (not disaggregated, not multi-node),
no speculative decoding.

Usage (standard library only):

    python3 extract_inferencex_history.py GIT_DIR COMMIT OUT_DIR

Deterministic: the same snapshot gives the same bytes.
"""
import csv
import sys

from extract_inferencex import points

FIXTURE = "packages/app/cypress/fixtures/api/benchmarks-history.json"


def main():
    git_dir, commit, out = sys.argv[1:4]
    body = [r + ["median"] for r in points(git_dir, commit, FIXTURE, "median")]
    body.sort(key=lambda r: (r[0], r[2], r[3], r[4], r[7], r[11], r[9], r[12], r[13], r[15], r[18], r[21]))
    with open(f"{out}/serving-inferencex-history/serving_summary.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["engine", "engine_version", "gpu", "model", "precision", "gemm_quant", "moe_quant", "tp",
                    "pp", "attention_dp", "moe_tp", "moe_ep", "isl", "osl", "batch_size", "concurrency",
                    "ttft_ms", "tpot_ms", "measured_date", "image", "wip", "source_id", "copies", "client",
                    "statistic"])
        w.writerows(body)
    print("serving", len(body))


if __name__ == "__main__":
    main()
