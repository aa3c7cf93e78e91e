"""``neurodyn ensemble``: average the rates of several prediction files of the same data (a rate ensemble).

Example (shell): three fits of one config with different seeds, one prediction file::

    for s in 0 1 2; do
        neurodyn fit --config configs/langevinflow/mc_maze_small_cpu.yaml --data.path prep.h5 \\
            --seed_everything $s --trainer.default_root_dir runs/seed$s
        neurodyn predict --config runs/seed$s/.../config.yaml --ckpt_path runs/seed$s/.../last.ckpt \\
            --prediction.path pred_seed$s.h5
    done
    neurodyn ensemble --pred pred_seed0.h5 pred_seed1.h5 pred_seed2.h5 --out pred_ensemble.h5

Every rate array of the submission layout (same groups, keys and shapes in every file) is averaged
(rates, not log-rates: the Poisson likelihood is concave in the rate, so the ensemble scores at least the
members' mean on every entry; :class:`neurodyn.models.ensemble.RateEnsemble`). The latents that ``neurodyn
predict`` stores beside the rates are not comparable across separate fits and are not copied. Choose the
members in advance (how many, which seeds), never by their scores on the trials you report.

Writes under :func:`neurodyn.io.output_file` (``--overwrite`` to replace a file; never onto an input). Bad
input is one line and exit code 2 through :mod:`neurodyn.cli`.
"""

from __future__ import annotations

import os

import numpy as np

from neurodyn.errors import ArgumentParser, InputError

__all__ = ["average_predictions", "cli_main"]


def average_predictions(paths) -> dict[str, dict[str, np.ndarray]]:
    """``{group: {key: mean rates}}`` over the prediction files ``paths`` (float64 sums, in file order).

    Raises
    ------
    InputError
        Fewer than two files; a file given twice (also through a link or another path); a file that is not
        a prediction file; a group or key missing from a file,
        or one it has and the first does not; arrays of different shapes (each names the file and field).
    """
    from neurodyn.io.output import _same_file
    from neurodyn.metrics.submission import read_submission, validate_submission

    paths = [os.fspath(p) for p in paths]
    if len(paths) < 2:
        raise InputError("an ensemble needs at least two prediction files", field="--pred")
    for i, path in enumerate(paths):
        for earlier in paths[:i]:
            if _same_file(path, earlier):  # a missing file is not the same: read_submission names it below
                raise InputError(f"is the same file as {earlier} (given twice, or a link to it): an ensemble "
                                 "averages different prediction files", path=path, field="--pred")
    total: dict[str, dict[str, np.ndarray]] = {}
    first = paths[0]
    for path in paths:
        groups = read_submission(path)
        validate_submission(groups, path=path)  # finite, non-negative, 3-D rates in the NLB layout
        if path == first:
            total = {g: {k: np.asarray(v, dtype=np.float64).copy() for k, v in arrays.items()}
                     for g, arrays in groups.items()}
            continue
        for name in total.keys() | groups.keys():
            if name not in groups or name not in total:
                where = path if name not in groups else first
                raise InputError(f"group not in every prediction file (missing from {where})", path=path,
                                 field=name)
            for key in total[name].keys() | groups[name].keys():
                if key not in groups[name] or key not in total[name]:
                    where = path if key not in groups[name] else first
                    raise InputError(f"not in every prediction file (missing from {where})", path=path,
                                     field=f"{name}/{key}")
                if groups[name][key].shape != total[name][key].shape:
                    raise InputError(f"shape {groups[name][key].shape}, but {total[name][key].shape} in {first}",
                                     path=path, field=f"{name}/{key}")
                total[name][key] += groups[name][key]
    return {g: {k: v / len(paths) for k, v in arrays.items()} for g, arrays in total.items()}


def cli_main(argv: list[str]) -> int:
    """``neurodyn ensemble``: average the rates of several prediction files of the same data."""
    parser = ArgumentParser(prog="neurodyn ensemble", description=cli_main.__doc__)
    parser.add_argument("--pred", required=True, nargs="+", metavar="FILE",
                        help="prediction files of the same data (e.g. `neurodyn predict` of fits with different "
                             "seeds), at least two")
    parser.add_argument("--out", required=True, metavar="FILE", help="prediction file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never an input)")
    args = parser.parse_args(argv)
    from neurodyn.io import output_file
    from neurodyn.metrics.submission import write_submission

    size = max((os.path.getsize(p) for p in args.pred if os.path.isfile(p)), default=0)
    with output_file(args.out, inputs=args.pred, overwrite=args.overwrite, size_bytes=size) as tmp:
        groups = average_predictions(args.pred)
        write_submission(tmp, groups)
    print(f"wrote {args.out}: the mean of {len(args.pred)} prediction files ({', '.join(groups)})")
    return 0
