"""Metrics: NLB (co-bps, fp-bps, vel R², psth R², tp corr, ``evaluate``), rate R², submission files.

The NLB metrics reproduce ``nlb_tools/evaluation.py`` (MIT; Pei et al. 2021, arXiv:2109.04463) in
our own code; rates are counts per bin, computations in float64. Arguments may be numpy arrays, nested lists or
torch tensors (detached and copied to the CPU); anything else, or a wrong shape, is a one-line
:class:`~neurodyn.errors.InputError` naming the argument.
"""

from neurodyn.data.prepared import group_name, parse_group_name
from neurodyn.metrics.bits import bits_per_spike, co_bps, fp_bps, poisson_nll
from neurodyn.metrics.decoding import ridge_cv_r2, tp_corr, velocity_r2
from neurodyn.metrics.evaluate import evaluate, evaluate_dataset, load_target
from neurodyn.metrics.psth import psth_r2
from neurodyn.metrics.rates import rate_r2
from neurodyn.metrics.submission import (
    expected_shapes_from_prepared,
    read_submission,
    validate_submission,
    write_submission,
)

__all__ = [
    "bits_per_spike",
    "co_bps",
    "fp_bps",
    "poisson_nll",
    "ridge_cv_r2",
    "tp_corr",
    "velocity_r2",
    "evaluate",
    "evaluate_dataset",
    "group_name",
    "load_target",
    "parse_group_name",
    "psth_r2",
    "rate_r2",
    "expected_shapes_from_prepared",
    "read_submission",
    "validate_submission",
    "write_submission",
]
