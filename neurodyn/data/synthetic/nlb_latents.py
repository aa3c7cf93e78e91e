r"""The generative model behind the NLB-shaped NWB files of :mod:`neurodyn.data.synthetic.nlb_nwb`: trial
layouts per style, condition-dependent latent trajectories, Poisson rates and the expected counts (the
true-rate oracle of the benchmarks). The model is described in that module's docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from neurodyn.errors import InputError

STYLES = ("mc_maze", "area2_bump", "dmfc_rsg", "mc_rtt")
#: style -> (behaviour series, behaviour lag in ms, latent dimension)
_STYLE = {
    "mc_maze": ("hand_vel", 100, 3),
    "area2_bump": ("hand_vel", -20, 3),
    "dmfc_rsg": (None, 0, 3),
    "mc_rtt": ("finger_vel", 140, 3),
}
#: bump centres (ms from alignment) of the trial-locked latents
_BUMPS = np.array([-150.0, 0.0, 150.0, 300.0])


def _us(t) -> np.ndarray:
    """Round seconds to whole microseconds (trial times are stored at that resolution)."""
    return np.round(np.asarray(t, dtype=np.float64) * 1e6) / 1e6


def _conditions(style: str, n_conditions: int) -> list[dict]:
    if style == "mc_maze":
        return [{"trial_type": 1 + k // 2, "trial_version": k % 2} for k in range(n_conditions)]
    if style == "area2_bump":
        dirs = np.linspace(0.0, 360.0, max(1, (n_conditions + 1) // 2), endpoint=False)
        out = [{"cond_dir": float(d), "ctr_hold_bump": bool(b)} for b in (False, True) for d in dirs]
        return out[:n_conditions]
    if style == "dmfc_rsg":
        grid = [(e, short, ts) for short, ts in ((True, 600.0), (False, 1000.0)) for e in (False, True)]
        grid += [(e, short, ts) for short, ts in ((True, 750.0), (False, 1200.0)) for e in (False, True)]
        return [{"is_eye": e, "theta": 0.0, "is_short": s, "ts": ts} for e, s, ts in grid[:n_conditions]]
    return [{}]


def _layout(style: str, n_trials: int, rng: np.random.Generator, conds: list[dict]) -> dict[str, np.ndarray]:
    """Trial times (s) for the style; trials never overlap within their neural windows."""
    cond = rng.integers(0, len(conds), n_trials)
    t = 0.6 + rng.uniform(0, 0.05)
    cols: dict[str, list] = {"start_time": [], "stop_time": [], "cond": cond.tolist()}
    for i in range(n_trials):
        if style in ("mc_maze", "area2_bump"):
            pre = 0.5 + rng.uniform(0, 0.2) if style == "mc_maze" else 0.3 + rng.uniform(0, 0.2)
            align = t + pre
            cols.setdefault("move_onset_time", []).append(align)
            if style == "mc_maze":
                cols.setdefault("target_on_time", []).append(t + 0.05)
                cols.setdefault("go_cue_time", []).append(align - 0.2 - rng.uniform(0, 0.1))
            stop = align + 0.65
        elif style == "dmfc_rsg":
            ts = conds[cond[i]]["ts"] / 1000.0
            tp = ts * (1.0 + 0.08 * rng.standard_normal())
            outlier = rng.uniform() < 0.05
            if outlier:
                tp = ts * 1.6
            set_time = t + 0.9 + rng.uniform(0, 0.2)
            go = set_time + tp
            cols.setdefault("set_time", []).append(set_time)
            cols.setdefault("go_time", []).append(go)
            cols.setdefault("tp", []).append(round(tp * 1000.0, 3))
            cols.setdefault("is_outlier", []).append(1.0 if outlier else 0.0)
            stop = go + 0.3
        else:  # mc_rtt: back-to-back 600 ms chunks
            stop = t + 0.6
        cols["start_time"].append(t)
        cols["stop_time"].append(stop)
        t = stop + (0.0 if style == "mc_rtt" else 0.1 + rng.uniform(0, 0.1))
    return {k: (np.asarray(v) if k == "cond" else _us(v)) for k, v in cols.items()}


def _align(style: str, cols: Mapping[str, np.ndarray]) -> np.ndarray:
    return {
        "mc_maze": cols.get("move_onset_time"),
        "area2_bump": cols.get("move_onset_time"),
        "dmfc_rsg": cols.get("go_time"),
        "mc_rtt": cols["start_time"],
    }[style]


def _window(style: str) -> tuple[float, float]:
    """The NLB input window (s) around the alignment time."""
    return {
        "mc_maze": (-0.25, 0.45),
        "area2_bump": (-0.1, 0.5),
        "dmfc_rsg": (-1.5, 0.0),
        "mc_rtt": (0.0, 0.6),
    }[style]


#: unobserved time between two consecutive trials of a simulated test file (s): the DANDI MC_Maze_Small test file
#: holds its 100 trial windows of 700 ms on a 0.8 s grid from 0 (move onset at 0.25 s, 1.05 s, ...)
TEST_GAP_S = 0.1


def _test_windows(style: str, cols: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Where each test trial's window is cut from the simulated recording and where the test file puts it.

    Returns the first millisecond of every window on the recording's clock (alignment time rounded to 1 ms plus
    the window start), its first millisecond on the test file's clock, and the window length in ms. The DANDI
    test files hold the trial windows only, re-timed onto a grid of window + 100 ms from 0 (the MC_Maze_Small
    one: ``start_time`` 0, 0.8, 1.6, ... s, each trial 0.7 s long), so every window starts on the 5 ms and
    20 ms bin grids and nlb_tools' first bin ``ceil(t0 / bin)`` is ``t0`` itself: the binned window covers
    the observed one exactly. Windows left where the recording had them start anywhere on the 1 ms grid; the
    first bin then starts up to ``bin - 1`` ms late and the window's last bin runs that far past the trial's
    ``stop_time``, where a test file holds no spikes (the last 20 ms bin had 0.45x the counts of the four
    before it, 0.90x in the DANDI file).
    """
    lo, hi = _window(style)
    length_ms = int(round((hi - lo) * 1000))
    recorded = np.round(np.asarray(_align(style, cols), dtype=np.float64) * 1000.0).astype(np.int64)
    recorded += int(round(lo * 1000))
    placed = np.arange(len(recorded), dtype=np.int64) * (length_ms + int(round(TEST_GAP_S * 1000)))
    return recorded, placed, length_ms


def _latent(
    style: str,
    cols: Mapping[str, np.ndarray],
    conds: list[dict],
    amps: np.ndarray,
    n_ms: int,
    latent_dim: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Latent trajectory on the 1 ms grid, shape (n_ms, latent_dim)."""
    x = np.zeros((n_ms, latent_dim))
    if style == "mc_rtt":
        t = np.arange(n_ms) / 1000.0
        freqs = rng.uniform(0.3, 1.5, (latent_dim, 3))
        phase = rng.uniform(0, 2 * np.pi, (latent_dim, 3))
        for k in range(latent_dim):
            x[:, k] = np.sin(2 * np.pi * freqs[k][:, None] * t[None, :] + phase[k][:, None]).sum(axis=0) / 2
        return x
    tau = np.arange(-600, 800)  # ms around alignment
    for i, c in enumerate(cols["cond"]):
        gain = 1.0 + 0.1 * rng.standard_normal()
        if style == "dmfc_rsg":
            set_ms = int(round(cols["set_time"][i] * 1000))
            go_ms = int(round(cols["go_time"][i] * 1000))
            span = np.arange(set_ms - 200, min(go_ms + 200, n_ms))
            rel = (span - set_ms) / max(go_ms - set_ms, 1)
            ramp = np.clip(rel, 0, 1)
            x[span, 0] = 1.5 * ramp * gain
            x[span, 1] = (0.8 if conds[c]["is_eye"] else -0.8) * np.exp(-(((span - set_ms) / 120.0) ** 2))
            x[span, 2] = (0.7 if conds[c]["is_short"] else -0.7) * np.sin(np.pi * ramp)
            continue
        a_ms = int(round(_align(style, cols)[i] * 1000))
        idx = a_ms + tau
        ok = (idx >= 0) & (idx < n_ms)
        bumps = np.exp(-0.5 * ((tau[:, None] - _BUMPS[None, :]) / 90.0) ** 2)  # (T, n_bumps)
        x[idx[ok]] = gain * (bumps @ amps[c].T)[ok]
    return x


@dataclass
class SimulatedSession:
    """The generative model and latent trajectory of one synthetic file (before spikes are drawn).

    ``rng`` is left where spike drawing starts, so :func:`write_nlb_nwb` continues from it; the true
    rates need nothing from it.
    """

    style: str
    split: str
    n_heldin: int
    n_heldout: int
    conds: list[dict]
    cols: dict[str, np.ndarray]
    latent: np.ndarray
    base: np.ndarray
    loading: np.ndarray
    readout: np.ndarray
    n_ms: int
    end_s: float
    rng: np.random.Generator = field(repr=False)

    def rate_per_ms(self, unit: int) -> np.ndarray:
        """Spike probability of ``unit`` in each millisecond of the file (rate in Hz / 1000, at most 0.2)."""
        logit = np.full(self.n_ms, self.base[unit])
        for k in range(self.latent.shape[1]):  # (n, d) @ (d,) is slow for tiny d; accumulate instead
            logit += self.loading[unit, k] * self.latent[:, k]
        return np.minimum(np.exp(logit) / 1000.0, 0.2)

    def rates_at(self, ms: np.ndarray | None = None) -> np.ndarray:
        """:meth:`rate_per_ms` of every unit at the milliseconds ``ms`` (all of them if None), shape ``(len(ms),
        n_units)``.

        The same operations in the same order on each entry (base, plus each latent dimension's term in turn,
        exp, / 1000, cap), so every value equals :meth:`rate_per_ms`'s bit for bit; one pass over the requested
        rows instead of one pass over the whole file per unit, in blocks of rows (the products' temporary stays
        small beside the result).
        """
        x = self.latent if ms is None else self.latent[ms]
        out = np.empty((x.shape[0], self.base.shape[0]))
        for start in range(0, x.shape[0], 1 << 14):
            block, rows = out[start:start + (1 << 14)], x[start:start + (1 << 14)]
            block[:] = self.base
            for k in range(x.shape[1]):
                block += rows[:, k:k + 1] * self.loading[:, k]
            np.exp(block, out=block)
            block /= 1000.0
            np.minimum(block, 0.2, out=block)
        return out


def _simulate(style: str, *, n_trials: int, n_heldin: int, n_heldout: int, seed: int, split: str,
              n_conditions: int, base_rate_hz: tuple[float, float], latent_dim: int) -> SimulatedSession:
    if style not in STYLES:
        raise InputError(f"unknown style {style!r}; use one of {', '.join(STYLES)}", field="style")
    if split not in ("train", "test"):
        raise InputError(f"split must be 'train' or 'test', got {split!r}", field="split")
    if n_trials < 1 or n_heldin < 1 or n_heldout < 0:
        raise InputError("need n_trials >= 1, n_heldin >= 1, n_heldout >= 0", field="n_trials")
    model = np.random.default_rng([seed, 0])
    rng = np.random.default_rng([seed, 1 if split == "train" else 2])
    conds = _conditions(style, n_conditions)
    n_units = n_heldin + n_heldout
    amps = model.normal(0.0, 1.0, (len(conds), latent_dim, len(_BUMPS)))
    loading = model.normal(0.0, 1.3 / np.sqrt(latent_dim), (n_units, latent_dim))
    base = np.log(model.uniform(*base_rate_hz, n_units))
    readout = model.normal(0.0, 1.0, (2, latent_dim)) * 50.0

    cols = _layout(style, n_trials, rng, conds)
    end_s = float(cols["stop_time"][-1]) + 1.0
    n_ms = int(round(end_s * 1000))
    x = _latent(style, cols, conds, amps, n_ms, latent_dim, rng)
    return SimulatedSession(style, split, n_heldin, n_heldout, conds, cols, x, base, loading, readout, n_ms,
                            end_s, rng)


def expected_counts_ms(
    style: str,
    *,
    n_trials: int = 40,
    n_heldin: int = 20,
    n_heldout: int = 8,
    seed: int = 0,
    split: str = "train",
    n_conditions: int = 4,
    base_rate_hz: tuple[float, float] = (6.0, 20.0),
    latent_dim: int = 3,
) -> np.ndarray:
    """Expected spike count of every unit in every 1 ms bin of the file :func:`write_nlb_nwb` writes.

    Same arguments as :func:`write_nlb_nwb` (the true-rate oracle of a written file). Shape
    ``(n_ms, n_heldin + n_heldout)``, units in file order (held-in first), on the file's own clock.
    A spike drawn in millisecond ``m`` is stored at ``m + u`` with ``u ~ U(0.05, 0.95)`` and NLB readers
    put it in bin ``m``: they truncate (nlb_tools' ``((t - t0) * rate).round(6).astype(int)``,
    :func:`neurodyn.data.nwb.session.spike_ms_index`; the ``round(…, 6)`` only removes floating-point error), so
    the expected count of bin ``k`` is ``p[k]``, the spike probability in millisecond ``k``. A test file's
    probabilities ``p`` are those of its windows, cut from the simulated recording and re-timed
    (:func:`_test_windows`), zero between them; the same rule then gives its expected counts.

    Examples
    --------
    >>> e = expected_counts_ms("mc_maze", n_trials=4, n_heldin=3, n_heldout=1, seed=0)
    >>> e.shape[1], bool((e >= 0).all())
    (4, True)
    """
    sim = _simulate(style, n_trials=n_trials, n_heldin=n_heldin, n_heldout=n_heldout, seed=seed, split=split,
                    n_conditions=n_conditions, base_rate_hz=base_rate_hz, latent_dim=latent_dim)
    if split != "test":
        return sim.rates_at()
    # the windows cut from the recording, where the test file puts them (zero between them): the millisecond
    # indices of all windows are built once and the rates computed at those milliseconds only
    recorded, placed, length_ms = _test_windows(style, sim.cols)
    offset = np.arange(length_ms, dtype=np.int64)
    # every window lies inside the recording (the first trial starts at 0.6 s or later, and no window starts
    # 0.6 s before its trial or ends after its stop_time, a second before the recording ends): no index wraps
    src = (recorded[:, None] + offset).ravel()
    dst = (placed[:, None] + offset).ravel()
    out = np.zeros((int(placed[-1]) + length_ms, n_heldin + n_heldout))
    out[dst] = sim.rates_at(src)
    return out
