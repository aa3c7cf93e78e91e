"""``neurodyn simulate``: write synthetic datasets with ground truth.

Subcommands
-----------
``lorenz``
    The LFADS Lorenz benchmark (:mod:`neurodyn.data.synthetic.lorenz`) in the LFADS ``.h5`` layout
    (:mod:`neurodyn.data.lfads`).
``switching-glm``
    The HMM-GLM switching simulator; its options and runner live in
    :mod:`neurodyn.data.synthetic.switching_glm` (``add_cli_arguments`` / ``run_cli``), imported only
    when this subcommand is used.
``nlb``
    A train + test pair of NWB files shaped like an NLB'21 DANDI session (:mod:`neurodyn.data.synthetic.nlb_nwb`:
    spikes of a known latent system, NLB trial columns and behaviour), for the NLB workflow without DANDI.

Examples
--------
``neurodyn simulate lorenz --seed 0 --out data/lorenz.h5``
``neurodyn simulate lorenz --n-conditions 8 --trials-per-condition 4 --n-samples 200 --out tiny.h5``
``neurodyn simulate nlb --style mc_maze --seed 0 --out data/synthetic_mc_maze/``

All follow the output policy of :func:`neurodyn.io.output_file` (``--overwrite`` to replace a file)
and refuse sizes whose estimated memory exceeds the available RAM, or whose estimated file exceeds
the free disk, before any work starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neurodyn.errors import STORED_SEED_MAX, ArgumentParser, InputError, seed_type

SWITCHING_GLM_MODULE = "neurodyn.data.synthetic.switching_glm"

#: help of the switching-GLM options that :func:`neurodyn.data.synthetic.switching_glm.add_cli_arguments`
#: defines without one (the simulator's semantics: its module docstring and ``simulate_switching_glm``)
SWITCHING_GLM_HELP = {
    "n_states": "number of hidden states, each with its own neuron-to-neuron coupling matrix; a state is kept "
                "with probability 0.98 per bin, else left for another at random (default: %(default)s)",
    "n_neurons": "number of neurons, coupled through their spike history; Poisson counts per bin, mean at most 1 "
                 "(default: %(default)s)",
    "n_sequences": "number of independent sequences (trials), each --n-bins long, all of the same network "
                   "(default: %(default)s)",
}


def build_parser(with_switching_glm: bool = False) -> argparse.ArgumentParser:
    """The ``neurodyn simulate`` parser; the switching-GLM options are added only when asked for."""
    from neurodyn.data.synthetic.lorenz import LorenzConfig

    defaults = LorenzConfig()
    parser = ArgumentParser(prog="neurodyn simulate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    commands = parser.add_subparsers(dest="simulator", required=True, metavar="{lorenz,switching-glm,nlb}")

    lorenz = commands.add_parser(
        "lorenz", help="LFADS Lorenz benchmark -> LFADS-format .h5",
        description="Simulate the LFADS Lorenz benchmark (defaults: the canonical 65 conditions x 24 "
                    "trials, 29 neurons, 50 bins of 20 ms, 1248/312 split) and write the LFADS layout. "
                    "Truth is the expected count of what is observed, stored in spikes/s "
                    "(conversion_factor = 1000 / bin_ms).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    lorenz.add_argument("--out", required=True, type=Path, help="output .h5 file")
    lorenz.add_argument("--seed", type=seed_type(STORED_SEED_MAX), default=0,
                        help=f"seed of numpy.random.default_rng, 0..{STORED_SEED_MAX} (stored as an int64 attribute)")
    lorenz.add_argument("--n-conditions", type=int, default=defaults.n_conditions,
                        help="number of conditions: initial states, each a latent trajectory that all its trials "
                             "share (default: %(default)s)")
    trials = lorenz.add_mutually_exclusive_group()
    trials.add_argument("--trials-per-condition", type=int, default=defaults.trials_per_condition,
                        help="trials per condition; a condition's trials share its rates and differ in spiking "
                             "noise only; trials in all = conditions x this (default: %(default)s)")
    trials.add_argument("--trials-range", type=int, nargs=2, metavar=("LOW", "HIGH"), default=None,
                        help="draw trials per condition from U{LOW..HIGH} (reference generator: 20 30)")
    lorenz.add_argument("--n-neurons", type=int, default=defaults.n_neurons,
                        help="number of neurons, each a log-linear readout of the 3-D latent state "
                             "(default: %(default)s)")
    lorenz.add_argument("--n-samples", type=int, default=defaults.n_samples,
                        help="trial length in 1 ms samples, a multiple of --bin-ms; bins per trial = "
                             "n-samples / bin-ms (default: %(default)s)")
    lorenz.add_argument("--bin-ms", type=int, default=defaults.bin_ms,
                        help="bin width in ms (1 ms samples summed per bin) (default: %(default)s)")
    lorenz.add_argument("--spikes", choices=("binary", "poisson"), default=defaults.spikes,
                        help="binary 1 ms spikes (reference) or Poisson counts")
    lorenz.add_argument("--standard-lorenz", action="store_true",
                        help="use the textbook equations (with '- y' in dy/dt)")
    lorenz.add_argument("--mean-rate-hz", type=float, default=defaults.mean_rate_hz,
                        help="baseline firing rate in spikes/s: the readout bias b = ln(rate / 1000) per 1 ms "
                             "sample (default: %(default)s)")
    lorenz.add_argument("--train-fraction", type=float, default=defaults.train_fraction,
                        help="fraction of the trials in the train split, drawn at random (round(fraction x "
                             "trials)), the rest valid; between 0 and 1 exclusive (default: %(default)s)")
    lorenz.add_argument("--dt", type=float, default=defaults.dt,
                        help="Euler step of the Lorenz ODE per 1 ms sample, in ODE time units "
                             "(default: %(default)s)")
    lorenz.add_argument("--burn-in", type=int, default=defaults.burn_in,
                        help="Euler steps run and discarded before the first sample, so that each trajectory "
                             "starts on the attractor (default: %(default)s)")
    lorenz.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    lorenz.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    _add_nlb_parser(commands)
    glm = commands.add_parser("switching-glm", help="HMM-GLM switching network with ground truth",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if with_switching_glm:
        import importlib

        importlib.import_module(SWITCHING_GLM_MODULE).add_cli_arguments(glm)
        for action in glm._actions:  # the size options come without help there
            if not action.help and action.dest in SWITCHING_GLM_HELP:
                action.help = SWITCHING_GLM_HELP[action.dest]
    return parser


def _add_nlb_parser(commands) -> None:
    from neurodyn.data.synthetic.nlb_latents import STYLES
    from neurodyn.data.synthetic.nlb_nwb import STYLE_DATASET, STYLE_UNITS

    sizes = "; ".join(f"{s}: {a} / {b}" for s, (a, b) in STYLE_UNITS.items())
    nlb = commands.add_parser(
        "nlb", help="NLB-style train + test NWB pair (known latent system) -> a folder for neurodyn prepare",
        description="Simulate a pair of NWB files shaped like an NLB'21 DANDI session: a train file (trials "
                    "split 3:1 into 'train' / 'val', all units with the 'heldout' column, behaviour) and a test "
                    "file (held-in units, test trials), spikes from exp(b + C x(t)) of a condition-locked latent "
                    "x. Prepare the folder like a downloaded one, e.g. neurodyn prepare --dataset "
                    f"{STYLE_DATASET['mc_maze']} --nwb FOLDER --bin-ms 20 --phase val --out FILE.h5. The true "
                    "rates: neurodyn.data.synthetic.nlb_latents.expected_counts_ms with the same options.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    nlb.add_argument("--style", required=True, choices=STYLES,
                     help="trial structure, windows and behaviour of this NLB dataset; prepare as "
                          + ", ".join(f"{s} -> {d}" for s, d in STYLE_DATASET.items()))
    nlb.add_argument("--out", required=True, type=Path, metavar="FOLDER",
                     help="folder for the two .nwb files (DANDI-like names; created if missing)")
    nlb.add_argument("--seed", type=seed_type(STORED_SEED_MAX), default=0,
                     help="the model (latents, loadings, rates) depends on the seed only; trials and spikes on "
                          "the seed and the file")
    nlb.add_argument("--n-train-trials", type=int, default=100,
                     help="trials of the train file, a quarter of them 'val' (MC_Maze_Small: 100)")
    nlb.add_argument("--n-test-trials", type=int, default=100, help="trials of the test file")
    nlb.add_argument("--n-heldin", type=int, default=argparse.SUPPRESS,
                     help=f"held-in units (default: the imitated dataset's; held-in / held-out {sizes})")
    nlb.add_argument("--n-heldout", type=int, default=argparse.SUPPRESS,
                     help="held-out units (default: the imitated dataset's)")
    nlb.add_argument("--overwrite", action="store_true", help="replace existing files of the pair")


def nlb_bytes(style: str, n_trials: int, n_units: int) -> tuple[int, int]:
    """Estimates ``(memory, file)`` in bytes of one simulated NLB-style file.

    On the 1 ms grid (at most ``TRIAL_S_MAX[style]`` s per trial plus 1.7 s of margins): the latent, its
    lagged copy, behaviour, one unit's rate and cumulative sums (float64); every unit's spikes at
    ``SPIKES_PER_MS`` (2.5 x the simulator's mean rate), times and draws. The file: those spikes and the
    2-column behaviour. (A 1000-trial mc_maze file: 0.41 GB estimated, 0.36 GB peak resident measured.)
    """
    from neurodyn.data.synthetic.nlb_nwb import SPIKES_PER_MS, TRIAL_S_MAX

    n_ms = int(1000 * (TRIAL_S_MAX[style] * n_trials + 1.7))
    spikes = SPIKES_PER_MS * n_ms * n_units
    return int(8 * (12 * n_ms + 3 * spikes)), int(8 * (spikes + 2 * n_ms))


def run_nlb(args: argparse.Namespace) -> int:
    """Write the NLB-style pair with the parsed options; print what was written and how to prepare it."""
    import contextlib
    import warnings

    from neurodyn.data.synthetic.nlb_nwb import STYLE_DATASET, STYLE_UNITS, pair_names, write_nlb_nwb
    from neurodyn.io import check_memory, output_file
    from neurodyn.io.output import signals_deferred

    heldin, heldout = STYLE_UNITS[args.style]
    heldin, heldout = getattr(args, "n_heldin", heldin), getattr(args, "n_heldout", heldout)
    least = {"--n-train-trials": (args.n_train_trials, 2), "--n-test-trials": (args.n_test_trials, 1),
             "--n-heldin": (heldin, 1), "--n-heldout": (heldout, 1)}
    for option, (value, low) in least.items():
        if value < low:
            raise InputError(f"must be at least {low}, got {value}", field=option)
    names = dict(zip(("train", "test"), pair_names(args.style)))
    others = sorted(p.name for p in args.out.glob("*.nwb") if p.name not in names.values()) if args.out.is_dir() else []
    if others:  # prepare reads a folder as one session: the pair would not be preparable there
        raise InputError(f"holds other NWB files ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); "
                         "neurodyn prepare reads a folder as one session: choose a folder of its own",
                         path=args.out, field="--out")
    trials = {"train": args.n_train_trials, "test": args.n_test_trials}
    sizes = {split: nlb_bytes(args.style, n, heldin + heldout) for split, n in trials.items()}
    check_memory(max(m for m, _ in sizes.values()), field="--n-train-trials / --n-test-trials / --n-heldin",
                 what="this simulation")
    with contextlib.ExitStack() as renames:
        with contextlib.ExitStack() as stack:  # both files renamed only once both are written
            tmp = {split: stack.enter_context(output_file(args.out / names[split], overwrite=args.overwrite,
                                                          size_bytes=sizes[split][1]))
                   for split in ("train", "test")}
            stack.enter_context(warnings.catch_warnings())  # pynwb: the temporary name does not end in .nwb
            warnings.filterwarnings("ignore", message="The file path provided", category=UserWarning)
            for split, path in tmp.items():
                write_nlb_nwb(path, args.style, n_trials=trials[split], n_heldin=heldin, n_heldout=heldout,
                              seed=args.seed, split=split)
            # both written: a signal now waits until both are renamed (a signal between the two renames kept one
            # file of the pair, or with --overwrite a new file beside the old one of the other split)
            renames.enter_context(signals_deferred())
    dataset = STYLE_DATASET[args.style]
    print(f"wrote {args.out}: {names['train']} ({args.n_train_trials} trials, {heldin} held-in + {heldout} "
          f"held-out units) and {names['test']} ({args.n_test_trials} trials); {args.style} style, seed "
          f"{args.seed}. Next: neurodyn prepare --dataset {dataset} --nwb {args.out} --bin-ms 20 --phase val "
          f"(writes data/{dataset}_20ms_val.h5, the file configs/langevinflow/{dataset}_cpu.yaml reads)")
    return 0


def lorenz_bytes(config) -> tuple[int, int]:
    """Upper estimates ``(memory, file)`` in bytes of :func:`simulate_lorenz` and its LFADS file.

    Memory: per-condition, per-sample rates, spike probabilities and trajectories; per-trial
    spikes, truth, lambda sums and latents, and their LFADS copies; one chunk of 1 ms draws. File:
    the uncompressed train/valid spikes and truth (gzip only makes it smaller).
    """
    from neurodyn.data.synthetic.lorenz import _TRIAL_CHUNK

    c, s, n, b = config.n_conditions, config.n_samples, config.n_neurons, config.n_bins
    per_condition = config.trials_range[1] if config.trials_range else config.trials_per_condition
    t = c * per_condition
    memory = 8 * (3 * c * s * n + 6 * c * s + 7 * t * b * n + 3 * t * b + 2 * min(t, _TRIAL_CHUNK) * s * n)
    return memory, 8 * 3 * t * b * n


def run_lorenz(args: argparse.Namespace) -> int:
    """Simulate with the parsed options, write the LFADS file, print a one-line summary."""
    from neurodyn.data.lfads import write_lfads_h5
    from neurodyn.data.synthetic.lorenz import LorenzConfig, simulate_lorenz
    from neurodyn.io import check_memory, output_file

    try:
        config = LorenzConfig(
            n_conditions=args.n_conditions, trials_per_condition=args.trials_per_condition,
            trials_range=None if args.trials_range is None else tuple(args.trials_range),
            n_neurons=args.n_neurons, n_samples=args.n_samples, bin_ms=args.bin_ms, dt=args.dt,
            burn_in=args.burn_in, standard_lorenz=args.standard_lorenz, mean_rate_hz=args.mean_rate_hz,
            spikes=args.spikes, train_fraction=args.train_fraction)
    except InputError as err:  # name the command-line option, not the config field
        option = "--" + err.field.replace("_", "-") if err.field else None
        raise InputError(err.message, path=err.path, field=option) from None
    memory, size = lorenz_bytes(config)
    check_memory(memory, field="--n-conditions / --trials-per-condition / --n-samples / --n-neurons",
                 what="this simulation")
    with output_file(args.out, overwrite=args.overwrite, size_bytes=size) as tmp:
        try:
            sim = simulate_lorenz(config, seed=args.seed, progress=not args.no_progress)
        except InputError as err:
            if err.field != "train_fraction":
                raise
            # the trial count the options make does not split (it named 'train_fraction', not an option here)
            trials = "--trials-range" if args.trials_range is not None else "--trials-per-condition"
            raise InputError(err.message, path=err.path, field=f"--n-conditions / {trials} / --train-fraction") \
                from None
        write_lfads_h5(tmp, sim)
    equations = "textbook" if config.standard_lorenz else "reference"
    print(f"wrote {args.out}: Lorenz ({equations} equations, seed {args.seed}), {config.n_conditions} "
          f"conditions, {sim.n_trials} trials ({len(sim.train_inds)} train / {len(sim.valid_inds)} valid), "
          f"{config.n_bins} bins x {config.bin_ms} ms, {config.n_neurons} neurons, {config.spikes} spikes, "
          f"mean {sim.spikes.mean():.4f} counts/bin")
    return 0


def cli_main(argv: list[str]) -> int:
    """Entry point of ``neurodyn simulate``; returns the exit code (argparse errors -> 2)."""
    argv = list(argv)
    parser = build_parser(with_switching_glm=bool(argv) and argv[0] == "switching-glm")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help
        return 0 if stop.code is None else int(stop.code) if isinstance(stop.code, int) else 2
    if args.simulator == "lorenz":
        return run_lorenz(args)
    if args.simulator == "nlb":
        return run_nlb(args)
    import importlib

    return int(importlib.import_module(SWITCHING_GLM_MODULE).run_cli(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli_main(sys.argv[1:]))
