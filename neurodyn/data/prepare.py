"""``neurodyn prepare``: bin an NLB NWB file (or folder) into nlb_tools' tensors in one HDF5 file.

Usage::

    neurodyn prepare --dataset mc_maze_small --nwb data/000140/sub-Jenkins --bin-ms 5 --phase val \\
        --out data/mc_maze_small_5ms_val.h5

File layout (names, reader and writer: :mod:`neurodyn.data.prepared`; read it back with
:func:`neurodyn.data.prepared.load_prepared`)::

    /                          attributes:
                                 format = "neurodyn-prepared-nlb", format_version = 1
                                 dataset (nlb_tools name), bin_ms, phase ("val" | "test"), seed,
                                 dmfc_target, neurodyn_version,
                                 source_files (file names), source_sha256 (hex digests, same order),
                                 source_sha256_from (same order: where each digest comes from --
                                   "bytes": computed from the local file read; "dandi": the digest DANDI
                                   publishes for a streamed dandi:// asset, not computed from the bytes
                                   streamed; "": unknown, source_sha256 "" -- a plain http(s):// URL or a
                                   file object),
                                 n_heldin, n_heldout (units),
                                 n_obs_bins (input window bins), n_fwd_bins (forward window bins),
                                 n_train_trials, n_eval_trials, groups (the groups present)
    /train_input/              make_train_input_tensors: train trials (val phase: split 'train';
                                 test phase: 'train' + 'val')
        train_spikes_heldin            (trials, n_obs_bins, n_heldin)  float16
        train_spikes_heldout           (trials, n_obs_bins, n_heldout) float16
        train_behavior                 (trials, n_obs_bins, 2) float64, or (trials, 5) for DMFC
        train_spikes_heldin_forward    (trials, n_fwd_bins, n_heldin)  float16
        train_spikes_heldout_forward   (trials, n_fwd_bins, n_heldout) float16
    /eval_input/               make_eval_input_tensors: eval trials (val: 'val'; test: 'test')
        eval_spikes_heldin             (trials, n_obs_bins, n_heldin)  float16, NaN allowed
        eval_spikes_heldout            (trials, n_obs_bins, n_heldout) float16 (val phase only)
    /eval_target/<name><suffix>/  make_eval_target_tensors (val phase only); suffix '' at 5 ms, '_20'...
        eval_spikes_heldout            (eval trials, n_obs_bins, n_heldout) float16
                                       (DMFC: float64, set -> go, NaN-padded in front)
        train_behavior, eval_behavior  float64 (NaN where not defined)
        eval_spikes_heldin_forward, eval_spikes_heldout_forward   float16
        train_decode_mask, eval_decode_mask   (trials, 2) bool       (Area2_Bump)
        psth                           (conditions, bins, n_heldin + n_heldout) float64
        train_cond_idx, eval_cond_idx  variable-length int64 rows, one per condition (attr ragged=True)
        train_jitter, eval_jitter      (trials,) int64 bins          (DMFC_RSG)
    /trial_ids/                train, eval: NWB trial ids (int64) of the rows above, in order (nlb_tools'
                                 session ids: a folder's second file's ids are offset by the first's count)
    /trial_source/             train, eval: (rows, 2) int64, each row's NWB file (index into source_files /
                                 source_sha256) and its trial id within that file: the same trial whether
                                 the file was prepared alone or with its pair (``predict`` compares trials by
                                 it). Files prepared before neurodyn recorded it have no such group.
    /window_start_ms/          train, eval: start in ms of each row's first bin on its own NWB file's clock
                                 (int64; first_bin * bin_ms of the input window, DMFC jitter included, less
                                 the file's offset in a folder's session, a multiple of 100 ms). The windows
                                 of one trial at 5 and 20 ms can start up to a bin apart (first bin
                                 ceil(t0 / bin); jitter rounded per width): ``--upsample`` lines them up with
                                 these. Files prepared before neurodyn recorded them have no such group.
    /unit_ids/                 heldin (n_heldin,), heldout (n_heldout,): the NWB unit id (the units table's ``id``
                                 column) of each held-in / held-out column of the arrays above, in their order
                                 (nlb_tools': ascending id); ``psth``'s columns are heldin then heldout (int64).
                                 A folder's files hold the same held-in units (checked on reading). Files
                                 prepared before neurodyn recorded them have no such group.

Spike counts are spikes per bin. Groups the given files cannot support (e.g. ``train_input`` from a test
file alone) are left out with a printed message; the file is written atomically (no partial output).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from neurodyn.data.download import sha256_of
from neurodyn.data.nlb import NLBDataset, NLBFile, find_file_by_name_and_size, find_file_by_units, get_dataset
from neurodyn.data.nwb import load_session, nwb_files, units_header
from neurodyn.data.prepared import FORMAT, FORMAT_VERSION, write_prepared
from neurodyn.data.stream import resolved_once
from neurodyn.data.tensors import (
    DMFC_TARGETS,
    PHASE_SPLITS,
    PHASES,
    eval_input_and_starts,
    make_eval_target_tensors,
    split_rows,
    train_input_and_starts,
)
from neurodyn.errors import InputError, named
from neurodyn.io import output_file


def prepare(
    dataset: str,
    nwb: str | os.PathLike,
    bin_ms: int = 5,
    phase: str = "val",
    out: str | os.PathLike | None = None,
    *,
    include_behavior: bool = True,
    include_forward_pred: bool = True,
    include_psth: bool = True,
    seed: int = 0,
    dmfc_target: str = "nlb_tools",
    compression: str | None = "gzip",
    log: Callable[[str], None] | None = print,
    overwrite: bool = False,
) -> Path:
    """Make nlb_tools' tensors for ``phase`` from an NWB file or folder and write them to ``out``.

    Parameters
    ----------
    dataset
        nlb_tools dataset name (``mc_maze_small``, ...).
    nwb
        An NLB NWB file, or a folder of them (all ``*.nwb`` are loaded, test before train).
    bin_ms
        Bin width in ms (the benchmark uses 5 and 20); must divide every window.
    phase
        ``"val"`` (train -> val, with eval targets) or ``"test"`` (train + val -> test, no targets).
    out
        Output ``.h5`` path; default ``data/<dataset>_<bin>ms_<phase>.h5``.
    log
        Where the "left out" messages go (None: silent).
    overwrite
        Replace an existing ``out`` (default False, as ``neurodyn prepare`` without ``--overwrite``: an
        existing file is refused in one InputError; it was True before, and a notebook call wrote over any
        file at ``out``). The output is written under :func:`neurodyn.io.output_file`: never onto an input,
        atomically, checked up front, locked against a concurrent writer; its refusals name ``out`` /
        ``overwrite=True`` (``neurodyn prepare``: ``--out`` / ``--overwrite``).

    Returns
    -------
    Path
        The file written.
    """
    ds = get_dataset(dataset)
    bin_ms = ds.check_bin(bin_ms)
    if phase not in PHASES:
        raise InputError(f"unknown phase {phase!r}; use 'val' or 'test'", field="phase")
    if dmfc_target not in DMFC_TARGETS:
        raise InputError(
            f"unknown DMFC target {dmfc_target!r}; use one of {DMFC_TARGETS}", field="dmfc_target"
        )
    # a URL is resolved once for the whole command (the files checked and sized here are the files read by
    # _prepare's load_session, which resolves it again): one state of a remote file, one probe
    with resolved_once():
        files = nwb_files(nwb)
        check_files_are_of(ds, files)  # before the output is opened and the files are read in full
        out = Path(out) if out is not None else Path("data") / f"{ds.name}_{bin_ms}ms_{phase}.h5"
        local = [f for f in files if isinstance(f, Path)]  # dandi:// / https:// / file objects are streamed
        size = sum(f.stat().st_size if isinstance(f, Path) else f.size for f in files)  # binned, gzipped: smaller
        with output_file(out, inputs=[nwb, *files] if len(local) == len(files) else local, overwrite=overwrite,
                         size_bytes=size, field=named("out", "--out"),
                         overwrite_name=named("overwrite=True", "--overwrite")) as tmp:
            summary = _prepare(ds, nwb, files, bin_ms, phase, tmp, include_behavior, include_forward_pred,
                               include_psth, seed, dmfc_target, compression, log)
    if log:
        log(f"wrote {out} ({summary})")
    return out


def registry_evidence(f) -> list[tuple[tuple[NLBDataset, NLBFile], str]]:
    """The NLB registry files an NWB file ``f`` (a local Path or a StreamedFile) is evidently, each with how it
    was told: its DANDI name *and* size (:func:`neurodyn.data.nlb.find_file_by_name_and_size`; for a ``dandi://``
    asset, the SHA-256 DANDI publishes for it, when known, confirms them or, differing from the registry's, refutes
    them: another file of that name and size), and for a local file its subject and the size of its units table
    (:func:`neurodyn.data.nwb.units_header`, :func:`neurodyn.data.nlb.find_file_by_units`), which a renamed file
    keeps. Cheap whatever the file's size (no
    hashing, no full read; nothing read over the network); ``[]`` for a file of no NLB dataset (neurodyn's
    simulated ones record no subject) or one that cannot be opened."""
    local = isinstance(f, Path)
    size = f.stat().st_size if local else f.size  # a StreamedFile knows its size
    found = []
    by_name = find_file_by_name_and_size(f.name, size)
    digest = None if local else getattr(f, "sha256", None)  # a dandi:// asset's digest as DANDI publishes it
    if by_name is not None and digest and digest.lower() != by_name[1].sha256.lower():
        by_name = None  # another file of that name and size: the published digest refutes them
    if by_name is not None:
        confirmed = " and DANDI's published SHA-256" if digest else ""
        found.append((by_name, f"its name and size{confirmed} ({size:,} bytes)"))
    header = units_header(f) if local else None  # streamed: no reads over the network for this
    by_units = find_file_by_units(*header) if header is not None else None
    if by_units is not None:
        subject, n_units, n_heldout = header
        found.append((by_units, f"its units table (subject {subject}, {n_units} units, {n_heldout} held out)"))
    return found


def identify_dataset(files) -> tuple[NLBDataset, str] | None:
    """The one NLB dataset that the files of a session evidently belong to (:func:`registry_evidence`), with
    the evidence in words (``MC_Maze_Small, DANDI:000140: its test file, by its name and size and its units
    table``); None when no file is evidently an NLB file, or the evidence points at more than one dataset."""
    found = [(match, how.split(" (")[0]) for f in files for match, how in registry_evidence(f)]
    if len({match[0].name for match, _ in found}) != 1:
        return None
    ds = found[0][0][0]
    kinds = list(dict.fromkeys(nlb_file.kind for (_, nlb_file), _ in found))
    hows = " and ".join(dict.fromkeys(how for _, how in found))
    return ds, (f"{ds.title}, DANDI:{ds.dandiset_id}: its {' and '.join(kinds)} file{'s' if len(kinds) > 1 else ''}, "
                f"by {hows}")


def check_files_are_of(ds: NLBDataset, files) -> None:
    """Refuse a file that is evidently another NLB dataset's (``--dataset mc_maze`` given MC_Maze_Small's file).

    The evidence, cheap whatever the file's size (no hashing, no full read): a DANDI file name *and* size
    both equal to a registry file's (:func:`neurodyn.data.nlb.find_file_by_name_and_size`, local or
    streamed), and for a local file its subject and the size of its units table
    (:func:`neurodyn.data.nwb.units_header`, :func:`neurodyn.data.nlb.find_file_by_units`), which a
    renamed file keeps. Only evidence that points at one other dataset, and never at ``ds``, refuses:
    files that are no NLB file at all (neurodyn's simulated ones record no subject and may have any unit
    count) and files the readers cannot open pass on to the full read.

    Raises
    ------
    InputError
        Naming the file and ``--dataset``, the dataset the file appears to be and why.
    """
    for f in files:
        local = isinstance(f, Path)
        found = registry_evidence(f)
        names = {match[0].name for match, _ in found}
        if not found or ds.name in names or len(names) > 1:
            continue
        other, nlb_file = found[0][0]
        why = " and ".join(how for _, how in found)
        raise InputError(
            f"the file appears to be {other.title}'s {nlb_file.kind} file (DANDI:{other.dandiset_id} "
            f"{nlb_file.filename}; by {why}), not {ds.name}'s ({ds.title}'s train file has {ds.n_units} "
            f"units, {ds.n_heldout} held out; its test file {ds.n_heldin}); use "
            + named(f"dataset={other.name!r}", f"--dataset {other.name}"),
            f if local else f.label,
            named("dataset", "--dataset"),
        )


def _prepare(ds, nwb, files, bin_ms, phase, tmp, include_behavior, include_forward_pred, include_psth,
             seed, dmfc_target, compression, log) -> str:
    """The work of :func:`prepare`, written to ``tmp``; returns the summary of the groups written."""
    say = log or (lambda _msg: None)
    notes: list[str] = []  # printed once something is prepared (a refusal stays the only message)
    session = load_session(nwb)
    train_splits, eval_splits = PHASE_SPLITS[phase]
    train_rows = split_rows(session, train_splits, "", required=False)
    eval_rows = split_rows(session, eval_splits, "", required=False)
    where = ", ".join(f.name for f in files)
    groups: dict[str, dict] = {}
    session_starts: dict[str, np.ndarray] = {}  # each input row's window start (ms) on the session clock
    if len(train_rows):
        groups["train_input"], session_starts["train"] = train_input_and_starts(
            session, ds, bin_ms, phase, include_behavior, include_forward_pred, seed
        )
    else:
        notes.append(f"train_input left out: no trials with split {' or '.join(map(repr, train_splits))} in {where}")
    if len(eval_rows):
        groups["eval_input"], session_starts["eval"] = eval_input_and_starts(session, ds, bin_ms, phase, seed)
    else:
        notes.append(f"eval_input left out: no trials with split {' or '.join(map(repr, eval_splits))} in {where}")
    if phase == "val":
        if len(train_rows) and len(eval_rows):
            groups["eval_target"] = make_eval_target_tensors(
                session, ds, bin_ms, phase, include_psth, seed, dmfc_target
            )
        else:
            notes.append("eval_target left out: it needs both train and val trials")
    if not groups:
        raise InputError(
            f"nothing to prepare for the {phase} phase: no trials with split "
            f"{' or '.join(map(repr, train_splits + eval_splits))}",
            session.path,
            "trials/split",
        )
    for note in notes:
        say(note)

    attrs = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": ds.name,
        "bin_ms": bin_ms,
        "phase": phase,
        "seed": int(seed),
        "dmfc_target": dmfc_target,
        "neurodyn_version": _version(),
        "source_files": np.array([f.name for f in files], dtype=object),
        # streamed dandi:// files: the digest DANDI publishes (not computed from the bytes streamed); plain
        # URLs and file objects: "" (unknown); source_sha256_from says which
        "source_sha256": np.array([sha256_of(f) if isinstance(f, Path) else f.sha256 or "" for f in files],
                                  dtype=object),
        "source_sha256_from": np.array([_sha256_from(f) for f in files], dtype=object),
        "n_heldin": session.n_heldin,
        "n_heldout": session.n_heldout,
        "n_obs_bins": ds.n_bins(bin_ms),
        "n_fwd_bins": ds.n_fwd_bins(bin_ms),
        "n_train_trials": len(train_rows) if "train_input" in groups else 0,
        "n_eval_trials": len(eval_rows) if "eval_input" in groups else 0,
        "groups": np.array(list(groups), dtype=object),
    }
    ids = session.trials["trial_id"]
    # each row's NWB file (index into source_files / source_sha256) and where that file's clock starts on the
    # session clock (a folder's train file follows its test file: nlb_tools shifts it by a multiple of 100 ms and
    # offsets its trial ids by the test file's trial count)
    counts = np.array([f.n_trials for f in session.files], dtype=np.int64)
    file_offset_ms = np.array([f.offset_ms for f in session.files], dtype=np.int64)
    trial_ids, starts, sources = {}, {}, {}
    for split, group, rows in (("train", "train_input", train_rows), ("eval", "eval_input", eval_rows)):
        if group not in groups:
            continue
        rows = np.asarray(rows, dtype=np.int64)
        trial_ids[split] = ids[rows].astype(np.int64)
        source = np.searchsorted(np.cumsum(counts), rows, side="right")
        before = np.cumsum(counts) - counts
        sources[split] = np.stack([source, trial_ids[split] - before[source]], axis=1).astype(np.int64)
        # on the row's own NWB file's clock: the same whether the file was prepared alone or with its pair
        starts[split] = session_starts[split] - file_offset_ms[source]
    # the columns' NWB unit ids, in the order the tensors take them (NWBSession.group: nlb_tools' ascending id), so
    # a rates column can be named and a checkpoint compared with the units it is applied to
    unit_ids = {kind: session.unit_ids[session.group(heldout)] for kind, heldout in (("heldin", False),
                                                                                     ("heldout", True))}
    write_prepared(tmp, attrs, groups, trial_ids, compression, starts, sources, unit_ids)
    shapes = []
    for name, data in groups.items():
        inner = next(iter(data.values())) if name == "eval_target" else data
        key = next(iter(inner))
        shapes.append(f"{name}/{key} {tuple(np.shape(inner[key]))}")
    return "; ".join(shapes)


def _sha256_from(f) -> str:
    """Where a source file's ``source_sha256`` comes from: "bytes" (hashed from the local file), "dandi"
    (DANDI's published digest of a streamed asset), "" (unknown)."""
    if isinstance(f, Path):
        return "bytes"
    return getattr(f, "sha256_from", "") if f.sha256 else ""


def _version() -> str:
    from neurodyn import __version__

    return __version__
