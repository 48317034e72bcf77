"""servesim.simulate: equal to the CLI's outputs, traces from files and tables, errors."""

import json
import subprocess

import pandas as pd
import pyarrow as pa
import pytest

import servesim

TRACE = "traces/azure_conv_5min.csv"


def cli_run(cli, tmp_path, *flags):
    out = tmp_path / "cli"
    subprocess.run([cli, "simulate", "--trace", TRACE, "--output-dir", str(out), *flags],
                   check=True, capture_output=True)
    return out


def test_default_run_equals_the_cli(cli, tmp_path):
    r = servesim.simulate(TRACE)
    out = cli_run(cli, tmp_path)
    assert r.summary == json.loads((out / "summary.json").read_text())
    want = pd.read_csv(out / "requests.csv")
    got = r.requests
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) == r.summary["completed"] + r.summary["rejected"]
    for c in want.columns:
        if want[c].dtype.kind == "f":
            # The CSV keeps 9 decimals.
            assert (got[c] - want[c]).abs().max() < 1e-9, c
        else:
            assert (got[c].astype(str) == want[c].astype(str)).all(), c
    ts = pd.read_csv(out / "timeseries.csv")
    assert r.timeseries.equals(ts[r.timeseries.columns].astype(r.timeseries.dtypes.to_dict()))


def test_flags_take_the_cli_names_and_defaults(cli, tmp_path):
    flags = dict(model="llama-3.1-70b", hardware="h100", tensor_parallel_size=4, rate_scale=2.0, max_requests=200)
    r = servesim.simulate(TRACE, **flags)
    out = cli_run(cli, tmp_path, "--model", "llama-3.1-70b", "--hardware", "h100", "-tp", "4",
                  "--rate-scale", "2", "--max-requests", "200")
    assert r.summary == json.loads((out / "summary.json").read_text())
    assert r.summary["completed"] == 200


def test_traces_as_pandas_polars_and_arrow_give_the_same_run():
    df = pd.read_csv(TRACE).head(300)
    base = servesim.simulate(df)
    assert base.summary["completed"] == 300
    assert servesim.simulate(pa.Table.from_pandas(df)).summary == base.summary
    pl = pytest.importorskip("polars")
    assert servesim.simulate(pl.from_pandas(df)).summary == base.summary
    # Extra columns are ignored; the native ones are required.
    assert servesim.simulate(df.assign(note="x")).summary == base.summary
    with pytest.raises(servesim.ServesimError, match="input_tokens"):
        servesim.simulate(df.drop(columns=["input_tokens"]))


def test_to_dir_writes_the_cli_files(cli, tmp_path):
    r = servesim.simulate(TRACE, max_requests=100)
    path = r.to_dir(tmp_path / "py")
    out = cli_run(cli, tmp_path, "--max-requests", "100")
    for name in ["requests.csv", "timeseries.csv", "summary.json", "distributions.csv", "throughput.csv"]:
        assert (tmp_path / "py" / name).read_bytes() == (out / name).read_bytes(), name
    assert json.loads((tmp_path / "py" / "summary.json").read_text()) == r.summary
    assert path == str(tmp_path / "py")


def test_errors_carry_the_cli_message(tmp_path):
    with pytest.raises(servesim.ServesimError, match="no-such-model"):
        servesim.simulate(TRACE, model="no-such-model")
    with pytest.raises(servesim.ServesimError, match="missing.csv"):
        servesim.simulate(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_time_s,input_tokens,output_tokens\n0.0,12,x\n")
    with pytest.raises(servesim.ServesimError, match=r"bad.csv:2"):
        servesim.simulate(bad)
    with pytest.raises(servesim.ServesimError, match="--no-such-flag"):
        servesim.simulate(TRACE, no_such_flag=1)
    with pytest.raises(TypeError):
        servesim.simulate(42)


def test_same_seed_same_result():
    a = servesim.simulate(TRACE, max_requests=200, seed=3)
    b = servesim.simulate(TRACE, max_requests=200, seed=3)
    assert a.summary == b.summary
    assert a.requests.equals(b.requests)


def test_the_gil_is_released_while_simulating():
    import threading
    import time

    from servesim import _servesim

    ready, times = threading.Event(), {}

    def work():
        ready.set()
        _servesim.simulate(["--trace", TRACE, "--rate-scale", "2", "--no-output"])
        times["returned"] = time.perf_counter()

    t = threading.Thread(target=work)
    t.start()
    ready.wait()
    # This thread runs again as soon as the worker's native call lets go of the GIL;
    # were it held, it would run only after the worker had returned and finished.
    times["ran"] = time.perf_counter()
    t.join()
    assert times["ran"] < times["returned"]
