r"""Switching-GLM simulator with ground truth: the generator of Li et al. (ICLR 2024), demo settings.

Recipe (Li et al., ICLR 2024, arXiv:2310.15263, https://openreview.net/forum?id=MREQ0k6qvD, synthetic data):

=============== ===============================================================================
connectome      ``π̄[n, n'] ~ Dirichlet(c·[s(1-p), 1-s, s·p])`` over [inhibitory, none, excitatory];
                defaults ``c = 2, s = 1/5, p = 1/2`` -> Dirichlet(0.2, 1.6, 0.2)
types           one categorical draw per (state, post, pre) from ``π̄[post, pre]``; value ``index - 1``
strength        ``log(1 + 3u)``, ``u ~ U(0, 1)`` (= softplus(log 3u)), in (0, log 4)
weights         ``W_s = type · strength``, indexed [post, pre]; self-coupling kept
bias            ``b_n = 0.1 (u - 0.5)``
transitions     0.98 self, the rest spread evenly; initial distribution uniform
emission        Poisson with the bounded sigmoid ``λ = (1 - 1e-8) σ(u) + 1e-8`` (counts per bin, <= 1)
history         exponential basis, decay 1, K = 5, span 5 (``φ = 0.6364, 0.2341, ...``)
=============== ===============================================================================

The reference sampler overwrites the first state with a draw from row 0 of ``P`` (state 0 w.p.
0.98): ``first_state="reference"`` reproduces that; the default ``"uniform"`` does what was meant.
All randomness comes from one ``numpy.random.Generator`` seeded by ``seed``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from neurodyn.errors import STORED_SEED_MAX, InputError, check_whole, seed_type, whole_number

__all__ = [
    "SwitchingGLMSimulation",
    "simulate_switching_glm",
    "write_switching_glm_h5",
    "read_switching_glm_h5",
    "add_cli_arguments",
    "run_cli",
]

FORMAT = "neurodyn.switching_glm/1"

#: a fit of switching-GLM sequences (a file of this module's or a simulation in memory) trains on the first
#: ``n_train`` and validates on the rest, ``1 <= n_train < n_sequences``: it needs this many sequences or more. Here,
#: with the words that say so, for the refusal of the training DataModule (``SwitchingGLMDataModule``) and ``neurodyn
#: info``'s words on a file of fewer (the data floor, which training imports and info reads without Lightning)
MIN_FIT_SEQUENCES = 2
#: what a fit's sequences are for, and why a single one is refused
FIT_SEQUENCE_ROLES = "n_train to train on, the rest to validate on"
ONE_SEQUENCE_UNSPLITTABLE = "one sequence cannot be split into train and valid sequences"
#: the command that writes a file of more sequences
MORE_SEQUENCES_COMMAND = "neurodyn simulate switching-glm --n-sequences"
#: the sequences a fit trains on by default (``n_train`` of ``SwitchingGLMDataModule``, and of the
#: ``configs/hmmglm/synthetic_*.yaml`` examples): the paper's split, 30 of its 50 sequences train and 20 validate.
#: Here, beside :data:`MIN_FIT_SEQUENCES`, so that ``neurodyn info`` (the data floor, no training import) knows
#: which files that default fits (``n_train < n_sequences``) and names ``--data.init_args.n_train`` for the others
DEFAULT_N_TRAIN = 30


@dataclass
class SwitchingGLMSimulation:
    """Simulated data and the truth that generated it.

    Attributes
    ----------
    spikes : int64 (n_sequences, T, N)
        Counts per bin.
    states : int64 (n_sequences, T)
    connection_types : int8 (S, N, N)
        -1 inhibitory, 0 none, +1 excitatory; [post, pre].
    strengths : float64 (S, N, N)
        Magnitudes (drawn for every entry; ``weights = types * strengths``).
    weights : float64 (S, N, N)
    prior : float64 (N, N, 3)
        Connectome ``π̄`` over [inhibitory, none, excitatory].
    bias : float64 (N,)
    transitions : float64 (S, S)
    initial : float64 (S,)
    basis : float64 (1, K)
    seed : int
    first_state : str
    """

    spikes: np.ndarray
    states: np.ndarray
    connection_types: np.ndarray
    strengths: np.ndarray
    weights: np.ndarray
    prior: np.ndarray
    bias: np.ndarray
    transitions: np.ndarray
    initial: np.ndarray
    basis: np.ndarray
    seed: int = 0
    first_state: str = "uniform"

    @property
    def n_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_neurons(self) -> int:
        return self.spikes.shape[-1]



def _check_parameters(seed, decay: float, span: float, self_transition: float, concentration: float,
                      sparsity: float, excitatory_fraction: float, strength_scale: float, bias_scale: float) -> None:
    """One InputError naming the argument for values the simulator would take to nonsense: negative transition
    probabilities (self_transition 1.5), a reversed history basis (decay < 0: lag 5 heaviest), NaN sparsity,
    a seed it cannot store (None failed at the very end, after the whole simulation)."""
    whole = whole_number(seed)
    if whole is None or not 0 <= whole <= STORED_SEED_MAX:
        raise InputError(f"must be a whole number from 0 to {STORED_SEED_MAX}, got {seed!r}", field="seed")
    unit = {"self_transition": self_transition, "sparsity": sparsity, "excitatory_fraction": excitatory_fraction}
    positive = {"decay": decay, "span": span, "concentration": concentration}
    non_negative = {"strength_scale": strength_scale, "bias_scale": bias_scale}
    for group, test, words in ((unit, lambda v: 0 <= v <= 1, "between 0 and 1"),
                               (positive, lambda v: v > 0, "> 0"), (non_negative, lambda v: v >= 0, ">= 0")):
        for name, value in group.items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not (
                    np.isfinite(value) and test(value)):
                raise InputError(f"must be a finite number {words}, got {value!r}", field=name)


def simulate_switching_glm(
    n_states: int = 5,
    n_neurons: int = 20,
    n_sequences: int = 50,
    n_bins: int = 2000,
    seed: int = 0,
    n_lags: int = 5,
    decay: float = 1.0,
    span: float = 5.0,
    self_transition: float = 0.98,
    concentration: float = 2.0,
    sparsity: float = 0.2,
    excitatory_fraction: float = 0.5,
    strength_scale: float = 3.0,
    bias_scale: float = 0.1,
    first_state: str = "uniform",
    progress: bool = False,
) -> SwitchingGLMSimulation:
    """Simulate the paper's switching coupled-GLM network (see the module docstring).

    Returns
    -------
    SwitchingGLMSimulation

    Examples
    --------
    >>> sim = simulate_switching_glm(n_states=2, n_neurons=3, n_sequences=2, n_bins=50, seed=1)
    >>> sim.spikes.shape, sim.states.shape, sim.weights.shape
    ((2, 50, 3), (2, 50), (2, 3, 3))
    """
    from neurodyn.core.basis import exponential_basis

    s_, n_ = check_whole(n_states, "n_states", 1), check_whole(n_neurons, "n_neurons", 1)
    b_, t_ = check_whole(n_sequences, "n_sequences", 1), check_whole(n_bins, "n_bins", 1)
    check_whole(n_lags, "n_lags", 1)
    _check_parameters(seed, decay, span, self_transition, concentration, sparsity, excitatory_fraction,
                      strength_scale, bias_scale)
    if first_state not in {"uniform", "reference"}:
        raise InputError(f"must be 'uniform' or 'reference', got {first_state!r}", field="first_state")
    rng = np.random.default_rng(seed)
    alpha = concentration * np.array(
        [sparsity * (1 - excitatory_fraction), 1 - sparsity, sparsity * excitatory_fraction]
    )
    prior = rng.dirichlet(alpha, size=(n_, n_))  # (N, N, 3)
    u = rng.random((s_, n_, n_, 1))
    types = (u > np.cumsum(prior, -1)[None]).sum(-1).clip(0, 2).astype(np.int8) - 1  # categorical draw
    strengths = np.log1p(strength_scale * rng.random((s_, n_, n_)))
    weights = types * strengths
    bias = bias_scale * (rng.random(n_) - 0.5)
    if s_ > 1:
        transitions = np.full((s_, s_), (1 - self_transition) / (s_ - 1))
        np.fill_diagonal(transitions, self_transition)
    else:
        transitions = np.ones((1, 1))
    initial = np.full(s_, 1.0 / s_)
    basis = exponential_basis(n_lags, decay, span).numpy()
    phi = basis[0]

    states = np.empty((b_, t_), dtype=np.int64)
    cum_p = np.cumsum(transitions, -1)
    start = initial if first_state == "uniform" else transitions[0]
    states[:, 0] = (rng.random((b_, 1)) > np.cumsum(start)[None]).sum(-1).clip(max=s_ - 1)
    draws = rng.random((b_, t_))
    for t in range(1, t_):
        states[:, t] = (draws[:, t, None] > cum_p[states[:, t - 1]]).sum(-1).clip(max=s_ - 1)

    spikes = np.zeros((b_, t_ + n_lags, n_), dtype=np.int64)  # n_lags leading zeros = empty history
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("simulating switching GLM", total=t_)
    try:
        for t in range(t_):
            window = spikes[:, t : t + n_lags][:, ::-1]  # lags 1..K
            h = np.einsum("k,bkn->bn", phi, window)
            drive = bias + np.einsum("bij,bj->bi", weights[states[:, t]], h)
            lam = (1 - 1e-8) / (1 + np.exp(-drive)) + 1e-8
            spikes[:, t + n_lags] = rng.poisson(lam)
            if bar is not None and t % 100 == 0:
                bar.update(task, completed=t)
    finally:
        if bar is not None:
            bar.stop()
    return SwitchingGLMSimulation(
        spikes=spikes[:, n_lags:],
        states=states,
        connection_types=types,
        strengths=strengths,
        weights=weights,
        prior=prior,
        bias=bias,
        transitions=transitions,
        initial=initial,
        basis=basis,
        seed=int(seed),
        first_state=first_state,
    )


def write_switching_glm_h5(path, sim: SwitchingGLMSimulation) -> Path:
    """Write a simulation to HDF5 atomically (datasets named as the dataclass fields)."""
    import h5py

    from neurodyn.io import atomic_path, write_h5_dict

    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, expected an .h5 file path", path, "--out")
    data = {k: v for k, v in asdict(sim).items() if isinstance(v, np.ndarray)}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            write_h5_dict(f, data, compression="gzip")
            f.attrs["format"] = FORMAT
            f.attrs["seed"] = sim.seed
            f.attrs["first_state"] = sim.first_state
    return path


def read_switching_glm_h5(path) -> SwitchingGLMSimulation:
    """Read a file written by :func:`write_switching_glm_h5` (InputError on a wrong or broken file)."""
    from neurodyn.io import read_h5, read_h5_dict

    path = Path(path)
    with read_h5(path, "switching-GLM simulation") as f:  # missing / not HDF5 / damaged: one line
        if f.attrs.get("format") != FORMAT:
            raise InputError(f"not a switching-GLM simulation (format {f.attrs.get('format')!r})", path, "format")
        for key in ("seed", "first_state"):
            if key not in f.attrs:
                raise InputError("missing attribute", path, key)
        data = read_h5_dict(f)
        seed, first = int(f.attrs["seed"]), str(f.attrs["first_state"])
    names = [f.name for f in fields(SwitchingGLMSimulation) if f.name not in {"seed", "first_state"}]
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError("missing dataset", path, missing[0])
    return SwitchingGLMSimulation(**{n: data[n] for n in names}, seed=seed, first_state=first)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neurodyn simulate switching-glm``."""
    parser.add_argument("--out", required=True, type=Path, help="output .h5 file")
    parser.add_argument("--n-states", type=int, default=5)
    parser.add_argument("--n-neurons", type=int, default=20)
    parser.add_argument("--n-sequences", type=int, default=50)
    parser.add_argument("--n-bins", type=int, default=2000, help="bins per sequence")
    parser.add_argument("--seed", type=seed_type(STORED_SEED_MAX), default=0,
                        help=f"seed of numpy.random.default_rng, 0..{STORED_SEED_MAX} (stored as an int64 attribute)")
    parser.add_argument(
        "--first-state",
        choices=("uniform", "reference"),
        default="uniform",
        help="'reference' reproduces the paper sampler's first-state bug (row 0 of P)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def run_cli(args: argparse.Namespace) -> int:
    """Simulate with parsed options, write the file, print a one-line summary; returns 0.

    Sizes are checked up front (memory against the available RAM, the file against the free disk)
    and the file is written under :func:`neurodyn.io.output_file`.
    """
    from neurodyn.io import check_memory, output_file

    for name in ("n_states", "n_neurons", "n_sequences", "n_bins"):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"must be a positive integer, got {getattr(args, name)}", field=flag)
    cells = args.n_sequences * args.n_bins
    # spikes (int64, with history), states, per-step draws; couplings (states x neurons^2) several times;
    # the transition matrix and its cumulative sums (states x states); each step's gathered rows of the
    # cumulative sums and their comparison (sequences x states)
    memory = 8 * (2 * cells * args.n_neurons + 3 * cells + 6 * args.n_states * args.n_neurons**2
                  + 2 * args.n_states**2 + 2 * args.n_sequences * args.n_states)
    check_memory(memory, field="--n-sequences / --n-bins / --n-neurons / --n-states", what="this simulation")
    with output_file(args.out, overwrite=args.overwrite, size_bytes=8 * (cells * (args.n_neurons + 1))) as tmp:
        sim = _simulate_and_write(args, tmp)
    print(
        f"wrote {args.out}: switching GLM (seed {args.seed}), {args.n_states} "
        f"state{'' if args.n_states == 1 else 's'}, {args.n_neurons} neurons, "
        f"{args.n_sequences} sequences x {args.n_bins} bins, mean {sim.spikes.mean():.4f} counts/bin, "
        f"{int((sim.connection_types != 0).sum())} non-zero couplings"
    )
    return 0


def _simulate_and_write(args: argparse.Namespace, tmp) -> SwitchingGLMSimulation:
    sim = simulate_switching_glm(
        n_states=args.n_states,
        n_neurons=args.n_neurons,
        n_sequences=args.n_sequences,
        n_bins=args.n_bins,
        seed=args.seed,
        first_state=args.first_state,
        progress=not args.no_progress,
    )
    write_switching_glm_h5(tmp, sim)
    return sim
