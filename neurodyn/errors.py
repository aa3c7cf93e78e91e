"""Errors raised on bad user input, and the other ways a command ends early.

Every problem with a user's file, field or argument raises :class:`InputError` with a one-line
message naming the file (when there is one) and the field. The CLI turns it into
``neurodyn <command>: error: <message>`` on stderr and exit code 2. A command that cannot finish for
another reason that is not a bug raises :class:`CommandFailed` (printed the same way, with its own exit
code); one stopped by a signal after keeping what it could raises :class:`Stopped`. Only
:func:`neurodyn.cli.main` prints them.
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


class CommandFailed(RuntimeError):
    """A command could not finish, though the input was valid and nothing is broken (a training run
    diverged, no trial of a search produced a result).

    ``neurodyn.cli`` prints ``neurodyn <command>: error: <message>`` and returns :attr:`exit_code` (2
    unless a subclass or the caller says otherwise); ``--debug`` shows the traceback.

    Examples
    --------
    >>> err = CommandFailed("no trial reported valid/loss;  first error: ...", exit_code=1)
    >>> str(err), err.exit_code
    ('no trial reported valid/loss; first error: ...', 1)
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        self.message = " ".join(str(message).split())  # always one line
        if exit_code is not None:
            self.exit_code = int(exit_code)
        super().__init__(self.message)


class Stopped(Exception):
    """A command stopped by a signal after keeping what it could (e.g. a fit that saved its last epoch).

    ``neurodyn.cli`` prints ``neurodyn <command>: <message>`` and returns 128 + ``signum``; this is an
    orderly stop, not an error, so ``--debug`` shows no traceback.
    """

    def __init__(self, signum: int, message: str):
        self.signum = int(signum)
        self.message = message
        super().__init__(message)
