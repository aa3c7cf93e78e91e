"""Rate ensembles: several independently fitted models, their predicted rates averaged.

Fits of a latent-dynamics model from different random initialisations land in different local optima;
averaging their *rates* (not log-rates) removes part of that variance. For Poisson scoring it never
hurts on average: the Poisson log-likelihood ``k log r - r`` is concave in ``r``, so the ensemble's
log-likelihood is at least the mean of its members' (Jensen's inequality) -- on every entry, on any data.

Members are chosen in advance (how many, with which seeds), never by their score on reported data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from neurodyn.errors import InputError

#: fit seed of ensemble member ``m`` of a run with seed ``s``: ``s + MEMBER_SEED_STEP * m`` (member 0 is the
#: single fit of seed ``s``); the benchmarks' ensembles all use it
MEMBER_SEED_STEP = 1000


def member_seed(seed: int, member: int) -> int:
    """Fit seed of ensemble member ``member`` of seed ``seed``.

    >>> [member_seed(2, m) for m in range(3)]
    [2, 1002, 2002]
    """
    return int(seed) + MEMBER_SEED_STEP * int(member)


class RateEnsemble:
    """Average of the rates predicted by several models with a ``predict(x, **kw) -> {"rates": ...}`` method.

    Parameters
    ----------
    members
        The fitted models (e.g. :class:`~neurodyn.models.langevinflow.LangevinFlow`), at least one, all
        predicting rates of the same shape from the same input.

    Examples
    --------
    >>> class Const:
    ...     def __init__(self, r): self.r = r
    ...     def predict(self, x, **kw): return {"rates": torch.full_like(x, self.r)}
    >>> RateEnsemble([Const(1.0), Const(3.0)]).predict(torch.zeros(1, 2, 1))["rates"].flatten().tolist()
    [2.0, 2.0]
    """

    def __init__(self, members: Sequence):
        members = list(members)
        if not members:
            raise InputError("needs at least one member", field="members")
        self.members = members

    def __len__(self) -> int:
        return len(self.members)

    def predict(self, heldin: Tensor, **kwargs) -> dict[str, Tensor]:
        """``{"rates": mean over members of their predicted rates}`` (same keyword arguments for each).

        Only the rates are returned: other outputs (latents, log-rates) are not comparable across
        members fitted separately. ``log_rates`` is the log of the averaged rates.
        """
        total = None
        for member in self.members:
            rates = member.predict(heldin, **kwargs)["rates"]
            if total is None:
                total = rates.clone()
            elif rates.shape != total.shape:
                raise InputError(f"members predict rates of different shapes: {tuple(total.shape)} and "
                                 f"{tuple(rates.shape)}", field="members")
            else:
                total += rates
        rates = total / len(self.members)
        return {"rates": rates, "log_rates": torch.log(rates)}
