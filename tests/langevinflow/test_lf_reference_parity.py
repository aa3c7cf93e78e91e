"""The reference preset equals the MIT reference module (KingJamesSong/LangevinFlow_CCN) in float64.

Needs a checkout of the reference code (tests never download): set NEURODYN_LANGEVINFLOW_REF to its
folder (``git clone https://github.com/KingJamesSong/LangevinFlow_CCN``); skipped otherwise. Both
implementations get the same weights and the same ε, ξ and coordinated-dropout masks
(``benchmarks/_langevinflow_reference.py``); in float64 the only differences left are summation order,
~1e-16 relative, so 1e-12 is a loose bound that still catches any change of the math.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REF = os.environ.get("NEURODYN_LANGEVINFLOW_REF")
pytestmark = pytest.mark.skipif(
    not REF or not (Path(REF) / "nlb_lightning" / "models.py").is_file(),
    reason="set NEURODYN_LANGEVINFLOW_REF to a checkout of KingJamesSong/LangevinFlow_CCN",
)


def _helper():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("_langevinflow_reference",
                                                  ROOT / "benchmarks" / "_langevinflow_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("epoch", [0, 250, 600])
@pytest.mark.parametrize("random_kernel", [True, False])
def test_reference_preset_equals_reference_module(epoch, random_kernel):
    check = _helper().parity(REF, epoch=epoch, random_kernel=random_kernel)
    assert check["log_rates_max_abs_diff"] <= 1e-12
    assert check["loss_abs_diff"] <= 1e-12 * max(1.0, abs(check["loss"]))
    for name, diff in check["grad_max_abs_diff_per_parameter"].items():
        assert diff <= 1e-12 * max(1.0, check["grad_max_abs_per_parameter"][name]), name
