#!/usr/bin/env bash
# The run report in a real browser: a default simulate run and a two-run comparison
# are loaded by headless Chromium (Debian's `chromium`, installed when absent), which
# must show every chart and request nothing from the network (scripts/check_report.py).
# Uses the debug binary `cargo test` built (SERVESIM_BIN overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${SERVESIM_BIN:-target/debug/servesim}"
CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$CHROMIUM" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
        || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }
    CHROMIUM="$(command -v chromium)"
fi
[ -x "$BIN" ] || cargo build
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$BIN" simulate --output-dir "$tmp/default" >/dev/null
"$BIN" simulate --max-num-seqs 8 --output-dir "$tmp/seqs8" >/dev/null
"$BIN" report "$tmp/default" "$tmp/seqs8" -o "$tmp/compare" >/dev/null
charts=$(ls "$tmp/default/charts"/*.svg | wc -l)
python3 scripts/check_report.py "$CHROMIUM" "$tmp/default/report.html" "$charts"
python3 scripts/check_report.py "$CHROMIUM" "$tmp/compare/report.html" "$charts"
