#!/usr/bin/env python3
"""Restate InferenceX's published DeepSeek-R1 serving points in the serving-summary format.

Reads `packages/app/cypress/fixtures/api/benchmarks.json` (the latest point of each
configuration, with mean TTFT and TPOT) from a git snapshot of an InferenceX-app
repository (a bare git directory; nothing is checked out) and writes
`serving-inferencex/serving_summary.csv`, the columns of
`serving-aiconfigurator-silicon/serving_summary.csv` (see that README) with
`client = inferencex` on every row.

Kept: one serving instance on one node (not disaggregated, not multi-node), no
speculative decoding (`spec_method` none), points with mean TTFT and TPOT.

Usage (standard library only):

    python3 extract_inferencex.py GIT_DIR COMMIT OUT_DIR

Deterministic: the same snapshot gives the same bytes.
"""
import csv
import json
import re
import subprocess
import sys

FIXTURE = "packages/app/cypress/fixtures/api/benchmarks.json"
# InferenceX hardware key -> servesim hardware slug.
SLUG = {
    "h100": "h100-sxm5-80gb",
    "h200": "h200-sxm-141gb",
    "b200": "b200",
    "gb200": "gb200",
    "mi300x": "mi300x",
    "mi325x": "mi325x",
    "b300": "b300-sxm (no catalog entry)",
    "gb300": "gb300 (no catalog entry)",
    "mi355x": "mi355x (no catalog entry)",
}
ENGINE = {"sglang": "sglang", "trt": "trtllm", "vllm": "vllm", "atom": "atom"}
MODEL = {"dsr1": "deepseek-ai/DeepSeek-R1"}
# The checkpoints' formats: DeepSeek-R1's own FP8 (block-scaled) and NVIDIA's / AMD's
# FP4 (NVFP4 on NVIDIA, MXFP4 on AMD).
QUANT = {("fp8", False): ("fp8", "fp8_block"), ("fp4", False): ("nvfp4", "nvfp4"),
         ("fp8", True): ("fp8", "fp8_block"), ("fp4", True): ("mxfp4", "mxfp4")}


def version(image):
    m = re.search(r":v?(\d+\.\d+\.\d+[0-9a-z.]*?)(?:-(?:cu|rocm)\d|$)", image or "")
    return m.group(1) if m else ""


def points(git_dir, commit, fixture, stat):
    """The fixture's single-node points without speculative decoding that carry the
    `stat` (`mean`, `median`) TTFT and TPOT, as summary rows (no `statistic` column)."""
    text = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{commit}:{fixture}"],
                          check=True, capture_output=True, text=True).stdout
    body = []
    for x in json.loads(text):
        m = x["metrics"]
        if x["disagg"] or x["is_multinode"] or x["spec_method"] != "none":
            continue
        if f"{stat}_ttft" not in m or f"{stat}_tpot" not in m:
            continue
        amd = x["hardware"].startswith("mi")
        gemm, moe = QUANT[(x["precision"], amd)]
        gpus, ep = x["decode_tp"], x["decode_ep"]
        # Attention data-parallel over the TP ranks: one attention rank per GPU (the
        # AIConfigurator table's tp 1 × attention_dp), the experts still over all GPUs.
        dp = gpus if x["decode_dp_attention"] else 1
        body.append([
            ENGINE[x["framework"]], version(x.get("image")), SLUG[x["hardware"]], MODEL[x["model"]],
            x["precision"], gemm, moe, gpus // dp, 1, dp, gpus // ep, ep, x["isl"], x["osl"],
            -(-x["conc"] // dp), x["conc"], f"{m[stat + '_ttft'] * 1000:.3f}",
            f"{m[stat + '_tpot'] * 1000:.4f}", x["date"], x.get("image") or "", "",
            x["run_url"].split("/runs/")[-1].replace("/attempts/", "#"), 1, "inferencex",
        ])
    return body


def main():
    git_dir, commit, out = sys.argv[1:4]
    body = points(git_dir, commit, FIXTURE, "mean")
    body.sort(key=lambda r: (r[0], r[2], r[3], r[1], r[4], r[7], r[11], r[9], r[12], r[13], r[15]))
    with open(f"{out}/serving-inferencex/serving_summary.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["engine", "engine_version", "gpu", "model", "precision", "gemm_quant", "moe_quant", "tp",
                    "pp", "attention_dp", "moe_tp", "moe_ep", "isl", "osl", "batch_size", "concurrency",
                    "ttft_ms", "tpot_ms", "measured_date", "image", "wip", "source_id", "copies", "client"])
        w.writerows(body)
    print("serving", len(body))


if __name__ == "__main__":
    main()
