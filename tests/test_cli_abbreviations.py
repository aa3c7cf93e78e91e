"""Options are matched whole, for every command: argparse's prefix matching (``allow_abbrev``) took ``--max`` for
``info --max-rows`` and ``--seed`` for ``fit --seed_everything``, so a script's meaning depended on which longer
options exist (and changed when one was added)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurodyn.cli import main
from neurodyn.errors import ArgumentParser, InputError

ROOT = Path(__file__).resolve().parents[1]


def test_the_parser_takes_no_prefix_of_an_option():
    parser = ArgumentParser(prog="neurodyn x")
    parser.add_argument("--seed_everything", type=int)
    with pytest.raises(InputError, match="unrecognized arguments: --seed 5"):
        parser.parse_args(["--seed", "5"])
    assert parser.parse_args(["--seed_everything", "5"]).seed_everything == 5


@pytest.mark.parametrize("argv, option", [
    (["info", str(ROOT / "configs" / "langevinflow" / "lorenz.yaml"), "--max", "3"], "--max 3"),
    (["evaluate", "--pred", "p.h5", "--target", "t.h5", "--up", "5"], "--up 5"),
])
def test_a_prefix_of_an_option_is_refused_in_one_line(argv, option, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn {argv[0]}: error: arguments: unrecognized arguments: {option}"], err
