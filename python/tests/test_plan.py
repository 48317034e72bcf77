"""servesim.plan: the tables as DataFrames equal to the CLI's files, the same files
written, grids as dicts, errors naming the flag or file."""

import subprocess

import pandas as pd
import pytest

import servesim

PLAN = "examples/plan_llama8b.toml"
FILES = ["max_rate.csv", "target.csv", "frontier.svg"]


def records(df):
    """Rows as dicts, missing values as None (a CSV's empty cells and JSON's nulls)."""
    return df.astype(object).where(df.notna(), None).to_dict("records")


def test_plan_equals_the_cli_files(cli, tmp_path):
    p = servesim.plan(PLAN, target_rps=20, output_dir=tmp_path / "py")
    subprocess.run([cli, "plan", "--config", PLAN, "--target-rps", "20", "--output-dir", str(tmp_path / "cli")],
                   check=True, capture_output=True)
    for name in FILES:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    for df, name in [(p.max_rate, "max_rate.csv"), (p.target, "target.csv")]:
        want = pd.read_csv(tmp_path / "cli" / name)
        assert list(df.columns) == list(want.columns), name
        assert records(df) == records(want), name
    assert len(p.max_rate) == 4 and len(p.target) == 4
    assert p.summary == {"name": "llama8b", "slo": "p99 TTFT <= 2 s, p99 TPOT <= 0.05 s", "tolerance": 0.02,
                         "target_rps": 20.0, "headroom": 0}
    # Later, from the result: the same files, nothing run again.
    p.to_dir(tmp_path / "later")
    for name in FILES:
        assert (tmp_path / "later" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_without_a_target_there_is_no_target_table(tmp_path):
    p = servesim.plan(PLAN, slo_attainment=0.95, frontier_latency="tpot")
    assert p.target is None
    assert (p.max_rate["max_rps"] > 0).all()
    p.to_dir(tmp_path)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["frontier.svg", "max_rate.csv"]


def test_a_dict_grid_plans_like_its_file():
    grid = {
        "name": "llama8b", "model": "meta-llama/Llama-3.1-8B", "max-model-len": 8192,
        "slo-ttft-s": 2.0, "slo-tpot-s": 0.05,
        "grid": {"hardware": ["h100", "a100-80gb"], "tensor-parallel-size": [1, 2], "num-replicas": [1]},
        "workload": {"trace": "traces/azure_conv_10min_every2nd.csv"},
    }
    assert records(servesim.plan(grid).max_rate) == records(servesim.plan(PLAN).max_rate)


def test_errors_name_the_flag_or_file(tmp_path):
    with pytest.raises(servesim.ServesimError, match="--tolerance"):
        servesim.plan(PLAN, tolerance=2)
    with pytest.raises(servesim.ServesimError, match="--headroom"):
        servesim.plan(PLAN, headroom=1)
    with pytest.raises(servesim.ServesimError, match="missing.toml"):
        servesim.plan(tmp_path / "missing.toml")
    with pytest.raises(servesim.ServesimError, match="no-such-gpu"):
        servesim.plan({"name": "x", "grid": {"hardware": ["no-such-gpu"]},
                       "workload": {"trace": "traces/azure_conv_5min.csv"}})
