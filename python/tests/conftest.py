"""Shared fixtures: the repository root (tests run from it) and the CLI binary to
compare with (SERVESIM_BIN, else target/release or target/debug)."""

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="session")
def cli():
    env = os.environ.get("SERVESIM_BIN")
    candidates = [env] if env else [REPO / "target/release/servesim", REPO / "target/debug/servesim"]
    for c in candidates:
        if c and Path(c).exists():
            return str(c)
    found = shutil.which("servesim")
    if found:
        return found
    pytest.fail("no servesim binary to compare with: build it (cargo build) or set SERVESIM_BIN")
