#!/usr/bin/env python3
"""Summarise `servesim validate` outputs per validation set, as docs/validation.md reports them.

    python3 scripts/validation_summary.py OUT_DIR [--label NAME] [--json FILE]

OUT_DIR holds one folder per validation set (`blis-vllm015-h100/`, `argonne-llm-inference-bench/`,
...), each with the `validation.json` files `servesim validate` wrote (at any depth). A
*unit* is one serving run or one table group:

* serving run: the error of the mean, (simulated mean - measured mean) / measured mean, per
  metric (E2E, TPOT, TTFT);
* table group (static batches, step times): the median over its rows of |error| per metric,
  and for Argonne-style static batches the signed mean error at batch 1 and at batch 64;
* offline-throughput group: the median |error| of the output throughput.

Per set it prints the median over units of |error| per metric, and the worst Argonne
batch-1 / batch-64 gap; with `--ttft-correlation`, also the median over units of at least
four rows of the correlation (Pearson r) of simulated and measured TTFT within the unit,
which says whether TTFT follows load as measured whatever its level. Python 3.11,
standard library only.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

METRICS = ["e2e", "tpot", "ttft"]
# Unit names that start with an engine (the AIConfigurator groups: `vllm-0.12.0_...`).
ENGINES = ("vllm", "sglang", "trtllm")


def unit_errors(v: dict) -> dict[str, float]:
    out = {}
    for m in v["metrics"]:
        name = m["metric"]
        if v["kind"] == "serving-run":
            s, me = m["simulated"]["mean"], m["measured"]["mean"]
            if s is not None and me:
                out[name] = 100.0 * (s - me) / me
        elif m.get("errors"):
            out[name] = m["errors"]["median_abs_pct"]
    return out


def batch_gap(folder: Path) -> float | None:
    """Signed mean error at batch 1 minus at batch 64 (percentage points)."""
    path = folder / "comparison.csv"
    if not path.is_file():
        return None
    by_batch: dict[int, list[float]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            if "batch_size" not in row or not row.get("error_e2e_pct"):
                return None
            try:
                by_batch.setdefault(int(row["batch_size"]), []).append(float(row["error_e2e_pct"]))
            except ValueError:
                continue
    if 1 in by_batch and 64 in by_batch:
        return statistics.mean(by_batch[1]) - statistics.mean(by_batch[64])
    return None


def summarise(root: Path) -> dict[str, dict]:
    sets: dict[str, dict] = {}
    for set_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        units = []
        for vj in sorted(set_dir.rglob("validation.json")):
            v = json.loads(vj.read_text())
            units.append(
                {
                    "unit": str(vj.parent.relative_to(set_dir)),
                    "kind": v["kind"],
                    "errors": unit_errors(v),
                    "batch1_minus_batch64_pp": batch_gap(vj.parent) if v["kind"] == "static-batch" else None,
                }
            )
        if not units:
            continue
        summary = {"units": len(units)}
        for m in METRICS + ["output_throughput"]:
            # A group whose every row the simulated engine refused has no error.
            vals = [abs(e) for u in units if (e := u["errors"].get(m)) is not None]
            if vals:
                summary[m] = statistics.median(vals)
        gaps = [u["batch1_minus_batch64_pp"] for u in units if u["batch1_minus_batch64_pp"] is not None]
        if gaps:
            summary["batch_gap_max_pp"] = max(abs(g) for g in gaps)
            summary["batch_gap_within_10pp"] = f"{sum(abs(g) <= 10 for g in gaps)}/{len(gaps)}"
        sets[set_dir.name] = {"summary": summary, "units": units}
    return sets


def ttft_correlation(set_dir: Path) -> tuple[float | None, int]:
    """Median within-unit Pearson r of TTFT over the units of >= 4 rows, and their count."""
    rs = []
    for f in sorted(set_dir.rglob("validation.json")):
        for m in json.loads(f.read_text())["metrics"]:
            e = m.get("errors") or {}
            if m["metric"] == "ttft" and e.get("count", 0) >= 4 and e.get("pearson_r") is not None:
                rs.append(e["pearson_r"])
    return (statistics.median(rs) if rs else None, len(rs))


def fmt(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--units", action="store_true", help="also list every unit")
    ap.add_argument(
        "--by-engine",
        action="store_true",
        help="also the medians per engine, for units named after one (the AIConfigurator groups: vllm-..., sglang-..., trtllm-...)",
    )
    ap.add_argument(
        "--ttft-correlation",
        action="store_true",
        help="also the median within-unit correlation of simulated and measured TTFT (units of >= 4 rows)",
    )
    args = ap.parse_args()
    if not args.root.is_dir():
        sys.exit(f"{args.root}: not a folder")
    sets = summarise(args.root)
    print(f"| set {args.label} | units | E2E | TPOT | TTFT | throughput | batch 1 vs 64 (max pp; within 10 pp) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, s in sets.items():
        x = s["summary"]
        gap = (
            f"{x['batch_gap_max_pp']:.1f}; {x['batch_gap_within_10pp']}"
            if "batch_gap_max_pp" in x
            else "-"
        )
        print(
            f"| {name} | {x['units']} | {fmt(x.get('e2e'))} | {fmt(x.get('tpot'))} | "
            f"{fmt(x.get('ttft'))} | {fmt(x.get('output_throughput'))} | {gap} |"
        )
        if args.ttft_correlation:
            r, n = ttft_correlation(args.root / name)
            if n:
                print(f"|   TTFT r, median over {n} units | {n} | - | - | {r:.3f} | - | - |")
        if args.by_engine:
            engines: dict[str, list[dict]] = {}
            for u in s["units"]:
                engine = u["unit"].split("-")[0]
                if engine in ENGINES:
                    engines.setdefault(engine, []).append(u)
            for engine, us in engines.items():
                med = {
                    m: statistics.median(abs(u["errors"][m]) for u in us if m in u["errors"])
                    for m in METRICS
                    if any(m in u["errors"] for u in us)
                }
                print(
                    f"|   {engine} | {len(us)} | {fmt(med.get('e2e'))} | {fmt(med.get('tpot'))} | "
                    f"{fmt(med.get('ttft'))} | - | - |"
                )
        if args.units:
            for u in s["units"]:
                e = u["errors"]
                print(
                    f"|   {u['unit']} | | {fmt(e.get('e2e'))} | {fmt(e.get('tpot'))} | {fmt(e.get('ttft'))} | "
                    f"{fmt(e.get('output_throughput'))} | {fmt(u['batch1_minus_batch64_pp'])} |"
                )
    if args.json:
        args.json.write_text(json.dumps(sets, indent=1))


if __name__ == "__main__":
    main()
