"""Small I/O helpers shared by every writer and reader.

- :mod:`.output`: the output policy (:func:`output_file`: temporary file + rename, inputs never
  overwritten, ``--overwrite``, disk / memory checks, a lock per output, SIGTERM / Ctrl-C cleanup) and
  :func:`atomic_path`.
- :mod:`.hdf5`: nested dicts to / from HDF5 groups and :func:`read_h5`, the guarded reader
  (:func:`checked_h5`: its checks for a file already open).
- :mod:`.digest`: :func:`file_digest`, a file's size and SHA-256; :func:`data_identity`, what a prediction
  records of its data file.
"""

from neurodyn.io.digest import data_identity, file_digest
from neurodyn.io.hdf5 import checked_h5, read_h5, read_h5_dict, read_limit, write_h5_dict
from neurodyn.io.output import (
    DISK_MARGIN_BYTES,
    Interrupted,
    atomic_path,
    available_memory,
    check_disk,
    check_memory,
    check_output,
    output_file,
    terminate_as_interrupt,
)

__all__ = [
    "DISK_MARGIN_BYTES",
    "Interrupted",
    "atomic_path",
    "available_memory",
    "check_disk",
    "check_memory",
    "check_output",
    "checked_h5",
    "data_identity",
    "file_digest",
    "output_file",
    "read_h5",
    "read_h5_dict",
    "read_limit",
    "terminate_as_interrupt",
    "write_h5_dict",
]
