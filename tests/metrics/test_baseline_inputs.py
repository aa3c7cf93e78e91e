"""`neurodyn baseline`: bad numeric options are one line naming the option, before any file is read."""

from __future__ import annotations

import pytest

from neurodyn.cli import main


@pytest.mark.parametrize(("option", "value"), [("--alpha", "-1"), ("--alpha", "nan"), ("--alpha", "inf"),
                                               ("--sigma-ms", "nan"), ("--sigma-ms", "inf"), ("--sigma-ms", "0")])
def test_bad_settings_are_refused_up_front(tmp_path, capsys, option, value):
    """--alpha -1 / nan / inf was an sklearn InvalidParameterError traceback and --sigma-ms nan / inf a
    ValueError / OverflowError, each after reading the file and smoothing; the prepared file here does not
    even exist, so the line must come before any reading."""
    code = main(["baseline", "--prepared", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "b.h5"),
                 option, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"error: {option}: must be a finite number" in err[0], err
    assert not (tmp_path / "b.h5").exists()
