#!/usr/bin/env python3
"""Measured against simulated latency of a replayed serving run, by arrival time.

`servesim validate RUN --output-dir DIR` writes `DIR/comparison.csv` with one row per
request (arrival, measured and simulated TTFT / TPOT / E2E). A run's mean error hides
how it develops: an overloaded server whose queue grows, a step time that drifts. This
script cuts the requests, in arrival order, into equal bins and prints, per bin, the
mean arrival time and the mean measured and simulated TPOT and TTFT with the signed
error of the means.

    python3 scripts/serving_by_arrival.py DIR [DIR ...] [--bins 10]

`DIR` is a folder holding a per-request `comparison.csv` (a serving run's validate
output, e.g. output/validation/cv/blis-vllm015-h100/<run>). Requests without a
measured or simulated value (client errors, rejected requests) are left out. Python
3.11, standard library only.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

COLUMNS = ("arrival_s", "measured_tpot_s", "simulated_tpot_s", "measured_ttft_s", "simulated_ttft_s")


def rows(folder: Path) -> list[dict[str, float]]:
    """The requests of `folder`'s comparison.csv with every column this script reads,
    in arrival order."""
    path = folder / "comparison.csv"
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"{path}: not a per-request comparison (no column {', '.join(missing)})")
        out = []
        for line, r in enumerate(reader, start=2):
            if any(r[c] == "" for c in COLUMNS):
                continue
            try:
                out.append({c: float(r[c]) for c in COLUMNS})
            except ValueError as e:
                sys.exit(f"{path}:{line}: {e}")
    out.sort(key=lambda r: r["arrival_s"])
    return out


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def table(folder: Path, bins: int) -> str:
    rs = rows(folder)
    if not rs:
        return f"{folder}: no request with both measured and simulated values\n"
    bins = max(1, min(bins, len(rs)))
    lines = [
        f"{folder} ({len(rs)} requests)",
        "  arrival s   TPOT ms measured  simulated  error %   TTFT s measured  simulated  error %",
    ]
    for b in range(bins):
        seg = rs[b * len(rs) // bins:(b + 1) * len(rs) // bins]
        if not seg:
            continue
        t = mean([r["arrival_s"] for r in seg])
        mp, sp = (mean([r[k] for r in seg]) * 1e3 for k in ("measured_tpot_s", "simulated_tpot_s"))
        mt, st = (mean([r[k] for r in seg]) for k in ("measured_ttft_s", "simulated_ttft_s"))
        ep = (sp / mp - 1) * 100 if mp else float("nan")
        et = (st / mt - 1) * 100 if mt else float("nan")
        lines.append(
            f"  {t:9.0f}   {mp:16.2f}  {sp:9.2f}  {ep:+7.1f}   {mt:15.2f}  {st:9.2f}  {et:+7.1f}"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--bins", type=int, default=10, help="arrival bins (default 10)")
    args = ap.parse_args()
    if args.bins < 1:
        sys.exit("--bins: must be at least 1")
    for folder in args.folders:
        if not (folder / "comparison.csv").is_file():
            sys.exit(f"{folder}: no comparison.csv (give a serving run's validate output folder)")
        sys.stdout.write(table(folder, args.bins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
