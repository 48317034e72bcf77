#!/usr/bin/env python3
"""Argonne static batches scored per platform, and leave-model-group-out.

    python3 scripts/argonne_folds.py [--validation-dir ../shared/validation] [--out output/validation]

1. Per platform, the median over table groups of the median |E2E error| % of the
   `validate` outputs already under OUT/{default,cv}/argonne-llm-inference-bench/
   (written by scripts/validate_all.sh; default = shipped stacks, in-sample for the
   stacks fitted on Argonne; cv = the whole set left out, priors only).
2. Leave-model-group-out: the vLLM rows of All_results.csv are split into the 7-8B
   models (Llama-2-7B, Llama-3-8B, Mistral-7B, Qwen2-7B, LLaMA-1 7B) and the large ones
   (Llama-2-70B, Llama-3-70B, Mixtral-8x7B, Qwen2-72B); the stacks fitted on Argonne (vllm-0.5 for
   GH200, vllm-0.6 for A100, vllm-0.6-rocm for AMD) are refitted on one group (`servesim fit-stack`) and the
   other group is scored with them (`servesim validate --serving-stack`), both ways.
   Every score is out-of-sample: no row of a scored model entered its fit.
3. TensorRT-LLM rows, leave-GPU-out: the stack fitted on them (trtllm-0.11) is refitted
   on the A100 rows (TensorRT-LLM 0.11) and scored on the GH200 rows (0.12), and the
   reverse; per platform also the shipped (in-sample) and whole-set-left-out figures of
   OUT/{default,cv}/argonne-trtllm/all_results/.
Python 3.11, standard library only; runs target/release/servesim (built by
scripts/validate_all.sh or `cargo build --release`).
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import subprocess
import sys
from pathlib import Path

SMALL = {"meta-llama/Llama-2-7b-hf", "meta-llama/Meta-Llama-3-8B", "mistralai/Mistral-7B-v0.1",
         "Qwen/Qwen2-7B", "huggyllama/llama-7b", "Qwen/Qwen1.5-7B", "Deci/DeciLM-7B",
         "BAAI/Aquila-7B", "bigscience/bloom-7b1", "EleutherAI/gpt-j-6b"}
LARGE = {"meta-llama/Llama-2-70b-hf", "meta-llama/Meta-Llama-3-70B", "mistralai/Mixtral-8x7B-v0.1",
         "Qwen/Qwen2-72B"}
# The stack each platform's rows are fitted on, and the group-name marker of its rows.
# Each NVIDIA platform's rows ran their own vLLM release (GH200 0.5.3, A100 ~0.6.1).
STACKS = {"vllm-0.5": "nvidia-gh200", "vllm-0.6": "nvidia-a100", "vllm-0.6-rocm": "amd"}
# The stack of the TensorRT-LLM rows, and the GPUs (as the Hardware column names them)
# whose rows are left out in turn.
TRTLLM_STACK = "trtllm-0.11"
TRTLLM_GPUS = ("A100", "GH200")
SERVESIM = "target/release/servesim"


def group_medians(folder: Path) -> dict[str, list[float]]:
    """Per platform (group name without model and TP), the groups' median |E2E error|."""
    out: dict[str, list[float]] = {}
    for f in sorted(folder.glob("*/comparison.csv")):
        rows = list(csv.DictReader(f.open()))
        errs = [abs(float(r["error_e2e_pct"])) for r in rows
                if r.get("error_e2e_pct") not in (None, "", "NaN", "nan")]
        if not errs:
            continue
        platform = re.sub(r"_tp\d+$", "", f.parent.name.split("_", 1)[1])
        out.setdefault(platform, []).append(statistics.median(errs))
    return out


def run(args: list[str]) -> None:
    r = subprocess.run([SERVESIM, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"servesim {' '.join(args)} failed:\n{r.stderr}")


def write_rows(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def trtllm_leave_gpu_out(rows: list[list[str]], out: Path) -> None:
    """Section 3: the TensorRT-LLM rows, one GPU left out of the fit in turn."""
    header = rows[0]
    hw, fw = header.index("Hardware"), header.index("Framework")
    work = out / "argonne-folds" / "trtllm"
    tables = {}
    for gpu in TRTLLM_GPUS:
        tables[gpu] = work / gpu.lower() / "argonne-llm-inference-bench/All_results.csv"
        write_rows(tables[gpu], header, (r for r in rows[1:]
                                         if len(r) > fw and r[fw] == "TensorRT-LLM" and gpu in r[hw]))
    shipped = group_medians(out / "default/argonne-trtllm/all_results")
    left_out = group_medians(out / "cv/argonne-trtllm/all_results")
    print()
    print("| TensorRT-LLM rows | groups | shipped (in-sample) | whole set left out (priors) | other GPU's rows only |")
    print("|---|---:|---:|---:|---:|")
    for gpu in TRTLLM_GPUS:
        fit_on = next(g for g in TRTLLM_GPUS if g != gpu)
        fitted = work / f"{TRTLLM_STACK}-fit-on-{fit_on.lower()}.toml"
        run(["fit-stack", "--serving-stack", TRTLLM_STACK, "--set",
             f"argonne-llm-inference-bench={tables[fit_on]}", "--output", str(fitted)])
        scored = work / f"score-{gpu.lower()}"
        run(["validate", str(tables[gpu]), "--framework", "TensorRT-LLM",
             "--serving-stack", str(fitted), "--output-dir", str(scored)])
        folds = [m for v in group_medians(scored).values() for m in v]
        cells = []
        for medians in (shipped, left_out):
            v = [m for p, ms in medians.items() if gpu.lower() in p for m in ms]
            cells.append(f"{statistics.median(v):.1f}" if v else "-")
        print(f"| {gpu} | {len(folds)} | {cells[0]} | {cells[1]} | {statistics.median(folds):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation-dir", default="../shared/validation", type=Path)
    ap.add_argument("--out", default="output/validation", type=Path)
    a = ap.parse_args()

    print("| platform | groups | shipped (in-sample for fitted stacks) | whole set left out |")
    print("|---|---:|---:|---:|")
    shipped = group_medians(a.out / "default/argonne-llm-inference-bench/all_results")
    left_out = group_medians(a.out / "cv/argonne-llm-inference-bench/all_results")
    for p in sorted(shipped):
        cv = left_out.get(p)
        cv_s = f"{statistics.median(cv):.1f}" if cv else "-"
        print(f"| {p} | {len(shipped[p])} | {statistics.median(shipped[p]):.1f} | {cv_s} |")

    src = a.validation_dir / "argonne-llm-inference-bench/All_results.csv"
    rows = list(csv.reader(src.open()))
    header, col = rows[0], rows[0].index("Model")
    work = a.out / "argonne-folds"
    for name, models in (("small", SMALL), ("large", LARGE)):
        write_rows(work / name / "argonne-llm-inference-bench/All_results.csv", header,
                   (r for r in rows[1:] if len(r) > col and r[col] in models))
    scores: dict[str, list[float]] = {}
    for fit_on, score in (("small", "large"), ("large", "small")):
        table = work / score / "argonne-llm-inference-bench/All_results.csv"
        for stack, marker in STACKS.items():
            fitted = work / f"{stack}-fit-on-{fit_on}.toml"
            run(["fit-stack", "--serving-stack", stack, "--set",
                 f"argonne-llm-inference-bench={work / fit_on / 'argonne-llm-inference-bench/All_results.csv'}",
                 "--output", str(fitted)])
            out = work / f"score-{score}-{stack}"
            run(["validate", str(table), "--serving-stack", str(fitted), "--output-dir", str(out)])
            for p, v in group_medians(out).items():
                if p.startswith(marker):
                    scores.setdefault(p, []).extend(v)
    print()
    print("| platform | groups | leave-model-group-out |")
    print("|---|---:|---:|")
    for p in sorted(scores):
        print(f"| {p} | {len(scores[p])} | {statistics.median(scores[p]):.1f} |")
    trtllm_leave_gpu_out(rows, a.out)


if __name__ == "__main__":
    main()
