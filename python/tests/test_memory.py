"""servesim.memory: every mode equal to `servesim memory --format json`, the chart the
CLI draws, a plan that does not fit as a result, errors naming the flag."""

import json
import subprocess

import pandas as pd
import pytest

import servesim


def cli_json(cli, *flags, check=True):
    out = subprocess.run([cli, "memory", *flags, "--format", "json"], check=check,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def test_a_deployment_plan_equals_the_cli(cli):
    got = servesim.memory(model="llama-3.1-70b", hardware="h100", tensor_parallel_size=4, max_model_len=32768)
    want = cli_json(cli, "--model", "llama-3.1-70b", "--hardware", "h100", "-tp", "4", "--max-model-len", "32768")
    assert got == want
    assert got["fits"] is True and got["num_gpu_blocks"] > 0
    assert servesim.memory(model="llama-3.1-70b", hardware="h100", min_gpus=True) == cli_json(
        cli, "--model", "llama-3.1-70b", "--hardware", "h100", "--min-gpus")


def test_the_catalog_search_is_a_dataframe_equal_to_the_cli(cli):
    df = servesim.memory(model="llama-3.1-70b")
    want = cli_json(cli, "--model", "llama-3.1-70b")
    assert len(df) == len(want) > 10
    pd.testing.assert_frame_equal(df, pd.DataFrame(want))


def test_loads_equal_the_cli(cli):
    one = servesim.memory(model="llama-3.1-8b", hardware="h100", concurrency=64, seq_len=4096)
    assert one == cli_json(cli, "--model", "llama-3.1-8b", "--hardware", "h100", "--concurrency", "64",
                           "--seq-len", "4096")
    every = servesim.memory(model="llama-3.1-8b", concurrency=64, seq_len=4096)
    want = cli_json(cli, "--model", "llama-3.1-8b", "--concurrency", "64", "--seq-len", "4096")
    assert every["load"] == want["load"] and every["do_not_fit"] == want["do_not_fit"]
    # One row per device that fits, the per-GPU figures as columns in their place.
    flat = [{k2: v2 for k, v in f.items() for k2, v2 in (v.items() if isinstance(v, dict) else [(k, v)])}
            for f in want["fits"]]
    pd.testing.assert_frame_equal(every["fits"], pd.DataFrame(flat))
    assert "used_gib" in every["fits"].columns


def test_fine_tuning_equals_the_cli(cli):
    got = servesim.memory(train="qlora", model="llama-3.1-8b", hardware="rtx4090", lora_rank=16,
                          lora_targets="all", gradient_checkpointing=True, micro_batch_size=4)
    want = cli_json(cli, "--train", "qlora", "--model", "llama-3.1-8b", "--hardware", "rtx4090",
                    "--lora-rank", "16", "--lora-targets", "all", "--gradient-checkpointing",
                    "--micro-batch-size", "4")
    assert got == want
    ranked = servesim.memory(train="lora", model="llama-3.1-8b", recommend=True)
    want = cli_json(cli, "--train", "lora", "--model", "llama-3.1-8b", "--recommend")
    assert ranked["mode"] == want["mode"] == "lora"
    pd.testing.assert_frame_equal(ranked["fits"], pd.DataFrame(want["fits"]))


def test_a_plan_that_does_not_fit_is_returned_where_the_cli_fails(cli):
    got = servesim.memory(model="llama-3.1-405b", hardware="l4")
    out = subprocess.run([cli, "memory", "--model", "llama-3.1-405b", "--hardware", "l4", "--format", "json"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "does not fit" in out.stderr
    assert got == json.loads(out.stdout)
    assert got["fits"] is False and got["shortfall_bytes_per_gpu"] > 0


def test_the_chart_is_the_clis(cli, tmp_path):
    servesim.memory(model="llama-3.1-70b", hardware="h100", concurrency=8, seq_len=4096, chart=tmp_path / "py.svg")
    subprocess.run([cli, "memory", "--model", "llama-3.1-70b", "--hardware", "h100", "--concurrency", "8",
                    "--seq-len", "4096", "--chart", str(tmp_path / "cli.svg")], check=True, capture_output=True)
    assert (tmp_path / "py.svg").read_bytes() == (tmp_path / "cli.svg").read_bytes()


def test_errors_name_the_flag_or_model():
    with pytest.raises(servesim.ServesimError, match="--block-size"):
        servesim.memory(model="llama-3.1-8b", hardware="h100", block_size=0)
    with pytest.raises(servesim.ServesimError, match="--seq-len"):
        servesim.memory(model="llama-3.1-8b", concurrency=4, seq_len=0)
    with pytest.raises(servesim.ServesimError, match="no-such-model"):
        servesim.memory(model="no-such-model", hardware="h100")
    with pytest.raises(servesim.ServesimError, match="--chart"):
        servesim.memory(model="llama-3.1-8b", chart="x.svg")
