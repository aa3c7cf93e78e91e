"""Errors raised on bad user input.

Every problem with a user's file, field or argument raises :class:`InputError` with a one-line
message naming the file (when there is one) and the field. The CLI turns it into
``neurodyn <command>: error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os


class InputError(ValueError):
    """Bad user input: one line, naming the file and the field.

    Parameters
    ----------
    message
        What is wrong, e.g. ``"missing column 'move_onset_time'"``.
    path
        The file concerned, if any; printed first.
    field
        The field / key / argument concerned, if any.

    Examples
    --------
    >>> str(InputError("missing column", path="a.nwb", field="trials/move_onset_time"))
    'a.nwb: trials/move_onset_time: missing column'
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, field: str | None = None):
        self.path = None if path is None else os.fspath(path)
        self.field = field
        self.message = " ".join(str(message).split())  # always one line
        parts = [p for p in (self.path, field, self.message) if p]
        super().__init__(": ".join(parts))


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors raise :class:`InputError` (one line, exit code 2).

    The plain parser prints its usage and exits; through ``neurodyn.cli`` every command's bad
    arguments are reported like any other bad input. Subparsers inherit the class.

    Examples
    --------
    >>> p = ArgumentParser(prog="neurodyn x")
    >>> _ = p.add_argument("--n", type=int, required=True)
    >>> p.parse_args(["--n", "two"])
    Traceback (most recent call last):
    neurodyn.errors.InputError: arguments: argument --n: invalid int value: 'two'
    """

    def error(self, message):
        raise InputError(message, field="arguments")
