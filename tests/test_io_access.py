"""Permission checks answer for the process's effective user and groups, those the kernel checks when it opens a
file: ``os.access`` alone asks for the real ones (access(2)), wrong for a setuid / setgid program."""

from __future__ import annotations

import os

import pytest

from neurodyn.io.hdf5 import check_input_file, denied_reason
from neurodyn.io.output import check_output


def test_every_access_check_asks_for_the_effective_ids(tmp_path, monkeypatch):
    """Narrow, and for any user: each os.access call of the readers' and writers' checks says effective_ids."""
    if os.access not in os.supports_effective_ids:
        pytest.skip("os.access cannot answer for the effective ids on this platform")
    calls = []
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        calls.append(kwargs.get("effective_ids", False))
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "in.h5").write_bytes(b"x")
    (folder / "out.h5").write_bytes(b"old")
    assert denied_reason(folder) is None and denied_reason(folder, listing=False) is None
    check_input_file(folder / "in.h5")
    check_output(folder / "out.h5", overwrite=True)  # the folder's check and the write-protection check
    assert len(calls) >= 5 and all(calls), calls


@pytest.mark.skipif(not hasattr(os, "setresuid") or os.geteuid() != 0, reason="only root can give up the real ids "
                    "alone")
def test_a_setuid_process_is_answered_for_its_effective_user(tmp_path):
    """For real: a process whose real user is ``nobody`` and effective user root (a setuid-root program a user
    runs) reads and writes in root's private folder; access(2) with the real ids said it could do neither."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    source = private / "in.h5"
    source.write_bytes(b"x")
    source.chmod(0o600)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its result goes through the pipe
        answer = "?"
        try:
            os.close(read)
            try:
                os.setresgid(65534, 0, 0)  # real ids nobody, effective and saved ids root
                os.setresuid(65534, 0, 0)
            except OSError as err:  # a container without CAP_SETUID / CAP_SETGID
                answer = f"skip: {err}"
            else:
                outcome = [repr(denied_reason(source)), repr(denied_reason(private))]
                try:
                    check_output(private / "out.h5")
                    outcome.append("writable")
                except Exception as err:  # noqa: BLE001 - reported to the parent
                    outcome.append(str(err))
                answer = "\n".join(outcome)
        except BaseException as err:  # noqa: BLE001 - never return into pytest in the child
            answer = f"error: {err!r}"
        finally:
            os.write(write, answer.encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        answer = handle.read().decode()
    os.waitpid(pid, 0)
    if answer.startswith("skip: "):
        pytest.skip(answer)
    assert answer.splitlines() == ["None", "None", "writable"], answer
