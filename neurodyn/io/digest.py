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
