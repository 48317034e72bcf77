#!/usr/bin/env python3
"""Convert measured operator timings into servesim's profile format.

Reads the copies of the Vidur and LLMServingSim measurement files under
``<shared>/data/`` and writes ``perf_model/profiles/`` (layout and columns in
``perf_model/profiles/README.md``). Python 3.11, standard library only.

    python3 scripts/convert_profiles.py [--shared ../shared] [--out perf_model/profiles]

What it does, per source:

* keeps the median of every statistic (the only one the predictor uses) and
  converts every time to microseconds (``time_us``);
* names operators the way servesim's model description does (``qkv_proj``,
  ``o_proj``, ``gate_up_proj``, ``down_proj``, ...) and records each operator's
  per-GPU shape in ``shapes.csv`` so that the predictor can match shapes
  without knowing the source;
* where a source times a fused operator as separate kernels (LLMServingSim v0
  times q/k/v and gate/up separately) it adds them into the fused operator and
  says how many kernels were added (``kernels``);
* thins grids that are far denser than a fitted model needs (documented in the
  README next to each file) so the committed data stays small.

The output is deterministic: re-running it on the same inputs gives the same
bytes.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import sys
from collections import defaultdict
from pathlib import Path

VIDUR_COMMIT = "7d47513363ec447a741ac5e47241580b47724fbf"
VIDUR_ATTN_COMMIT = "acb95f6cd118071401fa805a0b0bc11bd2018fc6"
VIDUR_CPU_COMMIT = "6d98aa8"
LSS_COMMIT = "5daddb21a545658d5150b535712d0494584b5278"

# Source hardware names -> hardware catalog slugs (perf_model/hardware/<slug>.toml).
LSS_HW = {"RTX4090": "rtx4090", "RTXPRO6000": "rtx-pro-6000-blackwell-server"}
V0_HW = {
    # LLMServingSim does not say which H100; SXM5 is assumed (README).
    "H100": "h100-sxm5-80gb",
    "A6000": "rtx-a6000",
    "RTX3090": "rtx3090",
    "TPU-v6e-1": "tpu-v6e",
}
VIDUR_HW = {"a100": "a100-sxm4-80gb", "h100": "h100-sxm5-80gb", "a40": "a40"}
VIDUR_NET = {
    "a100_dgx": "a100-sxm4-80gb",
    "h100_dgx": "h100-sxm5-80gb",
    # Azure NC A100 v4: A100 80GB PCIe cards, NVLink-bridged in pairs.
    "a100_pairwise_nvlink": "a100-pcie-80gb",
    # h100_pairwise_nvlink (H100 NVL) has no catalog entry and is left out.
    "a40_pairwise_nvlink": "a40",
}

# Layer shapes of the profiled models (values of their HuggingFace config.json).
# hidden, q heads, kv heads, head dim, dense MLP width (0 = none), gated MLP,
# vocabulary, routed experts, experts per token, expert MLP width, q/k norm.
SHAPES = {
    "meta-llama/Llama-3.1-8B": (4096, 32, 8, 128, 14336, True, 128256, 0, 0, 0, False),
    "meta-llama/Llama-3.1-70B": (8192, 64, 8, 128, 28672, True, 128256, 0, 0, 0, False),
    "mistralai/Mixtral-8x7B-v0.1": (4096, 32, 8, 128, 0, True, 32000, 8, 2, 14336, False),
    "Qwen/Qwen3-32B": (5120, 64, 8, 128, 25600, True, 151936, 0, 0, 0, True),
    "Qwen/Qwen3-30B-A3B-Instruct-2507": (2048, 32, 4, 128, 0, True, 151936, 128, 8, 768, True),
}
SHAPE_KEYS = (
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "gated_mlp",
    "vocab_size",
    "num_experts",
    "experts_per_token",
    "expert_intermediate_size",
    "qk_norm",
)

# Vidur's per-model shape comes from the mlp.csv columns; head_dim is hidden/heads.
VIDUR_MODELS_LEFT_OUT = set()


def fmt(x: float) -> str:
    """Times to 4 significant digits (far below measurement noise)."""
    if x == 0:
        return "0"
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.0f}"


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([fmt(v) if isinstance(v, float) else v for v in r])
    path.write_text(buf.getvalue())


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def write_profile_toml(path: Path, meta: dict, shape: dict) -> None:
    lines = [
        "# Written by scripts/convert_profiles.py; columns and sources in perf_model/profiles/README.md.",
    ]
    for k, v in meta.items():
        lines.append(f"{k} = {toml_value(v)}")
    lines.append("")
    lines.append("[shape]")
    for k in SHAPE_KEYS:
        lines.append(f"{k} = {toml_value(shape[k])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def shape_dict(t: tuple) -> dict:
    return dict(zip(SHAPE_KEYS, t))


def linear_shapes(shape: dict, tp: int) -> dict[str, tuple[int, int]]:
    """Per-GPU (in, out) of the linear operators, Megatron-style sharding."""
    h = shape["hidden_size"]
    H = shape["num_attention_heads"]
    K = shape["num_key_value_heads"]
    d = shape["head_dim"]
    out = {
        "qkv_proj": (h, (H + 2 * K) * d // tp),
        "o_proj": (H * d // tp, h),
        "q_proj": (h, H * d // tp),
        "k_proj": (h, K * d // tp),
        "v_proj": (h, K * d // tp),
    }
    i = shape["intermediate_size"]
    if i:
        if shape["gated_mlp"]:
            out["gate_up_proj"] = (h, 2 * i // tp)
            out["gate_proj"] = (h, i // tp)
            out["up_proj"] = (h, i // tp)
        else:
            out["fc1"] = (h, i // tp)
        out["down_proj" if shape["gated_mlp"] else "fc2"] = (i // tp, h)
    e = shape["expert_intermediate_size"]
    if shape["num_experts"]:
        out["router"] = (h, shape["num_experts"])
        out["experts.gate_up_proj"] = (h, 2 * e // tp)
        out["experts.down_proj"] = (e // tp, h)
    return out


def elementwise_shapes(shape: dict, tp: int) -> dict[str, tuple[int, int]]:
    """Per-GPU elements read and written per token by the elementwise operators."""
    h = shape["hidden_size"]
    H = shape["num_attention_heads"]
    K = shape["num_key_value_heads"]
    d = shape["head_dim"]
    i = shape["intermediate_size"]
    qk = (H + K) * d // tp
    out = {
        "embedding": (h, h),
        "norm": (h, h),
        "input_layernorm": (h, h),
        "post_attention_layernorm": (h, h),
        "final_layernorm": (h, h),
        "residual_add": (2 * h, h),
        "rotary_emb": (qk, qk),
        "qk_norm": (qk, qk),
    }
    # MoE models: the activation runs over the expert width (per routed token).
    w = i or shape["expert_intermediate_size"]
    if w:
        out["act_fn"] = ((2 if shape["gated_mlp"] else 1) * w // tp, w // tp)
    return out


def write_shapes(path: Path, shape: dict, tp: int, ops: dict[str, tuple[str, int, int]]) -> None:
    """ops: name -> (kind, kernels, calls_per_layer)."""
    lin = linear_shapes(shape, tp)
    ew = elementwise_shapes(shape, tp)
    rows = []
    for name in sorted(ops):
        kind, kernels, calls = ops[name]
        if kind == "linear":
            i, o = lin[name]
        elif kind == "lm_head":
            i, o = shape["hidden_size"], shape["vocab_size"] // tp
        elif kind == "sampler":
            i, o = shape["vocab_size"], shape["vocab_size"]
        elif kind == "moe":
            i, o = shape["hidden_size"], shape["hidden_size"]
        else:
            i, o = ew[name]
        rows.append([name, kind, i, o, kernels, calls])
    write_csv(
        path,
        ["op", "kind", "in_features", "out_features", "kernels", "calls_per_layer"],
        rows,
    )


# ---------------------------------------------------------------------------
# LLMServingSim perf/ (vLLM 0.19 kernels, µs)
# ---------------------------------------------------------------------------

LSS_DENSE_OPS = {
    # source name -> (our name, kind, calls per layer)
    "embedding": ("embedding", "embedding", 0),
    "layernorm": ("norm", "elementwise", 2),
    "qkv_proj": ("qkv_proj", "linear", 1),
    "qk_norm": ("qk_norm", "elementwise", 1),
    "rotary_emb": ("rotary_emb", "elementwise", 1),
    "o_proj": ("o_proj", "linear", 1),
    "gate_up_proj": ("gate_up_proj", "linear", 1),
    "act_fn": ("act_fn", "elementwise", 1),
    "down_proj": ("down_proj", "linear", 1),
    "final_layernorm": ("final_layernorm", "final", 0),
}


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def convert_lss(shared: Path, out: Path, log: list[str]) -> None:
    root = shared / "data/llmservingsim/perf"
    for hw_dir in sorted(root.iterdir()):
        slug = LSS_HW[hw_dir.name]
        for meta in sorted(hw_dir.glob("*/*/bf16/meta.yaml")):
            model = f"{meta.parent.parent.parent.name}/{meta.parent.parent.name}"
            shape = shape_dict(SHAPES[model])
            mdir = out / slug / model
            tps = sorted(int(p.name[2:]) for p in meta.parent.glob("tp*"))
            text = meta.read_text()
            vllm = next(
                (l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("vllm_version")),
                "?",
            )
            write_profile_toml(
                mdir / "profile.toml",
                {
                    "model": model,
                    "source": "llmservingsim-perf",
                    "repository": "https://github.com/casys-kaist/LLMServingSim",
                    "commit": LSS_COMMIT,
                    "path": f"profiler/perf/{hw_dir.name}/{model}/bf16",
                    "hardware_name": hw_dir.name,
                    "engine": f"vLLM {vllm}",
                    "dtype": "bfloat16",
                    "fused_elementwise": True,
                    "attention_kernel": "unified",
                    "kernel_generation": "v1",
                    "tensor_parallel_sizes": tps,
                },
                shape,
            )
            for tp in tps:
                src = meta.parent / f"tp{tp}"
                dst = mdir / f"tp{tp}"
                ops = {}
                rows = []
                for r in read_rows(src / "dense.csv"):
                    name, kind, calls = LSS_DENSE_OPS[r["layer"]]
                    ops[name] = (kind, 1, calls)
                    rows.append([name, int(r["tokens"]), float(r["time_us"])])
                rows.sort(key=lambda x: (x[0], x[1]))
                write_csv(dst / "ops.csv", ["op", "tokens", "time_us"], rows)
                seq = []
                for r in read_rows(src / "per_sequence.csv"):
                    ops[r["layer"]] = (r["layer"], 1, 0)
                    seq.append([r["layer"], int(r["sequences"]), float(r["time_us"])])
                seq.sort(key=lambda x: (x[0], x[1]))
                write_csv(dst / "per_sequence.csv", ["op", "sequences", "time_us"], seq)
                att = [
                    [int(r["prefill_chunk"]), int(r["kv_prefill"]), int(r["n_decode"]), int(r["kv_decode"]), float(r["time_us"])]
                    for r in read_rows(src / "attention.csv")
                ]
                att.sort()
                write_csv(
                    dst / "attention.csv",
                    ["prefill_chunk", "kv_prefill", "n_decode", "kv_decode", "time_us"],
                    att,
                )
                if (src / "moe.csv").exists():
                    ops["moe"] = ("moe", 1, 1)
                    moe = [
                        [int(r["tokens"]), int(r["activated_experts"]), float(r["time_us"])]
                        for r in read_rows(src / "moe.csv")
                    ]
                    moe.sort()
                    write_csv(dst / "moe.csv", ["tokens", "activated_experts", "time_us"], moe)
                if (src / "skew.csv").exists():
                    convert_skew(src / "skew.csv", dst)
                write_shapes(dst / "shapes.csv", shape, tp, ops)
                log.append(f"{slug}/{model}/tp{tp}: llmservingsim perf ({len(rows)} op rows, {len(att)} attention rows)")


def convert_skew(src: Path, dst: Path) -> None:
    """Median alpha per (regime, n_decode), plus a thinned sample of raw rows."""
    groups = defaultdict(list)
    sample = []
    for r in read_rows(src):
        if r["alpha"] == "":
            continue
        n = int(r["n"])
        groups[(r["regime"], n)].append(float(r["alpha"]))
        # Raw rows kept for validation: half the batch long, one prefill size per regime.
        if r["ratio"] == "0.5" and int(r["pc"]) in (0, 256) and int(r["kp"]) in (0, 2048):
            sample.append(
                [r["regime"], n, int(r["nb"]), int(r["pc"]), int(r["kp"]), int(r["kvs"]), int(r["kv_big"]),
                 float(r["t_mean_us"]), float(r["t_max_us"]), float(r["t_skew_us"])]
            )
    rows = [
        [regime, n, len(v), round(statistics.median(v), 4)]
        for (regime, n), v in sorted(groups.items())
    ]
    write_csv(dst / "skew.csv", ["regime", "n_decode", "samples", "alpha_median"], rows)
    sample.sort()
    write_csv(
        dst / "skew_samples.csv",
        ["regime", "n_decode", "n_long", "prefill_chunk", "kv_prefill", "kv_short", "kv_long",
         "t_mean_us", "t_max_us", "t_skew_us"],
        sample,
    )


# ---------------------------------------------------------------------------
# LLMServingSim v0/perf_models (PyTorch hooks, ns; attention ms or ns)
# ---------------------------------------------------------------------------

V0_LINEAR = {
    # our op -> source layers summed (kernels = their count)
    "qkv_proj": ["q_proj", "k_proj", "v_proj"],
    "o_proj": ["o_proj"],
    "gate_up_proj": ["gate_proj", "up_proj"],
    "down_proj": ["down_proj"],
    "router": ["gate"],
    "experts.gate_up_proj": ["expert.w1", "expert.w3"],
    "experts.down_proj": ["expert.w2"],
}
V0_ELEMENTWISE = {
    "embedding": ("embedding", "embedding", 0),
    "input_layernorm": ("input_layernorm", "elementwise", 1),
    "post_layernorm": ("post_attention_layernorm", "elementwise", 1),
    "rope": ("rotary_emb", "elementwise", 1),
    "act_fn": ("act_fn", "elementwise", 1),
    "final_layernorm": ("final_layernorm", "final", 0),
}


def keep_token(t: int) -> bool:
    return t <= 16 or t % 16 == 0


def keep_decode(batch: int, kv: int) -> bool:
    return (batch in (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 160, 192, 224, 256)) and (
        kv in (32, 64, 128, 256, 384, 512, 768) or kv % 256 == 0
    )


def convert_v0(shared: Path, out: Path, log: list[str]) -> None:
    root = shared / "data/llmservingsim/v0/perf_models"
    for layers in sorted(root.glob("*/*/*/tp*/layers.csv")):
        tpdir = layers.parent
        hw = tpdir.parent.parent.parent.name
        model = f"{tpdir.parent.parent.name}/{tpdir.parent.name}"
        if model not in SHAPES:
            log.append(f"skipped {hw}/{model}/{tpdir.name}: layer shape not verified")
            continue
        slug = V0_HW[hw]
        shape = shape_dict(SHAPES[model])
        tp = int(tpdir.name[2:])
        mdir = out / slug / model
        tps = sorted(int(p.name[2:]) for p in tpdir.parent.glob("tp*"))
        write_profile_toml(
            mdir / "profile.toml",
            {
                "model": model,
                "source": "llmservingsim-v0",
                "repository": "https://github.com/casys-kaist/LLMServingSim",
                "commit": LSS_COMMIT,
                "path": f"profiler/v0/perf_models/{hw}/{model}",
                "hardware_name": hw,
                "engine": "PyTorch module hooks (LLMServingSim v0 profiler)",
                "dtype": "bfloat16",
                "fused_elementwise": False,
                "attention_kernel": "separate",
                "kernel_generation": "v0",
                "tensor_parallel_sizes": tps,
            },
            shape,
        )
        by = defaultdict(dict)
        for r in read_rows(layers):
            by[r["layer_name"]][int(r["input"])] = float(r["latency(ns)"]) / 1000.0
        dst = mdir / f"tp{tp}"
        ops = {}
        rows = []
        for name, parts in V0_LINEAR.items():
            if not all(p in by for p in parts):
                continue
            ops[name] = ("linear", len(parts), 1)
            tokens = sorted(set.intersection(*(set(by[p]) for p in parts)))
            for t in tokens:
                if keep_token(t):
                    rows.append([name, t, sum(by[p][t] for p in parts)])
        for src_name, (name, kind, calls) in V0_ELEMENTWISE.items():
            if src_name in by:
                ops[name] = (kind, 1, calls)
                rows += [[name, t, v] for t, v in sorted(by[src_name].items()) if keep_token(t)]
        rows.sort(key=lambda x: (x[0], x[1]))
        write_csv(dst / "ops.csv", ["op", "tokens", "time_us"], rows)
        if "lm_head" in by:
            ops["lm_head"] = ("lm_head", 1, 0)
            seq = [["lm_head", t, v] for t, v in sorted(by["lm_head"].items()) if keep_token(t)]
            write_csv(dst / "per_sequence.csv", ["op", "sequences", "time_us"], seq)
        att = []
        if "attn" in by:
            # Prefill of `input` tokens with an empty cache, one sequence.
            att += [[t, 0, 0, 0, v] for t, v in sorted(by["attn"].items()) if keep_token(t)]
        if (tpdir / "attention.csv").exists():
            att += v0_attention(tpdir / "attention.csv")
        if att:
            att.sort()
            write_csv(
                dst / "attention.csv",
                ["prefill_chunk", "kv_prefill", "n_decode", "kv_decode", "time_us"],
                att,
            )
        write_shapes(dst / "shapes.csv", shape, tp, ops)
        log.append(f"{slug}/{model}/tp{tp}: llmservingsim v0 ({len(rows)} op rows, {len(att)} attention rows)")


def decode_rows_physical(rows: list[list]) -> bool:
    """False when decode time does not grow with the batch: 64 decodes of >= 1024
    tokens each must take well over twice as long as one (64x the KV bytes). The v0
    CUDA decode grids fail this (e.g. H100 70B TP4: 64 x 2048 tokens in 23 us, which
    would need 5.8 TB/s; A6000: 8 decodes faster than 1), so the profiler evidently
    re-read the same cached KV blocks; those rows are dropped (README)."""
    t = {(r[2], r[3]): r[4] for r in rows if r[0] == 0}
    pairs = [(t[(1, kv)], t[(64, kv)]) for (b, kv) in t if b == 1 and kv >= 1024 and (64, kv) in t]
    return all(big > 2 * one for one, big in pairs)


def v0_attention(path: Path) -> list[list]:
    out = []
    for r in read_rows(path):
        pre = r["is_prefill"] == "True"
        if "p50_ns" in r:  # TPU file: nanoseconds
            t = float(r["p50_ns"]) / 1000.0
        else:
            col = "time_stats.attn_prefill.median" if pre else "time_stats.attn_decode.median"
            t = float(r[col]) * 1000.0
        b = int(r["batch_size"])
        kv = int(r["kv_cache_size"])
        if pre:
            out.append([int(r["prefill_chunk_size"]), kv, 0, 0, t])
        elif keep_decode(b, kv):
            out.append([0, 0, b, kv, t])
    if not decode_rows_physical(out):
        out = [r for r in out if r[0] > 0]
        print(f"dropped non-physical decode rows of {path}")
    return out


# ---------------------------------------------------------------------------
# Vidur (Sarathi-Serve kernels, fp16, ms)
# ---------------------------------------------------------------------------

VIDUR_OPS = {
    "emb": ("embedding", "embedding", 0),
    "input_layernorm": ("input_layernorm", "elementwise", 1),
    "attn_pre_proj": ("qkv_proj", "linear", 1),
    "attn_rope": ("rotary_emb", "elementwise", 1),
    "attn_post_proj": ("o_proj", "linear", 1),
    "post_attention_layernorm": ("post_attention_layernorm", "elementwise", 1),
    "mlp_up_proj": ("gate_up_proj", "linear", 1),
    "mlp_act": ("act_fn", "elementwise", 1),
    "mlp_down_proj": ("down_proj", "linear", 1),
    # Two residual adds per layer (after attention and after the MLP).
    "add": ("residual_add", "elementwise", 2),
}


def convert_vidur(shared: Path, out: Path, log: list[str]) -> None:
    root = shared / "data/vidur/data/profiling/compute"
    for mlp in sorted(root.glob("*/*/*/mlp.csv")):
        dev = mlp.parent.parent.parent.name
        model = f"{mlp.parent.parent.name}/{mlp.parent.name}"
        slug = VIDUR_HW[dev]
        rows = read_rows(mlp)
        r0 = rows[0]
        h = int(r0["n_embd"])
        H = int(r0["n_head"])
        gated = r0["use_gated_mlp"] == "True"
        shape = {
            "hidden_size": h,
            "num_attention_heads": H,
            "num_key_value_heads": int(r0["n_kv_head"]),
            "head_dim": h // H,
            "intermediate_size": int(r0["n_expanded_embd"]),
            "gated_mlp": gated,
            "vocab_size": int(r0["vocab_size"]),
            "num_experts": 0,
            "experts_per_token": 0,
            "expert_intermediate_size": 0,
            "qk_norm": False,
        }
        tps = sorted({int(r["num_tensor_parallel_workers"]) for r in rows})
        mdir = out / slug / model
        write_profile_toml(
            mdir / "profile.toml",
            {
                "model": model,
                "source": "vidur",
                "repository": "https://github.com/microsoft/vidur",
                "commit": VIDUR_COMMIT,
                "path": f"data/profiling/compute/{dev}/{model}/mlp.csv",
                "hardware_name": dev,
                "engine": "Sarathi-Serve (vidur branch) kernels",
                "dtype": "float16",
                "fused_elementwise": True,
                "attention_kernel": "separate",
                "kernel_generation": "v0",
                "tensor_parallel_sizes": tps,
            },
            shape,
        )
        for tp in tps:
            ops = {}
            out_rows = []
            for r in rows:
                if int(r["num_tensor_parallel_workers"]) != tp:
                    continue
                t = int(r["num_tokens"])
                for src, (name, kind, calls) in VIDUR_OPS.items():
                    col = f"time_stats.{src}.median"
                    if col not in r or r[col] == "":
                        continue
                    if not gated and name in ("gate_up_proj", "down_proj"):
                        name = "fc1" if name == "gate_up_proj" else "fc2"
                    if not gated and name == "act_fn":
                        pass
                    ops[name] = (kind, 1, calls)
                    out_rows.append([name, t, float(r[col]) * 1000.0])
            out_rows.sort(key=lambda x: (x[0], x[1]))
            dedup = []
            for r in out_rows:
                if dedup and dedup[-1][0] == r[0] and dedup[-1][1] == r[1]:
                    continue  # a few token counts appear twice; keep the first
                dedup.append(r)
            dst = mdir / f"tp{tp}"
            write_csv(dst / "ops.csv", ["op", "tokens", "time_us"], dedup)
            write_shapes(dst / "shapes.csv", shape, tp, ops)
            log.append(f"{slug}/{model}/tp{tp}: vidur ({len(dedup)} op rows)")
    convert_vidur_attention(shared, out, log)
    convert_vidur_network(shared, out, log)
    convert_vidur_cpu(shared, out, log)


def convert_vidur_attention(shared: Path, out: Path, log: list[str]) -> None:
    """The one recovered Vidur attention profile: A100, 64 q / 8 kv heads, hidden 8192, TP2."""
    src = shared / f"data/vidur/historical/{VIDUR_ATTN_COMMIT[:7]}/data/profiling/a100/attention.csv"
    rows = []
    for r in read_rows(src):
        pre = r["is_prefill"] == "True"
        b = int(r["batch_size"])
        kv = int(r["kv_cache_size"])
        if pre:
            rows.append([int(r["prefill_chunk_size"]), kv, 0, 0, float(r["time_stats.attn_prefill.median"]) * 1000.0])
        elif keep_decode(b, kv):
            rows.append([0, 0, b, kv, float(r["time_stats.attn_decode.median"]) * 1000.0])
    rows.sort()
    dst = out / "a100-sxm4-80gb/meta-llama/Llama-2-70b-hf/tp2/attention.csv"
    write_csv(dst, ["prefill_chunk", "kv_prefill", "n_decode", "kv_decode", "time_us"], rows)
    log.append(f"a100-sxm4-80gb/meta-llama/Llama-2-70b-hf/tp2: vidur attention ({len(rows)} rows)")


def convert_vidur_network(shared: Path, out: Path, log: list[str]) -> None:
    root = shared / "data/vidur/data/profiling/network"
    for node, slug in VIDUR_NET.items():
        for coll in ("all_reduce", "send_recv"):
            src = root / node / f"{coll}.csv"
            if not src.exists():
                continue
            rows = []
            for r in read_rows(src):
                rows.append(
                    [int(r["num_workers"]), int(r["devices_per_node"]), int(r["size"]),
                     float(r[f"time_stats.{coll}.median"]) * 1000.0]
                )
            rows.sort()
            write_csv(
                out / slug / "network" / f"{coll}.csv",
                ["num_workers", "devices_per_node", "size_bytes", "time_us"],
                rows,
            )
            log.append(f"{slug}/network/{coll}.csv: vidur {node} ({len(rows)} rows)")


VIDUR_CPU = [
    ("schedule", "schedule_us"),
    ("sampler_e2e", "sampler_e2e_us"),
    ("prepare_inputs_e2e", "prepare_inputs_e2e_us"),
    ("model_execution_e2e", "model_execution_e2e_us"),
    ("process_model_outputs", "process_model_outputs_us"),
]


def convert_vidur_cpu(shared: Path, out: Path, log: list[str]) -> None:
    for dev in ("a100", "a40"):
        src = shared / f"data/vidur/historical/{VIDUR_CPU_COMMIT}/data/profiling/{dev}/cpu_overheads.csv"
        rows = []
        for r in read_rows(src):
            rows.append(
                [r["model_name"], int(r["tensor_parallel_degree"]), int(r["batch_size"])]
                + [float(r[f"{k}_median"]) * 1000.0 for k, _ in VIDUR_CPU]
            )
        rows.sort()
        write_csv(
            out / VIDUR_HW[dev] / "cpu_overhead.csv",
            ["model", "tensor_parallel_size", "batch_size"] + [c for _, c in VIDUR_CPU],
            rows,
        )
        log.append(f"{VIDUR_HW[dev]}/cpu_overhead.csv: vidur ({len(rows)} rows)")


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=here.parent / "shared")
    ap.add_argument("--out", type=Path, default=here / "perf_model/profiles")
    args = ap.parse_args()
    if not (args.shared / "data").is_dir():
        print(f"error: {args.shared}/data not found; pass --shared", file=sys.stderr)
        return 2
    out = args.out
    # Regenerate every generated file (CSV tables, profile.toml); hand-written files
    # (README.md, network/link_calibration.toml) are kept.
    if out.exists():
        for p in sorted(out.rglob("*"), reverse=True):
            if p.is_file() and (p.suffix == ".csv" or p.name == "profile.toml"):
                p.unlink()
        for p in sorted(out.rglob("*"), key=lambda q: len(q.parts), reverse=True):
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.shared / "data/vidur/LICENSE.vidur.txt", out / "LICENSE.vidur.txt")
    shutil.copyfile(
        args.shared / "data/llmservingsim/LICENSE.llmservingsim.txt", out / "LICENSE.llmservingsim.txt"
    )
    log: list[str] = []
    convert_lss(args.shared, out, log)
    convert_v0(args.shared, out, log)
    convert_vidur(args.shared, out, log)
    for line in log:
        print(line)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"total {total / 1e6:.2f} MB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
