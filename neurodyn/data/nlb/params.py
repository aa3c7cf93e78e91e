"""The parameter types of the NLB registry: files, trial windows, PSTH and jitter settings, datasets."""

from __future__ import annotations

from dataclasses import dataclass

from neurodyn.errors import InputError

#: bin widths (ms) the benchmark defines
BIN_WIDTHS_MS = (5, 20)


def check_nlb_width(bin_ms, path=None, field: str | None = "bin_ms") -> int:
    """``bin_ms`` as an int when it is an NLB bin width (:data:`BIN_WIDTHS_MS`: the widths NLB scores, the only
    ones with a submission group); an InputError naming ``path`` and ``field`` otherwise. Files of other widths
    (``prepare()`` from Python takes any width that divides the windows) can be fit, not scored or submitted.

    >>> check_nlb_width(20.0)
    20
    """
    if isinstance(bin_ms, bool) or bin_ms not in BIN_WIDTHS_MS:
        raise InputError(f"must be an NLB bin width ({' or '.join(map(str, BIN_WIDTHS_MS))} ms), got {bin_ms!r}",
                         path, field)
    return int(bin_ms)


@dataclass(frozen=True)
class NLBFile:
    """One NWB file of an NLB dandiset.

    Attributes
    ----------
    kind
        ``"train"`` (train + val trials, all units, behaviour) or ``"test"`` (test trials, held-in units).
    filename
        File name on DANDI, e.g. ``sub-Jenkins_ses-small_desc-test_ecephys.nwb``.
    size
        Size in bytes.
    sha256
        SHA-256 digest (hex), as DANDI reports it.
    asset_id
        DANDI asset id.
    subject
        DANDI subject folder, e.g. ``"Jenkins"``.
    """

    kind: str
    filename: str
    size: int
    sha256: str
    asset_id: str
    subject: str

    @property
    def dandi_path(self) -> str:
        """Path inside the dandiset, e.g. ``sub-Jenkins/sub-Jenkins_ses-small_desc-test_ecephys.nwb``."""
        return f"sub-{self.subject}/{self.filename}"

    @property
    def download_url(self) -> str:
        """DANDI API download address (redirects to the S3 object)."""
        return f"https://api.dandiarchive.org/api/assets/{self.asset_id}/download/"


@dataclass(frozen=True)
class Window:
    """A trial window, in the terms of ``NWBDataset.make_trial_data``.

    With ``align_field`` and ``start_ms``/``end_ms`` set, the window is
    ``[align + start_ms, align + end_ms)``; with ``start_ms``/``end_ms`` None it runs from the trial's
    ``start_field`` to its ``end_field`` (``align_field`` then only labels relative time).
    ``allow_overlap=False`` cuts a window at the start of the next selected trial (nlb_tools' rule).
    """

    align_field: str | None
    start_ms: int | None = None
    end_ms: int | None = None
    start_field: str = "start_time"
    end_field: str = "end_time"
    allow_overlap: bool = False

    @property
    def fixed(self) -> bool:
        """True when every trial gets the same length (an align range is given)."""
        return self.start_ms is not None and self.end_ms is not None

    @property
    def length_ms(self) -> int | None:
        return self.end_ms - self.start_ms if self.fixed else None

    def shifted(self, lag_ms: int) -> Window:
        """The same window moved by ``lag_ms`` (behaviour windows); overlap rule kept."""
        if not self.fixed:
            return Window(
                self.align_field, lag_ms, lag_ms, self.start_field, self.end_field, self.allow_overlap
            )
        return Window(
            self.align_field,
            self.start_ms + lag_ms,
            self.end_ms + lag_ms,
            self.start_field,
            self.end_field,
            self.allow_overlap,
        )


@dataclass(frozen=True)
class PSTHParams:
    """How nlb_tools builds the PSTH target (``_make_psth``).

    Spikes are smoothed at 1 ms with a Gaussian of ``kern_sd_ms`` (window ``6 * kern_sd_ms`` samples,
    unit sum), summed into bins, averaged per condition (``cond_fields``) over ``window``; trials shorter
    than 0.8x the condition's mean length are dropped and the PSTH trimmed to the shortest remaining trial
    (from the front when ``pad == "front"``). Trials with ``skip_field == skip_value`` are left out.
    """

    cond_fields: tuple[str, ...]
    kern_sd_ms: int
    window: Window
    pad: str = "back"
    seg_len_ms: int | None = None
    skip_field: str | None = None
    skip_value: int = 1


@dataclass(frozen=True)
class JitterParams:
    """DMFC_RSG window jitter: every non-test trial's window moves by a random whole number of bins in
    ``[0, clip(total_ms - tp, 0, max_ms))`` ms, drawn with NumPy's legacy global generator."""

    field: str = "tp"
    total_ms: float = 1500.0
    max_ms: float = 300.0


@dataclass(frozen=True)
class NLBDataset:
    """One NLB'21 dataset: files, sizes and every parameter of its tensors.

    Attributes
    ----------
    name
        nlb_tools' name (``mc_maze``, ``mc_rtt``, ``area2_bump``, ``dmfc_rsg``, ``mc_maze_large``,
        ``mc_maze_medium``, ``mc_maze_small``).
    title
        DANDI's name, e.g. ``MC_Maze_Small``.
    dandiset_id, version, versions
        DANDI dandiset id, the version this registry was taken from, and every version known to hold
        the same files.
    train_file, test_file
        The two NWB files.
    n_units, n_heldin, n_heldout
        Units in the train file, held-in and held-out (the test file holds the held-in ones).
    n_train_file_trials, n_test_file_trials
        Trials in each file.
    window
        Train / eval input window.
    eval_window
        Eval target window (``eval_make_params``).
    eval_seg_len_ms, eval_pad
        DMFC only: the target is jagged (set -> go) and padded to ``eval_seg_len_ms`` at the front.
    behavior_source
        ``"data"`` (a time series on the 1 ms grid) or ``"trial_info"`` (trial-table columns).
    behavior_fields
        Time series name, or trial columns.
    behavior_lag_ms
        Behaviour window = neural window shifted by this lag (None for trial-table behaviour).
    behavior_valid_field
        Behaviour rows of trials whose ``behavior_valid_field`` is not 0 are NaN (DMFC ``is_outlier``).
    decode_mask_field, decode_mask_values
        Separate velocity decoders per value of this trial column (Area2 ``ctr_hold_bump`` 0 / 1).
    psth
        PSTH parameters, None where nlb_tools makes none (MC_RTT).
    jitter
        DMFC window jitter, else None.
    fp_len_ms
        Forward-prediction window after the input window.
    """

    name: str
    title: str
    dandiset_id: str
    version: str
    versions: tuple[str, ...]
    train_file: NLBFile
    test_file: NLBFile
    n_units: int
    n_heldin: int
    n_heldout: int
    n_train_file_trials: int
    n_test_file_trials: int
    window: Window
    eval_window: Window
    behavior_source: str
    behavior_fields: tuple[str, ...]
    behavior_lag_ms: int | None
    psth: PSTHParams | None
    eval_seg_len_ms: int | None = None
    eval_pad: str = "back"
    behavior_valid_field: str | None = None
    decode_mask_field: str | None = None
    decode_mask_values: tuple[int, ...] = ()
    jitter: JitterParams | None = None
    fp_len_ms: int = 200

    @property
    def files(self) -> tuple[NLBFile, NLBFile]:
        return (self.train_file, self.test_file)

    def suffix(self, bin_ms: int) -> str:
        """nlb_tools' name suffix of the eval-target group: ``''`` at 5 ms, ``'_<bin>'`` otherwise."""
        return "" if int(bin_ms) == 5 else f"_{int(bin_ms)}"

    def check_bin(self, bin_ms: int) -> int:
        """Return ``bin_ms`` as an int, or raise InputError if it does not divide every window."""
        try:
            b = int(bin_ms)
        except (TypeError, ValueError):
            raise InputError(
                f"bin width must be a whole number of ms, got {bin_ms!r}", field="bin_ms"
            ) from None
        if b != bin_ms or b < 1:
            raise InputError(
                f"bin width must be a positive whole number of ms, got {bin_ms!r}", field="bin_ms"
            )
        lengths = {
            "window": self.window.length_ms,
            "forward window": self.fp_len_ms,
            "eval target length": self.eval_seg_len_ms,
        }
        for what, length in lengths.items():
            if length is not None and length % b:
                raise InputError(
                    f"{b} ms bins do not divide the {length} ms {what} of {self.name}", field="bin_ms"
                )
        return b

    def n_bins(self, bin_ms: int) -> int:
        """Bins per trial of the input window (the target's too, except DMFC where it is the same 1500 ms)."""
        return (self.window.length_ms or 0) // self.check_bin(bin_ms)

    def n_fwd_bins(self, bin_ms: int) -> int:
        """Bins of the forward-prediction window."""
        return self.fp_len_ms // self.check_bin(bin_ms)
