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

from neurodyn.data.nlb.params import (
    BIN_WIDTHS_MS,
    JitterParams,
    NLBDataset,
    NLBFile,
    PSTHParams,
    Window,
    check_nlb_width,
)
from neurodyn.data.nlb.registry import (
    DATASET_NAMES,
    DATASETS,
    find_file,
    find_file_by_name_and_size,
    find_file_by_units,
    get_dataset,
)

__all__ = ["BIN_WIDTHS_MS", "DATASETS", "DATASET_NAMES", "JitterParams", "NLBDataset", "NLBFile", "PSTHParams",
           "Window", "check_nlb_width", "find_file", "find_file_by_name_and_size", "find_file_by_units", "get_dataset"]
