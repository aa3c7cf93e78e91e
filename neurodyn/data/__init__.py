"""The data layer shared by every model family.

=================================  ==========================================================
module                             contents
=================================  ==========================================================
:mod:`neurodyn.data.nwb`           NWB reader (units, trials, behaviour; folders the NLB way)
:mod:`neurodyn.data.nlb`           registry of the seven NLB datasets and their parameters
:mod:`neurodyn.data.tensors`       nlb_tools-identical train / eval input / eval target tensors
:mod:`neurodyn.data.prepare`       the tensors of ``neurodyn prepare``
:mod:`neurodyn.data.prepared`      the prepared file: layout names, :func:`load_prepared`, writer
:mod:`neurodyn.data.download`      DANDI transfers (resumable, sha256-verified); lookup in :mod:`neurodyn.data.dandi`
:mod:`neurodyn.data.lfads`         LFADS / NDT ``lfads_lorenz.h5`` layout
:mod:`neurodyn.data.synthetic`     Lorenz, switching-GLM and NLB-shaped NWB simulators
=================================  ==========================================================

The Lightning DataModules that serve these data to the models are part of the training harness:
:mod:`neurodyn.training.datamodules`.

Names are imported lazily (``from neurodyn.data import load_session``) so that importing the
package does not import pynwb. ``prepare`` and ``download`` are modules of this package: their functions
are ``from neurodyn.data.prepare import prepare`` and ``from neurodyn.data.download import download``
(a lazy name cannot shadow a submodule: once the module was imported, ``from neurodyn.data import prepare``
gave the module, before that the function). What those raise and take is exported here:
``from neurodyn.data import DownloadError, DownloadFailures, RemoteFile``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_session": "neurodyn.data.nwb",
    "NWBSession": "neurodyn.data.nwb",
    "get_dataset": "neurodyn.data.nlb",
    "DATASETS": "neurodyn.data.nlb",
    "make_train_input_tensors": "neurodyn.data.tensors",
    "make_eval_input_tensors": "neurodyn.data.tensors",
    "make_eval_target_tensors": "neurodyn.data.tensors",
    "load_prepared": "neurodyn.data.prepared",
    "read_lfads_h5": "neurodyn.data.lfads",
    "write_lfads_h5": "neurodyn.data.lfads",
    "simulate_lorenz": "neurodyn.data.synthetic.lorenz",
    "DownloadError": "neurodyn.data.dandi",
    "DownloadFailures": "neurodyn.data.dandi",
    "RemoteFile": "neurodyn.data.dandi",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'neurodyn.data' has no attribute {name!r}")
