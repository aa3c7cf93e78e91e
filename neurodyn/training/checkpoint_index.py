"""Where a run keeps its checkpoints and what its checkpoint index (``checkpoints/checkpoints.json``, written by
:class:`~neurodyn.training.checkpoints.AutoModelCheckpoint`) says, read without Lightning or torch: ``neurodyn info``
of a run folder reads them as :mod:`neurodyn.training.runs` does (``--ckpt_path best|last``), and must not load
Lightning to do so. One rule for both, here."""

from __future__ import annotations

import os
from pathlib import Path

#: neurodyn's record of a run, written into the run folder with its first config.yaml (``neurodyn fit``):
#: ``{"id": ..., "folder": ..., "dev": ..., "ino": ...}``, the run's id (:func:`new_run_id`), the run folder's
#: realpath when the run was made and the folder's identity then (``st_dev``, ``st_ino`` of stat(2)). The id travels
#: with the run (its checkpoints index and its checkpoints record it too); the folder and its identity tell a copy of
#: the run folder (``cp -r``: the same record in a new folder) from the run, also once the run is moved: the id is
#: the run's only in the folder the record was made in (:func:`run_id`)
RUN_RECORD = "run.json"

#: name of the index that :class:`~neurodyn.training.checkpoints.AutoModelCheckpoint` keeps next to its checkpoints
#: (here, not in that module: ``neurodyn info`` of a run folder reads the index and must not load Lightning)
INDEX_NAME = "checkpoints.json"


def new_run_id() -> str:
    """A new run's id: a random UUID (RFC 4122 version 4) in hex, made when ``neurodyn fit`` makes a new run."""
    import uuid

    return uuid.uuid4().hex


def run_record(run_dir: str | os.PathLike) -> dict | None:
    """The run record of ``run_dir`` (:data:`RUN_RECORD`), or None: none (a run written before neurodyn kept one,
    or a folder that is no run folder), or one that cannot be read or names no id."""
    import json

    try:
        record = json.loads((Path(run_dir) / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
        return None
    return record


def new_run_record(run_id: str, run_dir: str | os.PathLike) -> dict:
    """The run record (:data:`RUN_RECORD`) of the new run ``run_id`` made in the folder ``run_dir`` (which exists)."""
    stat = os.stat(run_dir)
    return {"id": run_id, "folder": os.path.realpath(run_dir), "dev": stat.st_dev, "ino": stat.st_ino}


def _number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def run_id(run_dir: str | os.PathLike) -> str | None:
    """The id of the run in ``run_dir``, or None: its run record's id where ``run_dir`` is the folder the record was
    made in. A copy of a run folder (``cp -r a a2``) keeps the record, id included: read as the id of ``a2``,
    ``fit --run a2 --ckpt_path FILE`` took ``a``'s checkpoints kept elsewhere for ``a2``'s, and a resume of ``a2``
    wrote ``a``'s id into its index and checkpoints. Such a copy has no id: its checkpoints are told by their bytes,
    as a run's written before run records are, and its resume records no id.

    Which folder the record was made in, by what the record holds:

    - the folder's identity (``dev``, ``ino``: its device and inode numbers, stat(2)): a folder with that identity,
      whatever its path -- ``mv a b`` keeps it (a rename keeps the inode), as does another path to the same folder
      (a link, a bind mount); a copy is a new folder with another inode (``cp -r``, ``rsync``, a restore from a
      backup, and a move to another filesystem, which copies), also one made at the old path after a move (``mv a
      b; cp -r b a``: ``b`` holds the id, ``a`` none). Also the folder at the recorded path with the recorded
      inode on another device: device numbers are not kept across a reboot on every filesystem (NFS, btrfs
      subvolumes, LVM, overlays), nor from one host to another over NFS (which keeps its inode numbers), and at
      one path an inode number names one folder of the filesystem mounted there. Two live folders hold one id
      only where a run is moved away and another filesystem mounted over its old path holds, at that path, a
      folder with the same inode number -- a copy made there, by chance numbered so; and a device and inode
      number is one host's name of a folder: a copy seen over NFS on another host may by chance carry the numbers
      the run has on the host that made it.
    - no identity (a record written before neurodyn kept it): the folder at the path the record names (realpath),
      as before; such a run loses its id when it is moved.
    """
    record = run_record(run_dir)
    if record is None:
        return None
    real = os.path.realpath(run_dir)
    dev, ino = record.get("dev"), record.get("ino")
    if not (_number(dev) and _number(ino)):
        return record["id"] if record.get("folder") == real else None
    try:
        stat = os.stat(run_dir)
    except OSError:
        return None
    if (stat.st_dev, stat.st_ino) == (dev, ino):
        return record["id"]  # the folder the run was made in, moved or reached by another path
    if stat.st_ino == ino and record.get("folder") == real:
        return record["id"]  # the same folder at the same path, its device numbered anew (a reboot, another host)
    return None


def _named_run(folder: Path) -> tuple[str, str] | None:
    """(``run_dir``, ``run_id``) that the index of the checkpoint folder ``folder`` names, or None (no readable
    index, or one that names no run by both)."""
    import json

    try:
        index = json.loads((folder / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return None
    run_dir, wanted = (index.get("run_dir"), index.get("run_id")) if isinstance(index, dict) else (None, None)
    if not (isinstance(run_dir, str) and run_dir and isinstance(wanted, str) and wanted):
        return None
    return run_dir, wanted


def run_of_checkpoint(path: str | os.PathLike) -> Path | None:
    """The run folder a checkpoint file belongs to, or None: ``DIR`` for ``DIR/checkpoints/X.ckpt`` when ``DIR`` has
    a config.yaml, or, for a file in a ``--checkpoint.dirpath`` folder outside its run folder, the run folder that
    the folder's checkpoints index names (``run_dir``), where that folder's run record holds the index's
    ``run_id`` and records this folder as its checkpoint folder: ``predict --ckpt_path FOLDER/X.ckpt`` then writes
    its default output into the run folder, ``info`` suggests the run's config, ``fit --ckpt_path`` resumes the run,
    as for a file in ``DIR/checkpoints`` (they knew that one only). An index without a run id (written before run
    records) links nothing, as before; nor does one whose run folder is gone or holds another run (a copy of the
    run keeps the id, but the index names the original's realpath)."""

    path = Path(path)
    if path.parent.name == "checkpoints" and (path.parent.parent / "config.yaml").is_file():
        return path.parent.parent
    named = _named_run(path.parent)
    if named is None:
        return None
    run_dir, wanted = named
    if run_id(run_dir) != wanted or not (Path(run_dir) / "config.yaml").is_file():
        return None
    if os.path.realpath(checkpoint_folder(run_dir)) != os.path.realpath(path.parent):
        return None
    return Path(run_dir)


def unlinked_words(path: str | os.PathLike) -> str | None:
    """Why a checkpoint in a ``--checkpoint.dirpath`` folder whose index names its run (``run_dir``, ``run_id``) is
    linked to no run (:func:`run_of_checkpoint`), for ``neurodyn info`` of it, or None (linked, or no run named).
    After ``mv a b`` of the run the index names ``a`` until the run's next checkpoint: info suggested
    ``--config CONFIG.yaml`` without a word on why."""

    path = Path(path)
    if run_of_checkpoint(path) is not None:
        return None
    named = _named_run(path.parent)
    if named is None:
        return None
    run_dir, wanted = named
    if not os.path.isdir(run_dir):
        return (f"linked to no run: its {INDEX_NAME} names the run folder {run_dir}, which no longer exists (a run "
                "moved since is linked again by its next checkpoint: neurodyn fit --run DIR of its new folder)")
    if run_id(run_dir) != wanted:
        return (f"linked to no run: its {INDEX_NAME} names the run folder {run_dir}, which does not hold that run "
                f"(its run id {wanted}): a copy made there, or another run")
    return (f"linked to no run: its {INDEX_NAME} names the run folder {run_dir}, which keeps its checkpoints in "
            f"another folder ({checkpoint_folder(run_dir)})")


def selects_best(index: dict) -> bool:
    """Whether a run's checkpoint index says the run keeps a best checkpoint: it has a monitor and a top k
    (``checkpoint.save_top_k`` 0 keeps none; the index of a run without a monitor records none). A run that selects
    may still name no best file: its monitor was never measured (it stopped before its first validation).

    >>> [selects_best({"monitor": "valid/loss", "save_top_k": k}) for k in (1, -1, 0, None)]
    [True, True, False, False]
    >>> selects_best({"monitor": None, "save_top_k": 1}), selects_best({})
    (False, False)
    """
    return bool(index.get("monitor")) and index.get("save_top_k") not in (None, 0)


def never_measured(index: dict) -> str:
    """Why a run that selects a best checkpoint (:func:`selects_best`) names none yet, in one phrase for ``neurodyn
    info`` of the run folder and for the refusal of ``--ckpt_path best``
    (:func:`neurodyn.training.runs.no_best_reason`): the two said the one case in two ways.

    >>> never_measured({"monitor": "valid/loss"})[:30]
    'valid/loss was never measured '
    """
    return (f"{index['monitor']} was never measured (validation runs every trainer.check_val_every_n_epoch epochs, "
            "and the run stopped before the first)")


#: stands for the run folder in a ``checkpoint.dirpath`` (as in a logger's ``save_dir``): ``neurodyn fit`` records a
#: checkpoint folder inside the run folder as ``{run}/SUB``, so a run folder copied or moved keeps its checkpoints
#: (an absolute path named the old folder's; a path relative to the working folder, another one from elsewhere)
RUN_PLACEHOLDER = "{run}"


def resolved_dirpath(dirpath: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> str:
    """A local ``checkpoint.dirpath`` as Lightning's ModelCheckpoint resolves it (``os.path.realpath`` of the path
    with ``~`` expanded: a relative path is taken from the working folder), with :data:`RUN_PLACEHOLDER` standing
    for ``run_dir``. The one rule for every reader of the folder: the record of a fit, ``--run DIR`` (last, best,
    ``neurodyn info``) and the refusal of a folder that holds another run's checkpoints (three spellings before:
    realpath, abspath, ``~`` alone, which agree on most paths but not on ``..`` after a link).

    >>> resolved_dirpath("{run}/ck", "/r/a") == os.path.realpath("/r/a/ck")
    True
    """
    dirpath = os.fspath(dirpath)
    if run_dir is not None:
        dirpath = dirpath.replace(RUN_PLACEHOLDER, os.fspath(run_dir))
    return os.path.realpath(os.path.expanduser(dirpath))


def recorded_dirpath(dirpath: str, run_dir: str | os.PathLike) -> str:
    """How a run's config.yaml records its ``checkpoint.dirpath``: ``{run}/SUB`` for a folder inside the run folder
    (a copy or a move of the run folder takes its checkpoints along), else absolute (the run resumes from any
    working folder).

    >>> recorded_dirpath("/r/a/ck", "/r/a"), recorded_dirpath("/r/ck", "/r/a")
    ('{run}/ck', '/r/ck')
    """
    folder, run = resolved_dirpath(dirpath, run_dir), os.path.realpath(run_dir)
    if Path(folder).is_relative_to(run) and folder != run:
        return f"{RUN_PLACEHOLDER}/{Path(folder).relative_to(run).as_posix()}"
    return folder


def _recorded(run_dir: Path) -> str | None:
    """The local ``checkpoint.dirpath`` that the run's config.yaml records, or None (none, a remote one, or a
    config.yaml that cannot be read: not text, not YAML, not a mapping)."""
    import yaml

    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        dirpath = (config.get("checkpoint") or {}).get("dirpath")
    except (OSError, ValueError, yaml.YAMLError, AttributeError):  # ValueError: bytes that are not UTF-8 text
        return None
    if not isinstance(dirpath, str) or not dirpath or "://" in dirpath:
        return None
    return dirpath


def checkpoint_folder(run_dir: str | os.PathLike) -> Path:
    """The folder of a run's checkpoints (``last.ckpt``, the top-k files, the index): ``DIR/checkpoints``, or the
    ``checkpoint.dirpath`` that the run's ``config.yaml`` records (``neurodyn fit --checkpoint.dirpath FOLDER``;
    before, ``--run DIR`` looked for ``last`` and ``best`` in ``DIR/checkpoints`` only, and a resume of such a run
    was refused for having no last.ckpt). ``neurodyn fit`` records the folder by :func:`recorded_dirpath`
    (``{run}/SUB`` inside the run folder, else absolute); a relative path that an older run recorded is taken from
    the working folder, as Lightning takes it on that run's resume (:func:`resolved_dirpath`). An unreadable
    config.yaml, or a folder on a remote filesystem (``s3://...``), gives ``DIR/checkpoints``."""
    run_dir = Path(run_dir)
    dirpath = _recorded(run_dir)
    if dirpath is None:
        return run_dir / "checkpoints"
    return Path(resolved_dirpath(dirpath, run_dir))


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder of ``neurodyn fit``: its config.yaml, its checkpoint folder
    (:func:`checkpoint_folder`: ``checkpoints/``, or the ``checkpoint.dirpath`` that config.yaml records; one
    recorded that no longer exists counts too, and the command that reads it says so, :func:`missing_folder`) and
    neurodyn's own record of the run (:func:`_written_by_fit`): a config.yaml written by hand that records a
    ``checkpoint.dirpath`` was taken for a run folder, and ``predict --config`` of it wrote predictions.h5 beside it.
    One rule for ``neurodyn info DIR`` and for a run folder given by its config (``predict --config
    DIR/config.yaml``), which looked for ``DIR/checkpoints`` only and missed a run with its checkpoints elsewhere."""
    path = Path(path)
    return (path.is_dir() and (path / "config.yaml").is_file()
            and (checkpoint_folder(path).is_dir() or missing_folder(path) is not None) and _written_by_fit(path))


def _written_by_fit(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds neurodyn fit's record of a run: its run record (:data:`RUN_RECORD`), or, for a run
    written before neurodyn kept one (they are read as before), its ``checkpoints/`` folder (the rule then), a
    checkpoints index that names this run folder, or the records a fit writes beside config.yaml (``metrics.csv``,
    Lightning's ``hparams.yaml``, ``config.resume-<n>.yaml``)."""
    import json

    if run_record(run_dir) is not None or _recorded(run_dir) is None:
        return True  # no checkpoint.dirpath recorded: its checkpoints/ folder, as ever
    try:
        owner = json.loads((checkpoint_folder(run_dir) / INDEX_NAME).read_text()).get("run_dir")
    except (OSError, ValueError, AttributeError):
        owner = None
    if isinstance(owner, str) and os.path.realpath(owner) == os.path.realpath(run_dir):
        return True
    return (any((run_dir / name).is_file() for name in ("metrics.csv", "hparams.yaml"))
            or any(run_dir.glob("config.resume-*.yaml")))


def claimed_by(folder: str | os.PathLike) -> str | None:
    """The run folder that claimed ``folder`` for its checkpoints (:func:`claim_folder`) and has not saved one there
    yet, or None: an index that names a run folder and holds no more than the claim (no ``last``, no
    ``monitor``). An index that cannot be read names none (:func:`unreadable_index`)."""
    import json

    try:
        index = json.loads((Path(folder) / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not claim_only(index) or not isinstance(index.get("run_dir"), str):
        return None
    return index["run_dir"]


def unreadable_index(folder: str | os.PathLike) -> str | None:
    """What is wrong with the checkpoints index in ``folder``, in a phrase, or None (none there, or one that reads as
    a JSON object): ``empty`` -- a fit killed between creating its claim (:func:`claim_folder`, O_EXCL) and writing
    it -- or not readable as an index (cut short, or written by something else). Every command that reads the index
    said something of its own of such a file: 'holds the checkpoints of another run (checkpoints.json)', 'names no
    run folder (written by an older neurodyn)', 'unreadable index (Expecting value: ...)', 'none yet'."""
    import json

    path = Path(folder) / INDEX_NAME
    try:
        text = path.read_bytes()
    except OSError:
        return None  # none (or one that cannot be opened: its reader says so)
    if not text.strip():
        return "empty"
    try:
        index = json.loads(text)
    except ValueError:
        return "not readable as JSON (cut short, or not written by neurodyn)"
    return None if isinstance(index, dict) else "not a JSON object (not written by neurodyn)"


def unreadable_words(folder: str | os.PathLike, why: str) -> str:
    """The one line for a checkpoints index that cannot be read (:func:`unreadable_index`), for every command that
    reads it: it names no run and records no checkpoint, and who may remove it."""
    index = Path(folder) / INDEX_NAME
    cause = (" (a fit killed between creating its claim on the folder and writing it)" if why == "empty" else "")
    return (f"its {INDEX_NAME} is {why}{cause}: it names no run and records no checkpoint; if no fit is writing into "
            f"{folder}, remove {index} to free the folder")


def _boot_id() -> str | None:
    """This host's boot (Linux: a random id made at each boot), or None where it is not known."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    """The process-id namespace of this process (Linux; containers on one host have their own), or None."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def claimer() -> dict:
    """Who claims a folder (:func:`claim_folder`): this process (``pid``), its host (``host``) and, where known,
    the host's boot (``boot``) and this process's pid namespace (``pidns``), which tell a pid of this host's from
    one of another boot or another container with the same host name."""
    import socket

    record = {"pid": os.getpid(), "host": socket.gethostname()}
    for key, value in (("boot", _boot_id()), ("pidns", _pid_namespace())):
        if value is not None:
            record[key] = value
    return record


def claim_process_words(index: dict) -> str | None:
    """What is known of the fit that wrote the claim ``index`` (:func:`claimer`), in a phrase, or None (a claim
    written before neurodyn recorded it). A host of this name in another boot may be another machine of that
    name: its fit is not said to have ended. Only a fit on this host, in this boot and this pid namespace, is
    looked up: its pid is no process now (the fit is no longer running: removing the claim is safe), or it is
    one (the fit, or a process that took its number since). Nothing is removed or taken over here."""
    import socket

    pid, host = index.get("pid"), index.get("host")
    if not (_number(pid) and pid > 0 and isinstance(host, str) and host):
        return None
    here = host == socket.gethostname()
    if not here:
        return f"its fit ran as pid {pid} on the host {host}"
    boot, pidns = _boot_id(), _pid_namespace()
    if None not in (index.get("boot"), boot) and index["boot"] != boot:
        # a host of this name in another boot: this one before a restart, or another machine of the same name (cloned
        # machines, "localhost") writing to shared storage, whose fit may be running: nothing is said to be safe
        return (f"its fit ran as pid {pid} on a host named {host} in another boot: this host before a restart, or "
                "another machine of that name, where it may be running")
    if None not in (index.get("pidns"), pidns) and index["pidns"] != pidns:
        return f"its fit ran as pid {pid} on this host, in another container (its process is not seen from here)"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"its fit, pid {pid} on this host, is no longer running"
    except OSError:  # PermissionError: a process of another user
        pass
    return f"its fit, pid {pid} on this host, may be running (a process has that pid)"


def _claim_process(folder: str | os.PathLike) -> str | None:
    import json

    try:
        index = json.loads((Path(folder) / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return None
    return claim_process_words(index) if isinstance(index, dict) else None


def claim_only(index: dict) -> bool:
    """Whether a checkpoint index holds no more than the claim of a fit (:func:`claim_folder`): no ``last``, no
    ``monitor`` (a fit killed before or during its first save leaves it so).

    >>> claim_only({"run_dir": "/r/a", "run_id": "x"}), claim_only({"run_dir": "/r/a", "last": "last.ckpt"})
    (True, False)
    """
    return isinstance(index, dict) and "last" not in index and "monitor" not in index


#: a checkpoint index that holds only a fit's claim (:func:`claim_only`), in the words of every command that reads it
CLAIMED = "claimed by its fit, which is running or stopped before its first checkpoint"


def claimed_run_words(folder: str | os.PathLike) -> str:
    """What the run whose checkpoint index holds only its claim (:func:`claim_only`) has, for ``neurodyn info`` of
    the run folder and for ``--ckpt_path best|last`` of it: they said 'not saved yet' and 'use --ckpt_path last'
    though there was no last.ckpt (a .ckpt may be there, from a save the fit did not finish)."""
    process = _claim_process(folder)
    return (f"{CLAIMED}: no checkpoint recorded ({process + '; ' if process else ''}"
            f"if no fit of this run is running, remove {Path(folder) / INDEX_NAME} to free the folder)")


def claimed_words(folder: str | os.PathLike, owner: str | None) -> str:
    """The refusal of a new run's ``checkpoint.dirpath`` that another run claimed (:func:`claim_folder`)."""
    process = _claim_process(folder)
    process = f"{process}; " if process else ""
    return (f"is the checkpoint folder of the run {owner or '(being written)'}, which claimed it when its fit started "
            f"(its {INDEX_NAME}; no checkpoint saved yet), and a new run keeps its checkpoints in a new or empty "
            f"folder: choose another --checkpoint.dirpath, or --checkpoint.dirpath null ({process}"
            f"if no fit of that run is running and the run is gone, remove {Path(folder) / INDEX_NAME})")


def used_words(held: list[str]) -> str:
    """The refusal of a new run's ``checkpoint.dirpath`` that holds another run's checkpoints (``held``: the file
    names there), in the words of :func:`claim_folder` and of the check before it."""
    shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
    return (f"holds the checkpoints of another run ({shown}), and a new run keeps its checkpoints in a new or empty "
            "folder: choose another --checkpoint.dirpath, or --checkpoint.dirpath null (the new run's own "
            "checkpoints/ folder; or resume that run with --run DIR)")


def _held(folder: Path) -> list[str]:
    """The checkpoints a folder holds, by name, and its index where that holds more than a claim (:func:`claim_only`;
    one that cannot be read counts too)."""
    import json

    held = sorted(p.name for p in folder.glob("*.ckpt"))
    try:
        claim = claim_only(json.loads((folder / INDEX_NAME).read_text()))
    except OSError:
        claim = True  # gone: nothing held
    except ValueError:
        claim = False
    return held + [INDEX_NAME] * (not claim)


def claim_folder(folder: str | os.PathLike, run_dir: str | os.PathLike, run_id: str | None,
                 shown: str | None = None) -> list[Path]:
    """Claim ``folder`` for the checkpoints of the new run ``run_dir``: its checkpoints index is created with
    ``O_CREAT | O_EXCL`` (open(2): one process of all those that try creates it), recording ``run_dir`` (realpath),
    ``run_id`` and the fit's process (:func:`claimer`: the refusal and ``info`` say whether it still runs);
    :class:`~neurodyn.training.checkpoints.AutoModelCheckpoint` rewrites it at the run's first
    checkpoint. Two fits started at once into one new or empty folder both passed the check that it held no
    checkpoints, and wrote over each other's last.ckpt and index there: the second is refused now, in one line
    naming the folder (``shown``: as the user gave it) and the run that holds it (an
    :class:`~neurodyn.errors.InputError`, field ``checkpoint.dirpath``). Returns the folders made for it (missing
    parents included), for :func:`release_folder`."""
    import json

    from neurodyn.errors import InputError

    folder = Path(folder)
    made = []
    for parent in reversed([folder, *folder.parents]):
        if not parent.exists():
            try:
                parent.mkdir()
                made.append(parent)
            except FileExistsError:
                pass
            except OSError as err:
                raise InputError(f"cannot make this folder ({os.strerror(err.errno or 0) or err})",
                                 path=shown or folder, field="checkpoint.dirpath") from None
    try:
        fd = os.open(folder / INDEX_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        # another run's claim, or -- where that run saved its first checkpoint since the check before -- its
        # checkpoints (read again: the claim's words said 'being written ... no checkpoint saved yet' of them)
        owner, held, broken = claimed_by(folder), _held(folder), unreadable_index(folder)
        if broken is not None and held == [INDEX_NAME]:
            words = unreadable_words(folder, broken)
        else:
            words = used_words(held) if owner is None and held else claimed_words(folder, owner)
        raise InputError(words, path=shown or folder, field="checkpoint.dirpath") from None
    except OSError as err:
        raise InputError(f"cannot write in this folder ({os.strerror(err.errno or 0) or err})", path=shown or folder,
                         field="checkpoint.dirpath") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"run_dir": os.path.realpath(run_dir), "run_id": run_id, **claimer()}, indent=1)
                     + "\n")
    return made


def release_folder(folder: str | os.PathLike, run_dir: str | os.PathLike, made: list[Path]) -> None:
    """Undo :func:`claim_folder` where the run saved no checkpoint in ``folder`` (it failed, was stopped, or trained
    nothing): its claim is removed, if still its own, and the folders made for it, if empty."""
    import contextlib

    folder = Path(folder)
    if any(folder.glob("*.ckpt")):
        return
    owner = claimed_by(folder)
    if owner is not None and owner == os.path.realpath(run_dir):
        with contextlib.suppress(OSError):
            (folder / INDEX_NAME).unlink()
    for path in reversed(made):
        with contextlib.suppress(OSError):
            path.rmdir()


def why_no_run(path: str | os.PathLike) -> str:
    """What a folder that is no run folder (:func:`is_run_folder`) lacks, for ``neurodyn info`` of it: it said
    '(config.yaml and checkpoints/)' of every folder, also of one whose config.yaml is there, and of a run whose
    checkpoint folder is not ``checkpoints/`` (``--checkpoint.dirpath``)."""
    path = Path(path)
    if not (path / "config.yaml").is_file():
        return ("config.yaml and the run's checkpoint folder: checkpoints/, or the checkpoint.dirpath that "
                "config.yaml records")
    if not (checkpoint_folder(path).is_dir() or missing_folder(path) is not None):
        return f"it has a config.yaml, but no checkpoint folder: no {checkpoint_folder(path)}"
    why = (f"it has a config.yaml that records a checkpoint.dirpath, but no {RUN_RECORD}, the record neurodyn fit "
           "writes beside it")
    import json

    index = checkpoint_folder(path) / INDEX_NAME
    try:
        owner = json.loads(index.read_text()).get("run_dir")
    except (OSError, ValueError, AttributeError):
        return why
    if owner:
        return why
    # a run written before run.json, with no metrics.csv (--trainer.logger false), whose index names no run folder
    # (written by an older neurodyn): the same remedy as a resume's refusal of such a folder (foreign_index)
    return (f"{why}, and the {INDEX_NAME} of its checkpoint folder names no run folder; if this folder is a run "
            f"written before {RUN_RECORD} (not a copy), set \"run_dir\" in {index} to {os.path.realpath(path)}")


def missing_folder(run_dir: str | os.PathLike) -> tuple[str, str] | None:
    """``(message, config.yaml)`` when the run records a ``checkpoint.dirpath`` whose folder does not exist, None
    otherwise: every command said something else before ('no last.ckpt: the run has not finished an epoch', 'is no
    run folder'). What the message says depends on what the record tells: a relative path (recorded by an older
    run) is taken from the working folder, which it names (the command may run from another one); an absolute path
    whose run was resumed since (``config.resume-N.yaml``: a resume needs a checkpoint there) was moved or removed;
    else the folder may never have been made (Lightning makes it at the run's first checkpoint), and the run has
    no last.ckpt."""
    run_dir = Path(run_dir)
    dirpath = _recorded(run_dir)
    if dirpath is None:
        return None
    folder = resolved_dirpath(dirpath, run_dir)
    if os.path.isdir(folder):
        return None
    config = os.fspath(run_dir / "config.yaml")
    expanded = os.path.expanduser(dirpath)
    if RUN_PLACEHOLDER not in dirpath and not os.path.isabs(expanded):
        return (f"the recorded checkpoint folder {dirpath!r} is relative, taken from the working folder "
                f"{os.getcwd()}: {folder} does not exist. Run the command from the folder the run was started in, "
                f"or set checkpoint.dirpath in this file to the absolute path of the run's checkpoint folder", config)
    if any(run_dir.glob("config.resume-*.yaml")):
        return (f"the recorded checkpoint folder {folder} does not exist (moved?), though the run was resumed from "
                f"a checkpoint there: if the run's checkpoints are elsewhere now, set checkpoint.dirpath in this file "
                f"to their folder", config)
    return (f"no last.ckpt: the recorded checkpoint folder {folder} does not exist (Lightning makes it at the run's "
            f"first checkpoint: the run has not finished an epoch, or the folder moved: if the run's checkpoints are "
            f"elsewhere now, set checkpoint.dirpath in this file to their folder)", config)


def _records_own_folder(run_dir: Path) -> bool:
    """Whether the run's checkpoint folder is its own by its record, judged on the path config.yaml records (not
    resolved: ``checkpoints/`` or ``{run}/SUB`` may be a link to scratch storage, and are the run's all the same):
    none recorded (``DIR/checkpoints``), or one that names a folder inside the run folder (``{run}/SUB``, or an
    absolute path inside it that an older run recorded)."""
    dirpath = _recorded(run_dir)
    if dirpath is None:
        return True
    spelled = os.path.abspath(run_dir)
    path = os.path.normpath(os.path.abspath(os.path.expanduser(dirpath.replace(RUN_PLACEHOLDER, spelled))))
    return any(Path(path).is_relative_to(run) for run in (spelled, os.path.realpath(run_dir)))


def foreign_index(run_dir: str | os.PathLike) -> str | None:
    """Why a resume of ``run_dir`` may not write its checkpoint folder, or None. A folder that config.yaml records
    outside the run folder (``--checkpoint.dirpath``) is the run's own only when its index names this run folder
    (``run_dir``, written by :class:`~neurodyn.training.checkpoints.AutoModelCheckpoint`): a copy of the run folder
    (``cp -r runs/a runs/a2``) records the same folder, and its resume wrote its last.ckpt and index over the
    original's there. Where the index records a run id that the run folder's record holds, the run id decides
    (:func:`run_id`): the run, also after ``mv a b`` (its index names ``a`` until its next checkpoint; it was refused
    as 'a copy or a moved run'), resumes; a copy is refused, also one made at the index's folder after the run moved
    away (``mv a b; cp -r b a``: ``a``'s resume wrote over ``b``'s checkpoints). An index that names no run folder
    (written by a neurodyn that did not record it) is refused too, for the same reason: nothing tells the original
    from a copy. One that cannot be read (:func:`unreadable_index`: empty, a claim cut short) is said as such. The
    run's default ``checkpoints/`` and a ``{run}/SUB`` folder travel with the run folder and are its own, whatever
    links they are (scratch storage): a
    moved run resumes, and so does one whose index names no run folder. Two exceptions keep a copy off the
    original's checkpoints where such a folder is a link that resolves outside the run folder (``cp -r`` copies the
    link, not the folder): an index that names another run folder that still exists and keeps its checkpoints in
    the same folder; and the run id, as for a folder outside it (``mv a b; cp -r b a`` with ``a/checkpoints`` a
    link: the index names ``a``, whose resume wrote over ``b``'s checkpoints and took over the index, and ``b``
    was then refused as the copy). A copy that copied the folder has checkpoints of its own, and resumes them."""
    import json

    run_dir = Path(run_dir)
    own = _records_own_folder(run_dir)
    folder = checkpoint_folder(run_dir)
    real = os.path.realpath(run_dir)
    if own and Path(os.path.realpath(folder)).is_relative_to(real):
        return None
    if not (folder / INDEX_NAME).is_file() and not any(folder.glob("*.ckpt")):
        return None  # nothing there yet (the run stopped before its first checkpoint): the resume says so
    broken = unreadable_index(folder)
    if broken is not None and not own:  # it read as an index that names no run folder ('an older neurodyn')
        return f"its checkpoint folder {folder} lies outside it, and {unreadable_words(folder, broken)}"
    try:
        index = json.loads((folder / INDEX_NAME).read_text())
    except (OSError, ValueError):
        index = None
    owner, wanted = (index.get("run_dir"), index.get("run_id")) if isinstance(index, dict) else (None, None)
    held = (run_record(run_dir) or {}).get("id")
    # a link (own) copied with the run folder, whose index names the run folder it was copied from, still there and
    # keeping its checkpoints in the same folder: said as the link it is (below)
    linked_copy = (own and isinstance(owner, str) and owner and os.path.realpath(owner) != real
                   and os.path.isdir(owner) and os.path.realpath(checkpoint_folder(owner)) == os.path.realpath(folder))
    if isinstance(wanted, str) and wanted and held == wanted and run_id(run_dir) == wanted:
        return None  # the run, also moved (its index names the folder it was in until its next checkpoint)
    if isinstance(wanted, str) and wanted and held == wanted and not linked_copy:
        # the run's record, not made in this folder (run_id): a copy, also one made at the run's old path after
        # a move (mv a b; cp -r b a: the index names a, and a's resume wrote over b's checkpoints), also where the
        # folder is the run's own by its record, a link that cp -r copied (checkpoints/ on scratch storage)
        here = isinstance(owner, str) and os.path.realpath(owner) == real
        where = "this folder" if here else f"the run folder {owner}"
        shown = f"{folder} (a link to {os.path.realpath(folder)})" if own else str(folder)
        return (f"its checkpoint folder {shown} lies outside it, and its {INDEX_NAME} names {where} and the run id "
                f"{wanted}, which this folder's {RUN_RECORD} holds but was made in another folder: this run folder "
                "is a copy of the run (cp -r, a copy made in its place after it was moved, or a move to another "
                "filesystem, which copies), and a resume here would write over the run's checkpoints. Resume the "
                f"run in its own folder, or start a new run from {new_run_from(run_dir, folder / 'last.ckpt')}")
    if isinstance(owner, str) and os.path.realpath(owner) == real:
        return None
    if own:
        if not linked_copy:
            return None  # a moved run (its old folder is gone), or an index that names none or no run id
        return (f"its checkpoint folder {folder} is a link to {os.path.realpath(folder)}, where the run folder "
                f"{owner} (which its {INDEX_NAME} names) keeps its checkpoints too: this run folder is a copy of that "
                f"one (the link copied, not the folder), and a resume here would write over them. Make {folder} a "
                f"folder of its own (a copy of the checkpoints), or start a new run from "
                f"{new_run_from(run_dir, folder / 'last.ckpt')}")
    if isinstance(owner, str) and owner:
        whose = f"its {INDEX_NAME} names the run folder {owner}: this run folder is a copy or a moved run of that one"
        mine = "they are this run's (its folder moved here)"
    else:
        whose = (f"its {INDEX_NAME} names no run folder (written by an older neurodyn), so nothing tells this run "
                 "from a copy of it that shares the folder")
        mine = "this run folder is the one that wrote them (not a copy)"
    return (f"its checkpoint folder {folder} lies outside it, and {whose}; a resume here would write over them. If "
            f"{mine}, set \"run_dir\" in {folder / INDEX_NAME} to {real}; else start a new run from "
            f"{new_run_from(run_dir, folder / 'last.ckpt')}")


def new_run_from(run_dir: Path, last: Path, name: str = "NEW") -> str:
    """The command that starts a new run (``name``) from ``last``, a checkpoint of another run: from the file itself,
    or, where the file is linked to its run (:func:`run_of_checkpoint`: ``fit --ckpt_path`` of it resumes that run),
    from a copy of it."""
    new = f"--checkpoint.dirpath null --run-name {name}"
    if run_of_checkpoint(last) is None:
        return f"its checkpoint: neurodyn fit --config {run_dir / 'config.yaml'} --ckpt_path {last} {new}"
    return (f"a copy of its checkpoint: cp {last} KEPT.ckpt, then neurodyn fit --config {run_dir / 'config.yaml'} "
            f"--ckpt_path KEPT.ckpt {new}")
