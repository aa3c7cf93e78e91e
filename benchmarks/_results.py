"""Results files shared by every benchmark: ``benchmarks/results/<name>.json``.

A benchmark collects its figures, then calls :func:`write_results`, which adds what a reader needs to
trust them (the command line, the git commit and whether the tree was dirty, the machine, the thread
settings, the wall time) and writes the file atomically. A results file may carry a ``readme`` block
(``{"title", "columns", "rows", "notes"}``) that ``benchmarks/readme_tables.py`` renders into the
README between ``<!-- results:<name> -->`` markers; the rows are formatted by the benchmark from its own
figures, so no figure in the README is typed by hand.

Seeds are summarised with :func:`summarize` (per-seed values, mean and sample sd).

Every benchmark reads its options with :class:`BenchmarkParser` and wraps its ``main`` in
:func:`exits_on_signals`: a bad option, or bad input found after parsing (an
:class:`~neurodyn.errors.InputError`), is one line on stderr, ``<script>: error: <option>: <what is wrong>``,
and exit code 2, as in the ``neurodyn`` commands; ``-h`` prints the full help. A benchmark that writes a
results file calls :func:`check_results_folder` right after parsing, so that an unwritable
``$NEURODYN_RESULTS_DIR`` (or results option) is refused before the run, not after it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: environment variable naming another folder for every results file (the README's commands rewrite the
#: committed files otherwise)
RESULTS_ENV = "NEURODYN_RESULTS_DIR"
#: the checkout these benchmarks belong to, whose commit a results file names
CHECKOUT = Path(__file__).resolve().parent.parent


def _import_this_checkout() -> None:
    """``import neurodyn`` -- here and in every process a benchmark starts (``PYTHONPATH``) -- takes this checkout's
    package. Without it an editable install of another checkout (one virtual environment serving several
    worktrees) maps ``neurodyn`` to that checkout's package, and a results file named this checkout's commit for
    code of another tree. Nothing changes where ``neurodyn`` is this checkout's already (a clone with its own
    environment, the test suite) or is not installed (the nlb_tools environment, ``python -S``), nor where a
    neurodyn that ``PYTHONPATH`` names on purpose comes first (``prepare_speed.py --before``: an earlier checkout,
    for processes that write no results file; :func:`provenance` refuses any other). Run at import: every benchmark
    imports this module before neurodyn."""
    import importlib.util

    if "neurodyn" in sys.modules or _chosen_checkout() is not None:
        return
    try:
        spec = importlib.util.find_spec("neurodyn")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None or CHECKOUT in Path(spec.origin).resolve().parents:
        return
    root = str(CHECKOUT)
    sys.path.insert(0, root)
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])


def _chosen_checkout() -> Path | None:
    """The first ``PYTHONPATH`` folder that holds a neurodyn package (None: none does)."""
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and (Path(entry) / "neurodyn" / "__init__.py").is_file():
            return Path(entry).resolve()
    return None


def _check_neurodyn_source() -> None:
    """Refuse a ``neurodyn`` imported from outside this checkout: a results file would name this checkout's commit
    for it."""
    module = sys.modules.get("neurodyn")
    where = getattr(module, "__file__", None)
    if where is not None and CHECKOUT not in Path(where).resolve().parents:
        raise ImportError(f"neurodyn was imported from {Path(where).parent}, not from this checkout {CHECKOUT}: "
                          "a results file would name this checkout's commit for another tree's code")


_import_this_checkout()


class OptionValueError(argparse.ArgumentTypeError, ValueError):
    """A bad option value; :class:`BenchmarkParser` words it ``<script>: error: --opt: <message>`` (one line, exit
    code 2)."""


def _prog() -> str:
    """This script's name, as argparse names it (``lorenz.py``)."""
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "benchmark"


class BenchmarkParser(argparse.ArgumentParser):
    """The benchmarks' argument parser: a bad option (unknown, missing, a bad value or choice) is one line,
    ``<script>: error: <option>: <what is wrong>``, and exit code 2 -- without argparse's usage block above it.
    ``-h`` prints the full help.

    The message is worded by the ``neurodyn`` commands' parser, :class:`neurodyn.errors.ArgumentParser`
    (the option is the field; errors about the options together have the field ``arguments``). A check
    made after parsing calls ``parser.error("argument --opt: <what is wrong>")``.

    >>> p = BenchmarkParser(prog="x.py")
    >>> _ = p.add_argument("--n", type=int)
    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     try:
    ...         p.parse_args(["--n", "two"])
    ...     except SystemExit as stop:
    ...         print(stop.code)
    2
    >>> err.getvalue()
    "x.py: error: --n: invalid int value: 'two'\\n"
    """

    def error(self, message):
        ArgumentParser, InputError = _argument_errors()
        try:
            ArgumentParser.error(self, message)  # raises the one-line InputError
        except InputError as err:
            self.exit(2, f"{self.prog}: error: {err}\n")


def _argument_errors() -> tuple[type, type]:
    """``neurodyn.errors``' ``ArgumentParser`` and ``InputError``, which word :class:`BenchmarkParser`'s errors.

    Imported when an error is worded, not with this module, and taken from this checkout's
    ``neurodyn/errors.py`` (standard library only) where the neurodyn on the path has none:
    ``nlb_tools_prepare.py`` runs in the nlb_tools environment, without neurodyn, and ``prepare_speed.py
    --before`` runs this module beside an older neurodyn whose ``errors`` may lack ``ArgumentParser``.
    """
    try:
        from neurodyn.errors import ArgumentParser, InputError
    except ImportError:
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "_benchmark_neurodyn_errors", Path(__file__).resolve().parent.parent / "neurodyn" / "errors.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ArgumentParser, InputError = module.ArgumentParser, module.InputError
    return ArgumentParser, InputError


def _cannot_write_in(folder: Path) -> str | None:
    """Why ``folder`` cannot be made (when missing) and written into; None when it can (the rule of neurodyn's
    output check, :func:`neurodyn.io.output.check_output`)."""
    from neurodyn.io.output import _existing_ancestor

    probe = _existing_ancestor(folder.absolute())
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"folder {probe} is not writable"
    return None


def output_folder(text: str) -> str:
    """The ``type`` of an option naming a folder the benchmark writes into (made when missing): refused at
    once when it is a file, lies inside one or cannot be written -- not after the run, when its results
    would be written there.

    >>> output_folder("/dev/null/results")
    Traceback (most recent call last):
    _results.OptionValueError: /dev/null/results: /dev/null is not a folder
    """
    if not text.strip():
        raise OptionValueError("empty path, expected a folder")
    why = _cannot_write_in(Path(text))
    if why:
        raise OptionValueError(f"{text}: {why}")
    return text


def new_folder(text: str) -> str:
    """The ``type`` of an option naming a folder the benchmark makes its work folders in (``--keep``): as
    :func:`output_folder`, and refused when it exists and holds anything -- a work folder of an earlier run there
    stopped the run with a traceback when it was reached (``mkdir``), after the seeds before it had run.

    >>> new_folder("/")
    Traceback (most recent call last):
    _results.OptionValueError: /: not empty (the work folders go into a new or empty folder)
    """
    text = output_folder(text)
    if Path(text).is_dir() and any(Path(text).iterdir()):
        raise OptionValueError(f"{text}: not empty (the work folders go into a new or empty folder)")
    return text


def results_folder(out_dir: str | os.PathLike | None = None) -> Path:
    """The folder :func:`write_results` writes into: ``out_dir`` when given (an option such as ``--results-dir``),
    else ``$NEURODYN_RESULTS_DIR`` when set and not empty, else ``benchmarks/results``."""
    if out_dir is not None:
        return Path(out_dir)
    return Path(os.environ[RESULTS_ENV]) if os.environ.get(RESULTS_ENV) else RESULTS_DIR


def recorded_path(path: str | os.PathLike) -> str:
    """How a results file records a file its benchmark wrote beside it (a figure): relative to the repository
    root when inside it, as :func:`provenance` records the script (``benchmarks/results/scaling.png``), else
    the absolute path (``--out-dir`` / ``$NEURODYN_RESULTS_DIR`` elsewhere).

    >>> recorded_path(RESULTS_DIR / "scaling.png")
    'benchmarks/results/scaling.png'
    >>> recorded_path("/elsewhere/scaling.png")
    '/elsewhere/scaling.png'
    """
    path = Path(path).resolve()
    try:
        return path.relative_to(RESULTS_DIR.parent.parent).as_posix()
    except ValueError:
        return str(path)


def check_results_folder(out_dir: str | os.PathLike | None = None, option: str | None = None,
                         name: str | None = None) -> Path:
    """:func:`results_folder`, refused at once when it cannot be made or written into, or when ``<name>.json``
    in it (the results file the run will write, ``name`` given) is a folder -- called by a benchmark after its
    options are parsed, before any work, so that a run of minutes does not fail when it writes its results.
    The :class:`~neurodyn.errors.InputError` (one line, exit code 2 through :func:`exits_on_signals`) names
    where the folder came from: ``option`` (``out_dir`` given), ``$NEURODYN_RESULTS_DIR`` or the default.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {RESULTS_ENV: "/dev/null/results"}):  # the caller's value comes back
    ...     check_results_folder()
    Traceback (most recent call last):
    neurodyn.errors.InputError: NEURODYN_RESULTS_DIR: /dev/null/results: /dev/null is not a folder
    """
    from neurodyn.errors import InputError

    folder = results_folder(out_dir)
    if out_dir is not None:
        field, text, hint = option or "results folder", os.fspath(out_dir), ""
    elif os.environ.get(RESULTS_ENV):
        field, text, hint = RESULTS_ENV, os.environ[RESULTS_ENV], ""
    else:
        field, text, hint = "results folder", str(folder), f" (set {RESULTS_ENV} to write the results elsewhere)"
    why = "empty path, expected a folder" if not text.strip() else _cannot_write_in(folder)
    if not why and name is not None and (folder / f"{name}.json").is_dir():
        why = f"{name}.json in it is a folder, not a results file"
    if why:
        raise InputError(f"{text}: {why}{hint}", field=field)
    return folder


def is_committed_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is ``benchmarks/results``, whose files the README's tables are rendered from (one per
    benchmark, each under its benchmark's name)."""
    return Path(folder).resolve() == RESULTS_DIR.resolve()


def refuse_development_run(parser: argparse.ArgumentParser, folder: str | os.PathLike, field: str, what: str,
                           option: str = "--results-dir") -> None:
    """Refuse (``parser.error``: one line, exit code 2), before any work, a development run whose results file
    would land in the committed ``benchmarks/results`` where the README has no block for it (or where it would
    replace another benchmark's file): ``what`` says what it would write, ``field`` is the option that makes it
    a development run, ``option`` the one naming another folder."""
    if is_committed_folder(folder):
        parser.error(f"argument {field}: {what}: give {option} DIR (development runs: benchmarks/results/dev)")


def refuse_committed_folder(folder: str | os.PathLike, name: str, run: str, field: str, option: str) -> None:
    """Refuse, before any work, a run whose results file has no README table (a smoke run, a part of a sweep:
    ``run`` says which, ``field`` is its option) when it would write into the committed ``benchmarks/results``:
    there it would replace ``<name>.json``, which the README's table is rendered from, with a file that renders
    nothing. ``option``: the script's option naming another results folder.

    >>> refuse_committed_folder(RESULTS_DIR, "scaling", "a --quick run", "--quick", "--out-dir")
    Traceback (most recent call last):
    neurodyn.errors.InputError: --quick: a --quick run writes no README table and would replace the committed ...
    """
    from neurodyn.errors import InputError

    if is_committed_folder(folder):
        raise InputError(f"{run} writes no README table and would replace the committed benchmarks/results/"
                         f"{name}.json: give {option} DIR (or set {RESULTS_ENV}=DIR)", field=field)


def output_file(text: str) -> str:
    """The ``type`` of an option naming a file the benchmark appends to (``--log``): refused at once when it is
    a folder or its folder cannot be made or written.

    >>> output_file("/dev/null/run.log")
    Traceback (most recent call last):
    _results.OptionValueError: /dev/null/run.log: /dev/null is not a folder
    """
    if not text.strip():
        raise OptionValueError("empty path, expected a file")
    if Path(text).is_dir():
        raise OptionValueError(f"{text}: is a folder, expected a file")
    why = _cannot_write_in(Path(text).parent)
    if why:
        raise OptionValueError(f"{text}: {why}")
    return text


def checkout_with(marker: str, what: str):
    """An argparse ``type`` for the path of a checkout of ``what`` (a repository run beside neurodyn): the folder
    must hold the file ``marker``; refused at once, not after the minutes of work before it is first used.

    >>> checkout_with("setup.py", "x")("/nonexistent")
    Traceback (most recent call last):
    _results.OptionValueError: /nonexistent: not a checkout of x (no setup.py in it)
    """

    def parse(text: str) -> str:
        path = Path(text).expanduser()
        if not (path / marker).is_file():
            raise OptionValueError(f"{text}: not a checkout of {what} (no {marker} in it)")
        return str(path)  # '~' expanded: the script uses the folder that was checked

    parse.__name__ = "checkout"
    return parse


#: the largest seed: a benchmark seeds numpy, torch and Lightning with it, and Lightning's ``seed_everything`` takes
#: 32-bit seeds only; 2**31 - 1 leaves room for the offsets of ensemble members (seed + 1000 m)
SEED_MAX = 2**31 - 1
#: the most seeds one option may name (a range such as ``0-2000000000`` would be a list of that size)
SEEDS_MAX = 10_000
_SEED_PART = re.compile(r"([0-9]+)(?:\s*-\s*([0-9]+))?")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ``"0-4"`` -> ``[0, 1, 2, 3, 4]``. The ``type`` of every ``--seeds``.

    Seeds are whole numbers from 0 to :data:`SEED_MAX` written in ASCII digits. A seed named twice (``0,0``,
    ``0-2,1``) is refused: the run would fit it twice and count it twice in every mean and sd over seeds; so is
    an empty item (``0,,1``: a seed left out by mistake?).

    >>> parse_seeds("0,1,2"), parse_seeds("3-5"), parse_seeds("7"), parse_seeds(" 1 , 4-5 ")
    ([0, 1, 2], [3, 4, 5], [7], [1, 4, 5])
    >>> parse_seeds("3-1")
    Traceback (most recent call last):
    _results.OptionValueError: seed range '3-1' runs downwards (write 1-3)
    >>> parse_seeds("0-2,1")
    Traceback (most recent call last):
    _results.OptionValueError: seed 1 named twice in '0-2,1'
    """
    example = "seeds are whole numbers from 0 to 2147483647, e.g. 0,1,2 or 0-4"
    if not text.strip():
        raise OptionValueError(f"no seeds in {text!r} (e.g. 0,1,2 or 0-4)")
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise OptionValueError(f"empty item in {text!r} ({example})")
        found = _SEED_PART.fullmatch(part)
        if not found:
            raise OptionValueError(f"{part!r} is not a seed or a seed range ({example})")
        first = int(found.group(1))
        last = int(found.group(2)) if found.group(2) is not None else first
        if max(first, last) > SEED_MAX:
            raise OptionValueError(f"seed {max(first, last)} in {part!r} is above {SEED_MAX} ({example})")
        if last < first:
            raise OptionValueError(f"seed range {part!r} runs downwards (write {last}-{first})")
        if len(seeds) + last - first + 1 > SEEDS_MAX:
            raise OptionValueError(f"more than {SEEDS_MAX} seeds in {text!r}")
        seeds.extend(range(first, last + 1))
    seen: set[int] = set()
    for seed in seeds:
        if seed in seen:
            raise OptionValueError(f"seed {seed} named twice in {text!r}")
        seen.add(seed)
    return seeds


def parse_seed(text: str) -> int:
    """One seed, read by :func:`parse_seeds` (the ``type`` of every ``--seed``).

    >>> parse_seed("4")
    4
    >>> parse_seed("-1")
    Traceback (most recent call last):
    _results.OptionValueError: '-1' is not a seed or a seed range (seeds are whole numbers from 0 to ...)
    """
    seeds = parse_seeds(text)
    if len(seeds) != 1:
        raise OptionValueError(f"one seed expected, got {text!r}")
    return seeds[0]


def _whole_number_at_least(text: str, low: int) -> int:
    """``text`` as a whole number of at least ``low``, else :class:`OptionValueError` (what
    :func:`positive_int` and :func:`non_negative_int` share)."""
    try:
        value = int(text)
    except ValueError:
        value = low - 1  # not a number: refused as one below the limit
    if value < low:
        raise OptionValueError(f"must be a whole number >= {low}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A count of at least 1 (threads, jobs, members, epochs, repeats): the ``type`` of such options.

    >>> positive_int("2")
    2
    >>> positive_int("0")
    Traceback (most recent call last):
    _results.OptionValueError: must be a whole number >= 1, got '0'
    """
    return _whole_number_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """A count that may be 0 (untimed warm-up calls, ensemble sizes where 0 means none): the ``type`` of such
    options.

    >>> non_negative_int("0")
    0
    >>> non_negative_int("-1")
    Traceback (most recent call last):
    _results.OptionValueError: must be a whole number >= 0, got '-1'
    """
    return _whole_number_at_least(text, 0)


def add_timing_options(parser: argparse.ArgumentParser, steps_help: str, warmup_help: str) -> None:
    """The timing benchmarks' ``--steps`` (timed calls, at least 1, default 3) and ``--warmup`` (untimed calls
    first, 0 or more, default 1), each with the script's own help.

    >>> p = BenchmarkParser(prog="x.py")
    >>> add_timing_options(p, "timed calls", "untimed calls first")
    >>> p.parse_args([]), p.parse_args(["--steps", "5", "--warmup", "0"])
    (Namespace(steps=3, warmup=1), Namespace(steps=5, warmup=0))
    """
    parser.add_argument("--steps", type=positive_int, default=3, help=steps_help)
    parser.add_argument("--warmup", type=non_negative_int, default=1, help=warmup_help)


def positive_float(text: str) -> float:
    """A finite number above 0 (a time budget, a memory cap, a learning rate, a window): the ``type`` of such
    options (``float`` takes ``nan``, ``inf`` and negative values, which a run takes as given).

    >>> positive_float("2.5")
    2.5
    >>> positive_float("nan")
    Traceback (most recent call last):
    _results.OptionValueError: must be a finite number > 0, got 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise OptionValueError(f"must be a finite number > 0, got {text!r}")
    return value


def name_list(choices: Iterable[str], what: str):
    """An argparse ``type`` for a comma-separated subset of ``choices`` (``what``: a name of one, for the
    messages): refuses an empty list (``''``, ``','``), which would run nothing, or something else than
    asked, and write a results file all the same; duplicates are dropped, the order kept.

    >>> styles = name_list(("a", "b"), "style")
    >>> styles("b, a,b")
    ['b', 'a']
    >>> styles(",")
    Traceback (most recent call last):
    _results.OptionValueError: no style given in ',' (choose from a, b)
    """
    choices = tuple(choices)

    def parse(text: str) -> list[str]:
        names = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
        if not names:
            raise OptionValueError(f"no {what} given in {text!r} (choose from {', '.join(choices)})")
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise OptionValueError(f"unknown {what} {unknown[0]!r} (choose from {', '.join(choices)})")
        return names

    parse.__name__ = f"{what} list"
    return parse


def count_list(text: str) -> list[int]:
    """A comma-separated list of counts >= 1 (sizes, state numbers), not empty.

    >>> count_list("2,5")
    [2, 5]
    """
    parts = [s.strip() for s in text.split(",") if s.strip()]
    if not parts:
        raise OptionValueError(f"no numbers in {text!r} (e.g. 2,5)")
    try:
        return [positive_int(s) for s in parts]
    except OptionValueError:
        raise OptionValueError(f"takes whole numbers >= 1 separated by commas, got {text!r}") from None


def read_json_object(path: str | os.PathLike, what: str = "a JSON object") -> dict:
    """The JSON object in file ``path`` (a results file, a seed's log given to ``--reuse``);
    :class:`OptionValueError` naming the file and what is wrong when it is missing, unreadable, not JSON or not
    an object (``what``: what it should be, for the message).

    >>> read_json_object("/nonexistent.json")
    Traceback (most recent call last):
    _results.OptionValueError: /nonexistent.json: no such file
    """
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OptionValueError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OptionValueError(f"{path}: cannot read it ({err.__class__.__name__}: {err})") from None
    except json.JSONDecodeError as err:
        raise OptionValueError(f"{path}: not JSON ({err})") from None
    if not isinstance(record, dict):
        raise OptionValueError(f"{path}: not {what} (its JSON is a {type(record).__name__}, not an object)")
    return record


def json_object(**fields):
    """An argparse ``type`` for a JSON object given on the command line (a job a parent process hands its child):
    refused in one line when the text is not JSON or not an object, lacks a field of ``fields`` or has one of
    another kind. Each field maps to a type (``int`` takes no bool) or a tuple of the values allowed.

    >>> job = json_object(bin_ms=int, phase=("val", "test"))
    >>> job('{"bin_ms": 5, "phase": "val"}')
    {'bin_ms': 5, 'phase': 'val'}
    >>> job('{"bin_ms": 5, "phase": "train"}')
    Traceback (most recent call last):
    _results.OptionValueError: field 'phase' must be one of 'val', 'test', got 'train'
    >>> job("{bin_ms: 5}")
    Traceback (most recent call last):
    _results.OptionValueError: not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))
    """

    def parse(text: str) -> dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise OptionValueError(f"not JSON ({err})") from None
        if not isinstance(value, dict):
            raise OptionValueError(f"expected a JSON object, got a {type(value).__name__}")
        for key, kind in fields.items():
            if key not in value:
                raise OptionValueError(f"field {key!r} missing (fields: {', '.join(fields)})")
            got = value[key]
            if isinstance(kind, tuple):
                if got not in kind:
                    raise OptionValueError(f"field {key!r} must be one of {', '.join(map(repr, kind))}, got {got!r}")
            elif not isinstance(got, kind) or (kind is int and isinstance(got, bool)):
                raise OptionValueError(f"field {key!r} must be {kind.__name__}, got {got!r}")
        return value

    parse.__name__ = "JSON object"
    return parse


def read_results(path: str | os.PathLike, name: str) -> dict:
    """The record of results file ``path`` of benchmark ``name``; :class:`OptionValueError` naming the file and
    what is wrong when it is missing, unreadable, not JSON or not such a results file."""
    record = read_json_object(path, f"a results file of {name}")
    if record.get("name") != name or not isinstance(record.get("figures"), dict):
        raise OptionValueError(f"{path}: not a results file of {name} (its 'name' is not {name!r} or it has no "
                               "'figures')")
    return record


def summarize(values: Iterable[float]) -> dict:
    """Per-seed values with their mean and sample standard deviation (ddof 1; 0 for one value).

    >>> summarize([1.0, 2.0, 3.0])
    {'values': [1.0, 2.0, 3.0], 'mean': 2.0, 'sd': 1.0, 'n': 3}
    """
    vals = [float(v) for v in values]
    n = len(vals)
    mean = sum(vals) / n if n else math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"values": vals, "mean": mean, "sd": sd, "n": n}


def mean_sd(summary: dict, digits: int = 3) -> str:
    """``'0.951 ± 0.012'`` from a :func:`summarize` dict (the README's format).

    >>> mean_sd(summarize([0.5, 0.7]))
    '0.600 ± 0.141'
    """
    return f"{summary['mean']:.{digits}f} ± {summary['sd']:.{digits}f}"


def open_log(path: str | os.PathLike | None):
    """The ``--log`` file of a benchmark, opened for appending (its folder made); stderr when None."""
    if path is None:
        return sys.stderr
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a")  # noqa: SIM115 (kept open for the whole run, closed at exit)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def provenance(argv: Sequence[str] | None = None) -> dict:
    """Command, commit, machine and thread settings of this process."""
    _check_neurodyn_source()
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]) if argv else Path("?")
    try:
        script = script.resolve().relative_to(Path(__file__).resolve().parent.parent)
    except ValueError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads: dict = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    try:
        import torch

        threads["torch"] = torch.get_num_threads()
        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a core dependency
        torch_version = None
    # uncommitted changes to code; the results files and the README they render into are outputs
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                  ":(top,exclude)benchmarks/results", ":(top,exclude)README.md")
    commit, dirty = _git("rev-parse", "HEAD"), (bool(status) if status is not None else None)
    extra: dict = {}
    if os.environ.get("NEURODYN_SOURCE_COMMIT"):
        # a copy of the working tree shipped elsewhere (a GPU machine) whose .git, if any, need not match
        # it: the caller names the commit the tree was taken from; git's view there is kept beside it
        extra = {"commit_from": "NEURODYN_SOURCE_COMMIT (set by the caller; the tree was copied)",
                 "git_where_run": {"commit": commit, "dirty": dirty}}
        commit, dirty = os.environ["NEURODYN_SOURCE_COMMIT"], None
    return {
        "command": " ".join(shlex.quote(a) for a in ["python", str(script), *argv[1:]]),
        "commit": commit,
        **extra,
        "dirty": dirty,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(),
                    "system": platform.system(), "python": platform.python_version(), "torch": torch_version,
                    "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "threads": threads,
    }


def write_results(name: str, figures: dict, *, seconds: float, readme: dict | None = None,
                  out_dir: str | os.PathLike | None = None, argv: Sequence[str] | None = None, **extra) -> Path:
    """Write ``<out_dir or $NEURODYN_RESULTS_DIR or benchmarks/results>/<name>.json`` atomically and return
    its path (the environment variable keeps the committed files when a README command is rerun). The path is
    printed on stderr (``wrote PATH``), saying so when it replaced a committed results file.

    ``figures`` holds every number the benchmark measured; ``extra`` keys (e.g. ``split``,
    ``selection``, ``seeds``) are stored at the top level. ``readme`` (optional) is the table rendered
    into the README by ``benchmarks/readme_tables.py``: ``{"title": str, "columns": [...], "rows":
    [[...], ...], "notes": str}``, every cell a string formatted from ``figures``.
    """
    if readme is not None:
        missing = {"title", "columns", "rows"} - set(readme)
        if missing:
            raise ValueError(f"readme block lacks {sorted(missing)}")
        width = len(readme["columns"])
        bad = [r for r in readme["rows"] if len(r) != width]
        if bad:
            raise ValueError(f"readme rows must have {width} cells: {bad[0]}")
    record = {"name": name, **provenance(argv), "seconds": round(float(seconds), 3), **extra, "figures": figures}
    if readme is not None:
        record["readme"] = readme
    out = results_folder(out_dir)  # checked before the run by check_results_folder
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    committed = path.exists() and out.resolve() == RESULTS_DIR.resolve()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=False, default=_jsonable) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    # said on every run, so that a run never replaces a committed results file without a word
    print(f"wrote {path}" + (f" (replaced the committed results file; set {RESULTS_ENV}=DIR to write elsewhere)"
                             if committed else ""), file=sys.stderr, flush=True)
    return path


def rerender_readme(path: str | os.PathLike, name: str, key: str, build) -> Path:
    """Rebuild the ``readme`` block of an existing results file from its own record; every other field is kept as
    the run wrote it (for a table whose presentation changed, without rerunning the measurements).

    ``name``: the file's ``name`` field must equal it; ``key``: ``figures[key]`` must be an object;
    ``build(record)`` returns the ``readme`` block. A file that cannot be read, or whose figures do not make the
    table, is one :class:`neurodyn.errors.InputError` naming the file and the field; the file is then untouched.
    Written atomically.
    """
    from neurodyn.errors import InputError
    from neurodyn.io import atomic_path

    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(f"cannot read a results file: {why}", path=path, field="--rerender") from None
    figures = record.get("figures") if isinstance(record, dict) else None
    if not isinstance(record, dict) or record.get("name") != name or not isinstance(figures, dict) or (
            not isinstance(figures.get(key), dict)):
        raise InputError(f"not a {name} results file", path=path, field=f"name / figures.{key}")
    try:
        record["readme"] = build(record)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:  # figures as no run writes them
        raise InputError(f"not a {name} results file: they do not make the table ({type(exc).__name__}: {exc})",
                         path=path, field=f"figures.{key}") from None
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return path


def _jsonable(obj):
    """numpy scalars / arrays and paths in figures."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# -- SIGTERM / SIGINT: one line, exit 128 + signal, nothing left running or behind; bad input: one line, exit 2 ---


def exits_on_signals(main):
    """Decorate a benchmark's ``main``: SIGTERM (as Ctrl-C's SIGINT) raises in it, so ``with`` blocks and
    ``finally`` clauses clean up (temporary work folders removed, :class:`WorkerPool` workers stopped,
    ``subprocess.run`` children killed); then one line on stderr and exit code 143 (SIGTERM) or 130 (SIGINT)
    instead of a traceback -- or, by SIGTERM's default action, a death that leaves all of it behind. Bad input
    found after the options were parsed (an :class:`~neurodyn.errors.InputError`: a data file not found, a
    checkout that is none) is one line too, ``<script>: error: <message>``, and exit code 2, as a bad option is
    (:class:`BenchmarkParser`). Any other exception stops the :class:`WorkerPool` workers still running too,
    then propagates."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        from neurodyn.errors import InputError
        from neurodyn.io import terminate_as_interrupt

        try:
            with terminate_as_interrupt():
                try:
                    return main(*args, **kwargs)
                except BaseException:
                    for pool in list(_LIVE_POOLS):  # one not left by a with block (or not yet)
                        pool.stop()
                    raise
        except InputError as err:
            print(f"{_prog()}: error: {err}", file=sys.stderr, flush=True)
            return 2
        except KeyboardInterrupt as err:
            signum = int(getattr(err, "signum", signal.SIGINT))
            print(f"{_prog()}: stopped by {signal.Signals(signum).name}", file=sys.stderr, flush=True)
            return 128 + signum

    return wrapper


#: the WorkerPools of this process not yet stopped
_LIVE_POOLS: weakref.WeakSet = weakref.WeakSet()

#: in a WorkerPool worker: whether it is running a job, and the signal that stopped it (None: none yet)
_IN_JOB = False
_SIGNALLED: int | None = None


def _worker_signal(signum, _frame):
    global _SIGNALLED
    if _SIGNALLED is not None:
        # already stopping: another signal (ProcessPoolExecutor terminates the other workers of a pool it finds
        # broken once one has exited; Ctrl-C reaches every process) would raise inside the job's clean-up and cut
        # it short (a temporary folder left); WorkerPool.stop's SIGKILL after grace_s stays the backstop
        return
    _SIGNALLED = int(signum)
    if _IN_JOB:  # unwind the job, so that its cleanup runs; _run_job then exits
        from neurodyn.io import Interrupted  # imported by _worker_init already

        raise Interrupted(signum)
    os._exit(128 + signum)  # idle: nothing to clean up


def _worker_init() -> None:
    """A worker stops on SIGTERM / SIGINT (its parent's :meth:`WorkerPool.stop`, or Ctrl-C on the terminal)."""
    import neurodyn.io  # noqa: F401 (not first in a signal handler)

    signal.signal(signal.SIGTERM, _worker_signal)
    signal.signal(signal.SIGINT, _worker_signal)


def _run_job(fn, /, *args, **kwargs):
    """One job in a worker; after a signal the worker exits once the job's stack has unwound, whatever the job
    made of the exception (Lightning turns one into ``sys.exit(1)``): the pool cannot hand it the next job."""
    global _IN_JOB
    _IN_JOB = True
    try:
        result = fn(*args, **kwargs)
        if _SIGNALLED is not None:  # the job swallowed the interrupt: the worker still stops
            os._exit(128 + _SIGNALLED)
        return result
    except BaseException:
        if _SIGNALLED is not None:
            os._exit(128 + _SIGNALLED)
        raise
    finally:
        _IN_JOB = False


class WorkerPool(ProcessPoolExecutor):
    """``ProcessPoolExecutor`` whose workers do not outlive a stopped run.

    Leaving the ``with`` block by an exception (SIGTERM through :func:`exits_on_signals`, Ctrl-C, a failed job)
    cancels the queued jobs and stops the running ones: their workers get SIGTERM (the job unwinds, so its
    temporary folders are removed and its ``subprocess.run`` children killed), then SIGKILL after ``grace_s``.
    A plain ``ProcessPoolExecutor`` waits there for every running job to finish (minutes of training, or, with
    the parent killed, orphans that train on).
    """

    def __init__(self, max_workers: int | None = None, mp_context=None, grace_s: float = 10.0):
        super().__init__(max_workers, mp_context=mp_context, initializer=_worker_init)
        self.grace_s = grace_s
        _LIVE_POOLS.add(self)

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_run_job, fn, *args, **kwargs)

    def stop(self) -> None:
        """Cancel the queued jobs, stop the workers (SIGTERM, then SIGKILL after ``grace_s``), shut down."""
        _LIVE_POOLS.discard(self)
        processes = list((getattr(self, "_processes", None) or {}).values())
        # shutdown(wait=False) forgets the management thread, so the shutdown(wait=True) below joins nothing: a
        # thread still closing the pool's wakeup pipe races CPython's exit hook (concurrent.futures.process.
        # _python_exit writes to that pipe unlocked: "OSError: [Errno 9] Bad file descriptor" printed at exit)
        manager = getattr(self, "_executor_manager_thread", None)
        self.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + self.grace_s
        for proc in processes:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        if manager is not None:  # its workers are gone: it marks the pool broken and ends
            manager.join()
        self.shutdown(wait=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            _LIVE_POOLS.discard(self)
        super().shutdown(wait=wait, cancel_futures=cancel_futures)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.stop()
            return False
        return super().__exit__(exc_type, exc, tb)
