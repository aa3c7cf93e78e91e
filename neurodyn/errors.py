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
import contextlib
import contextvars
import os
import textwrap
from collections.abc import Iterator

#: the mark that ends a message cut by :func:`one_line`
ELLIPSIS = " …"


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line (whitespace collapsed), cut at a word boundary to at most ``limit`` characters.

    A cut text ends with ``" …"``; a long word near the start (a URL, a path) is cut inside
    the word rather than dropped.

    Examples
    --------
    >>> one_line("Failed to resolve   'api.dandiarchive.org' (Name or service not known)", 40)
    'Failed to resolve …'
    >>> one_line("short message")
    'short message'
    """
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = textwrap.shorten(text, width=limit, placeholder=ELLIPSIS)
    if len(cut) < limit // 4:  # a long token near the start: textwrap drops it whole
        cut = text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return cut


#: capital letters said with a vowel sound when spelled out (H: "aitch", L: "el", ...)
_SPELLED_VOWEL = frozenset("AEFHILMNORSX")


def with_article(word: object) -> str:
    """``word`` after the indefinite article its sound takes: ``"an HMMGLMModule"``, ``"a LangevinFlowModule"``.

    A run of capitals (``HMMGLM``, ``LFADS``, ``NWB``) is spelled out letter by letter; a number takes "an" when
    said with a vowel sound (8, 11, 18, 80, 11000); a quote or bracket in front is skipped.

    Examples
    --------
    >>> [with_article(w) for w in ("HMMGLMModule", "LFADSDataModule", "LangevinFlowModule", "int", "'other'")]
    ['an HMMGLMModule', 'an LFADSDataModule', 'a LangevinFlowModule', 'an int', "an 'other'"]
    >>> [with_article(w) for w in ("8 ms", "11 ms", "18-D", "110 ms", "3-D", "SwitchingGLM", "ZARR", "None")]
    ['an 8 ms', 'an 11 ms', 'an 18-D', 'a 110 ms', 'a 3-D', 'a SwitchingGLM', 'a ZARR', 'a None']
    """
    text = str(word)
    core = text.lstrip("'\"([`")
    if core[:1].isdigit():
        digits = core[: len(core) - len(core.lstrip("0123456789"))]
        vowel = digits[0] == "8" or (len(digits) % 3 == 2 and digits[:2] in ("11", "18"))
    elif len(core) > 1 and core[0].isupper() and core[1].isupper():
        vowel = core[0] in _SPELLED_VOWEL
    else:
        vowel = core[:1].lower() in ("a", "e", "i", "o") or (core[:1].lower() == "u" and not core.lower().startswith(
            ("uni", "use", "usu", "uti")))
    return f"{'an' if vowel else 'a'} {text}"


def whole_number(value) -> int | None:
    """``value`` as an ``int`` when it is a whole-number type (Python, numpy or torch integers, 0-d integer
    arrays too), else None (a bool, a float such as 2.5 or 2.0, anything else): the one test behind the
    checks of counts, sizes, indices and seeds.

    Examples
    --------
    >>> whole_number(3), whole_number(2.0), whole_number(True)
    (3, None, None)
    """
    import operator

    import numpy as np  # here: `neurodyn --help` imports this module and needs no numpy

    if isinstance(value, bool | np.bool_):  # numpy's bool converts to an index
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_whole(value, field: str, minimum: int | None = None) -> int:
    """``value`` as an ``int`` when it is a whole number (:func:`whole_number`) >= ``minimum`` (when given), else
    one :class:`InputError` naming ``field``: the check of counts, sizes and seeds a library function is called
    with (2.5 was a ``range()`` TypeError in the middle of the work, -1 work that did nothing).

    Examples
    --------
    >>> check_whole(3, "n_iters", 0)
    3
    >>> check_whole(2.5, "n_iters", 0)
    Traceback (most recent call last):
    ...
    neurodyn.errors.InputError: n_iters: must be a whole number >= 0, got 2.5
    """
    whole = whole_number(value)
    if whole is None or (minimum is not None and whole < minimum):
        at_least = "" if minimum is None else f" >= {minimum}"
        raise InputError(f"must be a whole number{at_least}, got {value!r}", field=field)
    return whole


#: True while a command of the ``neurodyn`` command line runs a library function (:func:`command_line_names`)
_COMMAND_LINE: contextvars.ContextVar[bool] = contextvars.ContextVar("neurodyn_command_line", default=False)


@contextlib.contextmanager
def command_line_names() -> Iterator[None]:
    """Inside the block, :func:`named` gives the command line's spelling of an argument.

    A public function that a command also calls (``neurodyn.viz.plot_file`` for ``neurodyn plot``) names its
    arguments in its errors through :func:`named`: a Python caller reads ``out`` / ``overwrite=True``, the
    command (which wraps its call in this block) ``--out`` / ``--overwrite``.
    """
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def named(python: str | None, option: str) -> str | None:
    """How an error names an argument: ``python`` (the keyword as a Python caller writes it; None: the
    message names no argument, its file says it all) or, inside :func:`command_line_names`, ``option`` (the
    command-line option).

    Examples
    --------
    >>> named("overwrite=True", "--overwrite")
    'overwrite=True'
    >>> with command_line_names():
    ...     named("overwrite=True", "--overwrite")
    '--overwrite'
    """
    return option if _COMMAND_LINE.get() else python


def debug_enabled(argv: list[str] | None = None) -> bool:
    """True when ``--debug`` is in ``argv`` or ``NEURODYN_DEBUG`` is set to 1 / true / yes (``neurodyn --debug``:
    tracebacks are shown; read by the command line, and by ``tune`` for its trials' errors)."""
    env = os.environ.get("NEURODYN_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    return env or "--debug" in (argv or [])


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
    involves
        For a refusal of a combination (a width that ``n_heads`` must divide): the other fields of the same
        object whose values it depends on, or options of another section spelt in full
        (``model.init_args.config.n_lags`` beside ``data.init_args.n_bins``); ``path`` when the data file is
        one of them. A command that reads them from several places (config files, the command line) names
        the one set last and where each came from (:func:`neurodyn.training.parser_errors.qualified`).

    Examples
    --------
    >>> str(InputError("missing column", path="a.nwb", field="trials/move_onset_time"))
    'a.nwb: trials/move_onset_time: missing column'
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, field: str | None = None,
                 involves: tuple[str, ...] = ()):
        self.path = None if path is None else os.fspath(path)
        self.field = field
        self.involves = tuple(involves)
        self.message = " ".join(str(message).split())  # always one line (never cut: callers cut details)
        parts = [p for p in (self.path, field, self.message) if p]
        super().__init__(": ".join(parts))


def wrapped_input_error(err: BaseException | None) -> InputError | None:
    """The :class:`InputError` that ``err`` is or wraps (``__cause__`` / ``__context__``), else None.

    jsonargparse re-raises an error from a class's ``__init__`` inside a long explanation; the
    InputError within is the one-line message the user needs.

    >>> try:
    ...     try:
    ...         raise InputError("must be > 0", field="lr")
    ...     except InputError as inner:
    ...         raise RuntimeError("could not instantiate") from inner
    ... except RuntimeError as outer:
    ...     str(wrapped_input_error(outer))
    'lr: must be > 0'
    """
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, InputError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors raise :class:`InputError` (one line, exit code 2).

    The plain parser prints its usage and exits; through ``neurodyn.cli`` every command's bad
    arguments are reported like any other bad input. Subparsers inherit the class. Options are matched whole
    (``allow_abbrev=False``): argparse's prefix matching took ``--seed`` for ``--seed_everything`` and
    ``--out`` for ``--out-dir``, and a script relying on it would change meaning when a longer option is added.

    Examples
    --------
    >>> p = ArgumentParser(prog="neurodyn x")
    >>> _ = p.add_argument("--n", type=int, required=True)
    >>> p.parse_args(["--n", "two"])
    Traceback (most recent call last):
    neurodyn.errors.InputError: --n: invalid int value: 'two'
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        # argparse words one option's error 'argument --n/-n: ...': the option is the field (was 'arguments:
        # argument --n: ...'); errors about the arguments together keep the field 'arguments'
        import re

        found = re.match(r"argument (-[^\s:/]+)(?:/\S+)?: (.*)", message, re.S)
        if found:
            raise InputError(found.group(2), field=found.group(1))
        raise InputError(message, field="arguments")


#: seeds of numpy's legacy global generator (``np.random.seed``, nlb_tools' DMFC jitter): 32-bit
LEGACY_SEED_MAX = 2**32 - 1
#: seeds stored as an HDF5 integer attribute (int64) beside the data they made
STORED_SEED_MAX = 2**63 - 1


def seed_type(maximum: int):
    """An argparse ``type`` for ``--seed``: a whole number in ``0..maximum``, checked before any work.

    Examples
    --------
    >>> seed_type(10)("3")
    3
    >>> seed_type(10)("11")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: invalid seed 11: expected a whole number from 0 to 10
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected a whole number") from None
        if not 0 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"invalid seed {value}: expected a whole number from 0 to {maximum}")
        return value

    parse.__name__ = "seed"
    return parse


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
