"""servesim.list_*: the catalogs as DataFrames, equal to `servesim list --format json`."""

import json
import subprocess

import servesim


def test_models_and_hardware_equal_the_cli(cli):
    for what, fn in [("models", servesim.list_models), ("hardware", servesim.list_hardware),
                     ("stacks", servesim.list_stacks)]:
        df = fn()
        want = json.loads(subprocess.run([cli, "list", what, "--format", "json"], check=True,
                                         capture_output=True, text=True).stdout)
        assert len(df) == len(want) > 0, what
        assert list(df.columns) == list(want[0].keys()), what


def test_filters_take_the_cli_flags():
    llama = servesim.list_models(family="llama", min_params=60)
    assert len(llama) > 0
    assert llama["id"].str.contains("llama", case=False).all()
    assert (llama["params_total"] >= 60e9).all()
    nvidia = servesim.list_hardware(vendor="nvidia")
    assert (nvidia["vendor"].str.lower() == "nvidia").all()
    assert "H100" in " ".join(nvidia["name"])


def test_a_list_repeats_the_flag():
    assert servesim._flags({"select": ["model=a", "tp=2"], "seed": 3, "x": None, "y": False, "z": True}) == [
        "--select", "model=a", "--select", "tp=2", "--seed", "3", "--z"]
