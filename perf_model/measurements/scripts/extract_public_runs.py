#!/usr/bin/env python3
"""Restate public serving-benchmark result files in the formats `servesim validate` reads.

Reads git snapshots of the source repositories (see `serving-public-runs/README.md`) and
writes, under `perf_model/measurements/serving-public-runs/`:

* `llm-k8s/*.json` — vLLM `benchmark_serving.py --save-result` files of surajssd/llm-k8s
  (commit 58b61c5): the same JSON object without `generated_texts`, every number of the
  per-request lists rounded to 1 µs (6 decimals of a second).
* `benchmaq-sglang/*.jsonl` — SGLang `bench_serving --output-details` lines of
  Scicom-AI-Enterprise-Organization/llm-benchmaq (commit 3e344dd): the same object
  without `generated_texts`, lists rounded to 1 µs, and `server_info` cut to the
  serving settings (the version, parallelism, memory and scheduler arguments).
* `benchmaq-vllm/*.json` — `vllm bench serve --save-detailed` files of the same repository
  (commit fef8911): the same JSON object without `generated_texts`, with each request's
  token gaps (`itls`) replaced by its end-to-end latency (`e2els` = `ttfts` + Σ `itls`),
  lists rounded to 1 µs.
* `benchmaxxing-vllm/<gpu>/<model>/*.json` — `vllm bench serve --save-result` summaries
  (no per-request lists) of Scicom-AI-Enterprise-Organization/llm-benchmaxxing (commit
  36be1ae), bursts of 100 prompts on 8 × H100 SXM, H200 SXM and B200: unchanged.
* `benchmaxxing-sglang/<gpu>/gpt-oss-120b/*.jsonl` — SGLang `bench_serving
  --output-details` lines of the same repository, on 8 × A100 SXM, H100 SXM and H200
  SXM: as `benchmaq-sglang`, with the memory each server reported per GPU
  (`server_info.memory_usage`).

Deterministic: the same snapshots give byte-identical files.

Usage: extract_public_runs.py --mirror /work/.mirror [--out DIR]
"""
import argparse
import json
import subprocess
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "serving-public-runs"
K8S_REPO = "surajssd+llm-k8s"
K8S_COMMIT = "58b61c59450e06073120a8ad166c1e9c333851a7"
K8S_ROOT = "results_serving_meta-llama-Llama-3.3-70B-Instruct"
# One node at TP8, and two nodes of four GPUs at TP4 × PP2 over InfiniBand, twice (the
# sweep without InfiniBand, 02_tp4_pp2_no_IB, is left out: NCCL over TCP, a link
# servesim has no entry for; its results are within a few per cent of the IB runs').
K8S_DIRS = {"01_tp8_pp1": (8, 1), "03_tp4_pp2_IB": (4, 2), "04_tp4_pp2_IB": (4, 2)}
BMQ_REPO = "Scicom-AI-Enterprise-Organization+llm-benchmaq"
BMQ_SGLANG_COMMIT = "3e344dd6c8234f82d5daaa184c0f9fd5f6f0848b"
BMQ_VLLM_COMMIT = "fef8911"
BMX_REPO = "Scicom-AI-Enterprise-Organization+llm-benchmaxxing"
BMX_COMMIT = "36be1ae1d87bb6a39f496aaac42b0544186f798e"
# RunPod pod folders of llm-benchmaxxing and the catalog's name of their GPU.
BMX_GPUS = {"runpod_h100sxm": "h100-sxm5-80gb", "runpod_h200sxm": "h200-sxm-141gb",
            "runpod_b200": "b200"}
BMX_SGLANG_GPUS = {"runpod_a100sxm": "a100-sxm4-80gb", "runpod_h100sxm": "h100-sxm5-80gb",
                   "runpod_h200sxm": "h200-sxm-141gb"}
# Models of the vLLM bursts replayed.
BMX_MODELS = {"Qwen3-32B": "Qwen/Qwen3-32B", "gpt-oss-120b": "openai/gpt-oss-120b",
              "GLM-4.7": "zai-org/GLM-4.7", "GLM-4.7-FP8": "zai-org/GLM-4.7-FP8"}
# llm-benchmaxxing's gpt-oss-120b is a 16-bit checkpoint, not OpenAI's MXFP4 one: its
# SGLang servers report 27.37 GB of weights per GPU at TP8 and 54.62 at TP4 on every GPU
# (`memory_usage`, kept below; MXFP4 experts would take about 8 GB at TP8), and the
# runner's own gpt-oss example serves a bf16 fine-tune of it (serving-public-runs/README.md).
BMX_CHECKPOINT_FLAGS = {"gpt-oss-120b": " --quantization none"}
# The server settings kept from SGLang's `server_info` (the rest are switches at their
# defaults for features these runs do not use).
SERVER_KEYS = [
    "version", "model_path", "dtype", "quantization", "kv_cache_dtype", "tp_size", "dp_size",
    "pp_size", "load_balance_method", "mem_fraction_static", "max_running_requests",
    "max_total_tokens", "max_total_num_tokens", "chunked_prefill_size", "max_prefill_tokens",
    "context_length", "page_size", "schedule_policy", "schedule_conservativeness",
    "disable_radix_cache", "attention_backend", "sampling_backend", "cuda_graph_max_bs",
    "disable_cuda_graph", "enable_torch_compile", "disable_overlap_schedule",
    "enable_mixed_chunk", "enable_dp_attention", "disable_custom_all_reduce", "stream_interval",
]
# vLLM runs kept: every model and layout at 1,024 tokens in, all five concurrencies,
# and the 4,096-token sweep of the two ends of the model range.
VLLM_MODELS = ["Qwen3-8B", "Qwen3-14B", "Qwen3-32B", "Llama-3.1-70B", "gpt-oss-120b"]


def git_show(mirror, repo, commit, path):
    return subprocess.run(
        ["git", "-C", str(Path(mirror) / repo / "repo"), "show", f"{commit}:{path}"],
        check=True, capture_output=True, text=True,
    ).stdout


def git_ls(mirror, repo, commit, folder):
    out = subprocess.run(
        ["git", "-C", str(Path(mirror) / repo / "repo"), "ls-tree", "--name-only", commit, folder + "/"],
        check=True, capture_output=True, text=True,
    ).stdout
    return sorted(out.split())


def rounded(v):
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, list):
        return [rounded(x) for x in v]
    return v


def slim(obj, lists):
    out = {}
    for k, v in obj.items():
        if k == "generated_texts":
            continue
        out[k] = rounded(v) if k in lists else v
    return out


MANIFEST_HEADER = "file,model,hardware,tensor_parallel,data_parallel,serving_stack,engine_version,flags"
# What the sources state for every run of a folder (README.md gives where each comes from).
K8S_RUN = ("meta-llama/Llama-3.3-70B-Instruct", "a100-sxm4-40gb", "vllm-v1-sync", "0.8.3",
           "--enable-prefix-caching")
# Pipeline parallelism ran on vLLM 0.8's V0 engine (the servers' logs), over Ray, four
# GPUs per node.
K8S_PP_RUN = ("meta-llama/Llama-3.3-70B-Instruct", "a100-sxm4-40gb", "vllm-0.6", "0.8.3",
              "--enable-prefix-caching --pipeline-parallel-size 2 --gpus-per-node 4")
SGLANG_MODELS = {"Llama3.1-70B": "meta-llama/Llama-3.1-70B", "Qwen3-8B": "Qwen/Qwen3-8B",
                 "Qwen3-14B": "Qwen/Qwen3-14B"}
VLLM_IDS = {"Qwen3-8B": "Qwen/Qwen3-8B", "Qwen3-14B": "Qwen/Qwen3-14B",
            "Qwen3-32B": "Qwen/Qwen3-32B", "Llama-3.1-70B": "meta-llama/Llama-3.1-70B",
            "gpt-oss-120b": "openai/gpt-oss-120b"}


def layout(stem):
    """(TP, DP) from a benchmaq file name (`…_TP4_DP2_…` or `tp4_dp2_…`)."""
    low = stem.lower()
    tp = int(low.split("tp")[1].split("_")[0])
    dp = int(low.split("dp")[1].split("_")[0])
    return tp, dp


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path.relative_to(OUT.parent)} ({len(text)} bytes)")


def k8s(mirror, out):
    rows = [MANIFEST_HEADER]
    for folder, (tp, pp) in K8S_DIRS.items():
        for name in git_ls(mirror, K8S_REPO, K8S_COMMIT, f"{K8S_ROOT}/{folder}"):
            if not name.endswith(".json") or "sharegpt_qps" not in name:
                continue
            obj = json.loads(git_show(mirror, K8S_REPO, K8S_COMMIT, name))
            obj = slim(obj, {"ttfts", "itls", "input_lens", "output_lens"})
            rel = f"{folder}/{Path(name).name}"
            write(out / "llm-k8s" / rel, json.dumps(obj, indent=None) + "\n")
            model, hw, stack, version, flags = K8S_RUN if pp == 1 else K8S_PP_RUN
            rows.append(f"{rel},{model},{hw},{tp},1,{stack},{version},{flags}")
    write(out / "llm-k8s" / "runs.csv", "\n".join(rows) + "\n")


def sglang(mirror, out):
    rows = [MANIFEST_HEADER]
    base = "benchmarks/sglang/runpod_h100sxm"
    for model in ["Llama3.1-70B", "Qwen3-8B", "Qwen3-14B"]:
        for name in git_ls(mirror, BMQ_REPO, BMQ_SGLANG_COMMIT, f"{base}/{model}"):
            if not name.endswith(".jsonl"):
                continue
            lines = []
            for line in git_show(mirror, BMQ_REPO, BMQ_SGLANG_COMMIT, name).splitlines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                info = obj.get("server_info", {})
                obj["server_info"] = {k: info[k] for k in SERVER_KEYS if k in info}
                obj = slim(obj, {"ttfts", "itls", "input_lens", "output_lens"})
                # Python's json writes Infinity for the burst's rate, as SGLang did.
                lines.append(json.dumps(obj))
            write(out / "benchmaq-sglang" / model / Path(name).name, "\n".join(lines) + "\n")
            tp, dp = layout(Path(name).stem)
            rows.append(f"{model}/{Path(name).name},{SGLANG_MODELS[model]},h100-sxm5-80gb,{tp},{dp},"
                        "sglang,0.5.9,--gpu-memory-utilization 0.9 --max-model-len 12000")
    write(out / "benchmaq-sglang" / "runs.csv", "\n".join(rows) + "\n")


def vllm_runs(mirror, model):
    base = f"benchmarks/vllm/runpod_h100sxm/{model}"
    for name in git_ls(mirror, BMQ_REPO, BMQ_VLLM_COMMIT, base):
        stem = Path(name).name
        # (the folder also holds January's summary-only runs, `run_1_…_CTX…`, without
        # per-request lists: left out)
        if not stem.endswith(".json") or "_in" not in stem:
            continue
        isl = stem.split("_in")[1].split("_")[0]
        if model == "gpt-oss-120b":
            # The MoE model's TP4 × DP2 runs are left out: vLLM's data parallelism of an
            # MoE model without expert parallelism shards the experts over all 8 GPUs and
            # steps the two ranks together, a layout servesim does not describe.
            if "_TP8_" in stem and isl in ("1024", "2048"):
                yield name
        elif isl == "1024" or (isl == "4096" and model in ("Qwen3-8B", "Llama-3.1-70B")):
            yield name


def vllm(mirror, out):
    manifest = [MANIFEST_HEADER]
    for model in VLLM_MODELS:
        for name in vllm_runs(mirror, model):
            obj = json.loads(git_show(mirror, BMQ_REPO, BMQ_VLLM_COMMIT, name))
            # Per request: E2E = TTFT + the token gaps (what the client's latency is),
            # in place of the gaps themselves.
            obj["e2els"] = [t + sum(g) for t, g in zip(obj["ttfts"], obj["itls"])]
            del obj["itls"]
            obj = slim(obj, {"ttfts", "e2els", "start_times", "input_lens", "output_lens"})
            stem = Path(name).stem
            if stem.startswith("benchmaq-"):
                stem = stem.split("_", 1)[1]
            write(out / "benchmaq-vllm" / model / f"{stem}.json", json.dumps(obj) + "\n")
            tp, dp = layout(stem)
            manifest.append(f"{model}/{stem}.json,{VLLM_IDS[model]},h100-sxm5-80gb,{tp},{dp},"
                            "vllm-v1,0.15.0,--gpu-memory-utilization 0.9")
    write(out / "benchmaq-vllm" / "runs.csv", "\n".join(manifest) + "\n")


def benchmaxxing_vllm(mirror, out):
    """The vLLM 0.15 bursts (`setup.py` pins vllm==0.15.0 at the results' commit, c776cb0):
    one server per layout runs every prompt length in turn. A dense model's both layouts;
    an MoE model's TP8 only (as `vllm_runs`: vLLM's data parallelism of an MoE model
    without expert parallelism is a layout servesim does not describe)."""
    manifest = [MANIFEST_HEADER]
    for pod, gpu in BMX_GPUS.items():
        for model, model_id in BMX_MODELS.items():
            for name in git_ls(mirror, BMX_REPO, BMX_COMMIT, f"benchmarks/{pod}/{model}"):
                stem = Path(name).stem
                if not name.endswith(".json") or (model != "Qwen3-32B" and "_TP8_" not in stem):
                    continue
                # `run_1_TP8_DP1_CTX1024_C100_P100_O128` (some pods prefix it with
                # `benchmark_<model>_<pod>_`): the run's own part.
                run = "TP" + stem.split("_TP", 1)[1]
                text = git_show(mirror, BMX_REPO, BMX_COMMIT, name)
                json.loads(text)
                rel = f"{gpu}/{model}/{run}.json"
                write(out / "benchmaxxing-vllm" / rel, text.strip() + "\n")
                tp, dp = layout(run)
                manifest.append(f"{rel},{model_id},{gpu},{tp},{dp},vllm-v1,0.15.0,"
                                "--gpu-memory-utilization 0.9"
                                + BMX_CHECKPOINT_FLAGS.get(model, ""))
    write(out / "benchmaxxing-vllm" / "runs.csv", "\n".join(manifest) + "\n")


def benchmaxxing_sglang(mirror, out):
    """SGLang's bursts of gpt-oss-120b at TP8 (the TP4 × DP2 runs left out as for vLLM)."""
    manifest = [MANIFEST_HEADER]
    for pod, gpu in BMX_SGLANG_GPUS.items():
        for name in git_ls(mirror, BMX_REPO, BMX_COMMIT, f"benchmarks/sglang/{pod}/gpt-oss-120b"):
            if not name.endswith(".jsonl") or "_tp8_dp1_" not in name:
                continue
            lines, version = [], None
            for line in git_show(mirror, BMX_REPO, BMX_COMMIT, name).splitlines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                info = obj.get("server_info", {})
                version = info.get("version", version)
                obj["server_info"] = {k: info[k] for k in SERVER_KEYS if k in info}
                # What the server held per GPU (GB of weights and KV cache, tokens):
                # the evidence of the checkpoint's format.
                usage = (info.get("internal_states") or [{}])[0].get("memory_usage")
                if usage is not None:
                    obj["server_info"]["memory_usage"] = usage
                lines.append(json.dumps(slim(obj, {"ttfts", "itls", "input_lens", "output_lens"})))
            rel = f"{gpu}/gpt-oss-120b/{Path(name).name}"
            write(out / "benchmaxxing-sglang" / rel, "\n".join(lines) + "\n")
            tp, dp = layout(Path(name).stem)
            manifest.append(f"{rel},openai/gpt-oss-120b,{gpu},{tp},{dp},sglang,{version},"
                            "--gpu-memory-utilization 0.9 --max-model-len 12000"
                            + BMX_CHECKPOINT_FLAGS["gpt-oss-120b"])
    write(out / "benchmaxxing-sglang" / "runs.csv", "\n".join(manifest) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", required=True, help="folder of git snapshots (<owner>+<repo>/repo)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)
    k8s(args.mirror, out)
    sglang(args.mirror, out)
    vllm(args.mirror, out)
    benchmaxxing_vllm(args.mirror, out)
    benchmaxxing_sglang(args.mirror, out)


if __name__ == "__main__":
    main()
