"""neurodyn: neural latent-dynamics models on NWB / NLB and synthetic data.

Model families
--------------
- LangevinFlow (Song et al. 2025): :mod:`neurodyn.models.langevinflow`
- GLM / HMM-GLM switching models (Li et al., ICLR 2024): :mod:`neurodyn.models.hmmglm`

Shared layers: :mod:`neurodyn.data` (NWB, NLB tensors, simulators, DataModules),
:mod:`neurodyn.training` (Lightning harness), :mod:`neurodyn.metrics`, :mod:`neurodyn.viz`.
"""

__version__ = "0.1.0.dev0"
