"""LangevinFlow (Song, Keller, Yue, Perona, Welling 2025): latent underdamped Langevin dynamics.

Plain ``torch.nn`` modules (no Lightning): :class:`LangevinFlow` with its :class:`LangevinFlowConfig`,
and the parts it is built from (encoder, coupled-oscillator potential, integrator, decoder, loss terms).
"""

from neurodyn.models.langevinflow.config import LangevinFlowConfig
from neurodyn.models.langevinflow.decoder import PostNormTransformerBlock, sinusoidal_positions
from neurodyn.models.langevinflow.encoder import GRUEncoder, InitialStatePosterior, input_schedule
from neurodyn.models.langevinflow.integrator import Rollout, langevin_rollout, noise_std
from neurodyn.models.langevinflow.interface import LangevinFlowOutput, count_parameters
from neurodyn.models.langevinflow.model import LangevinFlow
from neurodyn.models.langevinflow.potential import CoupledOscillatorPotential

__all__ = [
    "CoupledOscillatorPotential",
    "GRUEncoder",
    "InitialStatePosterior",
    "LangevinFlow",
    "LangevinFlowConfig",
    "LangevinFlowOutput",
    "PostNormTransformerBlock",
    "Rollout",
    "count_parameters",
    "input_schedule",
    "langevin_rollout",
    "noise_std",
    "sinusoidal_positions",
]
