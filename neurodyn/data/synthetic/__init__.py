"""Synthetic datasets with ground truth.

- :mod:`neurodyn.data.synthetic.lorenz` -- the LFADS Lorenz benchmark (chaotic latents, binary spikes).
- :mod:`neurodyn.data.synthetic.switching_glm` -- HMM-GLM switching networks.
- :mod:`neurodyn.data.synthetic.cli` -- ``neurodyn simulate``.
"""

from neurodyn.data.synthetic.lorenz import LorenzConfig, LorenzSimulation, simulate_lorenz

__all__ = ["LorenzConfig", "LorenzSimulation", "simulate_lorenz"]
