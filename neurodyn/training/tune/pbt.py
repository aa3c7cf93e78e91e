"""Population-based training whose exploit / explore draws depend on the seed only (needs Ray Tune).

Ray's :class:`~ray.tune.schedulers.PopulationBasedTraining` draws the donor of an exploit
(``random.choice``) and the explore steps (``random.random`` / ``random.choice``, and a search domain's
``sample(None)``, which uses numpy's global state) from the driver's global generators. Ray's own
driver code draws from them too, a number of times that changes from run to run, so seeding them once
before the search (what tune did) did not make two runs with the same ``--seed`` perturb alike.
:func:`seeded_pbt` gives every perturbation decision a generator of its own, seeded from the run seed,
the trial's index in the order of creation and the iteration of the decision.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import random
from collections.abc import Iterator

import numpy as np

from neurodyn.training.tune.trial import trial_index, trial_name


def decision_seed(seed: int, index: int, iteration: float) -> int:
    """The seed of one perturbation decision: a hash of the run seed, the trial's index and the iteration
    (the same in every process and Python version, unlike ``hash``).

    >>> decision_seed(0, 3, 2) == decision_seed(0, 3, 2) != decision_seed(0, 3, 4)
    True
    """
    key = f"neurodyn tune pbt {seed} {index} {iteration:g}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")


@contextlib.contextmanager
def ray_pbt_draws(seed: int) -> Iterator[None]:
    """Within the block, the code of Ray's PBT module draws from ``random.Random(seed)`` (its module-level
    ``random`` name is pointed there; the global generator is neither used nor changed) and numpy's global
    state is seeded with ``seed``; both are put back afterwards."""
    from ray.tune.schedulers import pbt as ray_pbt

    saved_random, saved_numpy = ray_pbt.random, np.random.get_state()
    ray_pbt.random = random.Random(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        ray_pbt.random = saved_random
        np.random.set_state(saved_numpy)


def seeded_pbt(seed: int, **kwargs):
    """A :class:`~ray.tune.schedulers.PopulationBasedTraining` (``kwargs``) whose draws depend on ``seed``, the
    trial's index (the counter of its Tune trial id: the order of creation, the same in every run) and the
    iteration.

    Every draw of Ray's PBT happens in ``_checkpoint_or_exploit`` (the choice of the donor in the upper
    quantile, then ``_explore``), called once per trial and perturbation; the subclass runs that call
    inside :func:`ray_pbt_draws`. What a decision *sees* -- which trials have reported, their scores --
    is only the same in every run with synchronous PBT (``synch: true``), or with one trial at a time.
    """
    return _seeded_pbt_class()(seed=seed, **kwargs)


@functools.cache
def _seeded_pbt_class() -> type:
    from ray.tune.schedulers import PopulationBasedTraining  # the tune extra: imported when a search starts

    class SeededPBT(PopulationBasedTraining):
        def __init__(self, *, seed: int, **kwargs):
            super().__init__(**kwargs)
            self._seed = seed
            self.steps: list[dict] = []  # every exploit / explore step (perturbations.csv)

        def _log_config_on_step(self, trial_state, new_state, trial, trial_to_clone, new_config):
            # Ray's log (pbt_global.txt) has the donor's config as the "old" one, and no word of the trial's
            # own; here, before the exploit sets it, trial.config is still the trial's.
            self.steps.append({
                "trial": trial_name(trial_index(trial.trial_id)),
                "copied_from": trial_name(trial_index(trial_to_clone.trial_id)),
                # the perturbation's time (training_iteration: one per epoch), which Ray sets before the step;
                # trial.last_result may not have caught up with the trial's last report yet (the same step was
                # recorded at epoch 1 in one run, 2 in another)
                "epoch": int(trial_state.last_perturbation_time),
                "old": dict(trial.config), "new": dict(new_config),
            })
            return super()._log_config_on_step(trial_state, new_state, trial, trial_to_clone, new_config)

        def _checkpoint_or_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
            iteration = self._trial_state[trial].last_train_time
            with ray_pbt_draws(decision_seed(self._seed, trial_index(trial.trial_id), iteration)):
                return super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)

    return SeededPBT
