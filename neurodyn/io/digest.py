"""What a file holds, in brief: its size and SHA-256, to tell later whether it is still the same file."""

from __future__ import annotations

import hashlib
import os

_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike) -> dict:
    """``{"size": bytes, "sha256": hex}`` of the file at ``path`` (read in 1 MiB chunks; about 1 s per GB)."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": sha.hexdigest()}


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
