"""Checkpoints whose bytes were changed after they were written: refused by the CRC-32 torch.save records per entry.

torch.load never checks those CRCs: a checkpoint with 64 flipped bytes inside a tensor was summarised by ``info``
(exit 0), predicted from with the wrong weights (exit 0), and resumed by ``fit --run`` until a non-finite loss
epochs later, which named no file and left ``config.resume-1.yaml`` and a TensorBoard event file behind.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from neurodyn.cli import main

TINY = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "8",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "r",
                 "--trainer.max_epochs", "2"]) == 0
    return root / "r"


def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(err) == 1, err
    return err[0]


def _flip(ckpt: Path) -> str:
    """Invert 64 bytes in the middle of the checkpoint's largest weight (its bytes, found in the file); the
    tensor's name."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    name = max(state, key=lambda k: state[k].numel())
    data = ckpt.read_bytes()
    raw = state[name].contiguous().numpy().tobytes()
    assert data.count(raw) == 1
    at = data.find(raw) + len(raw) // 2 - 32
    ckpt.write_bytes(data[:at] + bytes(b ^ 0xFF for b in data[at:at + 64]) + data[at + 64:])
    return name


def _expected(name: str) -> str:
    return (r"not a readable checkpoint: the zip archive is damaged \(modified after it was written\): "
            rf"\S+/data/\d+ \(the tensor state_dict\['{name}'\]\) fails its CRC-32 or header check")


def test_info_refuses_a_checkpoint_with_changed_bytes(run, tmp_path, capsys):
    import re

    flipped = tmp_path / "flip.ckpt"
    shutil.copyfile(run / "checkpoints" / "last.ckpt", flipped)
    name = _flip(flipped)
    assert main(["info", str(flipped)]) == 2
    line = _one_line(capsys)
    assert re.search(rf"{flipped}: checkpoint: {_expected(name)}$", line), line


def test_predict_refuses_a_checkpoint_with_changed_bytes(run, tmp_path, capsys):
    import re

    flipped = tmp_path / "flip.ckpt"
    shutil.copyfile(run / "checkpoints" / "last.ckpt", flipped)
    name = _flip(flipped)
    pred = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(run), "--ckpt_path", str(flipped), "--prediction.path", str(pred)]) == 2
    line = _one_line(capsys)
    assert re.search(rf"{flipped}: ckpt_path: {_expected(name)}$", line), line
    assert not pred.exists()


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_a_resumed_fit_refuses_a_damaged_last_ckpt_and_writes_nothing(run, tmp_path, capsys):
    import re

    copy = tmp_path / "r"
    shutil.copytree(run, copy)
    last = copy / "checkpoints" / "last.ckpt"
    name = _flip(last)
    before = _files(copy)
    assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "3"]) == 2
    line = _one_line(capsys)
    assert re.search(rf"{last}: ckpt_path: {_expected(name)}$", line), line
    assert _files(copy) == before  # no config.resume-1.yaml, no event file, no lock
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_the_damaged_entry_is_named_and_unchecked_crcs_are_not_damage(tmp_path):
    from neurodyn.training.checkpoints import damaged_entry, read_checkpoint

    ckpt = {"state_dict": {"w": torch.arange(4096, dtype=torch.float32)}, "epoch": 0,
            "optimizer_states": [{"state": {0: {"exp_avg": torch.arange(4096, dtype=torch.float32) + 0.5}}}]}
    path = tmp_path / "c.ckpt"
    torch.save(ckpt, path)
    assert damaged_entry(path) is None
    with zipfile.ZipFile(path) as archive:
        names = {info.filename: info for info in archive.infolist()}
    data = bytearray(path.read_bytes())
    target = (torch.arange(4096, dtype=torch.float32) + 0.5).numpy().tobytes()
    data[data.find(target) + 100] ^= 1  # one bit of the optimizer's moment
    path.write_bytes(bytes(data))
    found = damaged_entry(path)
    assert found is not None and found.split()[0] in names
    assert found.endswith("(the tensor optimizer_states[0]['state'][0]['exp_avg'])"), found
    pkl = next(n for n in names if n.endswith("/data.pkl"))
    data = bytearray(Path(path).read_bytes())
    data[data.find(target) + 100] ^= 1  # back as written
    data[data.find(b"state_dict")] ^= 0x20  # 'State_dict': a key of the structure
    path.write_bytes(bytes(data))
    assert damaged_entry(path) == f"{pkl} (the checkpoint's structure: its keys, settings and tensor layout)"

    # torch.serialization.set_crc32_options(False) writes no CRCs (0): such a file is read as before
    previous = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(ckpt, tmp_path / "nocrc.ckpt")
    finally:
        torch.serialization.set_crc32_options(previous)
    assert damaged_entry(tmp_path / "nocrc.ckpt") is None
    assert torch.equal(read_checkpoint(tmp_path / "nocrc.ckpt")["state_dict"]["w"], ckpt["state_dict"]["w"])


def test_an_entry_header_changed_to_encrypted_is_named_not_a_traceback(tmp_path):
    """zipfile refuses an entry whose directory record says 'encrypted' with a RuntimeError, which escaped."""
    from neurodyn.errors import InputError
    from neurodyn.training.checkpoints import read_checkpoint

    path = tmp_path / "c.ckpt"
    torch.save({"state_dict": {"w": torch.arange(64, dtype=torch.float32)}, "epoch": 0}, path)
    with zipfile.ZipFile(path) as archive:
        entry = next(i.filename for i in archive.infolist() if i.filename.endswith("/data/0"))
    data = bytearray(path.read_bytes())
    record = data.find(b"PK\x01\x02")  # the central directory's records, in entry order
    while data[record + 46:record + 46 + len(entry)] != entry.encode():
        record = data.find(b"PK\x01\x02", record + 1)
    data[record + 8] |= 1  # general-purpose flag bit 0: encrypted
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"{entry} \(the tensor state_dict\['w'\]\) fails its CRC-32 or header"):
        read_checkpoint(path)


class _Settings(dict):
    """A dict subclass pickled by NEWOBJ (protocol 2), as Lightning's AttributeDict of hyper-parameters is."""


class _Tags(list):
    """A list subclass: its items arrive by APPEND / APPENDS."""


def test_tensors_are_named_past_objects_pickled_by_newobj(tmp_path):
    """The stand-in for every global was a function: NEWOBJ (``cls.__new__(cls)``, how protocol 2 pickles a dict
    subclass or an object) needs a type, the unpickling failed and the message fell back to the bare entry name."""
    import pickletools

    from neurodyn.training.checkpoints import _storage_paths

    ckpt = {"hyper_parameters": _Settings(lr=0.1), "tags": _Tags(["a"]), "keys": {frozenset({1}): 0},
            "state_dict": {"w": torch.zeros(3)}}
    path = tmp_path / "c.ckpt"
    torch.save(ckpt, path, pickle_protocol=2)
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    opcodes = {op.name for op, _, _ in pickletools.genops(pickled)}
    assert "NEWOBJ" in opcodes and opcodes & {"APPEND", "APPENDS"}, opcodes  # a dict and a list subclass
    assert list(_storage_paths(pickled).values()) == ["state_dict['w']"]


def test_a_pickle_that_shares_one_object_everywhere_is_named_at_once(tmp_path):
    """40 nested levels of ``[a, a]`` are a few hundred bytes of pickle and 2^40 paths to one list: the walk visited
    each (3 s at 22 levels, forever at 40). Each object is visited once now; run in a child with a limit, so the
    old walk fails here rather than hangs the suite."""
    import io
    import subprocess
    import sys

    shared: list = [torch.zeros(1)]
    for _ in range(40):
        shared = [shared, shared]
    buffer = io.BytesIO()
    torch.save({"state_dict": shared}, buffer)
    with zipfile.ZipFile(buffer) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    assert len(pickled) < 1000
    path = tmp_path / "data.pkl"
    path.write_bytes(pickled)
    code = ("import sys; from pathlib import Path; from neurodyn.training.checkpoints import _storage_paths; "
            "print(*_storage_paths(Path(sys.argv[1]).read_bytes()).values())")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "state_dict" + "[0]" * 41, proc.stdout


def test_tune_never_makes_best_ckpt_of_a_damaged_trial_checkpoint(tmp_path):
    """``neurodyn tune`` loaded the best trial's checkpoint with torch.load (no CRC check) and saved it again as
    best.ckpt with fresh CRCs: damage on disk became a checkpoint every later check passes. A damaged trial
    checkpoint is now passed over (the next best is taken, and a note names the skipped file); the last guard
    refuses to re-save one."""
    from neurodyn.errors import CommandFailed
    from neurodyn.training.tune.search import _undamaged, _write_best_checkpoint

    saved = []
    for name, value in (("best", 0.1), ("second", 0.2)):
        folder = tmp_path / name
        folder.mkdir()
        torch.save({"state_dict": {"w": torch.arange(4096, dtype=torch.float32)}, "epoch": 0}, folder / "model.ckpt")
        saved.append((folder, {"value": value, "epoch": 0}))
    _flip(tmp_path / "best" / "model.ckpt")
    good, damaged = _undamaged(saved)
    assert good == saved[1:]
    assert len(damaged) == 1 and damaged[0].startswith(f"{tmp_path / 'best' / 'model.ckpt'}: "), damaged
    assert damaged[0].endswith("(the tensor state_dict['w']) fails its CRC-32 or header check"), damaged
    with pytest.raises(CommandFailed, match=r"the best trial's checkpoint .*model.ckpt is damaged: \S+/data/\d+ "
                                            r"\(the tensor state_dict\['w'\]\) fails its CRC-32 or header check"):
        _write_best_checkpoint(tmp_path / "best" / "model.ckpt", tmp_path / "best.ckpt", {})
    assert not (tmp_path / "best.ckpt").exists()


def _rewrite_in_place_keeping_size_and_mtime(path: Path, at: int) -> None:
    """Invert the byte at ``at`` in place (same inode, same size) and set the modification time back; the change
    time moves on (retouched until the coarse clock that stamps it has ticked)."""
    import os
    import time

    before = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))
    for _ in range(1000):
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if os.stat(path).st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.01)
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns


def test_a_checkpoint_rewritten_in_place_with_its_mtime_set_back_is_checked_again(tmp_path, monkeypatch):
    """A file found intact was remembered by inode, size and mtime: bytes flipped in place afterwards, with the
    mtime set back (``cp -p`` / ``rsync --inplace -t`` over it), read as intact. The change time is in the key."""
    from neurodyn.errors import InputError
    from neurodyn.training import checkpoints
    from neurodyn.training.checkpoints import read_checkpoint

    monkeypatch.setattr(checkpoints, "_SETTLED_NS", -(1 << 62), raising=False)  # remembered however fresh
    path = tmp_path / "c.ckpt"
    w = torch.arange(4096, dtype=torch.float32)
    torch.save({"state_dict": {"w": w}, "epoch": 0}, path)
    assert torch.equal(read_checkpoint(path)["state_dict"]["w"], w)
    _rewrite_in_place_keeping_size_and_mtime(path, path.read_bytes().find(w.numpy().tobytes()) + 100)
    with pytest.raises(InputError, match=r"\(the tensor state_dict\['w'\]\) fails its CRC-32 or header check"):
        read_checkpoint(path)


def test_a_checkpoint_changed_within_the_timestamp_tick_is_not_remembered(tmp_path, monkeypatch):
    """A second write within the tick of the coarse clock that stamps a file keeps its change time too: a file
    whose last change is not older than _SETTLED_NS is checked at every read, an older one once."""
    from neurodyn.training import checkpoints
    from neurodyn.training.checkpoints import read_checkpoint

    calls = []
    real = checkpoints.damaged_entry
    monkeypatch.setattr(checkpoints, "damaged_entry", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(checkpoints, "_SETTLED_NS", 1 << 62, raising=False)  # every change is recent
    path = tmp_path / "c.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(8)}, "epoch": 0}, path)
    read_checkpoint(path)
    read_checkpoint(path)
    assert len(calls) == 2
    monkeypatch.setattr(checkpoints, "_SETTLED_NS", -(1 << 62))  # every change is old
    read_checkpoint(path)
    read_checkpoint(path)
    assert len(calls) == 3


def test_a_tensor_first_reached_near_the_depth_limit_is_named_by_its_shallow_path(tmp_path):
    """The walk that names tensors stops at depth 50 and visited each object once: a dict first reached at depth 49
    (its tensor's storage at 51, cut off) and then at depth 1 was not walked again, and the damaged entry was
    named without its tensor. An object is walked again where it is reached at a shallower depth."""
    from neurodyn.training.checkpoints import _storage_paths, damaged_entry

    w = torch.arange(4096, dtype=torch.float32)
    weights = {"w": w}
    deep: object = weights
    for _ in range(48):
        deep = [deep]
    path = tmp_path / "c.ckpt"
    torch.save({"deep": deep, "state_dict": weights, "epoch": 0}, path)  # "deep" first: the walk meets it first
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    assert list(_storage_paths(pickled).values()) == ["state_dict['w']"]
    data = bytearray(path.read_bytes())
    data[data.find(w.numpy().tobytes()) + 100] ^= 1
    path.write_bytes(bytes(data))
    found = damaged_entry(path)
    assert found is not None and found.endswith("(the tensor state_dict['w'])"), found
