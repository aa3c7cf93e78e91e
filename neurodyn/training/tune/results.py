"""Result files of ``neurodyn tune``: the table of trials, PBT's perturbations, CSV and rich text."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from neurodyn.errors import one_line
from neurodyn.training.tune.trial import METRIC, trial_index, trial_name


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    """``rows`` as CSV with a header: ``columns``, or the rows' keys in order of appearance. Without rows the
    file is the header alone (``columns`` given). Lines end in ``\r\n``, the csv module's default (RFC 4180),
    as in every CSV neurodyn writes (Lightning's ``metrics.csv`` too)."""
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def perturbation_rows(steps: list[dict], names: list[str]) -> list[dict]:
    """PBT's exploit / explore steps (``SeededPBT.steps``), one row each, by epoch and trial: the trial, the
    trial whose checkpoint it copied, the epoch it had reached, and each hyperparameter before (the trial's
    own) and after the step.

    >>> perturbation_rows([{"trial": "trial_0002", "copied_from": "trial_0000", "epoch": 2,
    ...                     "old": {"lr": 0.006}, "new": {"lr": 0.004}}], ["lr"])
    [{'trial': 'trial_0002', 'copied_from': 'trial_0000', 'epoch': 2, 'old_lr': 0.006, 'new_lr': 0.004}]
    """
    rows = []
    for step in sorted(steps, key=lambda s: (s["epoch"], s["trial"])):
        row = {"trial": step["trial"], "copied_from": step["copied_from"], "epoch": step["epoch"]}
        for name in names:
            row[f"old_{name}"], row[f"new_{name}"] = step["old"].get(name), step["new"].get(name)
        rows.append(row)
    return rows


def perturbation_columns(names: list[str]) -> list[str]:
    """The columns of ``perturbations.csv``, those of :func:`perturbation_rows`: the header of a search whose
    PBT made no step (a file of the header alone).

    >>> perturbation_columns(["lr"])
    ['trial', 'copied_from', 'epoch', 'old_lr', 'new_lr']
    """
    return ["trial", "copied_from", "epoch", *(f"{when}_{name}" for name in names for when in ("old", "new"))]


def error_line(error: BaseException) -> str:
    """``Type: message`` of the exception that failed a trial.

    Ray wraps it (``RayTaskError.cause``) in a text of the remote traceback with terminal colour codes and
    ``^^^^`` markers; the original exception is what a user can act on.

    >>> class Wrapped(Exception):
    ...     cause = ValueError("bad lr")
    >>> error_line(Wrapped("\x1b[36mray::ImplicitFunc.train()\x1b[39m ^^^^"))
    'ValueError: bad lr'
    """
    seen = set()
    while getattr(error, "cause", None) is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.cause
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(error)).strip()
    lines = [line for line in text.splitlines() if line.strip() and set(line.strip()) != {"^"}]
    return f"{type(error).__name__}: {lines[-1].strip() if lines else ''}"


#: what :class:`ReportedHistory` keeps of each report, besides the hyperparameters (``hp/<name>``)
_HISTORY_KEYS = ("epoch", METRIC, "restored_from_trial", "restored_from_epoch")


def reported_history():
    """A Tune callback (on the driver) that keeps every result each trial reports, in order, by trial name.

    ``trials.csv`` is built from these, not from Ray's ``result.json`` / ``progress.csv``: the driver
    writes those into a staging folder that is synced to ``--out`` now and then, and when a trial starts
    again (synchronous PBT pauses every trial at each perturbation epoch) Ray copies the file back from
    ``--out`` over the staging one, so rows reported since the last sync can be lost (one run's
    ``result.json`` of a 3-epoch trial held its last epoch only, and its best value was that epoch's).
    """
    from ray import tune

    class ReportedHistory(tune.Callback):
        def __init__(self):
            self.rows: dict[str, list[dict]] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            keep = {k: v for k, v in result.items() if k in _HISTORY_KEYS or str(k).startswith("hp/")}
            self.rows.setdefault(trial_name(trial_index(trial.trial_id)), []).append(keep)

    return ReportedHistory()


def trial_rows(grid, names: list[str], perturbations: list[dict], history: dict[str, list[dict]]) -> list[dict]:
    """One table row per trial of ``grid`` (Tune's results: name, status, error, config), from ``history``:
    the reports of each trial in order (:func:`reported_history`). ``best`` is the lowest ``valid/loss``
    over every epoch the trial reported (before and after its exploits), ``last`` that of its last report;
    the hyperparameters are those in effect at the last report."""
    rows = []
    for result in grid:
        trial_id = Path(result.path).name if result.path else "?"
        reports = history.get(trial_id, [])
        losses = [float(r[METRIC]) for r in reports if r.get(METRIC) is not None and math.isfinite(float(r[METRIC]))]
        epochs = [int(r["epoch"]) for r in reports if r.get("epoch") is not None]
        row = {"trial": trial_id, "status": "ERROR" if result.error else "OK",
               "epochs": max(epochs, default=0),
               f"best {METRIC}": min(losses) if losses else None,
               f"last {METRIC}": losses[-1] if losses else None,
               "exploits": sum(1 for p in perturbations if p["trial"] == trial_id)}
        config, last = result.config or {}, reports[-1] if reports else {}
        row.update({name: last.get(f"hp/{name}", config.get(name)) for name in names})  # in effect at the end
        if result.error:
            row["error"] = one_line(error_line(result.error), 200)
        rows.append(row)
    return rows


def rich_table(rows: list[dict], names: list[str], best_trial: str | None, title: str) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    cols = ["trial", "status", "epochs", f"best {METRIC}", f"last {METRIC}", *names]
    if any(row.get("exploits") for row in rows):
        cols.insert(5, "exploits")
    for col in cols:
        table.add_column(col, justify="left" if col in ("trial", "status") else "right")
    for row in sorted(rows, key=lambda r: (r.get(f"best {METRIC}") is None, r.get(f"best {METRIC}") or 0)):
        style = "bold green" if row["trial"] == best_trial else None
        table.add_row(*[fmt(row.get(c)) for c in cols], style=style)
    # markup off: a cell is shown as written (an error line's '[s, post, pre]' or '[bold]' was read as a style tag
    # and dropped)
    console = Console(record=True, width=max(120, 14 * len(cols)), markup=False)
    console.print(table)
    return console.export_text()
