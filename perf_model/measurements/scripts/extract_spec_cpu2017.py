#!/usr/bin/env python3
"""SPECspeed2017 integer (base) results of the host CPUs of GPU servers, from a public
scrape of SPEC's published CPU2017 results.

    python3 extract_spec_cpu2017.py GIT_DIR COMMIT > ../host-cpu/spec_cpu2017_int_speed.csv

GIT_DIR is a git directory of github.com/blue-plum-cloud/cpu2017data; its
`data/test.csv` joins SPEC's CINT2017 speed and rate tables, one row per published
result (some results appear twice, once per rate entry). A result is taken once per
(system, processor, base speed result, publication date); rows without a speed result
(0 or empty) are skipped. Per processor: the number of results and the median, lowest
and highest SPECspeed2017_int_base. Standard library only; deterministic.
"""
import csv
import io
import statistics
import subprocess
import sys

# Host CPUs of the GPU servers in servesim's validation sets and of common GPU nodes,
# with the systems they stand for (the SPEC name of the part; DGX H100's 8480C has no
# published result of its own: the 8480+ and the liquid-cooled 8480CL are the same
# 56-core die at the same clocks).
PROCESSORS = [
    ("AMD EPYC 7742", "DGX A100 (Splitwise's A100 rows)"),
    ("Intel Xeon Platinum 8480+", "DGX H100 (Splitwise's H100 rows; DGX's 8480C has no result)"),
    ("Intel Xeon Platinum 8480CL", "the 8480+ die, liquid-cooled"),
    ("AMD EPYC 7543P", "ALCF Polaris nodes (Argonne's A100 rows)"),
    ("AMD EPYC 7543", "Milan, 32 cores"),
    ("AMD EPYC 7713", "Milan, 64 cores"),
    ("AMD EPYC 7763", "Milan, 64 cores"),
    ("AMD EPYC 9534", "Genoa, 64 cores"),
    ("AMD EPYC 9554", "Genoa, 64 cores"),
    ("AMD EPYC 9654", "Genoa, 96 cores"),
    ("Intel Xeon Platinum 8468", "Sapphire Rapids, 48 cores (HGX H100 nodes)"),
    ("Intel Xeon Platinum 8462Y+", "Sapphire Rapids, 32 cores (HGX H100 nodes)"),
]


def main():
    git_dir, commit = sys.argv[1:3]
    text = subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:data/test.csv"],
                          check=True, capture_output=True, text=True).stdout
    rows = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(rows)]
    col = {name: header.index(name) for name in
           ("System", "Processor", "Base Speed Result", "Published")}
    results = {}
    for r in rows:
        try:
            value = float(r[col["Base Speed Result"]])
        except ValueError:
            continue
        if value <= 0:
            continue
        key = (r[col["System"]].strip(), r[col["Processor"]].strip(), value,
               r[col["Published"]].strip())
        results.setdefault(key[1], set()).add(key)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["processor", "results", "median_int_speed_base", "min_int_speed_base",
                "max_int_speed_base", "stands_for"])
    for name, note in PROCESSORS:
        values = sorted(k[2] for k in results.get(name, ()))
        if not values:
            sys.exit(f"no SPECspeed2017_int_base result for {name}")
        w.writerow([name, len(values), f"{statistics.median(values):.2f}",
                    f"{values[0]:.2f}", f"{values[-1]:.2f}", note])


if __name__ == "__main__":
    main()
