#!/usr/bin/env bash
# Reproduce docs/validation.md: validate every set of the shared validation data, once
# with the latency model the simulator picks by default (measured operator profiles
# where the GPU has them, else the roofline with perf_model/kernel_efficiency/<gpu>.toml,
# derived from kernel measurements, where it exists) and once with the generic roofline
# (perf_model/roofline.toml).
#
#   scripts/validate_all.sh [VALIDATION_DIR]   default VALIDATION_DIR: ../shared/validation
#   KERNELS=1 scripts/validate_all.sh          first re-derive perf_model/kernel_efficiency/
#   CALIBRATE=1 scripts/validate_all.sh        first refit perf_model/calibrated/ (A100, H100;
#                                              in-sample fits, used only with --roofline-params)
#
# Outputs go to $OUT (default output/validation/{default,roofline}/<set>/); each
# set's folder has validation.json, comparison.csv and validation.svg (tables: one
# folder per group plus summary.json). A set that cannot be simulated is reported and
# the script goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
V=${1:-../shared/validation}
OUT=${OUT:-output/validation}
cargo build --release --quiet || exit 1
servesim() { cargo run --release --quiet -- "$@"; }

if [ "${KERNELS:-0}" = 1 ]; then
    servesim calibrate --kernels || exit 1
fi

if [ "${CALIBRATE:-0}" = 1 ]; then
    servesim calibrate --hardware a100-80gb,a100-40gb --hardware h100 \
        "$V/splitwise-perf-model/perf_model.csv" \
        "$V/argonne-llm-inference-bench/All_results.csv" || exit 1
fi

for mode in default roofline; do
    extra=()
    if [ "$mode" = roofline ]; then
        extra=(--roofline-params perf_model/roofline.toml)
    fi
    for run in "$V"/llmservingsim-vllm-bench/*/; do
        name=$(basename "$run")
        echo "== $mode: $name"
        servesim validate "$run" "${extra[@]}" --output-dir "$OUT/$mode/$name" \
            || echo "FAILED: $name"
    done
    echo "== $mode: splitwise"
    servesim validate "$V/splitwise-perf-model/perf_model.csv" "${extra[@]}" \
        --output-dir "$OUT/$mode/splitwise" || echo "FAILED: splitwise"
    echo "== $mode: argonne"
    servesim validate "$V/argonne-llm-inference-bench/All_results.csv" "${extra[@]}" \
        --output-dir "$OUT/$mode/argonne" || echo "FAILED: argonne"
        echo "== $mode: trtllm-throughput"
    servesim validate "$V/trtllm-perf-overview/throughput_offline.csv" "${extra[@]}" \
        --output-dir "$OUT/$mode/trtllm-throughput" || echo "FAILED: trtllm-throughput"
    echo "== $mode: argonne-ttft"
    servesim validate "$V/argonne-llm-inference-bench/Fig_21__all_results_TTFT.csv" "${extra[@]}" \
        --output-dir "$OUT/$mode/argonne-ttft" || echo "FAILED: argonne-ttft"
done
