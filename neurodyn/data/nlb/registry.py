"""The seven NLB datasets (values of ``nlb_tools.make_tensors.PARAMS``, nlb_tools 0.0.4) and their lookup."""

from __future__ import annotations

from neurodyn.data.nlb.params import JitterParams, NLBDataset, NLBFile, PSTHParams, Window
from neurodyn.errors import InputError


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


def find_file_by_name_and_size(filename: str, size: int) -> tuple[NLBDataset, NLBFile] | None:
    """The registry file whose DANDI name *and* size in bytes are ``filename`` and ``size``, else None.

    Both must agree: a name alone is also what neurodyn's simulator or a user may give another file.

    Examples
    --------
    >>> ds, f = find_file_by_name_and_size("sub-Jenkins_ses-small_desc-test_ecephys.nwb", 689_312)
    >>> ds.name, f.kind
    ('mc_maze_small', 'test')
    >>> find_file_by_name_and_size("sub-Jenkins_ses-small_desc-test_ecephys.nwb", 1000) is None
    True
    """
    found = find_file(filename)
    return found if found is not None and found[1].size == int(size) else None


def find_file_by_units(subject: str | None, n_units: int, n_heldout: int) -> tuple[NLBDataset, NLBFile] | None:
    """The registry file an NWB file's content points to: its subject and the size of its units table.

    A train file holds all ``n_units`` units, ``n_heldout`` of them held out; a test file holds the
    ``n_heldin`` held-in ones only. The subject must be the registry file's (``"Jenkins"`` ...): neurodyn's
    simulated NLB-shaped files record none, and may have any unit counts. These counts differ between all
    fourteen NLB files, so at most one matches.

    Examples
    --------
    >>> ds, f = find_file_by_units("Jenkins", 107, 0)
    >>> ds.name, f.kind
    ('mc_maze_small', 'test')
    >>> find_file_by_units("Jenkins", 182, 45)[0].name
    'mc_maze'
    >>> find_file_by_units(None, 107, 0) is None
    True
    """
    if not subject:
        return None
    for ds in _DATASETS:
        for f, units in ((ds.train_file, (ds.n_units, ds.n_heldout)), (ds.test_file, (ds.n_heldin, 0))):
            if f.subject == subject and units == (int(n_units), int(n_heldout)):
                return ds, f
    return None
