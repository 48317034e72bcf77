#!/usr/bin/env python3
"""Extract the vLLM baseline burst runs of gpustack's Performance Lab pages.

Reads `docs/performance-lab/<model>/<gpu>.md` from a git checkout of gpustack/gpustack
(Apache-2.0) and writes one CSV row per `vllm bench serve` result block that follows a
"Baseline serving script" (plain `vllm serve <model>`, the engine's defaults) under
"Baseline benchmark results": a random-dataset burst (no --request-rate: every request
sent at t = 0). Totals are kept as printed; per-request lengths are totals / requests.

Usage: extract_gpustack.py REPO_GIT_DIR COMMIT OUT_CSV
"""
import csv
import re
import subprocess
import sys

FIELDS = {
    "Successful requests": "requests",
    "Benchmark duration (s)": "duration_s",
    "Total input tokens": "total_input_tokens",
    "Total generated tokens": "total_generated_tokens",
    "Output token throughput (tok/s)": "output_tok_s",
    "Mean TTFT (ms)": "mean_ttft_ms",
    "Median TTFT (ms)": "median_ttft_ms",
    "Mean TPOT (ms)": "mean_tpot_ms",
    "Median TPOT (ms)": "median_tpot_ms",
    "Mean ITL (ms)": "mean_itl_ms",
}
GPUS = {"A100 SXM 80GB": "a100-sxm4-80gb", "A100 SXM": "a100-sxm4-80gb",
        "H100 SXM": "h100-sxm5-80gb", "H200 SXM": "h200-sxm-141gb"}


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          text=True).stdout


def hardware(text):
    m = re.search(r"### Hardware\s+(.+)", text)
    line = m.group(1).strip()
    n = re.match(r"(\d+) ×", line)
    count = int(n.group(1)) if n else 1
    for name, slug in GPUS.items():
        if name in line:
            return slug, count, line
    return None, count, line


def main():
    repo, commit, out = sys.argv[1:4]
    pages = [p for p in git(repo, "ls-tree", "-r", "--name-only", commit,
                            "docs/performance-lab").split()
             if re.match(r"docs/performance-lab/[^/]+/[^/]+\.md$", p)]
    rows = []
    for page in sorted(pages):
        text = git(repo, "show", f"{commit}:{page}")
        version = re.search(r"- vLLM:? v?([0-9][0-9a-z.]*)", text)
        if not version or "Baseline benchmark results" not in text:
            continue
        gpu, count, hw_line = hardware(text)
        if gpu is None:
            continue
        serve = re.search(r'Baseline serving script"\s+```bash\s+(vllm serve[^\n]*)', text)
        cmd = serve.group(1).strip()
        model = cmd.split()[2]
        tp = re.search(r"(?:-tp|--tensor-parallel-size)[ =](\d+)", cmd)
        results = text.split('Baseline benchmark results"', 1)[1].split("```", 2)[1]
        for block in re.split(r"\n\s*# ", results)[1:]:
            label = block.splitlines()[0].strip()
            row = {"page": page, "gpu": gpu, "hardware_line": hw_line, "num_gpus": count,
                   "tensor_parallel_size": int(tp.group(1)) if tp else 1,
                   "engine": "vllm", "engine_version": version.group(1), "model": model,
                   "serve_command": cmd, "case": label}
            for line in block.splitlines():
                if ":" not in line:
                    continue
                key, val = (s.strip() for s in line.split(":", 1))
                if key in FIELDS:
                    row[FIELDS[key]] = val
            if "requests" in row:
                rows.append(row)
    cols = ["page", "gpu", "hardware_line", "num_gpus", "tensor_parallel_size", "engine",
            "engine_version", "model", "serve_command", "case", *FIELDS.values()]
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} rows from {len({r['page'] for r in rows})} pages -> {out}")


if __name__ == "__main__":
    main()
