"""Refusals say what is wrong in the terms of the model and data at hand: a switching-GLM file of one sequence
(which no n_train splits), a switching GLM's checkpoint on another session's units (couplings and biases, not
a read-in and a read-out); and the hmmglm configs cite the paper, not a file the repository lacks, and no file
cites a private reference note instead of the public source of its fact."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from neurodyn.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("from_file", [True, False])
def test_one_sequence_is_refused_as_unsplittable_not_with_an_impossible_range(tmp_path, from_file):
    """fit of a switching-GLM file of one sequence said 'n_train=1 must be between 1 and 0 (the file has 1
    sequences)': a range that no value is in."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5
    from neurodyn.training.datamodules.sources import SwitchingGLMDataModule

    if from_file:
        path = tmp_path / "one.h5"
        write_switching_glm_h5(path, simulate_switching_glm(n_states=2, n_neurons=3, n_sequences=1, n_bins=20,
                                                            seed=0))
        kwargs = {"path": str(path)}
    else:
        kwargs = {"n_states": 2, "n_neurons": 3, "n_sequences": 1, "n_bins": 20, "seed": 0}
    with pytest.raises(InputError) as caught:  # the module reads its data when it is made
        SwitchingGLMDataModule(n_train=1, **kwargs).load()
    message = str(caught.value)
    assert "between 1 and 0" not in message, message
    assert "has 1 sequence, and a fit needs 2 or more" in message, message
    assert "cannot be split into train and valid sequences" in message, message
    assert ("--n-sequences" in message) == from_file, message


class _Prepared:
    def __init__(self, attrs):
        self.attrs = attrs


class _Data:
    """The attributes of an NLBDataModule that check_units reads."""

    def __init__(self, sha):
        self.path = "data.h5"
        self.prepared = _Prepared({"dataset": "mc_maze_small", "source_files": np.array(["train.nwb"], dtype=object),
                                   "source_sha256": np.array([sha], dtype=object)})


@pytest.mark.parametrize("family, words, not_words", [
    ("HMMGLMModule", "a switching GLM's couplings", "read-in"),
    ("LangevinFlowModule", "a model's read-in and read-out weights", "coupling"),
    (None, "a model's read-in and read-out weights", "coupling"),
])
def test_another_sessions_units_are_refused_in_the_models_terms(family, words, not_words):
    """predict of an HMM-GLM run on another session's file explained the refusal in LangevinFlow's terms ('a
    model's read-in and read-out weights'); a switching GLM has none: its couplings and biases are per unit."""
    from neurodyn.training.checkpoints import check_units, data_units

    header = {"units": data_units(_Data("a" * 64))}
    if family:
        header["family"] = family
    with pytest.raises(InputError, match="source_sha256") as caught:
        check_units({"neurodyn": header}, _Data("b" * 64), "last.ckpt")
    message = str(caught.value)
    assert f"{words}" in message and "belong to the units it was trained on, not to these" in message, message
    assert not_words not in message, message


@pytest.mark.parametrize("config", sorted((ROOT / "configs" / "hmmglm").glob("*.yaml")), ids=lambda p: p.name)
def test_hmmglm_configs_cite_nothing_the_repository_lacks(config):
    """configs/hmmglm/synthetic_*.yaml cited a private reference note by its file name, a file that is not in the
    repository; they cite the paper now (Li et al., ICLR 2024, with its address)."""
    comments = "\n".join(line for line in config.read_text().splitlines() if line.lstrip().startswith("#"))
    for name in re.findall(r"[\w./-]+\.md\b", comments):
        assert (ROOT / name).is_file(), f"{config.name} cites {name}, which the repository lacks"
    if config.name.startswith("synthetic_"):
        assert "Li et al., ICLR 2024" in comments and "https://openreview.net/forum?id=MREQ0k6qvD" in comments


# The private reference notes the project's authors read (not in the repository, not public). A citation of one
# names nothing a reader can open; the public source each fact came from is cited instead.
PRIVATE_NOTES = re.compile(r"\b(?:reference/)?(?:lorenz|langevinflow|nlb|hmmglm|style)\.md\b")


def _tracked_files() -> list[Path]:
    """The repository's tracked files (``git ls-files``), or, outside a git checkout, every file under ROOT but
    those in hidden folders (.git, .venv) and caches."""
    import subprocess

    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        return [ROOT / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = ("__pycache__", "node_modules")
        return [p for p in ROOT.rglob("*") if p.is_file() and not any(
            part.startswith(".") or part in skip for part in p.relative_to(ROOT).parts[:-1])]


def test_no_file_cites_a_private_reference_note():
    """Seventeen places (README, configs/langevinflow, benchmarks/evaluate_speed.py, test comments) cited
    private notes by file name (the names PRIVATE_NOTES matches), against the rule to cite
    papers or public URLs; they cite the paper, repository file or DANDI page each fact came from now."""
    this = Path(__file__).resolve()
    hits = []
    for path in _tracked_files():
        if path.resolve() == this or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), start=1):
            hits += [f"{path.relative_to(ROOT)}:{number}: {m.group(0)}" for m in PRIVATE_NOTES.finditer(line)
                     if not (ROOT / m.group(0)).is_file()]
    assert not hits, "cites a private note, not a public source:\n" + "\n".join(hits)
