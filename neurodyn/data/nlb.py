"""The Neural Latents Benchmark '21 registry: seven datasets, their DANDI files and nlb_tools parameters.

Every per-dataset constant lives here, in frozen dataclasses, apart from the logic that uses them
(:mod:`neurodyn.data.tensors`, :mod:`neurodyn.data.psth`). The values are those of
``nlb_tools.make_tensors.PARAMS`` in nlb_tools 0.0.4 (MIT, Pei et al. 2021); the file table is
DANDI's asset metadata.

Data licence: CC-BY-4.0. Cite the dandiset (e.g. Churchland & Kaufman 2021, DANDI:000140/0.220113.0408)
and Pei et al. (2021), *Neural Latents Benchmark '21*, arXiv:2109.04463.

Examples
--------
>>> ds = get_dataset("mc_maze_small")
>>> ds.window.align_field, ds.window.start_ms, ds.window.end_ms
('move_onset_time', -250, 450)
>>> ds.n_bins(5), ds.n_fwd_bins(5), ds.n_bins(20)
(140, 40, 35)
>>> ds.test_file.filename
'sub-Jenkins_ses-small_desc-test_ecephys.nwb'
"""

from __future__ import annotations

from dataclasses import dataclass

from neurodyn.errors import InputError

#: bin widths (ms) the benchmark defines
BIN_WIDTHS_MS = (5, 20)


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


def _maze(
    name: str,
    title: str,
    dandiset_id: str,
    version: str,
    session: str,
    train: tuple,
    test: tuple,
    units: tuple[int, int, int],
    trials: tuple[int, int],
    lag: int,
    kern_sd: int,
) -> NLBDataset:
    window = Window("move_onset_time", -250, 450)
    ses = f"_ses-{session}" if session else ""
    return NLBDataset(
        name=name,
        title=title,
        dandiset_id=dandiset_id,
        version=version,
        versions=(version,),
        train_file=NLBFile("train", f"sub-Jenkins{ses}_desc-train_behavior+ecephys.nwb", *train, "Jenkins"),
        test_file=NLBFile("test", f"sub-Jenkins{ses}_desc-test_ecephys.nwb", *test, "Jenkins"),
        n_units=units[0],
        n_heldin=units[1],
        n_heldout=units[2],
        n_train_file_trials=trials[0],
        n_test_file_trials=trials[1],
        window=window,
        eval_window=window,
        behavior_source="data",
        behavior_fields=("hand_vel",),
        behavior_lag_ms=lag,
        psth=PSTHParams(("trial_type", "trial_version"), kern_sd, window),
    )


_DATASETS: tuple[NLBDataset, ...] = (
    _maze(
        "mc_maze",
        "MC_Maze",
        "000128",
        "0.220113.0400",
        "full",
        (
            690_612_247,
            "a27f84f9c31f077011062fd99a6ced199fdf19e656151f056c3c6244a408a3c4",
            "26e85f09-39b7-480f-b337-278a8f034007",
        ),
        (
            3_392_688,
            "ad802feb85beb41660550ee9820ad42e9e591dd61c10d401d1cf2eab3ab5de10",
            "1bd112a4-5ec5-4033-ac30-d88e70e993d9",
        ),
        (182, 137, 45),
        (2295, 574),
        lag=100,
        kern_sd=70,
    ),
    NLBDataset(
        name="mc_rtt",
        title="MC_RTT",
        dandiset_id="000129",
        version="0.241017.1444",
        versions=("0.241017.1444",),
        train_file=NLBFile(
            "train",
            "sub-Indy_desc-train_behavior+ecephys.nwb",
            49_764_168,
            "2f78db62bd4d68b9bc737444f72bc2dfe475d7390dd7a54848aaf6a6a6ba8da5",
            "2ae6bf3c-788b-4ece-8c01-4b4a5680b25b",
            "Indy",
        ),
        test_file=NLBFile(
            "test",
            "sub-Indy_desc-test_ecephys.nwb",
            1_201_344,
            "7d5e2125fa3afc0fc170b0c867a920f85fabe0f1a751da5dcb49351ccd943add",
            "648a7418-98e8-4413-ba97-3772dd325ecc",
            "Indy",
        ),
        n_units=130,
        n_heldin=98,
        n_heldout=32,
        n_train_file_trials=1080,
        n_test_file_trials=272,
        window=Window("start_time", 0, 600, allow_overlap=True),
        eval_window=Window("start_time", 0, 600, allow_overlap=True),
        behavior_source="data",
        behavior_fields=("finger_vel",),
        behavior_lag_ms=140,
        psth=None,
    ),
    NLBDataset(
        name="area2_bump",
        title="Area2_Bump",
        dandiset_id="000127",
        version="0.220113.0359",
        versions=("0.220113.0359",),
        train_file=NLBFile(
            "train",
            "sub-Han_desc-train_behavior+ecephys.nwb",
            1_822_876_234,
            "639b1a03ab813f96fec76681110a1634942476badc0fd4c93d406c24701f5db2",
            "ded26b6c-418d-43f5-8a37-dfd072c2dbd4",
            "Han",
        ),
        test_file=NLBFile(
            "test",
            "sub-Han_desc-test_ecephys.nwb",
            492_576,
            "adde1de7bb83d36d93d0a524ccf4ac77cdf370ec826c3acc1d2fc16a21237617",
            "f907b288-a9b4-4c6e-9d66-6812f306e253",
            "Han",
        ),
        n_units=65,
        n_heldin=49,
        n_heldout=16,
        n_train_file_trials=826,
        n_test_file_trials=98,
        window=Window("move_onset_time", -100, 500),
        eval_window=Window("move_onset_time", -100, 500, allow_overlap=True),
        behavior_source="data",
        behavior_fields=("hand_vel",),
        behavior_lag_ms=-20,
        decode_mask_field="ctr_hold_bump",
        decode_mask_values=(0, 1),
        psth=PSTHParams(("cond_dir", "ctr_hold_bump"), 40, Window("move_onset_time", -100, 500)),
    ),
    NLBDataset(
        name="dmfc_rsg",
        title="DMFC_RSG",
        dandiset_id="000130",
        version="0.220113.0407",
        versions=("0.220113.0407", "0.241017.1448"),
        train_file=NLBFile(
            "train",
            "sub-Haydn_desc-train_ecephys.nwb",
            14_119_912,
            "6212aaee2c978d1cd53fbfb433d11f418ed27cd83017b8b2befa4a1d7add5198",
            "c90cbccc-31a5-4815-88e6-822d8c5ca68c",
            "Haydn",
        ),
        test_file=NLBFile(
            "test",
            "sub-Haydn_desc-test_ecephys.nwb",
            1_553_584,
            "4b4e9118d833876a9643dd38df1d3d0c53737811720705e5cfad50d6de0bec3a",
            "a2c3ced1-2869-4483-aa19-8815c2d18c91",
            "Haydn",
        ),
        n_units=54,
        n_heldin=40,
        n_heldout=14,
        n_train_file_trials=1160,
        n_test_file_trials=283,
        window=Window("go_time", -1500, 0, allow_overlap=True),
        eval_window=Window("go_time", None, None, start_field="set_time", end_field="go_time"),
        eval_seg_len_ms=1500,
        eval_pad="front",
        behavior_source="trial_info",
        behavior_fields=("is_eye", "theta", "is_short", "ts", "tp"),
        behavior_lag_ms=None,
        behavior_valid_field="is_outlier",
        psth=PSTHParams(
            ("is_eye", "theta", "is_short", "ts"),
            70,
            Window("go_time", None, None, start_field="set_time", end_field="go_time"),
            pad="front",
            seg_len_ms=1500,
            skip_field="is_outlier",
            skip_value=1,
        ),
        jitter=JitterParams(),
    ),
    _maze(
        "mc_maze_large",
        "MC_Maze_Large",
        "000138",
        "0.220113.0407",
        "large",
        (
            148_590_536,
            "1188ddf5b822dd9ac49afb8916f4b42a85867613cf7f169d0b04a1d1aeecd700",
            "e67b57b2-e9ad-4d95-b9e3-1262997360dc",
        ),
        (
            802_352,
            "c65e12e9f484653ec8d85b265fc7e0e93789fd5f760c6adddd54759ac48974f1",
            "f42a7bd1-71f4-4972-84a7-2cd1dfbed8a1",
        ),
        (162, 122, 40),
        (500, 100),
        lag=120,
        kern_sd=50,
    ),
    _maze(
        "mc_maze_medium",
        "MC_Maze_Medium",
        "000139",
        "0.220113.0408",
        "medium",
        (
            76_604_764,
            "3852799f85f662f1cacadb0d758ba8fa0dc6cca318f46c9b131978adf1baffb6",
            "7ef450a8-8684-42e2-8598-cd38ca2b2e50",
        ),
        (
            695_928,
            "4021be45ae55f3a8278d1dd6c1237a13d0f3972bed9bc2e543360403118a4a99",
            "ac554f8e-7008-4030-9640-6f1cf838a23c",
        ),
        (152, 114, 38),
        (250, 100),
        lag=120,
        kern_sd=50,
    ),
    _maze(
        "mc_maze_small",
        "MC_Maze_Small",
        "000140",
        "0.220113.0408",
        "small",
        (
            29_207_528,
            "dcaf3a524e2b2f65f163ee3b07789b8474bdfc6ca66098bc542ab93dff489884",
            "7821971e-c6a4-4568-8773-1bfa205c13f8",
        ),
        (
            689_312,
            "ca8a0bef5f189eafb9db1961d617e065cb461360718fde1c16a538922a6fa5fe",
            "544a660e-a173-46f3-985a-60fd67e6ae1f",
        ),
        (142, 107, 35),
        (100, 100),
        lag=120,
        kern_sd=50,
    ),
)

#: name -> dataset, in nlb_tools' order
DATASETS: dict[str, NLBDataset] = {ds.name: ds for ds in _DATASETS}
#: the valid dataset names
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)


def get_dataset(name: str | NLBDataset) -> NLBDataset:
    """Look a dataset up by nlb_tools name (``mc_maze_small``) or DANDI title (``MC_Maze_Small``).

    Raises
    ------
    InputError
        For an unknown name; the message lists the valid ones.
    """
    if isinstance(name, NLBDataset):
        return name
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise InputError(
            f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}", field="dataset"
        )
    return DATASETS[key]


def find_file(filename: str) -> tuple[NLBDataset, NLBFile] | None:
    """The dataset and registry entry of a DANDI file name, or None if it is not an NLB file."""
    for ds in _DATASETS:
        for f in ds.files:
            if f.filename == filename:
                return ds, f
    return None
