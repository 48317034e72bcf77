"""servesim.estimate: one batch as the CLI's JSON, a sweep of batches as a DataFrame."""

import json
import subprocess

import pytest

import servesim


def cli_json(cli, *flags):
    out = subprocess.run([cli, "estimate", *flags, "--format", "json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_one_batch_equals_the_cli(cli):
    got = servesim.estimate(model="llama-3.1-8b", hardware="h100", batch_size=8, input_len=512, output_len=128)
    want = cli_json(cli, "--model", "llama-3.1-8b", "--hardware", "h100", "--batch-size", "8",
                    "--input-len", "512", "--output-len", "128")
    assert got == want
    assert got["ttft_s"] > 0


def test_a_sweep_of_batches_is_a_dataframe_equal_to_the_cli(cli):
    df = servesim.estimate(model="llama-3.1-8b", batch_size=[1, 8, 32], input_len=512, output_len=128)
    want = cli_json(cli, "--model", "llama-3.1-8b", "--batch-size", "1,8,32", "--input-len", "512",
                    "--output-len", "128")
    assert len(df) == 3
    assert df.to_dict("records") == want


def test_bad_flags_name_the_flag():
    with pytest.raises(servesim.ServesimError, match="--batch-size"):
        servesim.estimate(model="llama-3.1-8b", batch_size=0)
