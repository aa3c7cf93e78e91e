"""The README's Python API examples run as written (nothing else ran them: an API change would leave them
stale without a failing test). Each ```python block is executed on its own, in a fresh namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

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


def test_the_readme_error_line_of_a_misspelt_option_is_the_real_one(tmp_path, monkeypatch, capsys):
    """The README's example of a misspelt option said the error names LangevinFlowModule; `neurodyn fit`
    says LangevinFlowConfig (the class whose options `model.init_args.config` holds). The README's line is
    now run: a bad.yaml with the key it names, and the command's one line must be the README's, word for word."""
    from neurodyn.cli import main

    (line,) = re.findall(r"`(neurodyn fit: error: bad\.yaml: [^`]*)`", " ".join(README.read_text().split()))
    key = re.match(r"neurodyn fit: error: bad\.yaml: ([\w.]+): ", line).group(1)
    tree: object = 3
    for part in reversed(key.split(".")):  # model.init_args.config.hiden_size -> the nested YAML mapping
        tree = {part: tree}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(tree))
    assert main(["fit", "--config", "bad.yaml"]) == 2
    assert capsys.readouterr().err.strip() == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_the_readme_line_of_a_refused_combination_is_the_real_one(monkeypatch, tmp_path, capsys):
    """The README's `fit --config lorenz.yaml --model.init_args.config.hidden_size 33` example and the line it
    quotes: the command is run from the repository root and must print that line, word for word."""
    import shlex

    from neurodyn.cli import main

    text = " ".join(README.read_text().split())
    command, line = re.search(r"`(neurodyn fit --config [^`]*hidden_size 33)` gives `(neurodyn fit: error: [^`]*)`",
                              text).groups()
    monkeypatch.chdir(README.parent)
    argv = shlex.split(command)[1:]
    assert main([*argv, "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err.strip() == line
    assert not (tmp_path / "runs").exists()
