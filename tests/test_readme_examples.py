"""The README's Python API examples run as written (nothing else ran them: an API change would leave them
stale without a failing test). Each ```python block is executed on its own, in a fresh namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index, capsys):
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), namespace)  # noqa: S102
    if index == 1:  # the switching-GLM example prints a state accuracy and reads out (3, 8, 8) types
        accuracy = float(capsys.readouterr().out.strip())
        assert 0.0 <= accuracy <= 1.0 and tuple(namespace["types"].shape) == (3, 8, 8)
