"""The Lorenz benchmark's fit / select / report split (per condition, disjoint, seeded) and the departure variants."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_benchmark(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is on sys.path only while it loads)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return mod


@pytest.fixture(scope="module")
def lorenz_bench():
    return _load_benchmark("lorenz")


def test_three_way_split_is_per_condition_disjoint_and_seeded(lorenz_bench):
    conditions = np.repeat(np.arange(5), 6)
    fit, sel, rep = lorenz_bench.three_way_split(conditions, (3, 2, 1), seed=0)
    assert not (set(fit) & set(sel)) and not (set(fit) & set(rep)) and not (set(sel) & set(rep))
    for part, n in ((fit, 3), (sel, 2), (rep, 1)):
        np.testing.assert_array_equal(np.bincount(conditions[part], minlength=5), n)  # every condition, n each
    again = lorenz_bench.three_way_split(conditions, (3, 2, 1), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((fit, sel, rep), again))
    other = lorenz_bench.three_way_split(conditions, (3, 2, 1), seed=1)
    assert not np.array_equal(rep, other[2])
    with pytest.raises(ValueError, match="fewer than"):
        lorenz_bench.three_way_split(conditions, (5, 1, 1), seed=0)


def test_departure_variants_are_the_reference_presets_model_fields_one_at_a_time():
    from dataclasses import fields

    from neurodyn.models.langevinflow import LangevinFlowConfig

    dep = _load_benchmark("departures")
    ours, ref = LangevinFlowConfig(), LangevinFlowConfig.reference()
    differing = {f.name: getattr(ref, f.name) for f in fields(LangevinFlowConfig)
                 if getattr(ours, f.name) != getattr(ref, f.name)}
    # every field where the reference preset differs, except the validation-only val_mask
    assert dep.REFERENCE_FIELDS == {k: v for k, v in differing.items() if k != "val_mask"}
    singles = {k: v for k, v in dep.VARIANTS.items() if k not in ("neurodyn", "reference_fields")}
    assert {next(iter(v)) for v in singles.values()} == set(dep.REFERENCE_FIELDS)
    for name, override in singles.items():
        assert len(override) == 1 and ours.replace(**override) != ours, name
    assert dep.VARIANTS["neurodyn"] == {} and dep.VARIANTS["reference_fields"] == dep.REFERENCE_FIELDS
    assert [dep._verdict({"mean": m, "sd": 0.01}) for m in (0.02, 0.005, -0.005, -0.02)] == \
        ["helps", "neutral", "neutral", "hurts"]


def test_nlb_synthetic_tables_label_ensembles_and_their_member_0():
    """The README rows of an ensemble run: the ensemble (headline, with the user-path time) and its member 0,
    each with its own co-bps / oracle; a single-fit run keeps the plain label and has no member-0 row."""
    nlb = _load_benchmark("nlb_synthetic")

    def run(co, single=None, members=1):
        scores = {b: {"co-bps": co, "vel R2": 0.9, "psth R2": 0.8, "fp-bps": 0.1} for b in ("20ms", "5ms")}
        oracle = {b: {"co-bps": 0.5, "vel R2": 1.0, "psth R2": 0.9, "fp-bps": 0.2} for b in ("20ms", "5ms")}
        r = {"members": members, "langevinflow": scores, "baseline": oracle, "baseline_neurodyn": oracle,
             "oracle": oracle, "seconds": {"fit": 60.0, "user_path": 120.0},
             **{f"co_bps_ratio_{b}": co / 0.5 for b in ("20ms", "5ms")}}
        if single is not None:
            r["langevinflow_single"] = {b: dict(scores[b], **{"co-bps": single}) for b in scores}
            r.update({f"co_bps_ratio_single_{b}": single / 0.5 for b in ("20ms", "5ms")})
        return r

    summaries, readme = nlb.summary_tables({"mc_maze": {"0": run(0.45, 0.40, 3), "1": run(0.47, 0.44, 3)}}, 1)
    rows = [r for r in readme["rows"] if r[1] == "20 ms"]
    assert rows[0][2] == "LangevinFlow `mc_maze_small_cpu.yaml`, ensemble of 3 fits"
    assert rows[0][7] == "0.92 ± 0.03" and rows[0][8] == "2.0 ± 0.0"
    assert rows[1][2].startswith("LangevinFlow, one fit (member 0") and rows[1][7] == "0.84 ± 0.06"
    assert summaries["mc_maze"]["members"] == [3]
    _, readme = nlb.summary_tables({"mc_maze": {"0": run(0.45)}}, 1)
    labels = [r[2] for r in readme["rows"] if r[1] == "20 ms"]
    assert labels[0] == "LangevinFlow `mc_maze_small_cpu.yaml`" and not any("member 0" in x for x in labels)


def test_real_pseudo_stage2_merges_the_variations_above_the_base_mean_best_value_per_field():
    bench = _load_benchmark("real_pseudo_cosmoothing")
    cands = {"base": (10, {}, {}), "a1": (10, {"a": 1}, {}), "a2": (10, {"a": 2}, {}), "b": (10, {"b": 0}, {}),
             "lr": (10, {}, {"lr": 1}), "short": (5, {"c": 1}, {}), "two": (10, {"a": 3, "b": 1}, {})}
    scores = {"base": 0.10, "a1": 0.20, "a2": 0.25, "b": 0.12, "lr": 0.15, "short": 0.9, "two": 0.9}
    label, model, opt, names = bench.combined_variation(scores, [0.10, 0.14], cands, "base")  # bar 0.12
    assert names == ["a2", "lr"]  # a2 beats a1 on field a; b only ties the bar; short / two are no variations
    assert model == {"a": 2} and opt == {"lr": 1} and label == "a2 + lr"
    assert bench.combined_variation(scores, [0.3], cands, "base") is None  # nothing beats the bar
    assert bench.combined_variation({"base": 0.1}, [0.1], cands, "base") is None  # variations not trained


def test_real_pseudo_rate_smoothing_width_is_chosen_by_select_co_bps():
    bench = _load_benchmark("real_pseudo_cosmoothing")
    rng = np.random.default_rng(0)
    t = np.arange(140)[None, :, None]
    # smooth true rates (counts per 5 ms bin), a prediction with independent per-bin noise on them, counts drawn
    # from the truth: smoothing removes the noise, so some width > 0 must beat the raw prediction
    truth = 0.5 + 0.4 * np.sin(2 * np.pi * t / 70 + rng.uniform(0, 2 * np.pi, (40, 1, 6)))
    noisy = truth * np.exp(rng.normal(0, 0.5, truth.shape))
    counts = rng.poisson(np.broadcast_to(truth, (40, 140, 6))).astype(float)
    width, scores = bench.choose_rate_smoothing(noisy, counts, 5)
    assert set(scores) == set(bench.RATE_SMOOTH_MS) and width > 0 and scores[width] > scores[0]
    assert scores[width] == max(scores.values())
    # rates that alternate every bin with counts following them exactly: any smoothing loses, 0 is kept
    sharp = np.broadcast_to(np.where(np.arange(140) % 2, 4.0, 0.25)[None, :, None], (40, 140, 6))
    width, scores = bench.choose_rate_smoothing(sharp, rng.poisson(sharp).astype(float), 5)
    assert width == 0 and all(scores[0] > v for w, v in scores.items() if w)
    # width 0 is the identity; a constant rate is unchanged by any width (edges extended, nothing leaks out)
    assert np.array_equal(bench.smooth_rates(noisy, 0, 5), noisy)
    assert np.allclose(bench.smooth_rates(np.full((2, 140, 3), 0.7), 30, 5), 0.7, rtol=0, atol=1e-12)


def test_reused_seed_logs_get_baselines_scored_by_this_run(lorenz_bench, tmp_path, monkeypatch):
    """`--reuse` took a seed's baselines from its log, so a change of a baseline (the growing smoothing grid)
    never reached the results file of a rerun; now the baselines, which need no training, are scored again."""
    import json

    from neurodyn.demo import LORENZ_MODEL, LORENZ_OPT

    record = json.loads((ROOT / "benchmarks" / "results" / "lorenz.json").read_text())["figures"]["per_seed"][0]
    assert record["model"] == LORENZ_MODEL and record["optimiser"] == LORENZ_OPT  # reusable by this code
    record["gaussian_smoothing"] = -9.0  # what the log says
    record["data_sha256"] = "the same data"  # the digest of the data this run simulates (patched below)
    (tmp_path / f"seed{record['seed']}.json").write_text(json.dumps(record))
    monkeypatch.setattr(lorenz_bench, "_data_digest", lambda *args: "the same data")
    fresh = {"gaussian_smoothing": 0.25, "gaussian_smoothing_sigma_bins": 4.0, "gaussian_smoothing_sigma_edge": None,
             "condition_psth_oracle": 0.5, "condition_psth_oracle_sigma_bins": 1.0, "factor_analysis": 0.125,
             "factor_analysis_sigma_bins": 2, "factor_analysis_dim": 3}
    monkeypatch.setattr(lorenz_bench, "_simulate", lambda seed, sizes: (
        SimpleNamespace(truth=None, condition_ids=None), None, (None, None, None)))
    monkeypatch.setattr(lorenz_bench, "_baselines", lambda *args: dict(fresh))
    written = {}
    monkeypatch.setattr(lorenz_bench, "write_results", lambda name, figures, **kw: written.update(kw, figures=figures)
                        or tmp_path / "lorenz.json")
    epochs = ",".join(map(str, record["epoch_candidates_tried"]))
    assert lorenz_bench.main(["--seeds", str(record["seed"]), "--epochs", epochs, "--members",
                              str(record["members"]), "--out", str(tmp_path), "--reuse"]) == 0
    (seed,) = written["figures"]["per_seed"]
    assert {key: seed[key] for key in fresh} == fresh
    assert seed["langevinflow_ensemble"] == record["langevinflow_ensemble"]  # the fits' figures come from the log
    assert "the baselines were scored again by this run" in written["readme"]["notes"]


def _slow_condition_data(seed: int = 0):
    """Six conditions of 24 trials, 60 bins, 4 neurons, rates slow in time (a half period over the trial): the
    mean of 16 fit trials is noisy enough that the select trials' likelihood peaks at a width beyond 3 bins."""
    rng = np.random.default_rng(seed)
    cond = np.repeat(np.arange(6), 24)
    t = np.arange(60)[None, :, None]
    truth = (0.4 * (1 + 0.8 * np.sin(2 * np.pi * t / 120 + rng.uniform(0, 2 * np.pi, (6, 1, 4)))))[cond]
    return rng.poisson(truth).astype(float), truth, cond


def test_the_condition_psth_oracle_width_grid_grows_from_an_edge_on_select_spikes_only(lorenz_bench):
    """The PSTH oracle chose its width from a fixed grid (0-3 bins) while the Gaussian smoothing and factor analysis
    baselines grow theirs from an edge choice: here the likelihood still rose at 3 bins (chosen, at the edge, not
    recorded). Now the grid grows until the select trials' likelihood turns down and the record says whether the
    choice is still at an edge; the choice depends on the fit and select trials' spikes and labels only."""
    from neurodyn.metrics import rate_r2
    from neurodyn.models.baselines import condition_psth, poisson_loglik

    x, truth, cond = _slow_condition_data()
    fit, sel, rep = lorenz_bench.three_way_split(cond, (16, 4, 4), seed=0)

    def select_score(width: float) -> float:  # the select trials' likelihood under the fit trials' PSTH
        return poisson_loglik(condition_psth(x[fit], cond[fit], cond[sel], width), x[sel])

    old_grid = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
    assert max(old_grid, key=select_score) == 3.0  # the fixed grid's choice: its widest width
    res = lorenz_bench._baselines(x, truth, cond, fit, sel, rep, 0)
    sigma = res["condition_psth_oracle_sigma_bins"]
    assert sigma > 3.0 and select_score(sigma) > max(select_score(w) for w in old_grid)
    assert select_score(sigma) > max(select_score(2 * sigma), select_score(sigma / 2))  # turned down both ways
    assert res["condition_psth_oracle_sigma_edge"] is None
    assert res["condition_psth_oracle"] == float(rate_r2(truth[rep], condition_psth(x[fit], cond[fit], cond[rep],
                                                                                      sigma)))
    # neither the true rates nor the report trials' spikes take part in the choice
    rng = np.random.default_rng(1)
    x_other, truth_other = x.copy(), rng.uniform(0.1, 2.0, truth.shape)
    x_other[rep] = rng.poisson(3.0, x[rep].shape)
    other = lorenz_bench._baselines(x_other, truth_other, cond, fit, sel, rep, 0)
    assert other["condition_psth_oracle_sigma_bins"] == sigma and other["condition_psth_oracle_sigma_edge"] is None


def test_the_committed_psth_oracle_figures_are_those_of_the_growing_grid():
    """README: the committed Lorenz run chose the PSTH oracle's width on the fixed grid; its figures stand because
    each choice lies inside that grid, where select_condition_psth's growing grid stops at once. A later run
    records the edge itself."""
    import json

    from neurodyn.models.baselines import PSTH_WIDTHS

    for record in json.loads((ROOT / "benchmarks" / "results" / "lorenz.json").read_text())["figures"]["per_seed"]:
        if "condition_psth_oracle_sigma_edge" not in record:
            assert min(PSTH_WIDTHS) < record["condition_psth_oracle_sigma_bins"] < max(PSTH_WIDTHS), record["seed"]
