"""Lightning DataModules shared by every neurodyn model family (the harness's side of the data layer).

:mod:`.base` holds the batch contract (``heldin``, ``target``, ``target_mask``, ``index`` and optional
ground truth), :class:`NeuralDataModule` and :func:`assemble_split`; :mod:`.sources` the DataModule of each
data source: a prepared NLB file, an LFADS-layout file, the Lorenz and switching-GLM simulators, arrays.
"""

from neurodyn.training.datamodules.base import NeuralDataModule, SplitArrays, assemble_split
from neurodyn.training.datamodules.sources import (
    ArrayDataModule,
    LFADSDataModule,
    LorenzDataModule,
    NLBDataModule,
    SwitchingGLMDataModule,
)

__all__ = [
    "ArrayDataModule",
    "LFADSDataModule",
    "LorenzDataModule",
    "NLBDataModule",
    "NeuralDataModule",
    "SplitArrays",
    "SwitchingGLMDataModule",
    "assemble_split",
]
