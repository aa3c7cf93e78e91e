"""Synthetic datasets with ground truth.

- :mod:`neurodyn.data.synthetic.lorenz` -- the LFADS Lorenz benchmark (chaotic latents, binary spikes).
- :mod:`neurodyn.data.synthetic.switching_glm` -- HMM-GLM switching networks.
- :mod:`neurodyn.data.synthetic.nlb_nwb` -- NLB-shaped NWB files (mc_maze, dmfc_rsg, area2_bump styles); their
  generative model in :mod:`neurodyn.data.synthetic.nlb_latents`.

``neurodyn simulate`` (:mod:`neurodyn.commands.simulate`) writes them from the command line.
"""

from neurodyn.data.synthetic.lorenz import LorenzConfig, LorenzSimulation, simulate_lorenz

__all__ = ["LorenzConfig", "LorenzSimulation", "simulate_lorenz"]
