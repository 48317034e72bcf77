"""servesim.sweep: one row per point, equal to the CLI's points.json; grids as dicts."""

import json
import subprocess

import servesim

SMALL = "examples/sweep_llama8b_small.toml"


def test_a_file_grid_equals_the_cli(cli, tmp_path):
    df = servesim.sweep(SMALL, jobs=2)
    subprocess.run([cli, "sweep", "--config", SMALL, "--output-dir", str(tmp_path / "cli"), "--no-charts"],
                   check=True, capture_output=True)
    want = json.loads((tmp_path / "cli" / "points.json").read_text())
    assert len(df) == len(want) == 24
    assert df.to_dict("records") == want


def test_a_hundred_point_dict_grid_gives_a_hundred_rows(tmp_path):
    grid = {
        "name": "py-100",
        "model": "meta-llama/Llama-3.1-8B",
        "max-model-len": 4096,
        "slo-ttft-s": 2.0,
        "grid": {"hardware": ["h100", "a100-80gb"], "num-replicas": [1, 2],
                 "max-num-batched-tokens": [1024, 2048, 4096, 8192, 16384]},
        "workload": {"trace": "traces/azure_conv_5min.csv", "max-requests": 100,
                     "rate-scale": [1, 2, 4, 8, 16]},
    }
    df = servesim.sweep(grid, output_dir=tmp_path / "py", no_charts=True)
    assert len(df) == 100
    assert df["index"].tolist() == list(range(100))
    assert set(df["status"]) <= {"ok", "infeasible"}
    # output_dir also writes the CLI's files.
    assert len(json.loads((tmp_path / "py" / "points.json").read_text())) == 100
    # The same points whatever the thread count.
    assert servesim.sweep(grid, jobs=1).equals(df)


def test_bad_grids_raise_with_the_file_and_key():
    try:
        servesim.sweep({"name": "x", "grid": {"hardware": ["no-such-gpu"]},
                        "workload": {"trace": "traces/azure_conv_5min.csv"}})
    except servesim.ServesimError as e:
        assert "no-such-gpu" in str(e)
    else:
        raise AssertionError("an unknown device must raise")
