"""What a file holds, in brief: its size and SHA-256, to tell later whether it is still the same file."""

from __future__ import annotations

import hashlib
import os
import time

_CHUNK = 1 << 20


#: digests already computed in this process, by what ``os.stat`` says of the file (device, inode, size,
#: modification and change times in ns): one command that checks a data file several times (``predict``:
#: the checkpoint's record, then the prediction file's provenance) reads it once
_SEEN: dict[tuple, dict] = {}
#: a file modified less than this many seconds before it was read is not remembered (coarse timestamps)
_RACY_S = 2.0


def file_digest(path: str | os.PathLike) -> dict:
    """``{"size": bytes, "sha256": hex}`` of the file at ``path`` (read in 1 MiB chunks; about 1 s per GB).

    A file whose ``os.stat`` (device, inode, size, mtime, ctime) is unchanged since an earlier call in this
    process is not read again. Timestamps are coarse on some systems (a clock tick of a few ms on Linux before
    6.13, whole seconds on FAT or HFS+), so a same-size rewrite within one tick keeps them: as git does for its
    index ("racy git"), a digest is remembered only for a file last modified more than
    :data:`_RACY_S` seconds before it was read."""
    before = os.stat(path)
    key = (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns)
    if key in _SEEN:
        return dict(_SEEN[key])
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    found = {"size": size, "sha256": sha.hexdigest()}
    after = os.stat(path)
    settled = time.time() - max(after.st_mtime, after.st_ctime) > _RACY_S
    if settled and key == (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns):
        if len(_SEEN) >= 64:
            _SEEN.clear()
        _SEEN[key] = dict(found)  # not when the file changed while it was read
    return found


def data_identity(path: str | os.PathLike) -> dict:
    """What a prediction or baseline file records of the data file it was made from: ``data_sha256`` (its
    bytes: a file re-made in place keeps its path) and, for a prepared NLB file, ``data_source_sha256`` (the
    NWB files it was made from, its ``source_sha256``); empty when ``path`` is not a file. ``ensemble``,
    ``evaluate`` and ``submit`` compare them."""
    from neurodyn.io.hdf5 import root_attrs

    if not os.path.isfile(path):
        return {}
    found = {"data_sha256": file_digest(path)["sha256"]}
    sources = (root_attrs(path) or {}).get("source_sha256")
    if sources is not None:
        found["data_source_sha256"] = sources
    return found
