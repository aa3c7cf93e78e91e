"""neurodyn.training."""

import contextlib
import os
import sys
from collections.abc import Iterator


def child_rank() -> bool:
    """True in a process that Lightning's DDP launcher started (local rank > 0 or node rank > 0). Here, not in
    :mod:`neurodyn.training.runs`, so that the command's last words after a Ctrl-C while modules load (Lightning half
    imported) can ask it without importing Lightning."""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))


def restore_environ(saved: dict) -> None:
    """Put environment variables back as ``saved`` (``{name: value or None}``, taken before a command changed them)
    holds them: None removes the variable. What a command sets for the processes it starts goes when it ends, so
    that a notebook or script that ran it in its own process keeps its environment.

    >>> saved = {"NEURODYN_DOCTEST_X": os.environ.get("NEURODYN_DOCTEST_X")}
    >>> os.environ["NEURODYN_DOCTEST_X"] = "1"; restore_environ(saved); "NEURODYN_DOCTEST_X" in os.environ
    False
    """
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def select_split_words(split) -> str | None:
    """The trials neurodyn tune's figures are of, as its closing line and ``neurodyn info`` of its run folder name
    them (never the validation trials, which the name ``valid/loss`` suggests): ``split`` is what tune's
    ``summary.json`` records as ``select_split``; None for anything but a string (a summary without it). Here, not in
    :mod:`neurodyn.training.tune`, so that ``info`` can say it without loading Lightning and Ray.

    >>> select_split_words("16 of the 160 training trials (seed 0); the validation trials are not used")
    'the select split, 16 of the 160 training trials (seed 0); the validation trials are not used'
    >>> select_split_words("the DataModule's select split: 16 of the training trials")
    "the DataModule's select split: 16 of the training trials"
    >>> select_split_words(None) is None
    True
    """
    if not isinstance(split, str):
        return None
    return split if split.startswith("the ") else f"the select split, {split}"


#: what Lightning's ``seed_everything`` sets in the environment (the seed and ``workers=True``) for the processes a
#: run starts
SEED_ENV = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


@contextlib.contextmanager
def random_states_kept() -> Iterator[None]:
    """The global random generators a command reseeds, put back as the block found them when it ends (also on bad
    input, a signal or an error): torch's CPU generator, the CUDA generators, NumPy's legacy global generator
    (``np.random.seed``) and Python's ``random``, and the seed Lightning records in the environment
    (:data:`SEED_ENV`). Lightning's ``seed_everything`` reseeds all of them for the process and training draws from
    them: a notebook's own later ``torch.rand`` / ``np.random.rand`` / ``random.random`` gave the run's numbers, not
    the ones its own seeding gives; the ``PL_GLOBAL_SEED`` left behind reseeded a later unseeded DDP fit with the
    run's seed and became the seed of the caller's own ``seed_everything()``. What the command draws inside the block
    is unchanged (its seed decides it).

    The CUDA states are read only where CUDA is initialised already (reading them would initialise it); where it is
    not, the CUDA generators are seeded again with the CPU generator's seed when the block ends, as after the
    caller's ``torch.manual_seed``. torch or NumPy first imported inside the block (nothing of the caller's to keep)
    is left seeded as a fresh import is: from the operating system. Lightning's DDP processes are processes of their
    own, which run the command again: nothing of theirs is kept.

    >>> import random
    >>> random.seed(3); first = random.random()
    >>> random.seed(3)
    >>> with random_states_kept():
    ...     random.seed(0)
    >>> random.random() == first
    True
    """
    import random

    env = {key: os.environ.get(key) for key in SEED_ENV}
    python = random.getstate()
    numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")  # not imported here: --help stays fast
    legacy = numpy.random.get_state() if numpy is not None else None
    cpu = (torch.get_rng_state(), torch.initial_seed()) if torch is not None else None
    cuda = torch.cuda.get_rng_state_all() if torch is not None and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        restore_environ(env)
        random.setstate(python)
        if legacy is not None:
            numpy.random.set_state(legacy)
        elif hasattr(sys.modules.get("numpy"), "random"):
            sys.modules["numpy"].random.seed()
        if cpu is not None:
            torch.set_rng_state(cpu[0])
            if cuda is not None:
                torch.cuda.set_rng_state_all(cuda)
            else:  # queued until CUDA starts (nothing without CUDA), in place of the run's seed_everything queued
                torch.cuda.manual_seed_all(cpu[1])
        elif hasattr(sys.modules.get("torch"), "seed"):  # (not a torch import that a Ctrl-C cut short)
            sys.modules["torch"].seed()  # the CPU and CUDA generators
