"""servesim.validate: a measured run (LLMServingSim's RTX 4090 run, ../shared) and a
table of sets (the in-repo TensorRT-LLM fixture) equal to the CLI's files; errors."""

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import servesim

RUN = "../shared/validation/llmservingsim-vllm-bench/RTX4090_Llama-3.1-8B"
TABLE = "tests/fixtures/trtllm_throughput_small.csv"
RUN_FILES = ["validation.json", "comparison.csv", "validation.svg"]


def cli_validate(cli, out, *args):
    subprocess.run([cli, "validate", *args, "--output-dir", str(out)], check=True, capture_output=True)
    return out


def assert_same_rows(got, csv_path):
    """`got` equals comparison.csv up to the file's rounding (6 decimals, 2 for %)."""
    want = pd.read_csv(csv_path)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for c in want.columns:
        if c.startswith(("measured_", "simulated_", "error_")):
            tol = 0.0051 if c.startswith("error_") else 0.011
            assert ((got[c] - want[c]).abs().fillna(0) <= tol).all(), c
            assert (got[c].isna() == want[c].isna()).all(), c
        else:
            assert (got[c].astype(str) == want[c].astype(str)).all(), c


@pytest.fixture(scope="module")
def run_dir():
    if not Path(RUN).exists():
        pytest.skip(f"{RUN} is not here (the shared validation data sits next to the repository)")
    return RUN


def test_a_measured_run_equals_the_cli(cli, tmp_path, run_dir):
    v = servesim.validate(run_dir)
    out = cli_validate(cli, tmp_path / "cli", run_dir)
    assert v.kind == "run" and v.sets is None
    assert v.summary == json.loads((out / "validation.json").read_text())
    assert_same_rows(v.comparison, out / "comparison.csv")
    assert len(v.comparison) == 300
    m = v.metrics
    assert list(m["metric"]) == [x["metric"] for x in v.summary["metrics"]]
    assert m.loc[m["metric"] == "ttft", "errors_median_abs_pct"].iloc[0] == \
        v.summary["metrics"][0]["errors"]["median_abs_pct"]
    v.to_dir(tmp_path / "py")
    for name in RUN_FILES:
        assert (tmp_path / "py" / name).read_bytes() == (out / name).read_bytes(), name


def test_flags_take_the_cli_names(cli, tmp_path, run_dir):
    v = servesim.validate(run_dir, max_num_seqs=64, name="capped", output_dir=tmp_path / "py")
    out = cli_validate(cli, tmp_path / "cli", run_dir, "--max-num-seqs", "64", "--name", "capped")
    assert v.name == "capped"
    assert v.summary == json.loads((out / "validation.json").read_text())
    assert v.summary["engine"]["max_num_seqs"] == 64
    # output_dir writes the CLI's files.
    for name in RUN_FILES:
        assert (tmp_path / "py" / name).read_bytes() == (out / name).read_bytes(), name


def test_a_table_of_sets_equals_the_cli(cli, tmp_path):
    v = servesim.validate(TABLE)
    out = cli_validate(cli, tmp_path / "cli", TABLE)
    assert v.kind == "sets"
    assert v.summary == json.loads((out / "summary.json").read_text())
    assert list(v.sets["name"]) == [s["name"] for s in v.summary["sets"]]
    assert "output_throughput_errors_mape_pct" in v.sets.columns
    for name in v.sets["name"]:
        s = v.set(name)
        assert s.summary == json.loads((out / name / "validation.json").read_text())
        assert_same_rows(s.comparison, out / name / "comparison.csv")
    # One set's files alone.
    one = v.sets["name"][0]
    v.set(one).to_dir(tmp_path / "one")
    for name in RUN_FILES:
        assert (tmp_path / "one" / name).read_bytes() == (out / one / name).read_bytes(), name
    rows = v.comparison
    assert rows.columns[0] == "set" and set(rows["set"]) == set(v.sets["name"])
    assert len(v.metrics) == len(v.sets)
    v.to_dir(tmp_path / "py")
    got = sorted(p.relative_to(tmp_path / "py") for p in (tmp_path / "py").rglob("*"))
    assert got == sorted(p.relative_to(out) for p in out.rglob("*"))
    for p in (p for p in out.rglob("*") if p.is_file()):
        assert (tmp_path / "py" / p.relative_to(out)).read_bytes() == p.read_bytes(), p


def test_select_takes_several_filters():
    v = servesim.validate(TABLE, select=["model=llama-3.1-8b", "tp=1"])
    assert list(v.sets["name"]) == ["llama-3.1-8b-instruct_h100_tp1_pp1_fp8"]


def test_errors_name_the_file_or_flag(tmp_path):
    with pytest.raises(servesim.ServesimError, match="missing.json"):
        servesim.validate(tmp_path / "missing.json")
    with pytest.raises(servesim.ServesimError, match="--concurrency"):
        servesim.validate(TABLE, concurrency=0)
    with pytest.raises(servesim.ServesimError, match="--select"):
        servesim.validate(TABLE, select=["model=nothing"])
    bad = tmp_path / "tput.csv"
    lines = Path(TABLE).read_text().splitlines()
    lines[2] = lines[2].replace(",FP8,", ",INT4,")
    bad.write_text("\n".join(lines))
    with pytest.raises(servesim.ServesimError, match=r"tput.csv:3.*precision"):
        servesim.validate(bad, format="trtllm-throughput")
