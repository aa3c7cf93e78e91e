"""Exact resume: N epochs straight == k epochs + `fit --run DIR` to N, bit for bit (weights and metrics.csv).

The random state that training draws from (torch's global generator for dropout, noise and the batch
order; the HMM-GLM model's own generator for its Gumbel noise) is saved in every checkpoint and restored
on resume. A control run with the restore disabled shows that the comparison can fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from neurodyn.cli import main

LANGEVIN = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "6",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--model.init_args.config.kl_ramp_epochs", "2", "--model.init_args.config.dropout", "0.2",
    "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
]
HMMGLM = [
    "--model", "HMMGLMModule", "--model.config.n_states", "2", "--model.n_inner", "3",
    "--data", "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "5",
    "--data.n_sequences", "6", "--data.n_bins", "80", "--data.n_train", "4", "--data.batch_size", "2",
    "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
]


def _last(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def _straight_and_resumed(root: Path, args: list[str], n: int, k: int) -> tuple[Path, Path]:
    assert main(["fit", *args, "--trainer.default_root_dir", str(root), "--run-name", "straight",
                 "--trainer.max_epochs", str(n)]) == 0
    assert main(["fit", *args, "--trainer.default_root_dir", str(root), "--run-name", "resumed",
                 "--trainer.max_epochs", str(k)]) == 0
    assert _last(root / "resumed")["epoch"] == k - 1
    assert main(["fit", "--run", str(root / "resumed"), "--trainer.max_epochs", str(n)]) == 0
    return root / "straight", root / "resumed"


def _assert_identical(straight: Path, resumed: Path, n: int) -> None:
    a, b = _last(straight), _last(resumed)
    assert a["epoch"] == b["epoch"] == n - 1 and a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        for name in sa:
            assert torch.equal(torch.as_tensor(sa[name]), torch.as_tensor(sb[name])), name
    assert (straight / "metrics.csv").read_text() == (resumed / "metrics.csv").read_text()


@pytest.mark.parametrize("args, n, k", [(LANGEVIN, 4, 2), (HMMGLM, 3, 1)], ids=["langevinflow", "hmmglm"])
def test_resume_is_bit_identical(tmp_path, args, n, k):
    straight, resumed = _straight_and_resumed(tmp_path, args, n, k)
    _assert_identical(straight, resumed, n)


def test_without_the_random_state_resume_differs(tmp_path, monkeypatch):
    """Control: the comparison above detects a resume that does not restore the random state."""
    import neurodyn.training.callbacks as callbacks

    monkeypatch.setattr(callbacks, "restore_random_state", lambda *a, **k: None)
    straight, resumed = _straight_and_resumed(tmp_path, LANGEVIN, 4, 2)
    a, b = _last(straight)["state_dict"], _last(resumed)["state_dict"]
    assert any(not torch.equal(a[key], b[key]) for key in a)


def test_sparse_validation_with_cosine_decay_saves_every_epoch_and_resumes_exactly(tmp_path, capsys):
    """The CPU configs' setting: validation every k-th epoch and a cosine learning-rate decay over max_epochs.
    A fit stopped after epoch 3 of 5 (by max_steps, so the decay still spans 5 epochs) has last.ckpt = epoch
    3, which was not validated; resuming from it equals the straight run bit for bit, and the epoch log
    shows valid/ metrics only on the epochs that computed them."""
    args = [*LANGEVIN, "--trainer.check_val_every_n_epoch", "2", "--model.init_args.lr_schedule", "cosine",
            "--trainer.max_epochs", "5", "--trainer.default_root_dir", str(tmp_path)]
    assert main(["fit", *args, "--run-name", "straight"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("epoch ")]
    assert [x.split()[1] for x in lines] == [f"{e}/5" for e in range(1, 6)]
    assert ["valid/" in x for x in lines] == [False, True, False, True, False]
    steps_per_epoch = _last(tmp_path / "straight")["global_step"] // 5
    assert main(["fit", *args, "--run-name", "resumed", "--trainer.max_steps", str(3 * steps_per_epoch)]) == 0
    assert _last(tmp_path / "resumed")["epoch"] == 2
    assert main(["fit", "--run", str(tmp_path / "resumed"), "--trainer.max_steps", "-1"]) == 0
    _assert_identical(tmp_path / "straight", tmp_path / "resumed", 5)


def test_max_time_stops_at_an_epoch_end_that_resumes_exactly(tmp_path, monkeypatch, capsys):
    """--trainer.max_time stopped a fit after the batch in which the time ran out (Lightning's Timer checks after
    every batch): last.ckpt then held epoch 1 after 2 of its batches as if finished, and a resume went on with
    epoch 2, not the straight run (other weights, other metrics.csv); nothing said the run was unfinished, and a
    bare `fit --run` trained nothing without a word (the checkpoint's Timer had used the time up). max_time is
    now checked at each epoch's end: the fit stops there (an exact resume point) and says how to train on; the
    bare resume says there is nothing to train; a resume with a longer max_time equals the straight run."""
    import functools

    import lightning.pytorch.callbacks.timer as timer_module

    from neurodyn.training.module import LangevinFlowModule

    clock = {"shift": 0.0, "armed": False}
    real_time = timer_module.time

    class TimerClock:  # the Timer's own clock: two hours pass in epoch 1's second batch, one hour is allowed
        def __getattr__(self, name):
            return getattr(real_time, name)

        def monotonic(self):
            return real_time.monotonic() + clock["shift"]

    monkeypatch.setattr(timer_module, "time", TimerClock())
    step = LangevinFlowModule.training_step

    @functools.wraps(step)
    def late_step(self, batch, batch_idx):
        if clock["armed"] and self.current_epoch == 1 and batch_idx == 1:
            clock["shift"], clock["armed"] = 7200.0, False
        return step(self, batch, batch_idx)

    monkeypatch.setattr(LangevinFlowModule, "training_step", late_step)
    root, run = tmp_path, tmp_path / "run"
    assert main(["fit", *LANGEVIN, "--trainer.default_root_dir", str(root), "--run-name", "straight",
                 "--trainer.max_epochs", "4"]) == 0
    per_epoch = _last(root / "straight")["global_step"] // 4
    assert per_epoch > 2  # the time runs out in the middle of an epoch
    clock["armed"] = True
    capsys.readouterr()
    code = main(["fit", *LANGEVIN, "--trainer.default_root_dir", str(root), "--run-name", "run",
                 "--trainer.max_epochs", "4", "--trainer.max_time", "00:01:00:00"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    last = _last(run)
    assert (last["epoch"], last["global_step"]) == (1, 2 * per_epoch)  # epoch 1 whole, not cut after 2 batches
    # the training time is the 2 h the Timer's clock jumps plus the real seconds the two epochs took (about 1 s,
    # more on a loaded machine: CI once read 00:02:00:01)
    trained = r"00:02:00:[0-5]\d"
    assert re.search(rf"trainer\.max_time 00:01:00:00 used up after epoch 2/4 \({trained} of training\): the run "
                     "stopped unfinished at that epoch's end", err), err
    assert f"neurodyn fit --run {run} --trainer.max_time DD:HH:MM:SS" in err, err

    code = main(["fit", "--run", str(run)])  # max_time is the run's training time in all: none is left
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(rf"note: the checkpoint's run has trained {trained} of trainer\.max_time 00:01:00:00", out), out
    assert "nothing to train" in out and _last(run)["global_step"] == 2 * per_epoch
    assert not (run / "config.resume-1.yaml").exists()

    clock["shift"] = 0.0
    assert main(["fit", "--run", str(run), "--trainer.max_time", "00:03:00:00"]) == 0
    _assert_identical(root / "straight", run, 4)


def test_validation_inside_epochs_saves_last_every_epoch_and_resumes_exactly(tmp_path):
    """`--trainer.val_check_interval 0.5`: the second validation of an epoch ends on its last batch, and the top-k
    file it saved (at validation end, before the epoch's end) made the epoch-end save skip as 'saved at this step
    already': no last.ckpt was written on an epoch whose last validation improved the monitor (a run with no
    last.ckpt at all, or a stale one an epoch behind, which a resume then continued). last.ckpt is written at
    every epoch's end, and resuming from it equals the straight run bit for bit."""
    import json

    args = [*LANGEVIN, "--data.batch_size", "4", "--trainer.val_check_interval", "0.5",
            "--trainer.default_root_dir", str(tmp_path)]
    assert main(["fit", *args, "--run-name", "straight", "--trainer.max_epochs", "3"]) == 0
    assert main(["fit", *args, "--run-name", "resumed", "--trainer.max_epochs", "1"]) == 0
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    one, three = _last(resumed), _last(straight)
    # each last.ckpt is its fit's last epoch's end: every step of it
    assert one["epoch"] == 0 and three["epoch"] == 2 and 3 * one["global_step"] == three["global_step"] > 0
    top_k = [p for p in (straight / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt"]
    assert all(not (p.samefile(straight / "checkpoints" / "last.ckpt")) for p in top_k)  # written, not linked
    assert main(["fit", "--run", str(resumed), "--trainer.max_epochs", "3"]) == 0
    _assert_identical(straight, resumed, 3)
    index = json.loads((straight / "checkpoints" / "checkpoints.json").read_text())
    assert index["last"] == "last.ckpt" and index["last_epoch"] == 2, index


@pytest.mark.parametrize("value, shown", [("{hourz: 1}", "{'hourz': 1}"), ("abc", "'abc'"),
                                          ("{days: 1000000000000}", "{'days': 1000000000000}")])
def test_a_bad_max_time_of_a_resume_is_one_line(tmp_path, capsys, value, shown):
    """A resume of a run with a max_time read the new max_time before the Trainer was built (to say when the time is
    used up already), and a mapping Lightning's Timer cannot read was a TypeError traceback there ({days: 1e12}: an
    OverflowError), not the one-line refusal a fresh fit gives."""
    args = [*LANGEVIN, "--trainer.default_root_dir", str(tmp_path), "--run-name", "run", "--trainer.max_epochs", "1",
            "--trainer.max_time", "00:01:00:00"]
    assert main(["fit", *args]) == 0
    capsys.readouterr()
    code = main(["fit", "--run", str(tmp_path / "run"), "--trainer.max_epochs", "2", "--trainer.max_time", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"neurodyn fit: error: trainer.max_time: {shown} is not a duration; give DD:HH:MM:SS "
                                 "(days:hours:minutes:seconds, e.g. 00:12:00:00), a mapping such as {hours: 12}, or "
                                 "null for none"], err


def _lr_of_epochs(run: Path) -> dict[int, float]:
    import csv

    with (run / "metrics.csv").open() as handle:
        return {int(r["epoch"]): float(r["train/lr"]) for r in csv.DictReader(handle) if r.get("train/lr")}


def test_a_cosine_run_resumed_past_its_span_trains_at_min_lr(tmp_path, capsys):
    """`fit --run DIR --trainer.max_epochs N` of a cosine run keeps the span the run started with (the scheduler's
    state is restored), and torch's cosine rose again past it: the user's 100-epoch run extended to 105 trained
    at 1.07e-5, 1.30e-5, 1.66e-5, 2.18e-5 after reaching min_lr, silently. The extra epochs now train at min_lr.
    Fails before (the 3-epoch cosine's epochs 4-6 of 7 trained at 7.6e-4, 2.3e-3 and the full 3e-3)."""
    lr, min_lr = 3e-3, 1e-5
    args = [*LANGEVIN, "--model.init_args.lr_schedule", "cosine", "--model.init_args.lr", str(lr),
            "--model.init_args.min_lr", str(min_lr), "--trainer.default_root_dir", str(tmp_path)]
    assert main(["fit", *args, "--run-name", "run", "--trainer.max_epochs", "3"]) == 0
    within = _lr_of_epochs(tmp_path / "run")
    assert main(["fit", "--run", str(tmp_path / "run"), "--trainer.max_epochs", "7"]) == 0
    rates = _lr_of_epochs(tmp_path / "run")
    assert sorted(rates) == list(range(7)) and {e: rates[e] for e in range(3)} == within
    assert [rates[e] for e in range(3, 7)] == pytest.approx([min_lr] * 4, rel=1e-6)  # float32 in metrics.csv


def test_a_checkpoint_of_torchs_cosine_resumes_exactly_and_holds_min_lr_past_its_span(tmp_path, monkeypatch):
    """Checkpoints written before the cosine held min_lr past its span hold torch's CosineAnnealingLR state: a run
    interrupted inside its span resumes bit for bit as the straight run of today's code (a guard: passes before
    and after), and a finished one extended past its span trains at min_lr (fails before: the rate rose)."""
    import neurodyn.training.module as module

    min_lr = 1e-5
    args = [*LANGEVIN, "--model.init_args.lr_schedule", "cosine", "--model.init_args.min_lr", str(min_lr),
            "--trainer.default_root_dir", str(tmp_path)]
    assert main(["fit", *args, "--run-name", "straight", "--trainer.max_epochs", "4"]) == 0
    with monkeypatch.context() as old:  # the runs of before: torch's cosine in the checkpoints
        old.setattr(module, "CosineToMinLR", torch.optim.lr_scheduler.CosineAnnealingLR, raising=False)
        assert main(["fit", *args, "--run-name", "resumed", "--trainer.max_epochs", "4",
                     "--trainer.max_steps", str(_last(tmp_path / "straight")["global_step"] // 2)]) == 0
        assert main(["fit", *args, "--run-name", "finished", "--trainer.max_epochs", "4"]) == 0
    assert _last(tmp_path / "resumed")["epoch"] == 1
    assert main(["fit", "--run", str(tmp_path / "resumed"), "--trainer.max_steps", "-1"]) == 0
    _assert_identical(tmp_path / "straight", tmp_path / "resumed", 4)
    assert main(["fit", "--run", str(tmp_path / "finished"), "--trainer.max_epochs", "6"]) == 0
    rates = _lr_of_epochs(tmp_path / "finished")
    assert {e: rates[e] for e in range(4)} == _lr_of_epochs(tmp_path / "straight")
    assert [rates[4], rates[5]] == pytest.approx([min_lr] * 2, rel=1e-6)


def test_a_resume_past_the_cosines_span_says_its_extra_epochs_train_at_min_lr(tmp_path, capsys):
    """A resume whose trainer.max_epochs goes past the span of the run's cosine (the max_epochs it started with) said
    nothing, and the extra epochs were not the run of that length from the start. One note line says so now, for
    `fit --run DIR` and for `fit --ckpt_path FILE`; a resume inside the span (an interrupted run
    trained on to its max_epochs) gets none. Fails before (no note)."""
    args = [*LANGEVIN, "--model.init_args.lr_schedule", "cosine", "--model.init_args.min_lr", "2e-05",
            "--trainer.default_root_dir", str(tmp_path)]
    assert main(["fit", *args, "--run-name", "run", "--trainer.max_epochs", "3", "--trainer.max_steps", "3"]) == 0
    run = tmp_path / "run"
    assert _last(run)["epoch"] == 0
    capsys.readouterr()

    def notes(argv):
        assert main(argv) == 0
        out, err = capsys.readouterr()
        return [line for line in (out + err).splitlines() if "learning-rate" in line]

    assert notes(["fit", "--run", str(run), "--trainer.max_steps", "-1"]) == []  # on to its own 3 epochs
    assert _last(run)["epoch"] == 2
    assert notes(["fit", "--run", str(run), "--trainer.max_steps", "-1", "--trainer.max_epochs", "4"]) == [
        "note: trainer.max_epochs: the cosine learning-rate decay of the checkpoint's run spans 3 epochs (the "
        "max_epochs it started with); epoch 4 trains at min_lr 2e-05 (a new run of 4 epochs would decay over all "
        "of them)"]
    last = str(run / "checkpoints" / "last.ckpt")
    assert notes(["fit", *args, "--trainer.max_steps", "-1", "--trainer.max_epochs", "6", "--ckpt_path", last]) == [
        "note: trainer.max_epochs: the cosine learning-rate decay of the checkpoint's run spans 3 epochs (the "
        "max_epochs it started with); epochs 4-6 train at min_lr 2e-05 (a new run of 6 epochs would decay over all "
        "of them)"]
    assert _last(run)["epoch"] == 5
