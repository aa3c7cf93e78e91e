"""GLM / HMM-GLM switching models with spike-history coupling (Li et al., ICLR 2024).

Also known as "GLM-HMM", "switching GLM", "HMM-GLM". Variants: :class:`GLM` (one state),
:class:`HMMGLM` (independent states), :class:`GaussianPriorHMMGLM`, :class:`OneHotPriorHMMGLM`.
Exact batched log-space inference lives in :mod:`.inference`; plain-torch fitting in :mod:`.fit`;
named fitting recipes (the paper's procedure and neurodyn's default one-hot recipe) in :mod:`.recipes`;
the connection-type read-out shared by every model in :mod:`.readout`; held-out likelihoods and HDF5 export in
:mod:`.evaluate`.
"""

from neurodyn.models.hmmglm.config import VARIANTS, HMMGLMConfig, build_model
from neurodyn.models.hmmglm.emissions import validate_spikes
from neurodyn.models.hmmglm.inference import (
    Posterior,
    forward_backward,
    forward_filter,
    log_marginal_likelihood,
    sample_states,
    viterbi,
)
from neurodyn.models.hmmglm.models import GLM, HMMGLM, GaussianPriorHMMGLM, SwitchingGLM
from neurodyn.models.hmmglm.priors import OneHotPriorHMMGLM

__all__ = [
    "GLM",
    "HMMGLM",
    "GaussianPriorHMMGLM",
    "OneHotPriorHMMGLM",
    "SwitchingGLM",
    "HMMGLMConfig",
    "build_model",
    "VARIANTS",
    "Posterior",
    "forward_backward",
    "forward_filter",
    "log_marginal_likelihood",
    "viterbi",
    "sample_states",
    "validate_spikes",
]
