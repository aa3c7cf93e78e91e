"""``neurodyn demo``: the main job on an embedded default (what ``make demo`` runs).

1. Simulates the LFADS Lorenz benchmark (65 conditions x 24 trials, 29 neurons, 20 ms bins).
2. Trains LangevinFlow on it with the Lightning harness on the CPU and keeps the last epoch's weights
   (a cosine schedule; nothing is chosen on the validation trials, which are only scored).
3. Prints the rate R2 of LangevinFlow against the true rates of the validation trials, next to a
   Gaussian-smoothing baseline whose width is chosen from the training trials' spikes (leave-one-bin-out
   Poisson likelihood, :func:`neurodyn.models.baselines.select_smoothing`, the grid extended while the best
   width is at its edge; no true rate is consulted), with the chosen width and whether it is still at the
   edge of the grid.
   ``benchmarks/lorenz.py`` is the full comparison (fit / select / report trials, more baselines, seeds).
4. Saves a figure of true vs inferred rates and of the latent trajectories.
5. If the MC_Maze_Small test file is present (``NEURODYN_TEST_DATA`` or ``../shared/data``),
   prepares it as NLB tensors and prints their summary.

The figure and the prepared file follow :func:`neurodyn.io.output_file`; they are checked before
training starts, and results of an earlier run in the same folder are replaced only with
``--overwrite`` (``make demo`` passes it).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from neurodyn.errors import InputError, command_line_names
from neurodyn.io.hdf5 import refuse_denied, root_attrs

#: LangevinFlow settings for the Lorenz benchmark (no reference script exists; see README). The KL
#: enters per target entry at full weight (the ELBO per entry): with the reference scaling (KL summed over
#: 64 dims x 49 steps, weight 0.1) it outweighs the NLL ~3500-fold. These settings were fixed in an earlier
#: session by comparing rate R2 against the true rates of validation trials (kl_scale, eval_mode 'mean');
#: ``benchmarks/lorenz.py`` now reports them on report trials that no choice has seen, with the epoch chosen
#: on separate select trials from spikes only; it also chooses, per seed, between the deterministic pass
#: (``eval_mode`` 'mean', this default) and the 50-sample pass by the same select-trial likelihood, and
#: records both passes' report figures.
LORENZ_MODEL = dict(hidden_size=64, latent_dim=64, gamma=0.1, dropout=0.05, n_heads=2, ff_dim=128,
                    kl_scale="per_entry", kl_max=1.0, kl_ramp_epochs=50, cd_keep_prob=0.7, eval_mode="mean")
LORENZ_OPT = dict(lr=5e-3, weight_decay=1e-5, ramp_epochs=50, lr_schedule="cosine")


def gaussian_smoothing_r2(train_spikes, train_truth, valid_spikes, valid_truth, sigmas=None):
    """Rate R2 of single-trial Gaussian smoothing; the width (in bins) is chosen from the training spikes.

    The width maximises the leave-one-bin-out Poisson likelihood of the training trials' spikes
    (:func:`neurodyn.models.baselines.select_smoothing`, as ``benchmarks/lorenz.py`` chooses it on its
    select trials; the grid, ``sigmas`` or :data:`~neurodyn.models.baselines.SMOOTHING_WIDTHS`, grows
    while the best width is at its edge); ``train_truth`` is not used (kept in the signature: a width chosen
    on true rates would not be a fair baseline). Returns ``(r2_valid, best_sigma, edge)``,
    ``edge`` ``'widest'`` / ``'narrowest'`` when the chosen width is still at that edge of the grid (the
    criterion was rising where the grid stops), else None; the smoothed counts are compared to the true
    rates in counts per bin (both ``(trials, bins, neurons)``).
    """
    from neurodyn.metrics import rate_r2
    from neurodyn.models.baselines import SMOOTHING_WIDTHS, select_smoothing, smooth, smoothing_grid_edge

    best, scores = select_smoothing(np.asarray(train_spikes, dtype=np.float64),
                                    SMOOTHING_WIDTHS if sigmas is None else sigmas)
    return float(rate_r2(valid_truth, smooth(valid_spikes, best))), float(best), smoothing_grid_edge(best, scores)


def smoothing_width_note(sigma: float, edge: str | None, n_bins: int) -> str:
    """How the demo states the chosen smoothing width, and whether it is at the edge of the grid.

    >>> print(smoothing_width_note(6.0, None, 50))
    sigma 6 bins, chosen by the training spikes' leave-one-bin-out likelihood
    """
    note = f"sigma {sigma:g} bins, chosen by the training spikes' leave-one-bin-out likelihood"
    if edge == "widest":
        note += (f"; at the widest edge of the grid (it stops once a width reaches the {n_bins}-bin trial length): "
                 "the likelihood still rises there, so the spikes favour each trial's near-flat mean over any "
                 "narrower smoothing")
    elif edge == "narrowest":
        note += "; at the narrowest edge of the grid: the likelihood still rises towards narrower widths"
    return note


def train_lorenz(out_dir: Path, *, max_epochs: int, seed: int = 0, n_conditions: int = 65,
                 trials_per_condition: int = 24, batch_size: int = 64, progress: bool = True,
                 model_overrides: dict | None = None, opt_overrides: dict | None = None, threads: int = 1) -> dict:
    """Simulate Lorenz, train LangevinFlow, return metrics and predictions (used by the benchmark too)."""
    from neurodyn.training import random_states_kept
    from neurodyn.training.callbacks import denormals_flushed, float32_default, torch_settings_kept

    # the caller's torch threads, deterministic setting, subnormal setting, default dtype and global random
    # generators (seed_everything reseeds them) come back (a notebook)
    with torch_settings_kept(), denormals_flushed(), float32_default(), random_states_kept():
        return _train_lorenz(out_dir, max_epochs=max_epochs, seed=seed, n_conditions=n_conditions,
                             trials_per_condition=trials_per_condition, batch_size=batch_size, progress=progress,
                             model_overrides=model_overrides, opt_overrides=opt_overrides, threads=threads)


def _train_lorenz(out_dir: Path, *, max_epochs: int, seed: int, n_conditions: int, trials_per_condition: int,
                  batch_size: int, progress: bool, model_overrides: dict | None, opt_overrides: dict | None,
                  threads: int) -> dict:
    import lightning.pytorch as pl
    import torch

    from neurodyn.metrics import rate_r2
    from neurodyn.models.langevinflow import LangevinFlowConfig
    from neurodyn.training.checkpoints import AutoModelCheckpoint
    from neurodyn.training.datamodules import LorenzDataModule
    from neurodyn.training.module import LangevinFlowModule
    from neurodyn.training.quiet import quiet_lightning

    pl.seed_everything(seed, verbose=False)
    # One intra-op thread: these matrices are small, and a second thread costs more in synchronisation
    # than it gives (measured: 0.20 vs 0.24 s per step on an idle 2-core CPU, and far slower as soon
    # as anything else runs on the machine).
    torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    dm = LorenzDataModule(n_conditions=n_conditions, trials_per_condition=trials_per_condition, seed=seed,
                          cache=str(out_dir / "lorenz.h5"), batch_size=batch_size)
    config = LangevinFlowConfig(**{**LORENZ_MODEL, **(model_overrides or {})})
    module = LangevinFlowModule(dm.n_heldin, dm.n_neurons, dm.n_obs_bins, dm.n_fwd_bins, config=config,
                                **{**LORENZ_OPT, **(opt_overrides or {})})
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(str(out_dir), name="logs")
    # no monitor: the file kept is the latest epoch's (selecting on valid/rate_r2 would choose on truth). One
    # folder per run, beside its logs/version_<n>: before, a rerun into the same --out left the earlier run's
    # checkpoint next to its own in one checkpoints/ folder
    ckpt = AutoModelCheckpoint(dirpath=str(out_dir / "checkpoints" / f"version_{logger.version}"), monitor=None,
                               save_last=False)
    callbacks = [ckpt]
    import sys

    if progress and sys.stdout.isatty():
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    elif progress:  # a log file, a pipe, CI: one line per epoch (a progress bar there read 'Epoch 0/0')
        from neurodyn.training.callbacks import EpochLog

        callbacks.append(EpochLog())
    # quiet_lightning: no advertising tip, no torch deprecation warning from inside Lightning (as in `neurodyn
    # fit`; the warnings about the training commands' own situations are not dropped here). log_every_n_steps=1:
    # the module logs epoch metrics only, so the interval logs nothing per step; Lightning's default of 50
    # warned that the demo's 20 batches per epoch are fewer.
    with quiet_lightning(situations=False):
        trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=logger,
                             callbacks=callbacks, enable_progress_bar=progress and sys.stdout.isatty(),
                             enable_model_summary=False,
                             num_sanity_val_steps=0, deterministic=False, log_every_n_steps=1)
        start = time.perf_counter()
        try:
            trainer.fit(module, dm)
        except (KeyboardInterrupt, SystemExit):  # a signal (Lightning: sys.exit(1)): folders of a run cut short
            import shutil

            for folder in (Path(logger.log_dir), Path(ckpt.dirpath)):
                shutil.rmtree(folder, ignore_errors=True)
            raise
        train_seconds = time.perf_counter() - start
    valid, train = dm.splits["valid"], dm.splits["train"]
    truth = valid.extras["true_rates"]
    module.eval()
    with torch.no_grad():  # the last epoch's weights: no selection on the validation trials
        pred = module.model.predict(torch.as_tensor(valid.heldin))
        sampled = module.model.predict(torch.as_tensor(valid.heldin), mode="sample")["rates"].numpy()
    rates = pred["rates"].numpy()
    smooth_r2, sigma, edge = gaussian_smoothing_r2(train.heldin, train.extras["true_rates"], valid.heldin, truth)
    return {
        "langevinflow_rate_r2": float(rate_r2(truth, rates)),
        "langevinflow_rate_r2_sampled": float(rate_r2(truth, sampled)),
        "smoothing_rate_r2": smooth_r2,
        "smoothing_sigma_bins": sigma,
        "smoothing_sigma_edge": edge,
        "n_bins": int(valid.heldin.shape[1]),
        "train_seconds": train_seconds,
        "epochs": trainer.current_epoch,
        "checkpoint": ckpt.best_model_path,
        "_rates": rates,
        "_truth": truth,
        "_spikes": valid.heldin,
        "_z": pred["z"].numpy(),
        "_true_latents": valid.extras.get("true_latents"),
        "_train_z": None,
    }


def _real_nwb() -> Path | None:
    folder = Path(os.environ.get("NEURODYN_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    nwb = folder / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
    return nwb if nwb.is_file() else None


REAL_OUT = "mc_maze_small_5ms_test.h5"


def _prepare_real(out_dir: Path, overwrite: bool = True) -> str | None:
    from neurodyn.data.prepare import prepare

    nwb = _real_nwb()
    if nwb is None:
        return None
    out = out_dir / REAL_OUT
    prepare("mc_maze_small", nwb, bin_ms=5, phase="test", out=out, log=None, overwrite=overwrite)
    import h5py

    with h5py.File(out, "r") as f:
        x = f["eval_input/eval_spikes_heldin"][()]
    return (f"MC_Maze_Small test file -> {out}: eval_spikes_heldin {x.shape}, "
            f"NaN {int(np.isnan(x).sum())}, mean {np.nanmean(x.astype(np.float64)):.5f} spikes/bin")


#: the data cache of ``neurodyn demo`` in its --out folder, and the simulation it holds (train_lorenz's defaults)
DEMO_CACHE = "lorenz.h5"
DEMO_SIMULATION = {"n_conditions": 65, "trials_per_condition": 24, "n_neurons": 29}


#: the root attribute that marks a file as the demo's own cache (what it holds: the simulation record,
#: :func:`~neurodyn.data.synthetic.lorenz.simulation_record`, that LorenzDataModule checks too)
DEMO_MARK = "neurodyn_demo_cache"


#: what replaces the demo's own cache of another seed or simulation (no --overwrite needed), named by a refusal
REWRITE_CACHE = "rewriting the demo's cache of another seed or simulation"


def check_demo_cache(out_dir: Path, seed: int, *, overwrite: bool = False,
                     simulation: dict | None = None) -> bool:
    """Decide up front what to do with ``out_dir/lorenz.h5``: True to reuse it, False to (re)write it.

    Reused only when the demo wrote it with this seed and simulation (its attributes say so). A demo cache
    of another seed or simulation is the demo's own file and is rewritten; any other file there is a user's
    and is refused (InputError) unless ``overwrite``, as every output is.
    """
    simulation = DEMO_SIMULATION if simulation is None else simulation
    cache = out_dir / DEMO_CACHE
    if not os.path.lexists(cache):
        return False
    if os.path.isdir(cache):
        raise InputError("is a folder, expected the demo's data cache file", cache, "--out")
    from neurodyn.data.synthetic.lorenz import simulation_record

    attrs = root_attrs(cache) or {}
    key = {DEMO_MARK: 1, **simulation_record(seed, **simulation)}
    if all(attrs.get(k) == v for k, v in key.items()):
        return True
    if DEMO_MARK not in attrs and not overwrite:
        raise InputError("exists and is not a data cache written by neurodyn demo (seed and simulation recorded "
                         "in its attributes); pass --overwrite to replace it, or choose another --out", cache,
                         "--out")
    from neurodyn.io.output import refuse_protected

    # up front, before the simulation and training; the demo's own cache is rewritten without --overwrite, so the
    # refusal names what would have replaced it
    refuse_protected(cache, "--out", cache_replacer(cache))
    return False


def cache_replacer(cache: Path) -> str:
    """What replaces an existing ``cache`` file, as a refusal names it: the demo's own rewrite of its cache, or the
    user's ``--overwrite`` of a file the demo did not write."""
    return REWRITE_CACHE if DEMO_MARK in (root_attrs(cache) or {}) else "--overwrite"


def write_demo_cache(out_dir: Path, seed: int, simulation: dict | None = None,
                     overwrite_name: str = REWRITE_CACHE) -> Path:
    """Simulate the demo's Lorenz data and write ``out_dir/lorenz.h5`` (LFADS layout) marked as its cache;
    ``overwrite_name`` is what a refusal to replace a file protected meanwhile names (:func:`cache_replacer`)."""
    from neurodyn.data.lfads import lfads_from_simulation, write_lfads_h5
    from neurodyn.data.synthetic.lorenz import simulate_lorenz
    from neurodyn.io import output_file

    simulation = DEMO_SIMULATION if simulation is None else simulation
    cache = out_dir / DEMO_CACHE
    # check_demo_cache decided it may be replaced
    with output_file(cache, overwrite=True, overwrite_name=overwrite_name) as tmp:
        data = lfads_from_simulation(simulate_lorenz(**simulation, seed=seed))
        data.attrs[DEMO_MARK] = 1  # lfads_from_simulation records the simulation (config, seed)
        write_lfads_h5(tmp, data)
    return cache


def cli_main(argv: list[str]) -> int:
    from neurodyn.errors import LEGACY_SEED_MAX, ArgumentParser, seed_type

    parser = ArgumentParser(prog="neurodyn demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/demo", help="output folder (default: data/demo)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default 30, env NEURODYN_DEMO_EPOCHS)")
    parser.add_argument("--seed", type=seed_type(LEGACY_SEED_MAX), default=0,
                        help=f"seed of the simulation and the training, 0..{LEGACY_SEED_MAX}")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the figure, cached simulation and prepared file of an earlier run in --out "
                             "(each run's log and checkpoint are kept, under logs/ and checkpoints/version_<n>)")
    args = parser.parse_args(argv)
    from neurodyn.io import check_output, output_file
    from neurodyn.io.output import may_access, not_writable_words

    field = "--epochs"
    if args.epochs is None:  # the environment is read only when --epochs is not given: an explicit one wins
        env_epochs = os.environ.get("NEURODYN_DEMO_EPOCHS")
        field = "--epochs" if env_epochs is None else "NEURODYN_DEMO_EPOCHS"
        try:
            args.epochs = 30 if env_epochs is None else int(env_epochs)
        except ValueError:  # was a ValueError traceback
            raise InputError(f"must be an integer >= 1, got {env_epochs!r}", field=field) from None
    if args.epochs < 1:
        raise InputError(f"must be >= 1, got {args.epochs}", field=field)
    out = Path(args.out)
    # an --out behind a folder this user may not enter: Path.exists raised PermissionError, a traceback
    # (Python 3.11 ignores only ENOENT-like errors there); --out itself is entered, never listed
    refuse_denied(out, "--out", listing=False)
    if out.exists() and not out.is_dir():
        raise InputError("is a file, expected a folder", out, "--out")
    fig_path = out / "lorenz_rates.png"
    check_output(fig_path, overwrite=args.overwrite)  # up front: before 30 epochs of training
    for sub in ("logs", "checkpoints"):  # a new logs/ and checkpoints/version_<n> go in each (training writes them)
        if (out / sub).is_dir() and not may_access(out / sub, os.W_OK | os.X_OK):
            # was a PermissionError traceback from Lightning after the simulation, leaving logs/version_<n>
            raise InputError(f"cannot write in this folder ({not_writable_words(out / sub)})", out / sub, "--out")
    real = _real_nwb()
    if real is not None:
        check_output(out / REAL_OUT, inputs=[real], overwrite=args.overwrite)
    reuse = check_demo_cache(out, args.seed, overwrite=args.overwrite)  # up front, like the checks above
    if not reuse:
        cache = out / DEMO_CACHE
        write_demo_cache(out, args.seed, overwrite_name=cache_replacer(cache) if cache.exists() else REWRITE_CACHE)
    result = train_lorenz(out, max_epochs=args.epochs, seed=args.seed, **{
        k: v for k, v in DEMO_SIMULATION.items() if k != "n_neurons"})
    from neurodyn.viz._common import offscreen_backend, pyplot
    from neurodyn.viz.plots import plot_rates_vs_truth

    with offscreen_backend():  # the command writes a PNG, never a window; the caller's backend comes back
        fig = plot_rates_vs_truth(result["_truth"], result["_rates"], spikes=result["_spikes"], bin_ms=20.0,
                                  labels=("true", "LangevinFlow"))
        try:
            with output_file(fig_path, overwrite=args.overwrite) as tmp:
                fig.savefig(tmp, format="png", dpi=120)
        finally:
            pyplot().close(fig)
    summary = {k: v for k, v in result.items() if not k.startswith("_")}
    print(f"Lorenz validation rate R2: LangevinFlow {summary['langevinflow_rate_r2']:.4f}, "
          f"Gaussian smoothing {summary['smoothing_rate_r2']:.4f}; trained {summary['train_seconds']:.0f} s")
    print("Gaussian smoothing: " + smoothing_width_note(summary["smoothing_sigma_bins"],
                                                        summary["smoothing_sigma_edge"], summary["n_bins"]))
    print(f"figure: {fig_path}")
    with command_line_names():  # prepare()'s errors name --out / --overwrite, the demo's options
        real = _prepare_real(out, overwrite=args.overwrite)
    if real:
        print(real)
    print(json.dumps(summary))
    return 0
