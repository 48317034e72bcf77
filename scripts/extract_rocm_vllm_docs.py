#!/usr/bin/env python3
"""Restate the MI300X latency and throughput tables of ROCm/vllm's dev-docker README,
one block of rows per published table, as perf_model/measurements/serving-rocm-vllm-mi300x/.

AMD's vLLM fork (github.com/ROCm/vllm) published, with each `rocm/vllm-dev` image, a table
of `benchmark_latency.py` and `benchmark_throughput.py` results on 8 × MI300X in
`docs/dev-docker/README.md`. This reads every version of that file in a local clone,
keeps each distinct table once (the first commit that shows it), and writes:

  latency.csv     one row per (image, model, batch, input, output): mean latency, s
  throughput.csv  one row per (image, model, input, output): the README's tokens/s

Usage: scripts/extract_rocm_vllm_docs.py --repo PATH/TO/ROCm-vllm [--out DIR]
Deterministic: the same clone gives byte-identical files.
"""
import argparse
import csv
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = "docs/dev-docker/README.md"


def git(repo, *args):
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def first(pattern, text, default=""):
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1).strip() if m else default


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def model_id(label):
    """`Llama 3.1 70B (amd/Llama-3.1-70B-Instruct-FP8-KV)` → the checkpoint. Some tables
    label the 405B block with the 70B checkpoint id: the size in the label wins."""
    size = first(r"Llama 3\.1 (\d+B)", label)
    ckpt = first(r"\((amd/[^)]+)\)", label)
    if size and size not in ckpt:
        ckpt = re.sub(r"\d+B", size, ckpt, count=1)
    return ckpt


def tables(text):
    """The latency and throughput rows of one README version."""
    lat, thr = [], []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        head = lines[i]
        kind = None
        if re.search(r"\|\s*Batch Size\s*\|.*Latency \((ms|sec)\)", head):
            kind, scale = "lat", 1e-3 if "(ms)" in head else 1.0
        elif re.search(r"\|\s*Num Prompts\s*\|.*Throughput", head):
            kind = "thr"
        if kind is None:
            i += 1
            continue
        i += 2  # header and separator
        label = precision = tp = ""
        while i < len(lines) and lines[i].strip().startswith("|"):
            c = cells(lines[i])
            if c[0]:
                label, precision, tp = c[0], c[1], c[2]
            if kind == "lat" and len(c) >= 7:
                lat.append((model_id(label), precision, tp, c[3], c[4], c[5],
                            f"{float(c[6]) * scale:.3f}"))
            elif kind == "thr" and len(c) >= 8:
                thr.append((model_id(label), precision, tp, c[3], c[4], c[5], c[6], c[7]))
            i += 1
    return lat, thr


def engine(text, version):
    """V1 only from the image whose notes say it is on by default (vLLM 0.9.1)."""
    return "V1" if "V1 on by default" in text else "V0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True, help="a clone of github.com/ROCm/vllm")
    ap.add_argument("--out", default=str(ROOT / "perf_model/measurements/serving-rocm-vllm-mi300x"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commits = git(args.repo, "log", "--reverse", "--format=%H %ad", "--date=short", "--", README)
    seen_lat, seen_thr = set(), set()
    lat_rows, thr_rows = [], []
    for line in commits.splitlines():
        commit, date = line.split()
        text = git(args.repo, "show", f"{commit}:{README}")
        version = first(r"^\s*-\s*vLLM v?([0-9.]+)", text)
        meta = [commit[:12], date, version, engine(text, version),
                first(r"ROCm™ ([0-9.]+)", text), first(r"HipblasLT ([0-9.]+)", text, "not stated"),
                first(r"(Supermicro [^\n]*?Processors)", text, "not stated")]
        lat, thr = tables(text)
        if lat and (version, tuple(lat)) not in seen_lat:
            seen_lat.add((version, tuple(lat)))
            lat_rows += [meta + list(r) for r in lat]
        if thr and (version, tuple(thr)) not in seen_thr:
            seen_thr.add((version, tuple(thr)))
            thr_rows += [meta + list(r) for r in thr]
    head = ["readme_commit", "date", "vllm_version", "engine", "rocm_version",
            "hipblaslt_version", "system"]
    with open(out / "latency.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(head + ["model", "precision", "tp", "batch_size", "input_len",
                           "output_len", "latency_s"])
        w.writerows(lat_rows)
    with open(out / "throughput.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(head + ["model", "precision", "tp", "input_len", "output_len",
                           "num_prompts", "max_num_seqs", "throughput_tok_per_s"])
        w.writerows(thr_rows)
    print(f"{len(lat_rows)} latency rows, {len(thr_rows)} throughput rows -> {out}")


if __name__ == "__main__":
    main()
