#!/usr/bin/env python3
"""Refresh the README's command examples with the commands' real output.

Every fenced ```text block of README.md that starts with `$ servesim ...` is run from
the repository root (with the release binary, `target/release/servesim`; build it
first) and its output replaces the block's body. A block may hold several `$` lines;
each gets its own output. Commands whose input is not in the repository (paths under
../shared) are left alone unless --shared is given.

    cargo build --release && python3 scripts/readme_examples.py [--only estimate,memory] [--shared]

The integration tests pin the blocks of the commands they can run in CI, so the README
cannot drift from the code. Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```text\n(\$ servesim .*?)```", re.S)


def run(command: str) -> str:
    shell = command.replace("servesim", str(ROOT / "target/release/servesim"), 1)
    out = subprocess.run(
        shell, shell=True, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0 and "| head" not in command:
        sys.exit(f"`{command}` failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


def refresh(body: str, only: list[str], shared: bool) -> str:
    parts = re.split(r"^(\$ servesim .*)$", body, flags=re.M)
    out = [parts[0]]
    for i in range(1, len(parts), 2):
        command = parts[i][2:]
        sub = command.split()[1]
        keep = (only and sub not in only) or ("../shared" in command and not shared)
        out.append(parts[i] + "\n")
        out.append(parts[i + 1].lstrip("\n") if keep else run(command))
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated subcommands to refresh")
    ap.add_argument("--shared", action="store_true", help="also run commands reading ../shared")
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = BLOCK.sub(lambda m: "```text\n" + refresh(m.group(1), only, args.shared) + "```", text)
    readme.write_text(new)


if __name__ == "__main__":
    main()
