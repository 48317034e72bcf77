#!/usr/bin/env python3
"""Restate NVIDIA AIConfigurator's collected measurements in servesim's formats.

Reads the Parquet tables and the silicon sample from a git snapshot of
github.com/ai-dynamo/aiconfigurator (a bare git directory; nothing is checked
out) and writes the CSV files of these measurement folders:

    tp-collectives/allreduce.csv, tp-collectives/nccl_other.csv
    gemm/<gpu>__<dtype>.csv, gemm/manifest.csv
    moe/<gpu>__<format>.csv, moe/manifest.csv
    attention/<gpu>__{context,generation}.csv, attention/manifest.csv
    serving-aiconfigurator-silicon/serving_summary.csv

Usage (needs pyarrow; everything else is the standard library):

    python3 extract_aiconfigurator.py GIT_DIR COMMIT OUT_DIR

Deterministic: the same snapshot gives the same bytes.
"""
import collections
import csv
import io
import os
import re
import statistics
import subprocess
import sys

import pyarrow.parquet as pq

DATA = "aic-core/src/aiconfigurator_core/systems/data"
SAMPLE = "aic-core/src/aiconfigurator_core/systems/silicon_sample.csv"

# AIConfigurator system name -> servesim hardware catalog slug (None: no entry).
SLUG = {
    "a100_sxm": "a100-sxm4-80gb",
    "h100_sxm": "h100-sxm5-80gb",
    "h200_sxm": "h200-sxm-141gb",
    "b200_sxm": "b200",
    "gb200": "gb200",
    "l40s": "l40s",
    "rtx_pro_6000_server": "rtx-pro-6000-blackwell-server",
    "b300_sxm": "b300-sxm (no catalog entry)",
    "gb300": "gb300 (no catalog entry)",
}
# One vLLM collection per GPU for the kernel tables: 0.19.0 (the version of the
# LLMServingSim profiles) where it exists, else the nearest that does.
KERNEL_VERSION = {
    "a100_sxm": "0.14.0",
    "h100_sxm": "0.19.0",
    "h200_sxm": "0.19.0",
    "b200_sxm": "0.19.0",
    "gb200": "0.19.0",
    "l40s": "0.24.0",
    "rtx_pro_6000_server": "0.19.0",
}
# H200's 0.19.0 context-attention table is faster than the GPU's peak (e.g. one
# 4096-token causal prompt, 32 heads of 128, in 78 us = 1.76 PFLOP/s), so its
# attention comes from the 0.18.0 collection, which agrees with H100.
ATTENTION_VERSION = dict(KERNEL_VERSION, h200_sxm="0.18.0")
GEMM_DTYPES = ("bfloat16", "fp8")


def kernel_generation(vllm_version):
    """`v1` for vLLM's V1-engine releases (0.8 and later: PyTorch 2.6 or newer and its
    cuBLAS), `v0` before; servesim matches it against a serving stack's generation."""
    major, minor = (int(x) for x in vllm_version.split(".")[:2])
    return "v1" if (major, minor) >= (0, 8) else "v0"


def git(git_dir, *args, binary=False):
    out = subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True).stdout
    return out if binary else out.decode()


def read_parquet(git_dir, commit, path):
    return pq.read_table(io.BytesIO(git(git_dir, "show", f"{commit}:{path}", binary=True))).to_pylist()


def last_change(git_dir, commit, path):
    return git(git_dir, "log", "-1", "--format=%h %cs", commit, "--", path).strip()


def fmt(x, nd=3):
    return f"{x:.{nd}f}"


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def comm(git_dir, commit, files, out):
    groups = collections.defaultdict(list)
    for path in files:
        m = re.match(rf"{DATA}/([^/]+)/comm/([^/]+)/([^/]+)/(custom_allreduce|nccl)_perf\.parquet$", path)
        if not m:
            continue
        system, backend, folder, table = m.groups()
        if system not in SLUG:
            continue
        for r in read_parquet(git_dir, commit, path):
            version = r.get("version") or f"{folder} (folder name; not recorded)"
            if table == "nccl":
                impl, mode = "nccl", "nccl-tests"
                dtype = r["nccl_dtype"]
                bpe = 2 if dtype == "half" else 1
                dtype = "float16" if dtype == "half" else dtype
            else:
                ks = r["kernel_source"]
                if ks == "TRTLLM":
                    impl, mode = "trtllm-allreduce", "graph"
                elif ks.startswith("vLLM_custom_"):
                    impl, mode = "vllm-all-reduce", ks.rsplit("_", 1)[1]
                elif ks.startswith("SGLang_CustomAllReduce_"):
                    impl, mode = "sglang-all-reduce", ks.rsplit("_", 1)[1]
                else:
                    raise ValueError(ks)
                dtype = r["allreduce_dtype"]
                bpe = 2
            key = (SLUG[system], r["num_gpus"], impl, version, mode, r["op_name"], dtype, r["message_size"] * bpe)
            groups[key].append((r["latency"] * 1000.0, f"{system}/comm/{backend}/{folder}"))
    allreduce, other = [], []
    for key in sorted(groups, key=lambda k: (k[0], k[2], k[3], k[4], k[5], k[6], k[1], k[7])):
        vals = groups[key]
        lat = statistics.median(v for v, _ in vals)
        srcs = "+".join(sorted(set(s for _, s in vals)))
        row = [key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7], fmt(lat), len(vals), srcs]
        (allreduce if key[5] == "all_reduce" else other).append(row)
    header = ["gpu", "num_gpus", "implementation", "version", "mode", "collective", "dtype",
              "message_bytes", "latency_us", "samples", "source_note"]
    write_csv(f"{out}/tp-collectives/allreduce.csv", header, allreduce)
    write_csv(f"{out}/tp-collectives/nccl_other.csv", header, other)
    print("comm", len(allreduce), len(other))


def gemm(git_dir, commit, out):
    manifest = []
    for system, version in KERNEL_VERSION.items():
        path = f"{DATA}/{system}/gemm/vllm/{version}/gemm_perf.parquet"
        rows = read_parquet(git_dir, commit, path)
        for dtype in GEMM_DTYPES:
            sel = [r for r in rows if r["gemm_dtype"] == dtype]
            if not sel:
                continue
            seen = collections.defaultdict(list)
            for r in sel:
                seen[(r["m"], r["n"], r["k"])].append(r["latency"] * 1000.0)
            body = []
            for (m, n, k) in sorted(seen):
                t = statistics.median(seen[(m, n, k)])
                body.append([m, n, k, fmt(t), fmt(2.0 * m * n * k / (t * 1e-6) / 1e12, 2)])
            name = f"{SLUG[system]}__{dtype}.csv"
            write_csv(f"{out}/gemm/{name}", ["m", "n", "k", "time_us", "tflops"], body)
            kinds = sorted(set(r["kernel_source"] for r in sel))
            manifest.append([name, SLUG[system], sel[0]["device"], dtype, "vllm", sel[0]["version"],
                             "|".join(kinds), len(body), path, last_change(git_dir, commit, path),
                             kernel_generation(sel[0]["version"])])
    write_csv(f"{out}/gemm/manifest.csv",
              ["file", "gpu", "device_name", "dtype", "engine", "engine_version", "kernel_source", "rows",
               "source_path", "source_last_change", "kernel_generation"], manifest)
    print("gemm", len(manifest))


# The fused-MoE formats restated: bf16 with every routing distribution; the
# quantized formats with balanced routing only (the rows servesim reads), to keep
# the files small.
MOE_DTYPES = ("bfloat16", "fp8", "fp8_block", "nvfp4", "w4a16_mxfp4", "int4_wo")


def moe(git_dir, commit, out):
    manifest = []
    for system, version in KERNEL_VERSION.items():
        path = f"{DATA}/{system}/moe/vllm/{version}/moe_perf.parquet"
        all_rows = read_parquet(git_dir, commit, path)
        for dtype in MOE_DTYPES:
            rows = [r for r in all_rows if r["moe_dtype"] == dtype
                    and (dtype == "bfloat16" or r["distribution"] == "balanced")]
            if not rows:
                continue
            seen = collections.defaultdict(list)
            for r in rows:
                key = (r["hidden_size"], r["inter_size"], r["num_experts"], r["topk"], r["moe_tp_size"],
                       r["moe_ep_size"], r["distribution"], r["num_tokens"])
                seen[key].append(r["latency"] * 1000.0)
            body = [[*key, fmt(statistics.median(v)), len(v)] for key, v in sorted(seen.items())]
            name = f"{SLUG[system]}__{dtype}.csv"
            write_csv(f"{out}/moe/{name}", ["hidden_size", "inter_size", "num_experts", "topk", "moe_tp", "moe_ep",
                                            "distribution", "num_tokens", "time_us", "samples"], body)
            manifest.append([name, SLUG[system], rows[0]["device"], dtype,
                             "|".join(sorted(set(r["version"] for r in rows))),
                             "|".join(sorted(set(r["kernel_source"] for r in rows))), len(body), path,
                             last_change(git_dir, commit, path)])
    write_csv(f"{out}/moe/manifest.csv",
              ["file", "gpu", "device_name", "moe_dtype", "engine_version", "kernel_source", "rows", "source_path",
               "source_last_change"], manifest)
    print("moe", len(manifest))


def attention(git_dir, commit, out):
    manifest = []
    for system, version in ATTENTION_VERSION.items():
        for phase in ("context", "generation"):
            path = f"{DATA}/{system}/attention/vllm/{version}/{phase}_attention_perf.parquet"
            rows = read_parquet(git_dir, commit, path)
            sel = [r for r in rows if r["kv_cache_dtype"] == "bfloat16" and r.get("window_size", 0) in (0, None)]
            seen = collections.defaultdict(list)
            for r in sel:
                if phase == "context":
                    key = (r["batch_size"], r["isl"], r["num_heads"], r["num_key_value_heads"], r["head_dim"])
                else:
                    key = (r["batch_size"], r["step"] + 1, r["num_heads"], r["num_key_value_heads"], r["head_dim"])
                seen[key].append((r["latency"] * 1000.0, r["version"], r["kernel_source"]))
            body = []
            for key in sorted(seen, key=lambda k: (k[4], k[2], k[3], k[0], k[1])):
                vals = seen[key]
                body.append([*key, fmt(statistics.median(v for v, _, _ in vals)), len(vals)])
            cols = ["batch_size", "prompt_tokens" if phase == "context" else "context_tokens",
                    "num_heads", "num_kv_heads", "head_dim", "time_us", "samples"]
            name = f"{SLUG[system]}__{phase}.csv"
            write_csv(f"{out}/attention/{name}", cols, body)
            versions = sorted(set(v for vals in seen.values() for _, v, _ in vals))
            kinds = sorted(set(k for vals in seen.values() for _, _, k in vals))
            manifest.append([name, SLUG[system], sel[0]["device"], phase, "|".join(versions), "|".join(kinds),
                             len(body), path, last_change(git_dir, commit, path)])
    write_csv(f"{out}/attention/manifest.csv",
              ["file", "gpu", "device_name", "phase", "engine_version", "kernel_source", "rows", "source_path",
               "source_last_change"], manifest)
    print("attention", len(manifest))


# Provenance strings of the rows that are InferenceX benchmark results
# (github.com/SemiAnalysisAI/InferenceX): dumps of its results database, whose rows
# carry `config_id` and `workflow_run_id` as its `benchmark_results` table does, and
# its dated CSV exports. 458 of these rows equal InferenceX's published mean TTFT and
# TPOT to six decimals (docs/validation.md, "Whose client measured the
# AIConfigurator rows"); none of the gap-analysis rows do.
INFERENCEX = (re.compile(r"^db-dump/.*workflow_run_id="), re.compile(r"^source_file=\d{4}-\d\d-\d\d\.csv;"))


def client(src):
    """The benchmark client behind a row: `inferencex`, or blank (not recorded)."""
    return "inferencex" if any(p.search(src) for p in INFERENCEX) else ""


def serving(git_dir, commit, out):
    text = git(git_dir, "show", f"{commit}:{SAMPLE}")
    rows = list(csv.DictReader(io.StringIO(text)))
    body = []
    for r in rows:
        if r["mode"] != "agg":
            continue
        src = r["silicon_data_source"]
        meta = dict(p.strip().split("=", 1) for p in src.split(";") if "=" in p)
        image = meta.get("image", "")
        m = re.search(r"(vllm/vllm-openai:\S+|nvcr\.io\S+|lmsysorg/\S+)", src)
        if not image and m:
            image = m.group(1)
        body.append([
            r["backend"], r["backend_version"], SLUG.get(r["system"], r["system"]), r["model_path"],
            r["precision"] or "bf16 (blank in source)", r["gemm_quant_mode"], r["moe_quant_mode"],
            r["tp_size"], r["pp_size"], r["attention_dp_size"], r["moe_tp_size"], r["moe_ep_size"],
            r["isl"], r["osl"], r["batch_size"], meta.get("silicon_concurrency", ""),
            fmt(float(r["silicon_ttft_ms"])), fmt(float(r["silicon_tpot_ms"]), 4),
            meta.get("measured", "")[:10], image.replace("#", "/"), meta.get("wip", ""), r["id"], client(src),
        ])
    body.sort(key=lambda x: (x[0], x[2], x[3], x[1], x[4], int(x[7] or 0), int(x[12]), int(x[13]), int(x[14]), x[21]))
    # The sample lists some measurements twice (one per source file): the same
    # deployment with identical TTFT and TPOT. Keep the first, count the copies.
    merged = collections.OrderedDict()
    for row in body:
        key = tuple(row[:18])
        if key in merged:
            merged[key][-2] += 1
            merged[key][-1] = merged[key][-1] or row[22]
        else:
            merged[key] = row[:22] + [1, row[22]]
    body = list(merged.values())
    write_csv(f"{out}/serving-aiconfigurator-silicon/serving_summary.csv",
              ["engine", "engine_version", "gpu", "model", "precision", "gemm_quant", "moe_quant", "tp", "pp",
               "attention_dp", "moe_tp", "moe_ep", "isl", "osl", "batch_size", "concurrency", "ttft_ms",
               "tpot_ms", "measured_date", "image", "wip", "source_id", "copies", "client"], body)
    print("serving", len(body))


def main():
    git_dir, commit, out = sys.argv[1:4]
    files = git(git_dir, "ls-tree", "-r", "--name-only", commit, DATA).split()
    comm(git_dir, commit, files, out)
    gemm(git_dir, commit, out)
    moe(git_dir, commit, out)
    attention(git_dir, commit, out)
    serving(git_dir, commit, out)


if __name__ == "__main__":
    main()
