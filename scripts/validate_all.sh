#!/usr/bin/env bash
# Reproduce docs/validation.md: validate every set of the shared validation data.
#
#   scripts/validate_all.sh [--cross-validate] [--no-roofline] [VALIDATION_DIR]
#
# Modes (outputs under $OUT, default output/validation/<mode>/<set>/):
#   default     the shipped data: the serving stacks' fitted constants were fitted on some
#               of these sets (each stack file's `fitted_on`), so those sets are IN-SAMPLE.
#   roofline    the pure, uncalibrated roofline (--roofline-params perf_model/roofline.toml).
#   cv          (--cross-validate) every fitted stack constant is refitted with the scored
#               set left out (`servesim fit-stack`), then that set is scored: OUT-OF-SAMPLE.
#               GPU efficiencies are never fitted on validation sets (kernel measurements,
#               perf_model/kernel_efficiency/), so nothing else needs leaving out.
#
#   KERNELS=1 scripts/validate_all.sh   first re-derive perf_model/kernel_efficiency/ from the
#                                       kernel measurements (`servesim calibrate --kernels`)
# Each mode ends with a per-set summary (scripts/validation_summary.py): median over runs
# (or table groups) of the error of the mean E2E, TPOT and TTFT.
set -uo pipefail
cd "$(dirname "$0")/.."
CV=0
ROOFLINE=1
while [ $# -gt 0 ]; do
    case "$1" in
        --cross-validate) CV=1; shift ;;
        --no-roofline) ROOFLINE=0; shift ;;
        *) break ;;
    esac
done
V=${1:-../shared/validation}
OUT=${OUT:-output/validation}
cargo build --release --quiet || exit 1
servesim() { target/release/servesim "$@"; }
if [ "${KERNELS:-0}" = 1 ]; then
    servesim calibrate --kernels || exit 1
fi

LS_RUNS=$(ls -d "$V"/llmservingsim-vllm-bench/*/ | tr '\n' ',')
BLIS_RUNS=$(ls "$V"/blis-vllm015-h100/*.json | grep -v _ground_truth | tr '\n' ',')
ARGONNE="$V/argonne-llm-inference-bench/All_results.csv"

# validate_set SET DIR [ARGS...]: score one set into DIR/SET.
validate_set() {
    local set=$1 dir=$2
    shift 2
    local out="$dir/$set"
    echo "== $set -> $out"
    case "$set" in
        llmservingsim-vllm-bench)
            for run in "$V"/llmservingsim-vllm-bench/*/; do
                servesim validate "$run" "$@" --output-dir "$out/$(basename "$run")" \
                    || echo "FAILED: $run"
            done ;;
        blis-vllm015-h100)
            for run in "$V"/blis-vllm015-h100/*.json; do
                case "$run" in *_ground_truth.json) continue ;; esac
                servesim validate "$run" --hardware h100 "$@" \
                    --output-dir "$out/$(basename "$run" .json)" || echo "FAILED: $run"
            done ;;
        argonne-settings)
            # Argonne's tables that vary one engine setting beside model, device and
            # devices (weight / KV formats, KV block size, parallelism, speculative
            # decoding): no constant was fitted on them, but their 16-bit rows repeat
            # All_results.csv, on whose rows the stacks' host times were fitted.
            local a="$V/argonne-llm-inference-bench"
            for f in Fig_3__A100_H100_quant_all_results Fig_2_b__All_results Fig_4_b__All_results; do
                servesim validate "$a/$f.csv" "$@" --output-dir "$out/vllm/$f" \
                    || echo "FAILED: $f"
            done
            for f in Fig_3__A100_H100_quant_all_results Fig_5_a__TP_PP_Results; do
                servesim validate "$a/$f.csv" --framework TensorRT-LLM "$@" \
                    --output-dir "$out/trtllm/$f" || echo "FAILED: $f (TensorRT-LLM)"
            done ;;
        splitwise-perf-model)
            servesim validate "$V/splitwise-perf-model/perf_model.csv" "$@" \
                --output-dir "$out" || echo "FAILED: splitwise" ;;
        argonne-llm-inference-bench)
            servesim validate "$ARGONNE" "$@" --output-dir "$out/all_results" \
                || echo "FAILED: argonne"
            servesim validate "$V/argonne-llm-inference-bench/Fig_21__all_results_TTFT.csv" "$@" \
                --output-dir "$out/fig21_ttft" || echo "FAILED: argonne fig 21" ;;
        argonne-trtllm)
            # The same table's TensorRT-LLM rows (0.11 on A100, 0.12 on GH200), on their
            # own stack (trtllm-0.11, fitted on them: in-sample in the default mode).
            servesim validate "$ARGONNE" --framework TensorRT-LLM "$@" \
                --output-dir "$out/all_results" || echo "FAILED: argonne trtllm rows"
            servesim validate "$V/argonne-llm-inference-bench/Fig_21__all_results_TTFT.csv" \
                --framework TensorRT-LLM "$@" --output-dir "$out/fig21_ttft" \
                || echo "FAILED: argonne trtllm fig 21" ;;
        trtllm-perf-overview)
            servesim validate "$V/trtllm-perf-overview/throughput_offline.csv" "$@" \
                --output-dir "$out" || echo "FAILED: trtllm" ;;
        trtllm-overview-0.10|trtllm-overview-0.11|trtllm-overview-0.12|trtllm-overview-0.13|trtllm-overview-0.14|trtllm-overview-0.15|trtllm-overview-0.17)
            # The same page at releases 0.10 to 0.17 (TensorRT engines, other GPUs;
            # 0.10 and 0.11 with the engine limits, KV fraction and policy the pages give),
            # shipped with the project (never fitted on).
            servesim validate "perf_model/measurements/serving-trtllm-overview/throughput_offline_${set#trtllm-overview-}.csv" \
                "$@" --output-dir "$out" || echo "FAILED: $set" ;;
        serving-aiconfigurator-silicon)
            # Public serving measurements shipped with the project (never fitted on).
            servesim validate perf_model/measurements/serving-aiconfigurator-silicon/serving_summary.csv \
                "$@" --output-dir "$out" || echo "FAILED: aiconfigurator summary" ;;
        serving-inferencex)
            # InferenceX's DeepSeek-R1 points on NVIDIA and AMD GPUs, shipped with the
            # project (never fitted on).
            servesim validate perf_model/measurements/serving-inferencex/serving_summary.csv \
                "$@" --output-dir "$out" || echo "FAILED: inferencex" ;;
        serving-inferencex-history)
            # Every dated InferenceX DeepSeek-R1 point, median TTFT and TPOT, shipped
            # with the project (never fitted on).
            servesim validate perf_model/measurements/serving-inferencex-history/serving_summary.csv \
                "$@" --output-dir "$out" || echo "FAILED: inferencex history" ;;
    esac
}

SETS="llmservingsim-vllm-bench blis-vllm015-h100 argonne-llm-inference-bench argonne-trtllm argonne-settings splitwise-perf-model trtllm-perf-overview trtllm-overview-0.10 trtllm-overview-0.11 trtllm-overview-0.12 trtllm-overview-0.13 trtllm-overview-0.14 trtllm-overview-0.15 trtllm-overview-0.17 serving-aiconfigurator-silicon serving-inferencex serving-inferencex-history"
summary() {
    echo
    echo "## $1: median over runs / table groups of |error| %"
    python3 scripts/validation_summary.py "$2" --label "($1)" --json "$2/summary.json"
}

# Each mode starts from an empty folder, so its summary covers this run only.
rm -rf "$OUT/default" "$OUT/roofline" "$OUT/cv" "$OUT/cv-data"

# 1. The shipped data (in-sample for the sets a stack constant was fitted on).
for s in $SETS; do validate_set "$s" "$OUT/default"; done
summary default "$OUT/default"

# 2. The pure roofline, for comparison.
if [ "$ROOFLINE" = 1 ]; then
    for s in $SETS; do
        validate_set "$s" "$OUT/roofline" --roofline-params perf_model/roofline.toml
    done
    summary roofline "$OUT/roofline"
fi

# leave_out_data SET: a data folder whose fitted parameter files (calibrated roofline
# files, calibrated links) do not rest on SET: copies that name SET as their data are
# left out, so the GPU falls back to its unfitted parameters.
leave_out_data() {
    local dir="$OUT/cv-data/without-$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    ln -s "$PWD/model_configs" "$dir/model_configs"
    ln -s "$PWD/traces" "$dir/traces"
    cp -r perf_model "$dir/perf_model"
    grep -l -- "$1" "$dir"/perf_model/calibrated/*.toml \
        "$dir"/perf_model/profiles/*/network/link_calibration.toml 2>/dev/null | xargs -r rm -f
    echo "$dir"
}

# fit_name SET: the name SET's measurements go by in a stack's `fitted_on` (the rows of
# one engine of a table of several are the table's set).
fit_name() {
    case "$1" in
        argonne-trtllm|argonne-settings) echo argonne-llm-inference-bench ;;
        *) echo "$1" ;;
    esac
}

# set_paths SET: the measurements fit-stack reads for SET.
set_paths() {
    case "$1" in
        blis-vllm015-h100) echo "$BLIS_RUNS" ;;
        llmservingsim-vllm-bench) echo "$LS_RUNS" ;;
        argonne-llm-inference-bench) echo "$ARGONNE" ;;
    esac
}

# stack_sets FILE: the sets any section of a stack file was fitted on, and whether its
# API server was fitted ("api" on the last line).
stack_sets() {
    python3 - "$1" <<'PY'
import sys, tomllib
s = tomllib.load(open(sys.argv[1], "rb"))
sets = []
for sec in ("host", "api_server", "paged_attention", "gemm", "custom_all_reduce"):
    for n in s.get(sec, {}).get("fitted_on", []):
        if n not in sets:
            sets.append(n)
print("\n".join(sets))
if s.get("api_server", {}).get("fitted_on"):
    print("api")
PY
}

# 3. Cross-validation: every stack fitted on the scored set is refitted without it, in
#    a copy of the data folder (stacks not fitted on it stay as shipped: they do not
#    rest on it); then the set is scored on that copy, each table row on its own stack.
if [ "$CV" = 1 ]; then
    prepared=" "
    for s in $SETS; do
        key=$(fit_name "$s")
        # Sets whose measurements go by the same name share one refitted copy.
        if [[ "$prepared" == *" $key "* ]]; then
            validate_set "$s" "$OUT/cv" --data-dir "$OUT/cv-data/without-$key"
            continue
        fi
        prepared+="$key "
        data=$(leave_out_data "$key")
        for f in perf_model/stacks/*.toml; do
            name=$(basename "$f" .toml)
            info=$(stack_sets "$f")
            echo "$info" | grep -qx -- "$key" || continue
            args=()
            for other in $(echo "$info" | grep -v -x -e api -e "$key"); do
                args+=(--set "$other=$(set_paths "$other")")
            done
            echo "$info" | grep -qx api && args+=(--api-server)
            echo "== refit $name without $key"
            servesim fit-stack --serving-stack "$f" "${args[@]}" \
                --output "$data/perf_model/stacks/$name.toml" || exit 1
        done
        validate_set "$s" "$OUT/cv" --data-dir "$data"
    done
    summary "cross-validated (out-of-sample)" "$OUT/cv"
    echo
    echo "## Argonne per platform, leave-model-group-out, TensorRT-LLM rows leave-GPU-out"
    python3 scripts/argonne_folds.py --validation-dir "$V" --out "$OUT"
fi

# Bursts never fitted on (perf_model/measurements/serving-gpustack/): the same in every
# mode, as no stack constant was fitted on them.
echo
echo "## gpustack vLLM bursts (never fitted on)"
python3 scripts/gpustack_check.py --servesim target/release/servesim --out "$OUT/gpustack" \
    | grep -E "^median|failed" || echo "FAILED: gpustack"

# Public per-request runs (perf_model/measurements/serving-public-runs/): vLLM 0.8.3 on
# A100-40GB, SGLang 0.5.9 and vLLM 0.15 on H100; never fitted on, the same in every mode.
echo
echo "## Public serving runs: vLLM 0.8.3 A100, SGLang 0.5.9 / vLLM 0.15 H100 (never fitted on)"
python3 scripts/public_runs_check.py --servesim target/release/servesim --out "$OUT/public-runs" \
    | grep -E "^(median|FAILED)" || echo "FAILED: public-runs"

# AMD's published vLLM latency tables on 8 × MI300X (perf_model/measurements/
# serving-rocm-vllm-mi300x/): never fitted on, the same in every mode.
echo
echo "## vLLM on MI300X, AMD's dev-docker latency tables (never fitted on)"
python3 scripts/rocm_mi300x_check.py --servesim target/release/servesim --out "$OUT/rocm-mi300x" \
    | grep -E "^(vLLM|median)" || echo "FAILED: rocm-mi300x"

# TensorRT-LLM 0.14 through Triton at 2 - 32 requests/s (perf_model/measurements/
# serving-trtllm-overview/triton_online_0.14.csv): never fitted on, the same in every mode.
echo
echo "## TensorRT-LLM 0.14 online serving through Triton (never fitted on)"
python3 scripts/trtllm_triton_check.py --servesim target/release/servesim --out "$OUT/trtllm-triton" \
    | grep -E "^(median|FAILED)" || echo "FAILED: trtllm-triton"

# TensorRT-LLM's static batches from NVIDIA's performance pages: 0.5 / 0.6.1 of 2023
# (perf_model/measurements/trtllm-public-2023/) and 0.8.0 / 0.9.0 of 2024
# (trtllm-public-2024/, one folder per release): never fitted on, the same in every
# mode. gptSessionBenchmark runs each batch whole on an engine built for it, with a
# contiguous KV cache sized for the batch: replayed with no sequence limit below the
# batch and a KV cache that holds it. trtllm-engine (the C++ runtime without the Python
# driver's per-sequence time) first, trtllm-0.11 for comparison.
trtllm_static_page() { # <folder with the four CSVs> <output folder>
    local t="$1" st o f fp8
    for st in trtllm-engine trtllm-0.11; do
        o="$2/$st"
        mkdir -p "$o"
        f=(--framework TensorRT-LLM --serving-stack "$st" --max-num-seqs 2048 --num-gpu-blocks-override 100000)
        fp8=(--quantization fp8 --kv-cache-dtype fp8)
        { servesim validate "$t/static_batches.csv" "${f[@]}" --output-dir "$o/a100-fp16" \
            && servesim validate "$t/first_token.csv" "${f[@]}" --output-dir "$o/a100-fp16-ttft" \
            && servesim validate "$t/static_batches_fp8.csv" "${f[@]}" "${fp8[@]}" --output-dir "$o/fp8" \
            && servesim validate "$t/first_token_fp8.csv" "${f[@]}" "${fp8[@]}" --output-dir "$o/fp8-ttft"; } \
            > "$o.log" 2>&1 || echo "FAILED: $t on $st"
        echo "$st:"
        python3 scripts/validation_summary.py "$o" | grep -E "^\| (a100|fp8)"
    done
}
echo
echo "## TensorRT-LLM 0.5 / 0.6.1 static batches, NVIDIA's 2023 performance page (never fitted on)"
trtllm_static_page perf_model/measurements/trtllm-public-2023 "$OUT/trtllm-public-2023"
for rel in v0.9.0 v0.8.0; do
    echo
    echo "## TensorRT-LLM $rel static batches, NVIDIA's 2024 performance page (never fitted on)"
    trtllm_static_page "perf_model/measurements/trtllm-public-2024/$rel" "$OUT/trtllm-public-2024/$rel"
done

# MLPerf Inference v4.0 and v5.0 Llama-2-70B results (perf_model/measurements/
# mlperf-inference-v4.0/, -v5.0/): TensorRT-LLM engines on H100 SXM / PCIe, H200 and
# (v5.0) B200, the benchmark's own prompt lengths; never fitted on, the same in every mode.
echo
echo "## MLPerf Inference v4.0 / v5.0, Llama-2-70B (never fitted on)"
python3 scripts/mlperf_check.py --servesim target/release/servesim --out "$OUT/mlperf-v4.0" \
    | grep -E "^(median|skipped)" || echo "FAILED: mlperf-v4.0"
# (v4.0 Offline; v4.0 Server: p99 TTFT and p99 TPOT at each run's target_qps, and mean
# TPOT / tokens/s closed-loop at the measured concurrency; v5.0 Offline)

# vLLM V0 results quoted in vLLM pull requests (perf_model/measurements/
# vllm-host-overhead/): never fitted on (the V0 stacks are fitted on Argonne's A100 and
# GH200 rows), the same in every mode.
echo
echo "## vLLM V0 (H100; A100 all-reduce A/B), results quoted in vLLM pull requests (never fitted on)"
python3 scripts/vllm_v0_pr_check.py --servesim target/release/servesim --out "$OUT/vllm-v0-prs" \
    || echo "FAILED: vllm-v0-prs"

# vLLM benchmark results quoted in public pages (perf_model/measurements/vllm-public/):
# MoE static batches of vLLM 0.2.7-0.4 on A100/H100, V1 0.10.1 serving sweeps on one
# A100; no shipped constant is fitted on them, the same in every mode. The tuned-kernel
# Mixtral rows fit vllm-0.5's prior host time (used only with Argonne left out), which
# the last block refits and prints.
echo
echo "## vLLM benchmark results quoted in public pages (no shipped constant fitted on them)"
python3 scripts/vllm_public_check.py --servesim target/release/servesim --out "$OUT/vllm-public" \
    | grep -E "^(by source|median|KV cache)" || echo "FAILED: vllm-public"
echo
echo "## vllm-0.5's prior host time, fitted on the public offline V0 rows (perf_model/stacks/vllm-0.5.toml: host.prior_step_us)"
python3 scripts/fit_v0_offline_prior.py --servesim target/release/servesim \
    || echo "FAILED: fit_v0_offline_prior"
echo
echo "## vLLM 0.6's host work per sequence between iterations, read off the asynchronous output processor's A/B (vllm-project/vllm#7049; perf_model/stacks/vllm-0.6*.toml: prior_per_sequence_serial_us)"
python3 scripts/fit_v0_output_overlap.py --servesim target/release/servesim --out "$OUT/v0-output-overlap" \
    || echo "FAILED: fit_v0_output_overlap"

# The one public timing of vLLM 0.6.1's ROCm build (perf_model/measurements/
# vllm-rocm-public/): replayed on the shipped stack (fitted on Argonne), and the fit of
# the stack's priors on it alone (what the stack takes with Argonne left out).
ROCM_PUBLIC=perf_model/measurements/vllm-rocm-public/static_batches.csv
echo
echo "## vLLM 0.6 ROCm build, public static batches (vllm-project/vllm#8310; no shipped constant fitted on them)"
servesim validate "$ROCM_PUBLIC" --output-dir "$OUT/vllm-rocm-public" | grep -E "_tp[0-9]+ " \
    || echo "FAILED: vllm-rocm-public"
echo "## vllm-0.6-rocm's priors, fitted on those rows with the V0 loop's host time held at vllm-0.5's prior (perf_model/stacks/vllm-0.6-rocm.toml: prior_*)"
V0_PRIOR_STEP_US=$(python3 -c 'import tomllib; print(tomllib.load(open("perf_model/stacks/vllm-0.5.toml", "rb"))["host"]["prior_step_us"])')
servesim fit-stack --serving-stack vllm-0.6-rocm --set "vllm-rocm-public=$ROCM_PUBLIC" \
    --hold-step-us "$V0_PRIOR_STEP_US" --output "$OUT/vllm-rocm-public/prior-fit.toml" | grep -E "^vllm-0.6-rocm:" \
    || echo "FAILED: vllm-0.6-rocm prior fit"
