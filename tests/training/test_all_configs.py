"""Every shipped config runs: each YAML under configs/ is loaded by `neurodyn fit` and trained for one
`fast_dev_run` step on a tiny data module of its kind.

Model configs keep all their settings (model sizes included) and only get a tiny data source: a small
prepared NLB file for NLBDataModule configs, a few simulated trials for Lorenz / switching-GLM ones.
Configs without a data section (trainer configs, overlays) are stacked on the Lorenz config.
``configs/tune/`` holds search spaces for ``neurodyn tune``, not fit configs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from neurodyn.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name != "tune")
BASE = ROOT / "configs" / "langevinflow" / "lorenz.yaml"
TINY_DATA = {
    "LorenzDataModule": ["--data.n_conditions", "2", "--data.trials_per_condition", "4", "--data.batch_size", "4"],
    "SwitchingGLMDataModule": ["--data.n_sequences", "4", "--data.n_bins", "60", "--data.n_train", "2",
                               "--data.batch_size", "2"],
}


@pytest.fixture(autouse=True)
def _isolated_process():
    """A DDP run in this process sets MASTER_PORT, LOCAL_RANK, OMP_NUM_THREADS... and opens a gloo process
    group; put the process back as it was so later tests (and their subprocesses) do not inherit them."""
    env, threads = dict(os.environ), torch.get_num_threads()
    yield
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    os.environ.clear()
    os.environ.update(env)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("nlb")
    write_nlb_pair(tmp / "nwb", "mc_maze", n_train_trials=8, n_test_trials=4, n_heldin=6, n_heldout=3, seed=0)
    out = tmp / "tiny_20_val.h5"
    prepare("mc_maze", tmp / "nwb", bin_ms=20, phase="val", out=out, log=None)
    return out


def _data_class(path: Path) -> str | None:
    data = (yaml.safe_load(path.read_text()) or {}).get("data")
    return str(data.get("class_path")).rsplit(".", 1)[-1] if isinstance(data, dict) else None


def _marks(path: Path):
    trainer = (yaml.safe_load(path.read_text()) or {}).get("trainer") or {}
    if trainer.get("accelerator") == "gpu" and trainer.get("strategy") != "ddp":  # ddp.yaml also runs on CPU
        return [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
    return []


def test_the_list_is_complete():
    kinds = {_data_class(p) for p in CONFIGS}
    assert kinds <= {None, "NLBDataModule", *TINY_DATA}, kinds
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize("config", [pytest.param(p, id=p.relative_to(ROOT / "configs").as_posix(), marks=_marks(p))
                                    for p in CONFIGS])
def test_config_runs_one_step(config, prepared, tmp_path, capsys):
    kind = _data_class(config)
    stack = ["--config", str(config)] if kind else ["--config", str(BASE), "--config", str(config)]
    data = ["--data.path", str(prepared), "--data.batch_size", "4"] if kind == "NLBDataModule" else \
        TINY_DATA[kind or "LorenzDataModule"]
    trainer = (yaml.safe_load(config.read_text()) or {}).get("trainer") or {}
    extra = []
    if trainer.get("strategy") == "ddp" and not torch.cuda.is_available():
        extra = ["--trainer.accelerator", "cpu", "--trainer.devices", "1"]  # DDP on CPU: gloo, one process
    model = (yaml.safe_load(config.read_text()) or {}).get("model") or {}
    if str(model.get("class_path", "")).endswith("HMMGLMModule"):
        extra += ["--model.init_args.n_inner", "2"]  # one E-step and two M-step updates are enough to run
    code = main(["fit", *stack, *data, *extra, "--trainer.fast_dev_run", "true",
                 "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_model_summary", "false"])
    assert code == 0
    assert not any(tmp_path.iterdir())  # fast_dev_run writes nothing
    assert "run folder:" not in capsys.readouterr().out  # and names no folder (it named one that did not exist)


def test_default_root_dir_is_honoured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "elsewhere"
    assert main(["fit", "--config", str(BASE), *TINY_DATA["LorenzDataModule"], "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(root), "--run-name", "one",
                 "--trainer.enable_model_summary", "false"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]
    assert (root / "one" / "checkpoints" / "last.ckpt").is_file() and (root / "one" / "metrics.csv").is_file()
