"""``neurodyn prepare``: bin an NLB NWB file (or folder, or URL) into nlb_tools' tensors in one HDF5 file.

The work and the file layout: :func:`neurodyn.data.prepare.prepare`, :mod:`neurodyn.data.prepare`.
"""

from __future__ import annotations

import argparse
import contextlib

from neurodyn.data.nlb import BIN_WIDTHS_MS, DATASET_NAMES, get_dataset
from neurodyn.data.prepare import prepare
from neurodyn.data.stream import TIMEOUT_HELP, TRUST_SIZE_HELP, timeout_s, trust_size
from neurodyn.data.tensors import DMFC_TARGETS, PHASES
from neurodyn.errors import LEGACY_SEED_MAX, ArgumentParser, command_line_names, seed_type

__all__ = ["build_parser", "cli_main"]


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="neurodyn prepare",
        description="Bin an NLB NWB file (or a folder of them) into nlb_tools' train / eval tensors.",
    )
    p.add_argument("--dataset", required=True, help=f"NLB dataset: {', '.join(DATASET_NAMES)}")
    p.add_argument("--nwb", required=True, help="NWB file, or folder of NWB files (test before train), or a "
                   "dandi://<dandiset>[@<version>]/<path> or https:// URL (streamed, not downloaded)")
    p.add_argument(
        "--bin-ms",
        type=int,
        default=5,
        choices=BIN_WIDTHS_MS,  # the widths NLB scores: evaluate, baseline and submit know no other group
        help=f"bin width in ms: {' or '.join(map(str, BIN_WIDTHS_MS))}, the widths the benchmark scores (default 5)",
    )
    p.add_argument(
        "--phase",
        default="val",
        choices=PHASES,
        help="val: train -> val with eval targets; test: train+val -> test (default val)",
    )
    p.add_argument("--out", default=None, help="output .h5 (default data/<dataset>_<bin>ms_<phase>.h5)")
    p.add_argument("--seed", type=seed_type(LEGACY_SEED_MAX), default=None,
                   help=f"seed of the DMFC_RSG jitter (nlb_tools default 0; numpy's legacy seed: "
                   f"0..{LEGACY_SEED_MAX}); the other datasets draw nothing at random")
    p.add_argument("--no-behavior", action="store_true", help="leave train_behavior out of train_input")
    p.add_argument(
        "--no-forward", action="store_true",
        help="leave the forward-prediction spikes out of train_input (as nlb_tools' include_forward_pred=False; "
        "the eval target keeps them): a model fit on the file predicts no forward bins, and evaluate then "
        "scores no fp-bps (with a note)",
    )
    p.add_argument(
        "--no-psth", action="store_true", help="skip the PSTHs of the eval target (slow on big files)"
    )
    p.add_argument(
        "--dmfc-target",
        default=None,
        choices=DMFC_TARGETS,
        help="DMFC_RSG eval target: nlb_tools (set->go, NaN-padded; the default) or input (the input window); "
        "the other datasets have one eval target",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never an input)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help=TIMEOUT_HELP)
    p.add_argument("--trust-size", action="store_true", help=TRUST_SIZE_HELP)
    return p


def cli_main(argv: list[str]) -> int:
    """Entry point of ``neurodyn prepare``; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help
        return int(stop.code or 0)
    log = None if args.quiet else (lambda msg: print(f"neurodyn prepare: {msg}"))
    # --trust-size absent: the setting of $NEURODYN_STREAM_TRUST_SIZE (or an enclosing block) holds
    size_only = trust_size() if args.trust_size else contextlib.nullcontext()
    with command_line_names(), timeout_s(args.timeout, field="--timeout"), size_only:  # errors name --out / --overwrite
        prepare(
            args.dataset,
            args.nwb,
            args.bin_ms,
            args.phase,
            args.out,
            include_behavior=not args.no_behavior,
            include_forward_pred=not args.no_forward,
            include_psth=not args.no_psth,
            seed=0 if args.seed is None else args.seed,
            dmfc_target=args.dmfc_target or "nlb_tools",
            log=log,
            overwrite=args.overwrite,
        )
    if log and args.seed is not None and get_dataset(args.dataset).jitter is None:
        # a seed that changes no tensor is said, not taken silently (the file records it as given)
        log(f"note: --seed {args.seed} changes no tensor: {args.dataset} draws nothing at random (only the DMFC_RSG "
            "window jitter does); the file records it as given")
    if log and args.dmfc_target is not None and get_dataset(args.dataset).jitter is None:
        log(f"note: --dmfc-target {args.dmfc_target} changes no tensor: it chooses DMFC_RSG's eval target, and "
            f"{args.dataset} has one; the file records it as given")
    return 0
