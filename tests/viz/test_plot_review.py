"""Review of the plotting layer (helper-h5): bad attributes of a prediction file, state colours, PSTH ticks,
titles by model, latents, negative rates, time axes, forward bins, trial ids, and the Python API."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from h5_files import one_error as _one_error
from h5_files import write_h5 as _write

from neurodyn.cli import main
from neurodyn.errors import InputError

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("value", ["twenty", "20", b"20", np.array([20.0, 20.0]), np.nan, -20.0, 0.0, np.inf])
def test_a_bad_bin_ms_attribute_is_one_line_naming_the_file(tmp_path, capsys, value):
    """'twenty' was a ValueError traceback and [20, 20] a TypeError one (exit 1); NaN, -20 and 0 said
    'bin_ms: must be > 0' without the file."""
    path = _write(tmp_path / "p.h5", {"valid_rates": RNG.random((2, 50, 3))}, bin_ms=value)
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png")]) == 2
    assert _one_error(capsys).startswith(f"neurodyn plot: error: {path}: bin_ms (attribute): must be")
    assert not (tmp_path / "p.png").exists()


def test_a_zero_bin_width_means_no_width_in_every_plotting_function():
    """time_axis drew bin_ms=0 in bins, trial_average refused it ('must be > 0'): one rule, 0 = no width."""
    from neurodyn.viz import plot_psth, trial_average

    x = RNG.poisson(0.3, (3, 12, 4)).astype(float)
    psth, _ = trial_average(x, bin_ms=0)
    np.testing.assert_allclose(psth, x.mean(0))
    fig = plot_psth(x, bin_ms=0, sigma_ms=None)
    assert fig.axes[0].get_xlabel() == "bin"
    for bad in (-5.0, np.nan, "20", True, np.array([20.0, 20.0])):
        with pytest.raises(InputError, match="bin_ms"):
            trial_average(x, bin_ms=bad)


@pytest.mark.parametrize("n_states", [12, 25])
def test_every_state_has_its_own_colour_beyond_ten(n_states):
    """f"C{s % 10}" drew state 10 in state 0's colour (stack, strip, path image and mean-posterior lines)."""
    from matplotlib.colors import to_hex

    from neurodyn.viz import plot_state_posteriors, plot_states_aligned

    gamma = RNG.dirichlet(np.ones(n_states), size=(3, 40))
    fig = plot_state_posteriors(gamma[0], true_states=np.arange(40) % n_states)
    stack = [to_hex(c.get_facecolor()[0]) for c in fig.axes[0].collections[:n_states]]
    assert len(set(stack)) == n_states
    strip = [to_hex(c) for c in fig.axes[0].collections[n_states].get_facecolors()]
    assert strip[:n_states] == stack  # the true state s is drawn in the stack's colour of s
    fig = plot_states_aligned(gamma)
    lines = {to_hex(line.get_color()) for line in fig.axes[1].lines if line.get_label().startswith("state")}
    assert len(lines) == n_states
    image = fig.axes[0].collections[0]
    assert len({to_hex(image.cmap(image.norm(s))) for s in range(n_states)}) == n_states


def test_the_psth_map_ticks_name_the_neurons_not_their_rank():
    """The rows are sorted by peak time, but their ticks read the rank 0, 1, 2, ... as if it were a neuron id."""
    from neurodyn.viz import plot_psth

    x = np.zeros((2, 10, 3))
    for neuron, peak in ((0, 8), (1, 2), (2, 5)):  # peak order: neuron 1, 2, 0
        x[:, peak, neuron] = 1.0
    fig = plot_psth(x, bin_ms=20, sigma_ms=None)
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = {int(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels() if t.get_text()}
    assert ticks == {0: "1", 1: "2", 2: "0"}, ticks
    assert ax.get_ylabel() == "neuron (sorted by peak time)"


def test_one_coupling_row_is_not_called_the_estimate():
    """'estimate / post' labelled the only row, with nothing to compare it to."""
    from neurodyn.viz import plot_coupling

    w = RNG.normal(size=(2, 4, 4))
    assert plot_coupling(w).axes[0].get_ylabel() == "post"
    two = plot_coupling(w, reference=w)
    assert [ax.get_ylabel() for ax in two.axes[:4:2]] == ["estimate\npost", "reference\npost"]


def test_rates_vs_truth_and_energy_take_the_common_arguments():
    """plot_rates_vs_truth had no fig, offset_ms or title and plot_energy no offset_ms, unlike the other plots."""
    from neurodyn.viz import plot_energy, plot_rates_vs_truth
    from neurodyn.viz._common import pyplot

    r = RNG.random((2, 30, 3))
    outer = pyplot().figure(layout="constrained")
    sub = outer.subfigures(1, 2)[1]
    fig = plot_rates_vs_truth(r, r * 0.9, neurons=[0, 2], bin_ms=20, offset_ms=-250, title="Lorenz", fig=sub)
    assert fig is sub and len(outer.axes) == 2 and sub._suptitle.get_text() == "Lorenz"
    assert outer.axes[0].lines[0].get_xdata()[0] == pytest.approx(-0.24)
    fig = plot_energy(r[..., 0], r[..., 1], bin_ms=20, offset_ms=-250)
    assert fig.axes[0].lines[0].get_xdata()[0] == pytest.approx(-0.24)


def _nlb(tmp_path, name="p.h5", latents=None, rates=None, **attrs):
    rates = RNG.gamma(2.0, 0.05, (4, 35, 6)) if rates is None else rates
    tree = {"mc_maze_small_20/eval_rates_heldin": rates}
    if latents is not None:
        tree["latents/eval_z"] = latents
    return _write(tmp_path / name, tree, **attrs)


def test_figures_are_titled_by_the_model_not_the_layout(tmp_path):
    """The title named the layout ('nlb prediction', 'hmmglm_model prediction'), not what made the file."""
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    lf = read_prediction(_nlb(tmp_path, "lf.h5", model="LangevinFlow"))
    assert draw_prediction(lf)._suptitle.get_text() == (
        "LangevinFlow prediction (NLB layout): mc_maze_small_20: evaluation trials")
    base = read_prediction(_nlb(tmp_path, "b.h5", baseline="nlb_tools"))
    assert draw_prediction(base)._suptitle.get_text().startswith("baseline (nlb_tools) prediction (NLB layout)")
    lz = read_prediction(_write(tmp_path / "lz.h5", {"valid_rates": RNG.random((2, 12, 3))}, model="LangevinFlow"))
    assert draw_prediction(lz)._suptitle.get_text() == "LangevinFlow prediction (LFADS layout): valid trials"
    plain = read_prediction(_nlb(tmp_path, "plain.h5"))
    assert draw_prediction(plain)._suptitle.get_text().startswith("prediction (NLB layout): ")
    model = read_prediction(_write(tmp_path / "m.h5", {"coupling": RNG.normal(size=(2, 3, 3)),
                                                       "transitions": np.eye(2)}, model="HMMGLM"))
    assert draw_prediction(model)._suptitle.get_text() == "HMMGLM (exported model): coupling of each state"


@pytest.mark.parametrize("dims", [1, 2])
def test_latents_of_one_or_two_dimensions_are_drawn(tmp_path, dims):
    """D = 2 was 'n_components: must be between 1 and 2, got 3' (no file), D = 1 the same."""
    path = _nlb(tmp_path, latents=RNG.normal(size=(4, 35, dims)))
    out = tmp_path / "p.png"
    assert main(["plot", str(path), "--out", str(out), "--dpi", "30"]) == 0
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    fig = draw_prediction(read_prediction(path))
    assert sum(ax.get_ylabel().startswith("PC") and "%" in ax.get_ylabel() for ax in fig.axes) == dims


def test_latents_that_cannot_be_drawn_name_the_file_and_key(tmp_path):
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    data = read_prediction(_nlb(tmp_path, latents=RNG.normal(size=(4, 35, 3))))
    data["latents"] = np.full((4, 35, 3), np.nan)  # past the reader's checks
    with pytest.raises(InputError, match=r"p\.h5: latents/eval_z: "):
        draw_prediction(data)


def test_negative_rates_are_refused_as_everywhere_else(tmp_path, capsys):
    """Negative predictions were drawn (exit 0), though evaluate / submit / ensemble refuse them."""
    path = _write(tmp_path / "neg.h5", {"valid_rates": -RNG.random((2, 50, 3))})
    assert main(["plot", str(path), "--out", str(tmp_path / "n.png")]) == 2
    assert f"{path}: valid_rates: negative rate predictions" in _one_error(capsys)
    heldout = _nlb(tmp_path, "ho.h5")
    with h5py.File(heldout, "a") as f:
        f["mc_maze_small_20/eval_rates_heldout"] = -np.ones((4, 35, 2))
    assert main(["plot", str(heldout), "--out", str(tmp_path / "h.png")]) == 2
    assert "mc_maze_small_20/eval_rates_heldout: negative" in _one_error(capsys)


def _time_limits(fig):
    return {tuple(np.round(ax.get_xlim(), 6)) for ax in fig.axes if ax.get_xlabel().startswith(("time", "bin"))}


def test_every_time_panel_spans_the_bin_edges_with_one_label_and_the_event(tmp_path):
    """The posterior stack ended at the outer bin centres, the path image at their edges; the stack had no
    move-onset line; an LFADS-layout figure mixed 'time (s)' and 'time from window start (s)'."""
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    gamma = RNG.dirichlet(np.ones(3), size=(3, 35))
    hmm = _write(tmp_path / "h.h5", {"valid_posteriors": gamma}, dataset="mc_maze_small", bin_ms=20.0)
    fig = draw_prediction(read_prediction(hmm))
    assert _time_limits(fig) == {(-0.25, 0.45)}
    for ax in fig.axes:
        if ax.get_xlabel() or ax.get_ylabel() in ("row: NLB trial id", "sequence", "row"):
            assert any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.lines), ax.get_ylabel()
    stack = fig.axes[0].collections[0].get_paths()[0].vertices[:, 0]
    assert (stack.min(), stack.max()) == pytest.approx((-0.25, 0.45))
    nlb = draw_prediction(read_prediction(_nlb(tmp_path, latents=RNG.normal(size=(4, 35, 3)))))
    assert _time_limits(nlb) == {(-0.25, 0.45)}
    lfads = _write(tmp_path / "l.h5", {"valid_rates": RNG.random((2, 12, 3)), "valid_z": RNG.random((2, 12, 4))},
                   bin_ms=20.0)
    fig = draw_prediction(read_prediction(lfads))
    assert {ax.get_xlabel() for ax in fig.axes if ax.get_xlabel().startswith("time")} == {"time (s)"}
    assert _time_limits(fig) == {(0.0, 0.24)}


def test_forward_bins_of_the_latents_are_marked_and_short_latents_refused(tmp_path, capsys):
    """Latents of 45 bins beside rates of 35 ran past the rate window unmarked; 10 bins were drawn silently."""
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    fig = draw_prediction(read_prediction(_nlb(tmp_path, latents=RNG.normal(size=(4, 45, 3)))))
    pcs = [ax for ax in fig.axes if ax.get_ylabel().startswith("PC1")]
    assert any(list(line.get_xdata()) == pytest.approx([0.45, 0.45]) for line in pcs[0].lines)
    assert any("forward" in text.get_text() for text in pcs[0].texts)
    short = _nlb(tmp_path, "s.h5", latents=RNG.normal(size=(4, 10, 3)))
    assert main(["plot", str(short), "--out", str(tmp_path / "s.png")]) == 2
    assert f"{short}: latents/eval_z: 10 time bins, fewer than the rates' 35" in _one_error(capsys)


def test_nlb_rows_are_labelled_by_their_trial_ids_and_fractional_ids_refused(tmp_path, capsys):
    """The path image's row ticks read 0, 1, 2 (row numbers) beside 'NLB trial ids in *_trial_ids'; ids of
    1.5 and 2.7 were drawn as trials 1 and 2."""
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    gamma = RNG.dirichlet(np.ones(3), size=(3, 40))
    path = _write(tmp_path / "ids.h5", {"valid_posteriors": gamma, "valid_trial_ids": np.array([17, 4, 230])})
    fig = draw_prediction(read_prediction(path), trial=2)
    image = next(ax for ax in fig.axes if ax.get_ylabel() == "row: NLB trial id")
    fig.canvas.draw()
    assert {t.get_text() for t in image.get_yticklabels() if t.get_text()} == {"17", "4", "230"}
    assert any(ax.get_title() == "row 2 (NLB trial 230): state posteriors" for ax in fig.axes)
    frac = _write(tmp_path / "frac.h5", {"valid_posteriors": gamma, "valid_trial_ids": np.array([1.5, 2.7, 3])})
    assert main(["plot", str(frac), "--out", str(tmp_path / "f.png")]) == 2
    assert (f"{frac}: valid_trial_ids: NLB trial ids must be integers, one per row (as neurodyn writes them, "
            "int64), found float64") in _one_error(capsys)


def test_trial_is_refused_for_a_model_without_posteriors(tmp_path, capsys):
    """--trial 99 was ignored (exit 0) for an exported model without posteriors."""
    path = _write(tmp_path / "m.h5", {"coupling": RNG.normal(size=(2, 3, 3)), "transitions": np.eye(2)})
    assert main(["plot", str(path), "--out", str(tmp_path / "m.png"), "--trial", "99"]) == 2
    assert f"{path}: --trial: the file holds no trials" in _one_error(capsys)
    assert main(["plot", str(path), "--out", str(tmp_path / "m.png")]) == 0  # without --trial: drawn


def test_a_prepared_file_is_named_as_such(tmp_path, capsys):
    """A prepared data file was 'unknown prediction layout (expected ...)'."""
    path = _write(tmp_path / "prep.h5", {"eval_input/eval_spikes_heldin": np.zeros((2, 5, 3))},
                  format="neurodyn-prepared-nlb")
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png")]) == 2
    assert f"{path}: format: is a prepared data file (neurodyn prepare), not a prediction file" in _one_error(capsys)


def test_an_nwb_file_is_named_as_such(tmp_path, capsys):
    """An NWB file (the raw data) was 'unknown prediction layout (expected an NLB group with eval_rates_heldin,
    ...)', with no field; it is named, with the commands that make a prediction of it."""
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    write_nlb_pair(tmp_path, "mc_maze", n_train_trials=4, n_test_trials=2, seed=0, n_heldin=3, n_heldout=1)
    path = tmp_path / "sub-Synth_ses-mcmaze_desc-test_ecephys.nwb"
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png")]) == 2
    assert _one_error(capsys) == (f"neurodyn plot: error: {path}: nwb_version: is an NWB file, not a prediction "
                                  "file: plot the predictions of a model fitted on its tensors (neurodyn prepare, "
                                  "then neurodyn predict or neurodyn baseline)")
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(("simulator", "args", "kind"), [
    ("switching-glm", ["--n-sequences", "4", "--n-bins", "100"],
     "a simulated switching-GLM data file (neurodyn simulate switching-glm)"),
    ("lorenz", ["--n-conditions", "2", "--trials-per-condition", "2", "--n-samples", "100"],
     "an LFADS-format data file (neurodyn simulate lorenz)"),
])
def test_a_simulated_data_file_is_named_as_such(simulator, args, kind, tmp_path, capsys):
    """A file of `neurodyn simulate switching-glm` / `lorenz` was 'unknown prediction layout (expected an NLB
    group ...)'; it gets the line a prepared file gets."""
    path = tmp_path / "sim.h5"
    assert main(["simulate", simulator, "--out", str(path), *args]) == 0
    capsys.readouterr()
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png")]) == 2
    assert _one_error(capsys) == (f"neurodyn plot: error: {path}: format: is {kind}, not a prediction file: plot "
                                  "the predictions of a model fitted on it (neurodyn predict)")
    assert not (tmp_path / "p.png").exists()


def test_a_trial_out_of_range_names_the_file(tmp_path, capsys):
    """`plot --trial 1000` said '--trial: trial 1000 out of range (0..1)' without the file (now: a row index)."""
    path = _write(tmp_path / "p.h5", {"valid_rates": RNG.random((2, 12, 3))}, bin_ms=20.0)
    assert main(["plot", str(path), "--out", str(tmp_path / "q.png"), "--trial", "1000"]) == 2
    assert _one_error(capsys) == (f"neurodyn plot: error: {path}: --trial: row 1000 out of range: --trial takes a row "
                                  "index, 0..1")


def test_the_prediction_figure_is_part_of_the_python_api_and_never_overwrites_by_default(tmp_path):
    """read_prediction / draw_prediction / plot_file were not exported from neurodyn.viz, and plot_file
    replaced an existing figure by default though `neurodyn plot` refuses it without --overwrite."""
    import neurodyn.viz as viz

    assert {"read_prediction", "draw_prediction", "plot_file"} <= set(viz.__all__)
    path = _write(tmp_path / "p.h5", {"valid_rates": RNG.random((2, 12, 3))}, bin_ms=20.0)
    out = tmp_path / "p.png"
    out.write_bytes(b"old")
    with pytest.raises(InputError, match="exists"):
        viz.plot_file(path, out)
    assert out.read_bytes() == b"old"
    assert viz.plot_file(path, out, overwrite=True)[0] == out and out.read_bytes()[:4] == b"\x89PNG"


def test_plot_file_from_python_names_its_arguments_and_the_command_its_options(tmp_path, capsys):
    """plot_file() from Python said "--out: exists; pass --overwrite to replace it" (and --dpi, --trial,
    --group, figure_format's --out): options of `neurodyn plot`, not the function's arguments. A Python
    caller now reads out / overwrite=True / dpi / trial / group; the command still names its options."""
    import neurodyn.viz as viz
    from neurodyn.viz.prediction import figure_format, read_prediction

    path = _write(tmp_path / "p.h5", {"valid_rates": RNG.random((2, 12, 3))}, bin_ms=20.0)
    out = tmp_path / "p.png"
    out.write_bytes(b"old")
    calls = {
        f"{out}: out: exists; pass overwrite=True to replace it": lambda: viz.plot_file(path, out),
        f"{tmp_path / 'p'}: out: no suffix": lambda: figure_format(tmp_path / "p"),
        "dpi: must be between 10 and 600, got 5": lambda: viz.plot_file(path, tmp_path / "q.png", dpi=5),
        f"{path}: trial: row 7 out of range: trial takes a row index, 0..1":
            lambda: viz.plot_file(path, tmp_path / "q.png", trial=7),
    }
    for expected, call in calls.items():
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value).startswith(expected) and "--" not in str(err.value), str(err.value)
    with h5py.File(tmp_path / "two.h5", "w") as f:  # two NLB groups: the choice is the caller's
        for name in ("mc_maze_small_20", "mc_maze_small_5"):
            f[f"{name}/eval_rates_heldin"] = RNG.random((2, 12, 3))
    with pytest.raises(InputError, match=r"two\.h5: group: the file holds 2 NLB groups; choose one with group: "):
        read_prediction(tmp_path / "two.h5")
    assert out.read_bytes() == b"old" and not (tmp_path / "q.png").exists()

    assert main(["plot", str(path), "--out", str(out)]) == 2
    assert _one_error(capsys) == f"neurodyn plot: error: {out}: --out: exists; pass --overwrite to replace it"
    assert main(["plot", str(path), "--out", str(tmp_path / "q.png"), "--dpi", "5"]) == 2
    assert _one_error(capsys) == "neurodyn plot: error: --dpi: must be between 10 and 600, got 5"
    assert main(["plot", str(tmp_path / "two.h5"), "--out", str(tmp_path / "q.png")]) == 2
    assert "choose one with --group: mc_maze_small_20" in _one_error(capsys)
    assert out.read_bytes() == b"old" and not (tmp_path / "q.png").exists()
