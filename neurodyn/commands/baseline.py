"""``neurodyn baseline``: the smoothing + Poisson GLM baseline on a prepared NLB file -> a prediction file.

:func:`predict_prepared` fits :class:`neurodyn.models.smoothing.SmoothingGLM` on a file written by
``neurodyn prepare`` and predicts its train and evaluation trials in the submission layout; :func:`cli_main`
is the command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from neurodyn.errors import InputError
from neurodyn.models.smoothing import RATE_CLIP, RECIPES, SmoothingGLM, check_sigma

__all__ = ["check_sigma_fits", "predict_prepared", "cli_main"]


def predict_prepared(
    prepared_path,
    dataset: str | None = None,
    *,
    recipe: str = "nlb_tools",
    sigma_ms: float | None = None,
    alpha: float | None = None,
    heldin: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Fit :class:`SmoothingGLM` on a ``prepare`` file and predict its train and eval trials.

    Parameters
    ----------
    prepared_path
        A file written by ``neurodyn prepare`` (groups ``train_input``, ``eval_input``; root
        attributes ``dataset`` and ``bin_ms``).
    dataset
        Expected dataset name; an :class:`InputError` if the file holds another one.
    recipe
        ``"nlb_tools"`` (nlb_tools' tutorial baseline) or ``"neurodyn"`` (held-in GLMs too); see
        :data:`RECIPES`.
    sigma_ms, alpha, heldin
        Override the recipe's value when given.
    progress
        Show a progress bar over the GLMs.
    log
        Receives one line naming the units whose GLM was fitted to training trials without a spike (their rates
        are the floor, ``RATE_CLIP[0]``), when there are such units.

    Returns
    -------
    dict
        ``{"<dataset><suffix>": submission arrays}``, ready for
        :func:`neurodyn.metrics.evaluate` or :func:`neurodyn.metrics.write_submission`.
    """

    from neurodyn.data.prepared import group_name, read_prepared

    check_settings(sigma_ms, alpha)
    prep = read_prepared(prepared_path, ("train_input", "eval_input"), require=("train_input", "eval_input"))
    file_dataset, bin_ms = prep.dataset, prep.bin_ms
    train_input, eval_input = prep.train_input, prep.eval_input
    if dataset is not None and dataset != file_dataset:
        raise InputError(
            f"file holds dataset '{file_dataset}', not '{dataset}'", path=prepared_path, field="dataset"
        )
    n_train = len(train_input["train_spikes_heldin"])
    if n_train == 0:
        raise InputError("no train trials: the baseline's GLMs need at least one", path=prepared_path,
                         field="train_input/train_spikes_heldin")
    for kind in ("heldin", "heldout"):  # all 0: GLMs of rates 0 (log(0) warnings), a file of nothing learnt, exit 0
        key = f"train_spikes_{kind}"
        if not np.nansum(train_input[key], dtype=np.float64) > 0:  # float16 counts: a float16 sum overflows
            raise InputError(f"the {n_train} train trials hold no {kind.replace('held', 'held-')} spikes (every "
                             "count is 0): there is nothing to fit the GLMs to", path=prepared_path,
                             field=f"train_input/{key}")
    if recipe not in RECIPES:
        raise InputError(f"unknown recipe {recipe!r}; use one of {', '.join(RECIPES)}", field="recipe")
    settings = dict(RECIPES[recipe])
    settings.update({k: v for k, v in (("sigma_ms", sigma_ms), ("alpha", alpha), ("heldin", heldin))
                     if v is not None})
    model = SmoothingGLM(bin_ms=bin_ms, **settings).fit(train_input, progress)
    silent = "; ".join(f"{kind.replace('held', 'held-')} {', '.join(map(str, units))}"
                       for kind, units in model.silent_units_.items() if units)
    if silent and log is not None:
        log(f"note: unit(s) without a spike in the {n_train} train trials, whose GLM rates are the floor "
            f"{RATE_CLIP[0]:g} (indices within each group): {silent}")
    inputs = {
        "train_spikes_heldin": train_input["train_spikes_heldin"],
        "eval_spikes_heldin": eval_input["eval_spikes_heldin"],
    }
    return {group_name(file_dataset, bin_ms): model.predict(inputs)}


def check_settings(sigma_ms: float | None, alpha: float | None) -> None:
    """Refuse a non-finite or out-of-range smoothing width or GLM penalty before any data are read (they were
    an sklearn / OverflowError traceback: ``--alpha -1``, ``--sigma-ms nan``)."""
    import math

    if sigma_ms is not None and not (math.isfinite(sigma_ms) and sigma_ms > 0):
        raise InputError(f"must be a finite number > 0 (ms), got {sigma_ms!r}", field="--sigma-ms")
    if alpha is not None and not (math.isfinite(alpha) and alpha >= 0):
        raise InputError(f"must be a finite number >= 0, got {alpha!r}", field="--alpha")


def check_sigma_fits(prepared_path, recipe: str, sigma_ms: float | None) -> None:
    """Refuse a kernel width the smoothing cannot use on this file's trials, from its attributes and shapes
    only (:func:`neurodyn.models.smoothing.check_sigma`: ``bin <= sigma < (bins + 1) * bin / 6``).
    ``prepared_path``: the file, or its header already read (``read_prepared(path, groups=())``).

    Before, ``--sigma-ms 1e9`` built a 1.2e9-float window (9 GiB per temporary array: a MemoryError
    traceback, or all the memory and tens of seconds) before the smoothing refused it as longer than the trial."""
    from neurodyn.data.nlb import check_nlb_width
    from neurodyn.data.prepared import PreparedNLB, read_prepared

    prep = prepared_path if isinstance(prepared_path, PreparedNLB) else read_prepared(prepared_path, groups=())
    check_nlb_width(prep.bin_ms, prep.path)  # before any GLM is fit: a file of another width has no NLB group
    shapes = (prep.shape("train_input", "train_spikes_heldin"), prep.shape("eval_input", "eval_spikes_heldin"))
    bins = [shape[1] for shape in shapes if shape]
    if not bins:
        return  # predict_prepared names the missing group
    sigma = sigma_ms if sigma_ms is not None else RECIPES[recipe]["sigma_ms"]  # the recipes' fit every NLB window
    check_sigma(sigma, prep.bin_ms, min(bins), path=prep.path, field="--sigma-ms")


def _provenance(prepared, header, recipe: str, sigma_ms: float | None = None, alpha: float | None = None,
                heldin: str | None = None) -> dict:
    """Root attributes of a baseline file: what it was made from (the prepared file's phase, dataset and bin
    width, and its path as ``data``) and how (``baseline``: the recipe, ``"<recipe>, modified"`` when an option
    changed it; ``baseline_sigma_ms``, ``baseline_alpha``, ``baseline_heldin``, ``baseline_solver``: the
    settings used), as ``neurodyn predict`` records them; ``submit`` refuses files of two phases by them
    (before, a baseline file recorded nothing and passed; then two files of other settings recorded the same
    ``nlb_tools``); ``data_sha256`` / ``data_source_sha256`` as :func:`neurodyn.io.data_identity` gives them;
    ``heldin_unit_ids`` / ``heldout_unit_ids``, the NWB unit id of each column, where the prepared file records them
    (as ``neurodyn predict`` copies them: a notebook labels the rates columns by them). ``header``: the file's
    header as :func:`cli_main` read it (``read_prepared(prepared, groups=())``), not read again."""
    import os

    from neurodyn.io import data_identity

    found = header.attrs  # phase, dataset, bin_ms: scalars, decoded and unwrapped as root_attrs did
    columns = {f"{kind}_unit_ids": ids for kind, ids in header.column_ids().items()}
    settings = dict(RECIPES[recipe])
    given = {k: v for k, v in (("sigma_ms", sigma_ms), ("alpha", alpha), ("heldin", heldin)) if v is not None}
    modified = any(settings[k] != v for k, v in given.items())
    settings.update(given)
    return {"phase": found.get("phase"), "dataset": found.get("dataset"), "bin_ms": found.get("bin_ms"),
            "data": os.path.abspath(prepared), **data_identity(prepared),
            **columns, "baseline": f"{recipe}, modified" if modified else recipe,
            **{f"baseline_{k}": (float(v) if k in ("sigma_ms", "alpha") else v) for k, v in settings.items()}}


def _row_trial_ids(header, groups: dict) -> dict:
    """``{group: {"train": ids, "eval": ids}}``: the prepared file's NLB trial ids (``trial_ids``) of the rows of the
    baseline's one group when it records them for every row of both splits, as ``neurodyn predict`` writes them
    beside the group (``plot`` names rows by them); ``{}`` otherwise."""
    recorded = getattr(header, "trial_ids", None) or {}
    out = {}
    for name, group in groups.items():
        ids = {split: recorded.get(split) for split in ("train", "eval")}
        if all(ids[s] is not None and len(ids[s]) == len(group[f"{s}_rates_heldin"]) for s in ids):
            out[name] = {s: np.asarray(v) for s, v in ids.items()}
    return out


def cli_main(argv: list[str]) -> int:
    """``neurodyn baseline``: smoothing + Poisson GLM on a prepared file -> submission file."""
    from neurodyn.data.prepared import read_prepared
    from neurodyn.errors import ArgumentParser
    from neurodyn.io import output_file
    from neurodyn.metrics.submission import expected_shapes_from_prepared, write_submission

    parser = ArgumentParser(prog="neurodyn baseline", description=cli_main.__doc__)
    parser.add_argument("--prepared", required=True, help="file written by `neurodyn prepare`")
    parser.add_argument("--out", required=True, help="submission file to write (.h5)")
    parser.add_argument(
        "--recipe", choices=list(RECIPES), default="nlb_tools",
        help="nlb_tools: the nlb_tools tutorial baseline (40 ms kernel, smoothed held-in spikes as held-in "
        "rates, L-BFGS GLMs; default); neurodyn: held-in GLMs too, 50 ms kernel, Newton solves",
    )
    parser.add_argument("--sigma-ms", type=float, default=None, help="Gaussian kernel SD in ms (recipe: 40 / 50)")
    parser.add_argument("--alpha", type=float, default=None, help="PoissonRegressor L2 penalty (recipe: 0.1)")
    parser.add_argument(
        "--heldin", choices=["glm", "smooth"], default=None, help="held-in rates (recipe: smooth / glm)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never an input)")
    args = parser.parse_args(argv)
    check_settings(args.sigma_ms, args.alpha)  # before the file is read
    # the header (attributes and shapes, no array) read once, for the checks before the fits and the provenance
    # after them (expected_shapes_from_prepared, check_sigma_fits and _provenance each read it before)
    header = read_prepared(args.prepared, groups=())
    expected = expected_shapes_from_prepared(header)  # also checks the file before the fits
    check_sigma_fits(header, args.recipe, args.sigma_ms)  # shapes only, before any array is read
    size = sum(4 * int(np.prod(shape)) for group in expected.values() for shape in group.values()
               if None not in shape)  # float32 rates (gzip only shrinks them)
    with output_file(args.out, inputs=[args.prepared], overwrite=args.overwrite, size_bytes=size) as tmp:
        groups = predict_prepared(
            args.prepared, recipe=args.recipe, sigma_ms=args.sigma_ms, alpha=args.alpha, heldin=args.heldin,
            progress=True, log=lambda line: print(line, file=sys.stderr),
        )
        from neurodyn.metrics.resample import read_window_starts

        # the prepared file's window starts beside the rates, as neurodyn predict writes them: --upsample lines
        # a 20 ms baseline up with the 5 ms windows
        write_submission(tmp, groups, expected, attrs=_provenance(args.prepared, header, args.recipe,
                                                                      args.sigma_ms, args.alpha, args.heldin),
                         window_starts=read_window_starts(args.prepared) or None,
                         trial_ids=_row_trial_ids(header, groups))
    print(f"wrote {args.out}")
    return 0
