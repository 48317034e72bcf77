#!/usr/bin/env python3
"""MI300X (gfx942, 304 CUs) rows of ROCm/aiter's tuned FP8 block-scale GEMM tables.

    python3 extract_aiter_mi300x_gemm.py GIT_DIR COMMIT > ../gemm/mi300x__fp8_blockscale.csv

Keeps, per (M, N, K), the fastest tuned time over the two model tables (standard
library only; deterministic).
"""
import csv
import io
import subprocess
import sys

FILES = [
    ("aiter/configs/model_configs/a8w8_blockscale_tuned_gemm_qwen36_27b.csv", "qwen36_27b"),
    ("aiter/configs/model_configs/a8w8_blockscale_tuned_gemm_qwen3_vl_32b.csv", "qwen3_vl_32b"),
]


def main():
    git_dir, commit = sys.argv[1:3]
    best = {}
    for path, tag in FILES:
        text = subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:{path}"],
                              check=True, capture_output=True, text=True).stdout
        for r in csv.DictReader(io.StringIO(text)):
            if r["gfx"] != "gfx942" or r["cu_num"] != "304":
                continue
            key = (int(r["M"]), int(r["N"]), int(r["K"]))
            us = float(r["us"])
            if key not in best or us < best[key][0]:
                best[key] = (us, tag)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["m", "n", "k", "time_us", "tflops", "source_file"])
    for (m, n, k), (us, tag) in sorted(best.items()):
        w.writerow([m, n, k, f"{us:.3f}", f"{2 * m * n * k / (us * 1e-6) / 1e12:.2f}", tag])


if __name__ == "__main__":
    main()
