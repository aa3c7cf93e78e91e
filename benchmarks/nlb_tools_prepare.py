"""nlb_tools' side of ``benchmarks/prepare_speed.py``: what ``neurodyn prepare`` does, done with nlb_tools.

Runs in the nlb_tools reference environment (``make nlb-env`` -> ``.venv-nlb``; nlb_tools 0.0.4, MIT,
Pei et al. 2021, https://github.com/neurallatents/nlb_tools), never in neurodyn's. One job, given as JSON
(``prepare_speed.py`` writes it):

    python benchmarks/nlb_tools_prepare.py --job '{"folder": DIR or FILE, "dataset": "mc_maze", "bin_ms": 5,
                                                   "phase": "val" | "test", "out": DIR}'

A job that is not such JSON, or names no folder or file to read, is one line, ``nlb_tools_prepare.py: error:
--job: <what is wrong>``, exit code 2, as in every benchmark (``_results.BenchmarkParser``, which words it
with this checkout's ``neurodyn/errors.py`` where neurodyn is not installed).

``NWBDataset(folder)``, ``resample(bin_ms)`` (at 5 ms as well: nlb_tools loads at 1 ms), then the tensor
makers of the phase with ``save_file=True`` (nlb_tools' own gzip HDF5 writer): val -> train input
(split ``train``, behaviour and forward prediction), eval input (``val``) and eval target with PSTHs;
test -> train input (``train`` + ``val``) and eval input (``test``); groups a file cannot support (e.g.
the train input of a test file alone) are left out, as ``neurodyn prepare`` leaves them out.

Prints one JSON line: ``seconds`` from before the NWB read to the last file written, ``import_seconds``,
``rss_after_import_mb`` and ``peak_rss_mb`` (this process's ``VmHWM``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from _results import BenchmarkParser, json_object
from _rss import children_peak_rss_mb, peak_rss_mb

#: the ``type`` of a job (this script's ``--job``, and ``prepare_speed.py --child`` for neurodyn's side)
job_type = json_object(folder=str, dataset=str, bin_ms=int, phase=("val", "test"), out=str)


def parse_job(argv: list[str] | None = None) -> dict:
    """The job of ``--job``, checked before nlb_tools is imported: a bad one is one line, exit code 2."""
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", required=True, type=job_type, metavar="JSON",
                        help='{"folder": DIR or FILE, "dataset": NAME, "bin_ms": N, "phase": "val" or "test", '
                             '"out": DIR}: the NWB folder or file to read, nlb_tools\' dataset name, the bin width '
                             "(ms), the phase and the folder the tensor files are written to (made when missing)")
    job = parser.parse_args(argv).job
    if job["bin_ms"] < 1:
        parser.error(f"argument --job: field 'bin_ms' must be >= 1, got {job['bin_ms']}")
    if not Path(job["folder"]).exists():
        parser.error(f"argument --job: field 'folder': {job['folder']}: no such file or folder")
    if Path(job["out"]).exists() and not Path(job["out"]).is_dir():
        parser.error(f"argument --job: field 'out': {job['out']}: not a folder")
    return job


def main(argv: list[str] | None = None) -> int:
    import logging
    import warnings

    job = parse_job(argv)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    import nlb_tools.make_tensors as mt
    from nlb_tools.nwb_interface import NWBDataset

    logging.getLogger("nlb_tools").setLevel(logging.ERROR)
    import_seconds = time.perf_counter() - start
    rss_import = peak_rss_mb()
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    name, phase = job["dataset"], job["phase"]

    start = time.perf_counter()
    ds = NWBDataset(str(job["folder"]))
    ds.resample(int(job["bin_ms"]))
    split = ds.trial_info["split"].to_numpy()
    train_splits, eval_split = (["train"], "val") if phase == "val" else (["train", "val"], "test")
    has_train = bool(sum((split == s).sum() for s in train_splits))
    has_eval = bool((split == eval_split).sum())
    if has_train:
        mt.make_train_input_tensors(ds, name, train_splits if len(train_splits) > 1 else train_splits[0],
                                    save_file=True, save_path=str(out / "train_input.h5"),
                                    include_behavior=True, include_forward_pred=True)
    if has_eval:
        mt.make_eval_input_tensors(ds, name, eval_split, save_file=True, save_path=str(out / "eval_input.h5"))
    if phase == "val" and has_train and has_eval:
        mt.make_eval_target_tensors(ds, name, "train", "val", save_file=True,
                                    save_path=str(out / "eval_target.h5"), include_psth=True)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "import_seconds": import_seconds, "rss_after_import_mb": rss_import,
                      "peak_rss_mb": peak_rss_mb(),
                      "children_peak_rss_mb": children_peak_rss_mb(),
                      "output_mb": sum(p.stat().st_size for p in out.glob("*.h5")) / 2**20}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
