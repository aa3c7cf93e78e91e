"""Local test settings for the HMM-GLM tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """Run these small-tensor tests on one intra-op thread (restored afterwards).

    Measured on the shared 2-core CI machine: with 2 threads, fork-join overhead on loaded cores
    made the EM tests 10-25x slower; one thread is also what xdist workers get per core.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
