"""prepare -> SmoothingGLM -> evaluate -> submit on NLB-shaped synthetic NWB files (latent-driven spikes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.commands.baseline import predict_prepared
from neurodyn.metrics import evaluate, read_submission, write_submission
from neurodyn.metrics.submission import expected_shapes_from_prepared

STYLES = ("mc_maze", "area2_bump", "dmfc_rsg")
EXPECTED_KEYS = {
    "mc_maze": ["co-bps", "vel R2", "psth R2", "fp-bps"],
    "area2_bump": ["co-bps", "vel R2", "psth R2", "fp-bps"],
    "dmfc_rsg": ["co-bps", "tp corr", "psth R2", "fp-bps"],
}


@pytest.fixture(scope="module")
def nwb_files(tmp_path_factory):
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    folder = tmp_path_factory.mktemp("nlb_nwb")
    # 60 trials -> 45 train / 15 val; 20 held-in + 8 held-out units driven by a 3-d latent system
    return {style: write_nlb_nwb(folder / f"{style}.nwb", style, n_trials=60, seed=1) for style in STYLES}


@pytest.mark.parametrize("bin_ms", [20, pytest.param(5, marks=pytest.mark.slow)])
@pytest.mark.parametrize("style", STYLES)
def test_prepare_baseline_evaluate_submit(tmp_path, nwb_files, style, bin_ms, capsys):
    from neurodyn.data.prepare import prepare

    prepared = prepare(style, nwb_files[style], bin_ms, "val", tmp_path / "prepared.h5", log=None)
    groups = predict_prepared(prepared, style, sigma_ms=50 if bin_ms == 5 else 60)
    name = style if bin_ms == 5 else f"{style}_{bin_ms}"
    assert list(groups) == [name]

    result = evaluate(prepared, groups)
    assert list(result[0]) == [f"{name}_split"]
    metrics = result[0][f"{name}_split"]
    assert list(metrics) == EXPECTED_KEYS[style]
    assert all(np.isfinite(v) for v in metrics.values())
    # spikes come from a latent system shared by held-in and held-out units: smoothing + GLM must
    # beat each held-out neuron's mean rate (measured 0.06-0.10 with this seed)
    assert metrics["co-bps"] > 0

    submission = write_submission(tmp_path / "sub.h5", groups, expected_shapes_from_prepared(prepared))
    stored = read_submission(submission)
    assert all(v.dtype == np.float32 for v in stored[name].values())
    assert main(["evaluate", "--target", str(prepared), "--pred", str(submission), "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0][f"{name}_split"]
    # float32 storage rounds rates by <= 6e-8 relative: the likelihood metrics move by ~1e-7
    for key in ("co-bps", "fp-bps"):
        assert from_file[key] == pytest.approx(metrics[key], abs=1e-5)

    out = tmp_path / "final.h5"
    assert main(["submit", "--pred", str(submission), "--out", str(out), "--prepared", str(prepared)]) == 0
    assert set(read_submission(out)) == {name}


def test_submit_without_prepared_checks_registry_units(tmp_path, nwb_files, capsys):
    """Synthetic files have 20 held-in units; the registry's mc_maze has 137: refused, nothing written."""
    from neurodyn.data.prepare import prepare

    prepared = prepare("mc_maze", nwb_files["mc_maze"], 20, "val", tmp_path / "prepared.h5", log=None)
    from neurodyn.commands.baseline import cli_main as baseline_main

    # the baseline's own command writes a submission validated against the prepare file
    sub = tmp_path / "sub.h5"
    assert baseline_main(["--prepared", str(prepared), "--out", str(sub), "--heldin", "smooth"]) == 0
    assert set(read_submission(tmp_path / "sub.h5")) == {"mc_maze_20"}
    assert main(["submit", "--pred", str(tmp_path / "sub.h5"), "--out", str(tmp_path / "final.h5")]) == 2
    err = capsys.readouterr().err
    assert "mc_maze_20/train_rates_heldin: expected shape (*, 35, 137), got (45, 35, 20)" in err
    assert not (tmp_path / "final.h5").exists()
