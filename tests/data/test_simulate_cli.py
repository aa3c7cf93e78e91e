"""`neurodyn simulate` through the real entry point `neurodyn.cli.main`."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.data.lfads import read_lfads_h5

TINY = ["--n-conditions", "3", "--trials-per-condition", "4", "--n-samples", "100", "--n-neurons", "5",
        "--no-progress"]


def test_lorenz_writes_lfads_file(tmp_path, capsys):
    out = tmp_path / "sub" / "lorenz.h5"
    assert main(["simulate", "lorenz", *TINY, "--seed", "3", "--out", str(out)]) == 0
    data = read_lfads_h5(out)
    # 12 trials, round(0.8 * 12) = 10 train; 100 samples / 20 ms = 5 bins
    assert data.train_data.shape == (10, 5, 5) and data.valid_data.shape == (2, 5, 5)
    assert data.train_latents.shape == (10, 5, 3)
    assert data.attrs["seed"] == 3
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and str(out) in printed[0] and "12 trials" in printed[0]
    # same seed through the CLI -> identical file contents
    again = tmp_path / "again.h5"
    assert main(["simulate", "lorenz", *TINY, "--seed", "3", "--out", str(again)]) == 0
    np.testing.assert_array_equal(read_lfads_h5(again).train_data, data.train_data)


def test_lorenz_options_reach_the_simulator(tmp_path):
    out = tmp_path / "p.h5"
    args = ["simulate", "lorenz", "--n-conditions", "2", "--trials-range", "3", "5", "--n-samples", "60",
            "--bin-ms", "10", "--spikes", "poisson", "--standard-lorenz", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    data = read_lfads_h5(out)
    assert data.n_bins == 6 and data.bin_ms == 10.0 and data.conversion_factor == 100.0
    n_trials = len(data.train_inds) + len(data.valid_inds)
    assert 6 <= n_trials <= 10
    assert "Poisson" in data.attrs["truth_kind"] and "'standard_lorenz': True" in data.attrs["config"]


@pytest.mark.parametrize("bad", [
    ["--bin-ms", "30"],                       # 100 samples not a multiple of 30 -> InputError
    ["--n-conditions", "zero"],               # argparse type error
    ["--n-conditions", "0"],                  # InputError from the config
    ["--spikes", "gaussian"],                 # argparse choices
    ["--trials-per-condition", "2", "--trials-range", "1", "2"],  # mutually exclusive
])
def test_bad_arguments_exit_2_without_file(tmp_path, bad, capsys):
    out = tmp_path / "x.h5"
    assert main(["simulate", "lorenz", *TINY, *bad, "--out", str(out)]) == 2
    assert not out.exists() and list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert "error" in err


def test_missing_out_and_help(capsys):
    assert main(["simulate", "lorenz", *TINY]) == 2
    assert main(["simulate", "--help"]) == 0
    assert "switching-glm" in capsys.readouterr().out
    assert main(["simulate"]) == 2


def test_switching_glm_dispatch(monkeypatch, tmp_path):
    """The subcommand takes its options and runner from the switching_glm module (faked here)."""
    seen = {}
    fake = types.ModuleType("neurodyn.data.synthetic.switching_glm")

    def add_cli_arguments(parser):
        parser.add_argument("--n-states", type=int, default=5)
        parser.add_argument("--out", required=True)

    def run_cli(args):
        seen.update(vars(args))
        return 0

    fake.add_cli_arguments, fake.run_cli = add_cli_arguments, run_cli
    monkeypatch.setitem(sys.modules, "neurodyn.data.synthetic.switching_glm", fake)
    assert main(["simulate", "switching-glm", "--n-states", "3", "--out", str(tmp_path / "g.h5")]) == 0
    assert seen["n_states"] == 3 and seen["simulator"] == "switching-glm"
    assert main(["simulate", "switching-glm", "--n-states", "x", "--out", "g.h5"]) == 2


def test_switching_glm_real_module_help(capsys):
    pytest.importorskip("neurodyn.data.synthetic.switching_glm")
    assert main(["simulate", "switching-glm", "--help"]) == 0
    assert "usage: neurodyn simulate switching-glm" in capsys.readouterr().out
